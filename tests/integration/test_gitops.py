"""GitOps tools waiting on a release, against statuses the real operator wrote: Argo CD's health check (the shipped
Lua, run with lupa), `kubectl wait --for=condition=Ready` (what Flux's and kpt's kstatus checks read), and the
kstatus rules the conditions follow."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import pytest
import yaml
from kubernetes import client

from release_readiness import GROUP, VERSION
from release_readiness_dev import builders
from tests.argocd import argocd_health
from tests.integration.conftest import BIN, REPO, Kubectl, Person, eventually, sign

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

LABELS = {"app.kubernetes.io/name": "gitops-api", "app.kubernetes.io/version": "1.0.0"}
ERIN: Person = ("erin", ("eng-leads",))
FRANK: Person = ("frank", ("eng-leads",))
CONTAINER = {"name": "api", "image": "reg/api:1.0.0"}


def kstatus(obj: dict[str, Any]) -> str:
    """kstatus's verdict on a custom resource (sigs.k8s.io/cli-utils, what Flux's healthChecks and kpt read):
    InProgress until the generation is observed, Failed on Stalled=True, InProgress on Reconciling=True or
    Ready=False, else Current."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return "InProgress"
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    if conditions.get("Stalled", {}).get("status") == "True":
        return "Failed"
    if conditions.get("Reconciling", {}).get("status") == "True":
        return "InProgress"
    if conditions.get("Ready", {}).get("status") == "False":
        return "InProgress"
    return "Current"


class Flow:
    def __init__(self, kubectl: Kubectl, api_client: client.ApiClient) -> None:
        self.kubectl = kubectl
        self.custom = client.CustomObjectsApi(api_client)
        suffix = uuid.uuid4().hex[:6]
        self.stg, self.prod, self.checklist = f"gstg-{suffix}", f"gprod-{suffix}", f"gitops-{suffix}"
        for ns in (self.stg, self.prod):
            kubectl.run("create", "namespace", ns)
        item = {"section": "Infra", "check": {"workload": "replicas"}}
        checklist = builders.checklist(
            self.checklist,
            [
                {
                    **item,
                    "id": "replicas",
                    "title": "three replicas",
                    "check": {**item["check"], "params": {"min": 3}},
                },
                {
                    **item,
                    "id": "scaled-out",
                    "title": "four replicas after the rollout",
                    "phase": "post",
                    "check": {**item["check"], "params": {"min": 4}},
                },
            ],
            [{"role": "engineering-lead", "groups": ["eng-leads"]}],
        )
        kubectl.apply(json.dumps(checklist))

    def get(self, name: str = "rel") -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.prod, "releasereadinesses", name
        )
        return body

    def when(self, predicate: Any, what: str, name: str = "rel") -> dict[str, Any]:
        body: dict[str, Any] = eventually(lambda: (b := self.get(name)) and predicate(b) and b, timeout=60, what=what)
        return body


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


@pytest.fixture(scope="module")
def flow(kubectl: Kubectl, api_client: client.ApiClient) -> Flow:
    return Flow(kubectl, api_client)


