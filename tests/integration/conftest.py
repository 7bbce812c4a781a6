"""One real control plane (etcd + kube-apiserver) per test run, with the CRDs installed."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from release_readiness_dev.localcluster import LocalCluster, die_with_parent, find_bin_dir

REPO = Path(__file__).resolve().parents[2]
BIN = find_bin_dir()
FIXTURES = REPO / "tests" / "integration" / "fixtures"
SAMPLE_CRDS = REPO / "deploy" / "samples" / "crds"  # trimmed CRDs of the optional operators (make run installs them)


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
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def apply(self, manifest: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", stdin=manifest, **kwargs)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    directory = tmp_path_factory.mktemp("cluster")
    with LocalCluster(directory) as local:
        print(f"\ncontrol plane up in {local.startup_seconds:.1f}s at {local.server}")
        yield local


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Kubectl:
    return Kubectl(cluster.kubeconfig)


@pytest.fixture(scope="session")
def api_client(cluster: LocalCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    # The optional operators' kinds the checks read, served before the operator starts (Kopf may miss several
    # CRDs created at once while it runs). trivy-operator's stays out: a test installs it late on purpose.
    for name in ("prometheusrules-crd.yaml", "operator-crds.yaml"):
        kubectl.run("apply", "-f", str(SAMPLE_CRDS / name))
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(SAMPLE_CRDS / name))


@pytest.fixture
def namespace(api_client: client.ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def eventually(fn: Any, timeout: float = 30.0, interval: float = 0.2, what: str = "condition") -> Any:
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


os.environ.setdefault("KUBECONFIG", "/nonexistent")  # never touch a developer's real cluster by accident


class OperatorProcess:
    """The real operator (`python -m release_readiness.main`) as a subprocess against the test cluster."""

    def __init__(self, cluster: LocalCluster, log_path: Path, cert_dir: Path, webhook_port: int, **env: str) -> None:
        from release_readiness_dev.localcluster import free_port

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
        import sys

        return [sys.executable, "-m", "release_readiness.main"]

    def start(self, ready: bool = True) -> OperatorProcess:
        """Start it and wait until it is ready (every watched kind listed), or only live when `ready` is False."""
        import urllib.request

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
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/{probe}", timeout=1) as resp:
                return bool(resp.status == 200)

        eventually(answers, timeout=60, what=f"operator /{probe}")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())


@pytest.fixture(scope="session")
def checklist_installed(kubectl: Kubectl, crds: None) -> None:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "deploy" / "checklists"))


@pytest.fixture(scope="session")
def webhook(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A serving certificate for 127.0.0.1 and the webhook configurations registered with the API server."""
    import json

    from release_readiness.admission.configuration import prepare_local_webhook
    from release_readiness_dev.localcluster import free_port

    cert_dir = tmp_path_factory.mktemp("webhook")
    port = free_port()
    configs = prepare_local_webhook(cert_dir, port)
    Kubectl(cluster.kubeconfig).apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
    return cert_dir, port


@pytest.fixture(scope="session")
def operator(
    cluster: LocalCluster, crds: None, webhook: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    cert_dir, port = webhook
    proc = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log", cert_dir, port).start()
    yield proc
    proc.stop()
    print(f"\noperator log: {proc.log_path}")


@pytest.fixture(scope="session")
def signer_rbac(kubectl: Kubectl) -> None:
    """People may create, read and delete signoffs and create and read releases (as a platform team would grant);
    engineering leads may also read every namespace (so they may create releases looking at any of them)."""
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRole",
                        "metadata": {"name": "readiness-signer"},
                        "rules": [
                            {
                                "apiGroups": ["readiness.dev"],
                                "resources": ["releasesignoffs"],
                                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                            },
                            {
                                "apiGroups": ["readiness.dev"],
                                "resources": ["releasereadinesses"],
                                "verbs": ["get", "list", "watch", "create"],
                            },
                        ],
                    },
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRoleBinding",
                        "metadata": {"name": "readiness-signers"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": "readiness-signer",
                        },
                        "subjects": [
                            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                            for g in ("eng-leads", "devops-leads", "developers", "system:serviceaccounts:ci")
                        ],
                    },
                    {
                        # Release creators must be able to read the candidate namespace (a SubjectAccessReview at
                        # creation). No controller manager fills the aggregated `view` role here, so: our own.
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRole",
                        "metadata": {"name": "deployment-reader"},
                        "rules": [
                            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}
                        ],
                    },
                    {
                        # Engineering leads may read every namespace here; developers may not.
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRoleBinding",
                        "metadata": {"name": "eng-leads-read-deployments"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": "deployment-reader",
                        },
                        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eng-leads"}],
                    },
                ],
            }
        )
    )


# -- playing the controllers and the people ------------------------------------------------------------------
# No controller-manager runs on the test control plane: tests write workload status themselves.


def set_status(kubectl: Kubectl, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    kubectl.run(
        "patch",
        kind,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def roll_out(kubectl: Kubectl, namespace: str, name: str, replicas: int = 2, available: int | None = None) -> None:
    """Play the deployment controller: the current generation fully updated, `available` pods available."""
    generation = int(
        kubectl.run("get", "deployment", name, "-n", namespace, "-o", "jsonpath={.metadata.generation}").stdout
    )
    set_status(
        kubectl,
        "deployment",
        namespace,
        name,
        {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas if available is None else available,
        },
    )


CI_BOT = ("system:serviceaccount:ci:ci-bot", ("system:serviceaccounts", "system:serviceaccounts:ci"))


def apply_as_ci(kubectl: Kubectl, *objects: dict[str, Any]) -> None:
    """CI (the identity the smokeTests check trusts by default) applies the suite Jobs: only its Jobs count."""
    rbac = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "ci-suite-runner"},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "create", "patch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "ci-suite-runners"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ci-suite-runner"},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts:ci"}
            ],
        },
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    kubectl.apply(body, as_user=CI_BOT[0], as_groups=CI_BOT[1])


def complete_job(kubectl: Kubectl, namespace: str, name: str) -> None:
    """Play the job controller: the Job succeeded."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    set_status(
        kubectl,
        "job",
        namespace,
        name,
        {
            "succeeded": 1,
            "startTime": now,
            "completionTime": now,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "lastTransitionTime": now},
            ],
        },
    )


Person = tuple[str, tuple[str, ...]]


def sign(
    kubectl: Kubectl,
    who: Person,
    namespace: str,
    release: str,
    name: str | None = None,
    check: bool = True,
    **spec: Any,
) -> subprocess.CompletedProcess[str]:
    """Create a ReleaseSignoff as `who` (impersonated): the webhook stamps them as the signer."""
    body = {
        "apiVersion": "readiness.dev/v1alpha1",
        "kind": "ReleaseSignoff",
        "metadata": {"name": name or f"s-{uuid.uuid4().hex[:6]}", "namespace": namespace},
        "spec": {"release": release, **spec},
    }
    return kubectl.run("create", "-f", "-", stdin=json.dumps(body), as_user=who[0], as_groups=who[1], check=check)
