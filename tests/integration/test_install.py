"""One command installs everything on a fresh API server, with defaults: `helm install`, `kubectl apply -k deploy/`
and `kubectl apply -f deploy/install.yaml`. The operator then runs as the chart's ServiceAccount, creates its
webhook certificate, patches the caBundle, applies the default checklist once its webhook answers, reaches Ready,
and the sample release is refused at the gate."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import REPO, Kubectl
from tests.integration.install import default_checklist_applied, get, helm, refused_at_the_gate, run_as_deployed

CHART = REPO / "charts" / "release-readiness"
NS = "release-readiness"


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[LocalCluster]:
    with LocalCluster(tmp_path / "cluster") as cluster:
        yield cluster


def installed_and_working(cluster: LocalCluster, name: str, workdir: Path) -> None:
    kubectl = Kubectl(cluster.kubeconfig)
    operator = run_as_deployed(cluster, NS, name, workdir).start()
    try:
        secret = get(kubectl, "secret", f"{name}-webhook-tls", "-n", NS)
        ca = base64.b64decode(secret["data"]["ca.crt"])
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            hooks = get(kubectl, kind, name)["webhooks"]
            assert {base64.b64decode(h["clientConfig"]["caBundle"]) for h in hooks} == {ca}, kind
        checklist = default_checklist_applied(kubectl)
        assert len(checklist["spec"]["items"]) == 231
        managers = {f["manager"] for f in checklist["metadata"]["managedFields"]}
        assert "release-readiness-operator" in managers
        refusal = refused_at_the_gate(kubectl)
        assert "denied the request" in refusal, refusal
        assert "payments-api-3.2.0" in refusal, refusal
        logs = operator.logs()
        assert "Forbidden" not in logs, logs[-3000:]
        assert " 403" not in logs, logs[-3000:]
    finally:
        operator.stop()


def test_helm_install_with_defaults(fresh: LocalCluster, tmp_path: Path) -> None:
    out = helm(
        "install",
        "release-readiness",
        str(CHART),
        "-n",
        NS,
        "--create-namespace",
        f"--kubeconfig={fresh.kubeconfig}",
        "--wait=false",
    )
    assert "STATUS: deployed" in out.stdout
    installed_and_working(fresh, "release-readiness", tmp_path)
    # Routine upgrades and rollbacks keep the operator's caBundle and Secret: the chart carries neither.
    kubectl = Kubectl(fresh.kubeconfig)

    def trusted() -> tuple[str, ...]:
        secret = get(kubectl, "secret", "release-readiness-webhook-tls", "-n", NS)["data"]["ca.crt"]
        hooks = [
            h["clientConfig"].get("caBundle") for h in get(kubectl, "validatingwebhookconfiguration", NS)["webhooks"]
        ]
        return (secret, *hooks)

    before = trusted()
    at = f"--kubeconfig={fresh.kubeconfig}"
    helm("upgrade", "release-readiness", str(CHART), "-n", NS, at, "--reuse-values", "--set", "replicaCount=3")
    assert trusted() == before, "helm upgrade kept the caBundle"
    helm("rollback", "release-readiness", "1", "-n", NS, at)
    assert trusted() == before, "helm rollback kept the caBundle"


@pytest.mark.parametrize("how", ["kustomize", "install.yaml"])
def test_kubectl_apply_with_defaults(fresh: LocalCluster, tmp_path: Path, how: str) -> None:
    kubectl = Kubectl(fresh.kubeconfig)
    if how == "kustomize":
        out = kubectl.run("apply", "-k", str(REPO / "deploy"))
    else:
        out = kubectl.run("apply", "-f", str(REPO / "deploy" / "install.yaml"))
    assert "customresourcedefinition.apiextensions.k8s.io/releasereadinesses.readiness.dev created" in out.stdout
    kubectl.run("wait", "--for=condition=Established", "--all", "crd", "--timeout=60s")
    installed_and_working(fresh, "release-readiness", tmp_path)


def test_rendering_is_deterministic() -> None:
    """No random material: two renders are byte-identical (Argo CD renders on every refresh)."""
    first = helm("template", "rr", str(CHART), "-n", NS).stdout
    assert first == helm("template", "rr", str(CHART), "-n", NS).stdout
    assert "BEGIN" not in first, "no key material"
    assert "caBundle:" not in first, "the operator patches the caBundle"
