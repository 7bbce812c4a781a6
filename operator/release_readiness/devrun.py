"""`make run`: the operator and its webhooks against $KUBECONFIG, or against a local control plane.

Without $KUBECONFIG it starts etcd + kube-apiserver in .cluster/, installs the CRDs, the default
checklist and the sample release, prints the `export KUBECONFIG=...` line, and runs the operator in
the foreground. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

from release_readiness.config import Settings
from release_readiness.localcluster import ControlPlaneError, LocalCluster, find_bin_dir
from release_readiness.logs import configure_logging
from release_readiness.main import run_operator

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]


def kubectl(*args: str) -> None:
    argv = [str(find_bin_dir() / "kubectl"), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        print(f"  {line}")


def install(with_samples: bool = True) -> None:
    print("installing the CRDs and the default checklist")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "deploy" / "checklists"))
    if with_samples:
        print("applying the sample release (payments-api 3.2.0)")
        samples = REPO / "deploy" / "samples"
        for name in ("namespaces.yaml", "candidate.yaml", "release.yaml"):
            kubectl("apply", "-f", str(samples / name))


def main() -> int:
    settings = Settings.from_env()
    configure_logging(os.environ.get("RR_LOG_FORMAT", "text"), logging.INFO)
    cluster: LocalCluster | None = None
    if not os.environ.get("KUBECONFIG"):
        cluster = LocalCluster(REPO / ".cluster")
        try:
            cluster.start()
        except ControlPlaneError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        print(f"local control plane ready at {cluster.server} in {cluster.startup_seconds:.1f}s")
    try:
        install()
        print(f"\nTo talk to it:  export KUBECONFIG={os.environ['KUBECONFIG']}")
        print("                kubectl get readiness -A\n")
        print("running the operator; Ctrl-C stops it" + (" and the control plane" if cluster else ""))
        asyncio.run(run_operator(settings))
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if cluster is not None:
            cluster.stop()
            print("stopped the local control plane")
    return 0


if __name__ == "__main__":
    sys.exit(main())
