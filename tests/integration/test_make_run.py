"""`make run` (release_readiness_dev.devrun): a local control plane, the operator and the sample; Ctrl-C stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from release_readiness_dev.localcluster import free_port
from tests.integration.conftest import REPO, Kubectl, eventually


def test_make_run_serves_the_sample_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    cluster_dir = tmp_path / "cluster"  # not the repo's .cluster: a developer's `make run` may be using it
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env |= {
        "RR_CLUSTER_DIR": str(cluster_dir),
        "RR_WEBHOOK_PORT": str(free_port()),
        "RR_HEALTH_PORT": str(free_port()),
        "RR_METRICS_PORT": str(free_port()),
        "PYTHONPATH": str(REPO / "operator"),  # release_readiness_dev is not installed, as `make run` does
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "release_readiness_dev.devrun"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "the operator is running" in line:
                break
        output = "".join(lines)
        assert "local control plane ready at https://127.0.0.1:" in output, output
        assert f"export KUBECONFIG={cluster_dir / 'kubeconfig'}" in output
        kubectl = Kubectl(cluster_dir / "kubeconfig")

        def ready_column() -> str:
            out = kubectl.run("get", "rr", "payments-api-3.2.0", "-n", "payments-prod", "--no-headers").stdout
            return out if " False " in out else ""

        row = eventually(ready_column, timeout=60, what="the sample release evaluated")
        assert "payments-api" in row
        refused = kubectl.run(
            "apply", "-f", str(REPO / "deploy" / "samples" / "production-deployment.yaml"), check=False
        )
        assert "is not Ready" in refused.stderr
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--data-dir={cluster_dir / 'etcd'}"], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], "make run left etcd running"
