"""The harness the integration tests and `make bench` share: kubectl against a local control plane (impersonating
when asked), the real operator as a subprocess, and polling until a condition holds.

A library of its own so that the benchmarks do not import the integration tests' conftest.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from release_readiness_dev.localcluster import LocalCluster, die_with_parent, find_bin_dir, free_port

REPO = Path(__file__).resolve().parents[2]
BIN = find_bin_dir()


class Kubectl:
    """bin/kubectl against the test cluster; impersonates when asked to."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig

    def run(
        self,
        *args: str,
        stdin: str | None = None,
        as_user: str | None = None,
        as_groups: tuple[str, ...] = (),
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(BIN / "kubectl"), f"--kubeconfig={self.kubeconfig}"]
        if as_user:
            argv.append(f"--as={as_user}")
            argv += [f"--as-group={g}" for g in as_groups]
        argv += list(args)
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def apply(self, manifest: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", stdin=manifest, **kwargs)


def eventually(fn: Callable[[], Any], timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll fn until it returns a truthy value; fail with the last value or error."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as err:
            last = err
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def terminate(proc: subprocess.Popen[Any], timeout: float = 20) -> None:
    """Stop a child process: SIGTERM, then SIGKILL after `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class OperatorProcess:
    """The real operator (`python -m release_readiness.main`) as a subprocess against the test cluster."""

    def __init__(self, cluster: LocalCluster, log_path: Path, cert_dir: Path, webhook_port: int, **env: str) -> None:
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.webhook_port = webhook_port
        self.log_path = log_path
        self.env = {
            **os.environ,
            "KUBECONFIG": str(cluster.kubeconfig),
            "RR_HEALTH_PORT": str(self.health_port),
            "RR_METRICS_PORT": str(self.metrics_port),
            "RR_WEBHOOK_PORT": str(webhook_port),
            "RR_WEBHOOK_HOST": "127.0.0.1",
            "RR_WEBHOOK_CERT_DIR": str(cert_dir),
            "RR_WEBHOOK_CLIENT_CA": str(cluster.webhook_client_ca),
            "RR_BREAK_GLASS_GROUPS": "sre-oncall",
            "RR_PLATFORM_ADMIN_GROUPS": "platform-admins",
            "RR_RESYNC_SECONDS": "30",
            "RR_METRICS_INTERVAL_SECONDS": "2",
            "RR_LOG_FORMAT": "json",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """How the operator is started (tests/image runs the built image's entrypoint instead)."""
        return [sys.executable, "-m", "release_readiness.main"]

    def start(self, ready: bool = True) -> OperatorProcess:
        """Start it and wait until it is ready (every watched kind listed), or only live when `ready` is False."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only prctl, safe before exec
        )

        probe = "readyz" if ready else "healthz"

        def answers() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited: {self.log_path.read_text()[-3000:]}")
            url = f"http://127.0.0.1:{self.health_port}/{probe}"
            with urllib.request.urlopen(url, timeout=1) as resp:
                return bool(resp.status == 200)

        eventually(answers, timeout=60, what=f"operator /{probe}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            terminate(self.proc)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
