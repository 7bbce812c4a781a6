"""`make run` (release_readiness_dev.devrun) as a newcomer meets it: a local control plane, the operator and the
sample, the people's kubeconfigs and where everything is served; a quiet start; README.md's walk pasted literally,
from refused to admitted; and Ctrl-C stops everything. One `make run` serves the module, in the tests' order."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from release_readiness_dev.devrun import SAMPLE_PEOPLE
from release_readiness_dev.localcluster import free_port
from tests.integration.conftest import REPO, Kubectl

README_WALK = "## Walk the sample to production"
RUNNING = "the operator is running"


@dataclass
class MakeRun:
    proc: subprocess.Popen[str]
    cluster_dir: Path
    ports: dict[str, int]
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def startup(self) -> str:
        """What it printed up to "the operator is running"."""
        text = "".join(self.lines)
        return text[: text.index(RUNNING)] if RUNNING in text else text

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MakeRun]:
    cluster_dir = tmp_path_factory.mktemp("make-run") / "cluster"  # not the repo's .cluster: it may be in use
    ports = {name: free_port() for name in ("RR_WEBHOOK_PORT", "RR_HEALTH_PORT", "RR_METRICS_PORT")}
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env |= {k: str(v) for k, v in ports.items()}
    env |= {"RR_CLUSTER_DIR": str(cluster_dir), "PYTHONPATH": str(REPO / "operator")}  # as `make run` does
    proc = subprocess.Popen(
        [sys.executable, "-m", "release_readiness_dev.devrun"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    run = MakeRun(proc, cluster_dir, ports)
    started = threading.Event()

    def read() -> None:  # all along, so the pipe never fills
        assert proc.stdout is not None
        for line in proc.stdout:
            run.lines.append(line)
            if RUNNING in line:
                started.set()
        started.set()

    run.reader = threading.Thread(target=read, daemon=True)
    run.reader.start()
    try:
        started.wait(timeout=240)
        assert RUNNING in "".join(run.lines), "".join(run.lines)
        yield run
    finally:
        run.stop()


def test_make_run_prints_where_everything_is_and_who_can_talk_to_it(make_run: MakeRun) -> None:
    out, ports, users = make_run.startup, make_run.ports, make_run.cluster_dir / "users"
    assert "local control plane ready at https://127.0.0.1:" in out, out
    assert f"webhooks   https://127.0.0.1:{ports['RR_WEBHOOK_PORT']}" in out
    assert f"metrics    http://127.0.0.1:{ports['RR_METRICS_PORT']}/metrics" in out
    assert f"/healthz  http://127.0.0.1:{ports['RR_HEALTH_PORT']}/readyz" in out
    assert f"export KUBECONFIG={make_run.cluster_dir / 'kubeconfig'}" in out
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['RR_HEALTH_PORT']}/readyz", timeout=10) as ready:
        assert ready.status == 200
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['RR_METRICS_PORT']}/metrics", timeout=10) as metrics:
        assert b"# TYPE " in metrics.read()
    for person in SAMPLE_PEOPLE:
        path = users / f"{person.name}.kubeconfig"
        assert str(path) in out
        review = json.loads(Kubectl(path).run("auth", "whoami", "-o", "json").stdout)["status"]["userInfo"]
        assert review["username"] == person.username
        assert set(person.groups) <= set(review["groups"])
    # The samples' optional kinds are served: the fixed candidate's PrometheusRule can be created (dry run).
    kubectl = Kubectl(make_run.cluster_dir / "kubeconfig")
    dry = kubectl.run("apply", "--dry-run=server", "-f", str(REPO / "deploy" / "samples" / "candidate-fixed.yaml"))
    assert "prometheusrule.monitoring.coreos.com/payments-api created (server dry run)" in dry.stdout


def test_a_normal_start_logs_no_warning_or_error(make_run: MakeRun) -> None:
    """Issue 17 part 3: what is expected on a start (optional CRDs absent, the API server's storage still
    initializing) is said once at INFO; WARNING and ERROR are kept for what a person must act on."""
    noisy = [line for line in make_run.startup.splitlines() if re.search(r"\b(WARNING|ERROR|CRITICAL)\b", line)]
    assert noisy == [], "\n".join(noisy)
    assert "Traceback" not in make_run.startup


def readme_walk() -> str:
    """README.md's walk as one bash script: its sh blocks, in order, verbatim (stopping at the first failure)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(README_WALK) :]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) >= 8, "the README's walk lost its blocks"
    script = "".join(blocks)
    # zsh, macOS's shell, takes `#` literally on its command line by default: no comments in what is pasted.
    assert [line for line in script.splitlines() if re.search(r"(^|\s)#", line)] == []
    return "set -euo pipefail\n" + script


