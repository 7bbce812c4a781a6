"""`make run`: the operator and its webhooks against $KUBECONFIG, or against a local control plane.

Without $KUBECONFIG it starts etcd + kube-apiserver in .cluster/, installs the CRDs (ours and the trimmed CRDs of
the optional operators the samples use), the default checklist and the sample release, writes kubeconfigs for the
sample's people and CI (client certificates, in .cluster/users/) and what they may do (deploy/samples/rbac.yaml),
prints where everything is served, and runs the operator in the foreground. Ctrl-C stops everything it started.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from release_readiness.admission.configuration import prepare_local_webhook
from release_readiness.config import Settings
from release_readiness.logs import configure_logging
from release_readiness.main import run_operator
from release_readiness_dev.localcluster import ControlPlaneError, LocalCluster, find_bin_dir, stop_background
from release_readiness_dev.stale import remove_stale_registrations

__all__ = ["main"]

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "deploy" / "samples"


@dataclass(frozen=True)
class SamplePerson:
    """Someone the README's walk plays, with a client certificate of the local cluster's CA."""

    name: str  # users/<name>.kubeconfig
    username: str
    groups: tuple[str, ...]
    role: str  # the default checklist's role they sign as ("" for CI)
    part: str  # what they do in the sample


SAMPLE_PEOPLE = (
    SamplePerson("erin", "erin", ("eng-leads",), "engineering-lead", "engineering lead"),
    SamplePerson("devon", "devon", ("devops-leads",), "devops-lead", "DevOps lead"),
    SamplePerson("sasha", "sasha", ("security-leads",), "security-lead", "security lead"),
    SamplePerson("pat", "pat", ("product-leads",), "product-lead", "product lead"),
    SamplePerson("val", "val", ("vp-engineering",), "vp-engineering", "VP of engineering, may waive"),
    SamplePerson(
        "ci-bot",
        "system:serviceaccount:ci:ci-bot",
        ("system:serviceaccounts", "system:serviceaccounts:ci"),
        "",
        "CI: suite Jobs and evidence",
    ),
)


def kubectl(*args: str) -> None:
    argv = [str(find_bin_dir() / "kubectl"), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    for line in proc.stdout.splitlines():
        print(f"  {line}")


def install(with_samples: bool = True, health_port: int | None = None) -> None:
    print("installing the CRDs and the default checklist")
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "deploy" / "checklists"))
    if health_port is not None:
        wait_ready(health_port)
    if with_samples:
        print("applying the sample release (payments-api 3.2.0)")
        samples = REPO / "deploy" / "samples"
        for name in ("namespaces.yaml", "candidate.yaml", "release.yaml"):
            kubectl("apply", "-f", str(samples / name))


def install_crds_first() -> None:
    """Our CRDs and the optional operators' kinds the samples use (trimmed CRDs: prometheus-operator,
    external-secrets, grafana-operator, velero, trivy-operator), served before the operator starts, so it watches
    them from the start instead of warning that they are missing. Only on the local control plane: a real cluster
    gets the optional ones from those operators."""
    print("installing the CRDs, and the optional operators' CRDs the samples use (deploy/samples/crds/)")
    for directory in (REPO / "crds", SAMPLES / "crds"):
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(directory))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(directory))


def write_people_kubeconfigs(cluster: LocalCluster) -> list[tuple[SamplePerson, Path]]:
    """A kubeconfig with a client certificate for each of the sample's people and CI."""
    return [(p, cluster.kubeconfig_for(p.username, p.groups, name=p.name)) for p in SAMPLE_PEOPLE]


def endpoints(settings: Settings, kubeconfig: str, people: list[tuple[SamplePerson, Path]], webhooks: bool) -> str:
    """What `make run` prints once everything is up: where it is served and how to talk to it as whom."""
    lines = [
        "",
        f"webhooks   https://127.0.0.1:{settings.webhook_port}"
        + ("" if webhooks else "  (not registered: KUBECONFIG is set)"),
        f"metrics    http://127.0.0.1:{settings.metrics_port}/metrics",
        f"health     http://127.0.0.1:{settings.health_port}/healthz  http://127.0.0.1:{settings.health_port}/readyz",
        f"kubeconfig {kubeconfig}  (cluster admin)",
    ]
    width = max((len(p.name) for p, _ in people), default=0)
    lines += [f"           {p.name:<{width}} {path}  ({p.part})" for p, path in people]
    lines += [
        "",
        f"To talk to it:  export KUBECONFIG={kubeconfig}",
        "                kubectl get readiness -A",
        "                kubectl apply -f deploy/samples/production-deployment.yaml   # refused by the gate",
        "and README.md walks the sample to an admitted rollout.",
        "",
    ]
    return "\n".join(lines)


