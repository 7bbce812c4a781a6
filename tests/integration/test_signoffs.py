"""Signoffs bound to the signer's Kubernetes identity (callers played by impersonation)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from release_readiness_dev.builders import CI_ONLY
from tests.integration.conftest import BIN, Kubectl, eventually, sign

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

ENG = ("eng-lead-1", ("eng-leads", "devops-leads"))
ENG2 = ("eng-lead-2", ("eng-leads",))
OPS = ("ops-lead-1", ("devops-leads",))
DEV = ("dev-1", ("developers",))
CI = ("system:serviceaccount:ci:ci-bot", ("system:serviceaccounts", "system:serviceaccounts:ci"))
LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}


class Flow:
    def __init__(self, kubectl: Kubectl, api: client.ApiClient) -> None:
        self.kubectl = kubectl
        self.custom = client.CustomObjectsApi(api)
        suffix = uuid.uuid4().hex[:6]
        self.candidate, self.prod, self.checklist = f"stg-{suffix}", f"prod-{suffix}", f"signoff-{suffix}"
        self.release = "payments-api-3-2-0"
        for ns in (self.candidate, self.prod):
            kubectl.run("create", "namespace", ns)
        self.apply(
            builders.checklist(
                self.checklist,
                {
                    "limits": {"workload": "resourceLimits"},
                    "unit-test-coverage": {"evidence": {"key": "coverage-percent", "min": 80, "recordedBy": CI_ONLY}},
                    "runbooks": {"attestation": {"roles": ["devops-lead"]}},
                },
                [
                    {"role": "engineering-lead", "groups": ["eng-leads"]},
                    {"role": "devops-lead", "groups": ["devops-leads"], "items": ["runbooks"]},
                ],
            )
        )
        self.deploy("registry.example.com/payments/api:3.2.0")

    def apply(
        self, obj: dict[str, Any], as_user: tuple[str, tuple[str, ...]] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        user, groups = as_user or (None, ())
        return (
            self.kubectl.run("create", "-f", "-", stdin=json.dumps(obj), as_user=user, as_groups=groups, check=check)
            if as_user
            else self.kubectl.apply(json.dumps(obj))
        )

    def deploy(self, image: str) -> None:
        container = {"name": "api", "image": image, "resources": {"limits": {"cpu": "1", "memory": "256Mi"}}}
        self.apply(builders.deployment("payments-api", self.candidate, labels=LABELS, containers=[container]))

    def create_release(self, as_user: tuple[str, tuple[str, ...]] = ENG2) -> None:
        self.apply(
            builders.release(self.release, self.prod, "payments-api", "3.2.0", self.checklist, self.candidate),
            as_user=as_user,
        )
        eventually(lambda: self.status().get("candidate", {}).get("fingerprint"), what="candidate fingerprint")

    def sign(
        self, who: tuple[str, tuple[str, ...]], name: str | None = None, check: bool = True, **spec: Any
    ) -> subprocess.CompletedProcess[str]:
        return sign(self.kubectl, who, self.prod, self.release, name, check=check, **spec)

    def get(self, plural: str, name: str) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", self.prod, plural, name
        )
        return body

    def status(self) -> dict[str, Any]:
        return dict(self.get("releasereadinesses", self.release).get("status") or {})

    def approval(self, role: str) -> dict[str, Any]:
        return next((a for a in self.status().get("approvals", []) if a["role"] == role), {})

    def item(self, item_id: str) -> dict[str, Any]:
        return next((i for i in self.status().get("items", []) if i["id"] == item_id), {})

    def condition(self, type_: str) -> dict[str, Any]:
        return next((c for c in self.status().get("conditions", []) if c["type"] == type_), {})

    def wait(self, fn: Any, what: str) -> Any:
        return eventually(fn, timeout=30, what=what)


@pytest.fixture
def flow(kubectl: Kubectl, api_client: client.ApiClient) -> Flow:
    f = Flow(kubectl, api_client)
    f.create_release()
    return f


def test_the_creator_is_recorded_and_cannot_be_changed(flow: Flow) -> None:
    meta = flow.get("releasereadinesses", flow.release)["metadata"]
    assert meta["annotations"]["readiness.dev/created-by"] == "eng-lead-2"
    proc = flow.kubectl.run(
        "annotate",
        "rr",
        flow.release,
        "-n",
        flow.prod,
        "--overwrite",
        "readiness.dev/created-by=someone-else",
        check=False,
    )
    assert proc.returncode != 0
    assert "tried to change annotation readiness.dev/created-by from 'eng-lead-2' to 'someone-else'" in proc.stderr


def test_a_role_holder_approves_and_is_stamped(flow: Flow) -> None:
    flow.sign(ENG, name="eng-approval", role="engineering-lead", comment="LGTM")
    spec = flow.get("releasesignoffs", "eng-approval")["spec"]
    assert spec["signer"]["username"] == "eng-lead-1"
    assert "eng-leads" in spec["signer"]["groups"]
    assert spec["candidateFingerprint"] == flow.status()["candidate"]["fingerprint"]
    assert spec["signedAt"].endswith("Z")
    owners = flow.get("releasesignoffs", "eng-approval")["metadata"]["ownerReferences"]
    assert owners[0]["kind"] == "ReleaseReadiness"
    assert owners[0]["name"] == flow.release
    approval = flow.wait(
        lambda: (a := flow.approval("engineering-lead")).get("state") == "Approved" and a, "engineering-lead Approved"
    )
    assert approval["by"] == "eng-lead-1"


def test_someone_without_the_role_is_refused_with_who_may(flow: Flow) -> None:
    proc = flow.sign(DEV, role="engineering-lead", check=False)
    assert proc.returncode != 0
    assert (
        "user dev-1 (groups: developers) tried to approve as engineering-lead but does not hold that role; "
        "it may be signed by groups eng-leads" in proc.stderr
    )


def test_one_person_cannot_take_a_second_role(flow: Flow) -> None:
    flow.sign(ENG, role="engineering-lead")
    flow.wait(lambda: flow.approval("engineering-lead").get("state") == "Approved", "approved")
    proc = flow.sign(ENG, role="devops-lead", check=False)
    assert proc.returncode != 0
    assert (
        "user eng-lead-1 (groups: eng-leads, devops-leads) already signed release payments-api-3-2-0 as "
        "engineering-lead" in proc.stderr
    )
    assert "so devops-lead must be signed by another of groups devops-leads" in proc.stderr


def test_a_spoofed_signer_is_refused(flow: Flow) -> None:
    proc = flow.sign(
        DEV, role="engineering-lead", signer={"username": "eng-lead-1", "groups": ["eng-leads"]}, check=False
    )
    assert proc.returncode != 0
    assert "user dev-1 (groups: developers) tried to sign as 'eng-lead-1' (spec.signer)" in proc.stderr


def test_signoffs_are_immutable_and_deleting_revokes(flow: Flow) -> None:
    flow.sign(ENG, name="eng-approval", role="engineering-lead")
    flow.wait(lambda: flow.approval("engineering-lead").get("state") == "Approved", "approved")
    proc = flow.kubectl.run(
        "patch",
        "releasesignoff",
        "eng-approval",
        "-n",
        flow.prod,
        "--type=merge",
        "-p",
        '{"spec": {"comment": "changed my mind"}}',
        as_user=ENG[0],
        as_groups=ENG[1],
        check=False,
    )
    assert proc.returncode != 0
    assert "tried to change spec; signoffs are immutable. Delete it to revoke" in proc.stderr
    flow.kubectl.run("delete", "releasesignoff", "eng-approval", "-n", flow.prod, as_user=ENG[0], as_groups=ENG[1])
    flow.wait(lambda: flow.approval("engineering-lead").get("state") == "Missing", "revoked")


def test_self_approval_is_refused(flow: Flow) -> None:
    proc = flow.sign(ENG2, role="engineering-lead", check=False)
    assert proc.returncode != 0
    assert (
        "user eng-lead-2 (groups: eng-leads) created release payments-api-3-2-0 and may not approve it "
        "(preventSelfApproval)" in proc.stderr
    )


def test_unknown_release_unknown_item_and_attesting_without_the_role(flow: Flow) -> None:
    proc = flow.apply(
        builders.signoff(flow.prod, "no-such-release", "lost", role="engineering-lead"),
        as_user=ENG,
        check=False,
    )
    assert "tried to sign release 'no-such-release' (spec.release), which does not exist" in proc.stderr
    proc = flow.sign(ENG, items=[{"id": "nope"}], check=False)
    assert "tried to attest 'nope' (spec.items[0].id), which is not an item of checklist" in proc.stderr
    proc = flow.sign(DEV, items=[{"id": "runbooks"}], check=False)
    assert (
        "user dev-1 (groups: developers) tried to attest 'runbooks' (spec.items[0]) but holds none of its "
        "roles; it may be attested by devops-lead (groups devops-leads)" in proc.stderr
    )
    proc = flow.sign(ENG, items=[{"id": "limits"}], check=False)
    assert "which the operator checks itself (workload check resourceLimits)" in proc.stderr


def test_ci_attests_coverage_and_later_evidence_supersedes(flow: Flow) -> None:
    flow.sign(CI, items=[{"id": "unit-test-coverage", "value": "71", "evidence": "https://ci.example.com/1"}])
    item = flow.wait(lambda: (i := flow.item("unit-test-coverage")).get("state") == "Failed" and i, "coverage Failed")
    assert item["message"] == "unit-test-coverage: 71 < 80 (attested by system:serviceaccount:ci:ci-bot)"
    time.sleep(1.1)  # signedAt has second precision; the later signoff must be later
    flow.sign(CI, items=[{"id": "unit-test-coverage", "value": "84.2"}])
    item = flow.wait(lambda: (i := flow.item("unit-test-coverage")).get("state") == "Passed" and i, "coverage Passed")
    assert item["message"] == "unit-test-coverage: 84.2 >= 80 (attested by system:serviceaccount:ci:ci-bot)"


def test_new_images_make_approvals_stale(flow: Flow) -> None:
    flow.sign(ENG, role="engineering-lead")
    flow.wait(lambda: flow.approval("engineering-lead").get("state") == "Approved", "approved")
    flow.deploy("registry.example.com/payments/api:3.2.1")
    approval = flow.wait(lambda: (a := flow.approval("engineering-lead")).get("state") == "Stale" and a, "Stale")
    assert "images or pod template changed after this sign-off" in approval["message"]
    assert flow.condition("Ready")["status"] == "False"


def test_a_veto_stalls_until_deleted(flow: Flow) -> None:
    flow.sign(OPS, name="veto", role="devops-lead", decision="reject", comment="no rollback plan")
    stalled = flow.wait(lambda: (c := flow.condition("Stalled")).get("status") == "True" and c, "Stalled")
    assert stalled["reason"] == "Vetoed"
    assert "devops-lead vetoed by ops-lead-1: vetoed: no rollback plan" in stalled["message"]
    flow.kubectl.run("delete", "releasesignoff", "veto", "-n", flow.prod)
    flow.wait(lambda: flow.condition("Stalled").get("status") == "False", "veto lifted")


def test_full_flow_reaches_ready_and_kubectl_wait_returns(flow: Flow) -> None:
    assert flow.condition("Ready")["status"] == "False"
    waiter = subprocess.Popen(
        [
            str(BIN / "kubectl"),
            f"--kubeconfig={flow.kubectl.kubeconfig}",
            "wait",
            "--for=condition=Ready",
            f"rr/{flow.release}",
            "-n",
            flow.prod,
            "--timeout=60s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    flow.sign(CI, items=[{"id": "unit-test-coverage", "value": "91.5"}])
    flow.sign(ENG, role="engineering-lead", comment="code and tests reviewed")
    flow.sign(OPS, role="devops-lead", comment="runbooks in place")
    out, err = waiter.communicate(timeout=70)
    assert waiter.returncode == 0, err
    assert "condition met" in out
    assert flow.item("runbooks")["message"] == "covered by the devops-lead sign-off of ops-lead-1"
    assert flow.status()["summary"]["approvals"] == "2/2"