def test_the_readme_walk_pasted_literally_ends_in_an_admitted_rollout(make_run: MakeRun, tmp_path: Path) -> None:
    """Issue 17 part 2: from a clone, after `make run`: refused, fixed, CI's evidence, five approvals, admitted."""
    clone = tmp_path / "clone"  # the clone as the README sees it, whose .cluster is this make run's
    clone.mkdir()
    for name in ("deploy", "bin", ".venv"):
        (clone / name).symlink_to(REPO / name)
    (clone / ".cluster").symlink_to(make_run.cluster_dir)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    walk = subprocess.run(
        ["bash", "-c", readme_walk()], cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    out = walk.stdout + walk.stderr
    assert walk.returncode == 0, out
    assert "ReleaseReadiness payments-prod/payments-api-3.2.0 is not Ready" in out  # 1. refused
    assert "refused, as expected" in out
    assert "releasesignoff.readiness.dev/ci-evidence created" in out  # 3. CI's evidence
    assert "val waived " in out
    for role in ("engineering-lead", "devops-lead", "security-lead", "product-lead", "vp-engineering"):
        assert f"releasesignoff.readiness.dev/{role}-signoff created" in out  # 4. five approvals
    assert "approvals 5/5, 0 required outstanding" in out
    assert "payments-api-3.2.0 is Ready" in out
    assert out.count("deployment.apps/payments-api created") == 1  # 5. admitted (and not at 1.)
    report = (make_run.cluster_dir / "payments-api-3.2.0.md").read_text()
    assert "payments-api" in report
    kubectl = Kubectl(make_run.cluster_dir / "kubeconfig")
    image = kubectl.run(
        "get",
        "deployment",
        "payments-api",
        "-n",
        "payments-prod",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ).stdout
    assert image.endswith("@sha256:e1748cab7b1e9d2d0b5455fcb3066de444f8ac3b06b16aeabccfdbd2dc6dafd3")


def test_ctrl_c_stops_everything(make_run: MakeRun) -> None:
    make_run.stop()
    assert make_run.proc.returncode == 0, "".join(make_run.lines[-20:])
    assert make_run.reader is not None
    make_run.reader.join(timeout=30)  # it has read the last lines
    assert "stopped the local control plane" in "".join(make_run.lines)
    leftovers = subprocess.run(
        ["pgrep", "-f", f"--data-dir={make_run.cluster_dir / 'etcd'}"], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == [], "make run left etcd running"


def make(target: str, cluster_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target, f"CLUSTER_DIR={cluster_dir}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_make_cluster_install_and_run_in_any_order_replace_stale_registrations(tmp_path: Path) -> None:
    """A registration left in the kept etcd (a `make run` that ended, a crash) points at nothing: `make install`
    and `make run` remove it first; `make run` against `make cluster` registers its webhooks and removes them
    when it stops."""
    from release_readiness.admission.configuration import prepare_local_webhook

    cluster_dir = tmp_path / "cluster"
    kubeconfig = cluster_dir / "kubeconfig"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"} | {"RR_CLUSTER_DIR": str(cluster_dir)}
    started = make("cluster", cluster_dir, env)
    assert started.returncode == 0, started.stderr
    try:
        kubectl = Kubectl(kubeconfig)
        stale = prepare_local_webhook(tmp_path / "gone", free_port())  # nothing will listen there
        kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": stale}))
        with_cluster = env | {"KUBECONFIG": str(kubeconfig)}
        installed = make("install", cluster_dir, with_cluster)
        assert installed.returncode == 0, installed.stderr
        assert "removed the stale webhook registration validatingwebhookconfiguration/release-readiness" in (
            installed.stdout
        )
        assert "readinesschecklist.readiness.dev/pre-production serverside-applied" in installed.stdout
        kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": stale}))  # and again, for make run
        run_env = with_cluster | {
            "RR_WEBHOOK_PORT": str(free_port()),
            "RR_HEALTH_PORT": str(free_port()),
            "RR_METRICS_PORT": str(free_port()),
            "PYTHONPATH": str(REPO / "operator"),
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "release_readiness_dev.devrun"],
            cwd=REPO,
            env=run_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "the operator is running" in line:
                    break
            output = "".join(lines)
            assert "removed the stale webhook registration" in output, output
            assert "registering webhooks" in output, output
            refused = kubectl.run(
                "apply", "-f", str(REPO / "deploy" / "samples" / "production-deployment.yaml"), check=False
            )
            assert "is not Ready" in refused.stderr
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            rest, _ = proc.communicate(timeout=60)
        assert "removed the webhook registration" in rest, rest
        names = kubectl.run("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", "-o", "name")
        assert names.stdout.strip() == "", "make run leaves no registration behind on a cluster that outlives it"
        again = make("install", cluster_dir, with_cluster)
        assert again.returncode == 0, again.stderr
    finally:
        make("cluster-down", cluster_dir, env)