def test_health_and_kstatus_follow_the_release_from_progressing_to_ready_vetoed_and_post_deployment(
    flow: Flow, kubectl: Kubectl
) -> None:
    kubectl.apply(
        json.dumps(builders.deployment("gitops-api", flow.stg, labels=LABELS, containers=[CONTAINER], replicas=2))
    )
    kubectl.apply(json.dumps(builders.release("rel", flow.prod, "gitops-api", "1.0.0", flow.checklist, flow.stg)))
    body = flow.when(lambda b: condition(b, "Ready").get("reason") == "ItemsOutstanding", "items outstanding")
    status, message = argocd_health(body)
    assert status == "Progressing"
    assert message.startswith("ItemsOutstanding: ")
    assert "replicas" in message
    assert condition(body, "Reconciling")["status"] == "True"
    assert condition(body, "Stalled")["status"] == "False"
    assert kstatus(body) == "InProgress"

    waiter = subprocess.Popen(
        [str(BIN / "kubectl"), f"--kubeconfig={kubectl.kubeconfig}", "wait", "--for=condition=Ready", "rr/rel",
         "-n", flow.prod, "--timeout=120s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        kubectl.apply(
            json.dumps(builders.deployment("gitops-api", flow.stg, labels=LABELS, containers=[CONTAINER], replicas=3))
        )
        body = flow.when(lambda b: condition(b, "Ready").get("reason") == "ApprovalsMissing", "approval missing")
        assert argocd_health(body) == ("Progressing", f"ApprovalsMissing: {condition(body, 'Ready')['message']}")
        assert kstatus(body) == "InProgress"
        sign(kubectl, ERIN, flow.prod, "rel", role="engineering-lead")
        out, err = waiter.communicate(timeout=150)
    finally:
        waiter.kill()
    assert waiter.returncode == 0, err
    assert "condition met" in out
    body = flow.get()
    assert argocd_health(body) == ("Healthy", "every required item and approval is satisfied")
    assert condition(body, "Reconciling")["status"] == "False"
    assert kstatus(body) == "Current"

    sign(kubectl, FRANK, flow.prod, "rel", name="veto", role="engineering-lead", decision="reject", comment="no")
    body = flow.when(lambda b: condition(b, "Stalled").get("status") == "True", "the veto to stall the release")
    status, message = argocd_health(body)
    assert status == "Degraded"
    assert message.startswith("Vetoed: engineering-lead vetoed by frank")
    assert condition(body, "Reconciling")["status"] == "False"  # kstatus: never both
    assert kstatus(body) == "Failed"
    kubectl.run("delete", "releasesignoff", "veto", "-n", flow.prod, as_user=FRANK[0], as_groups=FRANK[1])
    body = flow.when(lambda b: condition(b, "Ready").get("status") == "True", "Ready again once the veto is withdrawn")
    assert argocd_health(body)[0] == "Healthy"

    # Rolled out (the namespace is not gated here): the post-deployment item judges it, and fails.
    kubectl.apply(
        json.dumps(builders.deployment("gitops-api", flow.prod, labels=LABELS, containers=[CONTAINER], replicas=3))
    )
    body = flow.when(
        lambda b: condition(b, "PostDeploymentHealthy").get("reason") == "PostDeploymentChecksFailing",
        "post-deployment checks to fail",
    )
    assert condition(body, "Ready")["status"] == "True"  # Ready judges admission; Argo CD still shows the failure
    status, message = argocd_health(body)
    assert status == "Degraded"
    assert message.startswith("PostDeploymentChecksFailing: scaled-out")
    kubectl.apply(
        json.dumps(builders.deployment("gitops-api", flow.stg, labels=LABELS, containers=[CONTAINER], replicas=4))
    )
    body = flow.when(lambda b: condition(b, "PostDeploymentHealthy").get("status") == "True", "post-deployment ok")
    assert argocd_health(body)[0] == "Healthy"


def test_a_release_following_a_missing_checklist_is_degraded(flow: Flow, kubectl: Kubectl) -> None:
    kubectl.apply(json.dumps(builders.release("orphan", flow.prod, "gitops-api", "9.9.9", "no-such-list", flow.stg)))
    body = flow.when(lambda b: condition(b, "Stalled").get("status") == "True", "Stalled", name="orphan")
    status, message = argocd_health(body)
    assert status == "Degraded"
    assert message.startswith("ChecklistNotFound: ReadinessChecklist 'no-such-list' (spec.checklist) not found")
    assert kstatus(body) == "Failed"


def test_the_flux_example_waits_on_the_release_kind_the_crd_serves() -> None:
    docs = list(yaml.safe_load_all((REPO / "deploy" / "flux" / "kustomization.yaml").read_text()))
    crd = yaml.safe_load((REPO / "crds" / f"{GROUP}_releasereadinesses.yaml").read_text())
    served = {f"{GROUP}/{v['name']}" for v in crd["spec"]["versions"] if v["served"]}
    checks = [c for d in docs for c in d["spec"].get("healthChecks", [])]
    assert checks, "the example has no healthChecks"
    assert all(c["kind"] == crd["spec"]["names"]["kind"] and c["apiVersion"] in served for c in checks)
    names = {d["metadata"]["name"] for d in docs}
    assert all(dep["name"] in names for d in docs for dep in d["spec"].get("dependsOn", []))