def register_local_webhooks(settings: Settings, cluster: LocalCluster) -> Settings:
    """Certificates for 127.0.0.1 and the webhook configurations pointing the local API server at us; the
    webhook requires the API server's client certificate, as in a production install."""
    cert_dir = Path(os.environ.get("RR_CLUSTER_DIR") or REPO / ".cluster") / "webhook"
    configs = prepare_local_webhook(cert_dir, settings.webhook_port, settings.extra_gated_kinds)
    path = cert_dir / "configurations.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
    print(f"registering the admission webhooks at https://127.0.0.1:{settings.webhook_port}")
    kubectl("apply", "-f", str(path))
    return dataclasses.replace(
        settings,
        webhook_host="127.0.0.1",
        webhook_cert_dir=str(cert_dir),
        webhook_client_ca=str(cluster.webhook_client_ca),
    )


def wait_ready(health_port: int, timeout: float = 60.0) -> None:
    """Until the operator has listed everything (its /readyz): before that it refuses releases, "starting, retry"."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/readyz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError as err:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the operator did not become ready (/readyz on port {health_port}): {err}"
                ) from None
        time.sleep(0.2)


async def _port_open(port: int) -> None:
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        writer.close()
        return


async def run_and_install(
    settings: Settings, webhooks: bool, people: list[tuple[SamplePerson, Path]] | None = None
) -> None:
    """Start the operator, and once its webhooks answer, install the CRDs, checklist and samples."""
    operator = asyncio.create_task(run_operator(settings))
    if webhooks:
        try:
            await asyncio.wait_for(_port_open(settings.webhook_port), 60)
        except TimeoutError:
            operator.cancel()
            raise RuntimeError(
                f"the operator's webhook server did not listen on port {settings.webhook_port}"
            ) from None
    await asyncio.to_thread(install, True, settings.health_port)
    if people:
        print("applying what the sample's people and CI may do (deploy/samples/rbac.yaml)")
        await asyncio.to_thread(kubectl, "apply", "-f", str(SAMPLES / "rbac.yaml"))
    print(endpoints(settings, os.environ["KUBECONFIG"], people or [], webhooks))
    print("the operator is running; Ctrl-C stops it" + (" and the control plane" if webhooks else ""))
    await operator


def _started_by_make_cluster() -> LocalCluster | None:
    """The local control plane of `make cluster` when $KUBECONFIG is its kubeconfig (then `make run` registers
    its webhooks there as it does on a control plane of its own)."""
    local = LocalCluster(Path(os.environ.get("RR_CLUSTER_DIR") or REPO / ".cluster"))
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig and Path(kubeconfig).resolve() == local.kubeconfig.resolve() and local.webhook_client_ca.exists():
        print(f"KUBECONFIG is the local control plane of `make cluster` ({local.directory}): registering webhooks")
        return local
    return None


def main() -> int:
    settings = Settings.from_env()
    configure_logging(os.environ.get("RR_LOG_FORMAT", "text"), logging.INFO)
    cluster: LocalCluster | None = None
    if not os.environ.get("KUBECONFIG"):
        cluster = LocalCluster(Path(os.environ.get("RR_CLUSTER_DIR") or REPO / ".cluster"))
        for stopped in stop_background(cluster.directory):  # a `make cluster` would share the etcd data
            print(f"stopped the background cluster's {stopped}")
        try:
            cluster.start()
        except ControlPlaneError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        print(f"local control plane ready at {cluster.server} in {cluster.startup_seconds:.1f}s")
    local = cluster or _started_by_make_cluster()
    registered = False
    try:
        people: list[tuple[SamplePerson, Path]] = []
        for removed in remove_stale_registrations():
            print(f"removed the stale webhook registration {removed}")
        if local is not None:
            settings = register_local_webhooks(settings, local)
            registered = True
            install_crds_first()
            if cluster is not None:  # make cluster's CA key is not kept: its people have no kubeconfigs here
                people = write_people_kubeconfigs(cluster)
        else:
            print("KUBECONFIG is set: not registering webhooks (the API server must reach them; install the chart)")
        asyncio.run(run_and_install(settings, webhooks=registered, people=people))
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if registered and cluster is None:  # the cluster outlives us: leave no registration pointing at nothing
            try:
                for removed in remove_stale_registrations():
                    print(f"removed the webhook registration {removed}")
            except RuntimeError as err:
                print(f"error: {err}", file=sys.stderr)
        if cluster is not None:
            cluster.stop()
            print("stopped the local control plane")
    return 0


if __name__ == "__main__":
    sys.exit(main())
