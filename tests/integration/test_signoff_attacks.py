"""Issue 15's attacks, replayed against the real API server as a hostile developer would (impersonated users with
the ordinary rights a platform team grants): each asserts the refusal, or that nothing changed."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import Kubectl, eventually, sign
from tests.integration.test_signoffs import CI, DEV, ENG, ENG2, OPS, Flow

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

OPS2 = ("ops-lead-2", ("devops-leads",))
VP = ("vp-1", ("vps",))
ADMIN = ("pat-admin", ("platform-admins",))
GC = ("system:serviceaccount:kube-system:generic-garbage-collector", ("system:serviceaccounts",))


class AttackFlow(Flow):
    """The signoff flow with a VP who may waive any item, and a developer allowed to update releases."""

    def __init__(self, kubectl: Kubectl, api: client.ApiClient) -> None:
        super().__init__(kubectl, api)
        body = self.get_checklist()
        body["spec"]["approvals"].append({"role": "vp-engineering", "groups": ["vps"], "required": False})
        body["spec"]["rules"] = {"waivers": [{"roles": ["vp-engineering"]}], "maxWaiverDays": 14}
        body["metadata"] = {"name": self.checklist}
        self.kubectl.apply(json.dumps(body))
        # The ordinary rights the issue names: create signoffs, update a release (to waive), delete signoffs.
        kubectl.run("create", "role", "release-editor", "--verb=get,update,patch", "--resource=rr", "-n", self.prod)
        kubectl.run("create", "rolebinding", "devs", "--role=release-editor", "--group=developers", "-n", self.prod)
        kubectl.run("create", "rolebinding", "vps", "--clusterrole=readiness-signer", "--group=vps", "-n", self.prod)

    def get_checklist(self) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_cluster_custom_object(
            "readiness.dev", "v1alpha1", "readinesschecklists", self.checklist
        )
        return body

    def run_as(self, who: tuple[str, tuple[str, ...]], *args: str) -> Any:
        return self.kubectl.run(*args, as_user=who[0], as_groups=who[1], check=False)

    def exists(self, name: str) -> bool:
        try:
            self.get("releasesignoffs", name)
        except client.ApiException as err:
            if err.status == 404:
                return False
            raise
        return True


@pytest.fixture
def attack(kubectl: Kubectl, api_client: client.ApiClient) -> AttackFlow:
    f = AttackFlow(kubectl, api_client)
    f.create_release()
    return f


def test_the_checklist_application_and_candidate_cannot_be_re_pointed(attack: AttackFlow) -> None:
    attack.kubectl.apply(json.dumps(builders.checklist(f"simple-{uuid.uuid4().hex[:6]}", {})))
    for field, value in (("checklist", "simple"), ("application", "other-api"), ("candidate", {"namespace": "x"})):
        proc = attack.run_as(
            DEV, "patch", "rr", attack.release, "-n", attack.prod, "--type=merge", "-p",
            json.dumps({"spec": {field: value}}),
        )  # fmt: skip
        assert proc.returncode != 0, field
        assert f"spec.{field}: Invalid value" in proc.stderr
        assert f"spec.{field} is fixed at creation" in proc.stderr
        assert "create a new ReleaseReadiness instead" in proc.stderr
    spec = attack.get("releasereadinesses", attack.release)["spec"]
    assert (spec["checklist"], spec["application"], spec["candidate"]) == (
        attack.checklist,
        "payments-api",
        {"namespace": attack.candidate},
    )


def test_a_waiver_cannot_be_added_to_the_release_nor_signed_without_a_waiving_role(attack: AttackFlow) -> None:
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    forged = {"waivers": [{"item": "limits", "reason": "trust me", "expires": expires, "approvedBy": "the-cto"}]}
    proc = attack.run_as(
        DEV, "patch", "rr", attack.release, "-n", attack.prod, "--type=merge", "-p", json.dumps({"spec": forged})
    )
    # Refused as an unknown field (strict field validation), or pruned: either way nothing is waived.
    assert proc.returncode != 0 or "waivers" not in attack.get("releasereadinesses", attack.release)["spec"]
    if proc.returncode != 0:
        assert "waivers" in proc.stderr
    proc = attack.sign(
        DEV, role="vp-engineering", decision="waive", items=[{"id": "limits"}], comment="x", expires=expires,
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "tried to waive as vp-engineering but does not hold that role; it may be signed by groups vps" in (
        proc.stderr
    )
    proc = attack.sign(
        ENG, role="engineering-lead", decision="waive", items=[{"id": "limits"}], comment="x", expires=expires,
        check=False,
    )  # fmt: skip
    assert "which may not waive it; it may be waived by vp-engineering (groups vps)" in proc.stderr
    assert attack.status()["summary"]["waived"] == 0


def test_a_waiver_after_the_approvals_makes_them_stale(attack: AttackFlow) -> None:
    attack.sign(ENG, role="engineering-lead")
    attack.wait(lambda: attack.approval("engineering-lead").get("state") == "Approved", "approved")
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    attack.sign(
        VP, name="vp-waiver", role="vp-engineering", decision="waive", items=[{"id": "runbooks"}],
        comment="runbooks come with the next release", expires=expires,
    )  # fmt: skip
    item = attack.wait(lambda: (i := attack.item("runbooks")).get("state") == "Waived" and i, "Waived")
    assert item["message"].startswith("waived by vp-1 (vp-engineering) until ")
    stale = attack.wait(lambda: (a := attack.approval("engineering-lead")).get("state") == "Stale" and a, "Stale")
    assert stale["message"].startswith("the waivers changed after this sign-off")
    signoff = attack.get("releasesignoffs", "vp-waiver")["spec"]
    assert signoff["signer"]["username"] == "vp-1"
    attack.sign(ENG, role="engineering-lead", comment="approved with the waiver")
    attack.wait(lambda: attack.approval("engineering-lead").get("state") == "Approved", "approved again")


def test_another_persons_later_approval_does_not_lift_a_veto(attack: AttackFlow) -> None:
    attack.sign(OPS, name="veto", role="devops-lead", decision="reject", comment="no rollback plan")
    attack.wait(lambda: attack.condition("Stalled").get("status") == "True", "Stalled")
    attack.sign(OPS2, name="other", role="devops-lead", comment="looks fine to me")
    # Signoff events are indexed in order: once CI's later evidence shows, the other approval has been seen too.
    attack.sign(CI, items=[{"id": "unit-test-coverage", "value": "91"}])
    attack.wait(lambda: attack.item("unit-test-coverage").get("state") == "Passed", "later evidence evaluated")
    approval = attack.approval("devops-lead")
    assert approval["state"] == "Rejected"
    assert approval["by"] == "ops-lead-1"
    assert "only ops-lead-1 can lift it" in approval["message"]
    assert attack.condition("Stalled")["status"] == "True"
    # The vetoer withdraws by approving the role later.
    attack.sign(OPS, name="withdrawn", role="devops-lead", comment="rollback plan attached")
    attack.wait(lambda: attack.condition("Stalled").get("status") == "False", "veto lifted by its signer")


def test_nobody_else_deletes_a_veto_but_the_garbage_collector_and_admins_may(attack: AttackFlow) -> None:
    attack.sign(OPS, name="veto", role="devops-lead", decision="reject", comment="no rollback plan")
    proc = attack.run_as(DEV, "delete", "releasesignoff", "veto", "-n", attack.prod)
    assert proc.returncode != 0
    assert "user dev-1 (groups: developers) tried to delete a signoff signed by ops-lead-1; only its signer or a " in (
        proc.stderr
    )
    proc = attack.run_as(OPS2, "delete", "releasesignoff", "veto", "-n", attack.prod)
    assert proc.returncode != 0
    assert attack.exists("veto")
    attack.kubectl.run("create", "rolebinding", "gc", "--clusterrole=readiness-signer", f"--user={GC[0]}", "-n",
                       attack.prod)  # fmt: skip
    attack.sign(OPS, name="veto-2", role="devops-lead", decision="reject", comment="and no runbook")
    assert attack.run_as(GC, "delete", "releasesignoff", "veto-2", "-n", attack.prod).returncode == 0
    attack.kubectl.run("create", "rolebinding", "admins", "--clusterrole=readiness-signer", "--group=platform-admins",
                       "-n", attack.prod)  # fmt: skip
    assert attack.run_as(ADMIN, "delete", "releasesignoff", "veto", "-n", attack.prod).returncode == 0
    attack.wait(lambda: attack.condition("Stalled").get("status") == "False", "no veto left")


def test_a_finalizer_cannot_pin_an_approval_and_a_deleting_one_does_not_count(attack: AttackFlow) -> None:
    attack.sign(ENG, name="eng", role="engineering-lead")
    attack.wait(lambda: attack.approval("engineering-lead").get("state") == "Approved", "approved")
    pin = json.dumps({"metadata": {"finalizers": ["example.com/pin"]}})
    proc = attack.run_as(DEV, "patch", "releasesignoff", "eng", "-n", attack.prod, "--type=merge", "-p", pin)
    assert proc.returncode != 0
    assert "tried to change metadata.finalizers of a signoff signed by eng-lead-1" in proc.stderr
    proc = attack.run_as(DEV, "label", "releasesignoff", "eng", "-n", attack.prod, "hide=1")
    assert proc.returncode != 0
    assert "tried to change metadata.labels" in proc.stderr
    # Its signer pins and deletes it: while the finalizer holds it, it no longer counts.
    pinned = attack.run_as(ENG, "patch", "releasesignoff", "eng", "-n", attack.prod, "--type=merge", "-p", pin)
    assert pinned.returncode == 0, pinned.stderr
    assert attack.run_as(ENG, "delete", "releasesignoff", "eng", "-n", attack.prod, "--wait=false").returncode == 0
    attack.wait(lambda: attack.approval("engineering-lead").get("state") == "Missing", "no longer counts")
    assert attack.get("releasesignoffs", "eng")["metadata"].get("deletionTimestamp")
    unpin = json.dumps({"metadata": {"finalizers": None}})
    attack.run_as(ENG, "patch", "releasesignoff", "eng", "-n", attack.prod, "--type=merge", "-p", unpin)
    attack.wait(lambda: not attack.exists("eng"), "gone")


def test_two_roles_signed_at_the_same_instant_count_once(attack: AttackFlow) -> None:
    """eng-lead-1 holds both roles. Whether admission sees the race or not, only one role counts, and a stored
    second signoff is listed as refused with the reason."""
    results: dict[str, Any] = {}

    def sign(name: str, role: str) -> None:
        results[name] = attack.sign(ENG, name=name, role=role, check=False)

    threads = [threading.Thread(target=sign, args=(n, r)) for n, r in (("as-eng", "engineering-lead"),
                                                                       ("as-ops", "devops-lead"))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = [name for name, proc in results.items() if proc.returncode == 0]
    assert stored, [p.stderr for p in results.values()]

    def counted() -> dict[str, Any] | None:
        status = attack.status()
        approved = [a for a in status.get("approvals", []) if a["state"] == "Approved"]
        return status if len(approved) == 1 else None

    status = attack.wait(counted, "exactly one role approved")
    approved = [a for a in status["approvals"] if a["state"] == "Approved"]
    assert approved[0]["by"] == "eng-lead-1"
    if len(stored) == 2:  # the race got past admission: evaluation refuses the later one, with the reason
        refused = status["refusedSignoffs"]
        assert len(refused) == 1
        assert "already counts as" in refused[0]["reason"]
        assert "distinctApprovers allows one role per person" in refused[0]["reason"]
    else:
        assert "distinctApprovers allows one role per person" in next(
            p.stderr for p in results.values() if p.returncode != 0
        )


def test_a_developer_cannot_overwrite_ci_evidence(attack: AttackFlow) -> None:
    attack.sign(CI, items=[{"id": "unit-test-coverage", "value": "61"}])
    attack.wait(lambda: attack.item("unit-test-coverage").get("state") == "Failed", "coverage Failed")
    proc = attack.sign(DEV, items=[{"id": "unit-test-coverage", "value": "95"}], check=False)
    assert proc.returncode != 0
    assert (
        "user dev-1 (groups: developers) tried to record evidence 'unit-test-coverage' (spec.items[0]); checklist "
        f"{attack.checklist} takes coverage-percent only from groups system:serviceaccounts:ci" in proc.stderr
    )
    item = attack.item("unit-test-coverage")
    assert (item["state"], item["message"]) == (
        "Failed",
        "unit-test-coverage: 61 < 80 (attested by system:serviceaccount:ci:ci-bot)",
    )


def test_a_release_may_only_look_where_its_creator_may_look(attack: AttackFlow) -> None:
    hr = f"hr-prod-{uuid.uuid4().hex[:6]}"
    attack.kubectl.run("create", "namespace", hr)
    snoop = builders.release("snoop", attack.prod, "payroll", "1.0.0", attack.checklist, hr)
    proc = attack.apply(snoop, as_user=DEV, check=False)
    assert proc.returncode != 0
    assert (
        f"user dev-1 (groups: developers) may not list Deployments in namespace {hr}, so may not create a release "
        f"that inspects it (spec.candidate.namespace)" in proc.stderr
    )
    # Someone who may read it may; and a namespace on the checklist's allow-list is open to every creator.
    assert attack.apply(snoop, as_user=ENG2, check=False).returncode == 0
    body = attack.get_checklist()
    body["metadata"] = {"name": attack.checklist}
    body["spec"]["rules"]["candidateNamespaces"] = [hr]
    attack.kubectl.apply(json.dumps(body))
    shared = builders.release("shared", attack.prod, "payroll", "1.0.1", attack.checklist, hr)
    attack.wait(lambda: attack.apply(shared, as_user=DEV, check=False).returncode == 0, "allow-listed")


def test_only_the_operator_writes_status(attack: AttackFlow) -> None:
    attack.kubectl.run(
        "create", "role", "status-writer", "--verb=get,patch,update", "--resource=releasereadinesses/status",
        "-n", attack.prod,
    )  # fmt: skip
    attack.kubectl.run("create", "rolebinding", "mallory", "--role=status-writer", "--user=mallory", "-n", attack.prod)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    forged = {
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "ReleaseReady", "message": "", "lastTransitionTime": now}
            ]
        }
    }
    proc = attack.kubectl.run(
        "patch", "rr", attack.release, "-n", attack.prod, "--subresource=status", "--type=merge", "-p",
        json.dumps(forged), as_user="mallory", check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "user mallory (groups: none) tried to write status; only the release-readiness operator" in proc.stderr
    assert attack.condition("Ready")["status"] == "False"


def test_oversized_and_too_many_signoffs_are_refused(attack: AttackFlow) -> None:
    big = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            builders.signoff(attack.prod, attack.release, f"big-{i}", role="engineering-lead", comment="x" * 5000)
            for i in range(150)
        ],
    }
    proc = attack.kubectl.run("create", "-f", "-", stdin=json.dumps(big), as_user=ENG[0], as_groups=ENG[1],
                              check=False)  # fmt: skip
    # Refused before anything is stored (the stamping webhook parses with the same bounds as the schema).
    assert proc.returncode != 0
    assert proc.stderr.count("spec.comment: String should have at most 4096 characters") == 150
    huge = attack.sign(ENG, role="engineering-lead", comment="x" * 900_000, check=False)
    assert "spec.comment: String should have at most 4096 characters" in huge.stderr
    too_many_items = attack.sign(ENG, items=[{"id": f"i{i}"} for i in range(129)], check=False)
    assert "spec.items: List should have at most 128 items" in too_many_items.stderr
    stored = attack.kubectl.run("get", "rso", "-n", attack.prod, "-o", "name").stdout.split()
    assert not [name for name in stored if "big-" in name]

    # Finding 5: one signer cannot fill the release's quota (20 live signoffs each), and at the release's limit
    # (200) a veto is still accepted.
    def bot(n: int) -> tuple[str, tuple[str, ...]]:
        return (f"system:serviceaccount:ci:bot-{n}", CI[1])

    def record(who: tuple[str, tuple[str, ...]], count: int) -> None:
        evidence = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                builders.signoff(
                    attack.prod,
                    attack.release,
                    f"{who[0].rsplit(':', 1)[1]}-{i}",
                    items=[{"id": "unit-test-coverage", "value": str(i)}],
                )
                for i in range(count)
            ],
        }
        attack.kubectl.run("create", "-f", "-", stdin=json.dumps(evidence), as_user=who[0], as_groups=who[1])

    record(bot(0), 20)
    eventually(lambda: attack.sign(bot(0), items=[{"id": "unit-test-coverage", "value": "99"}], check=False).stderr
               .count("the limit per signer (20)") == 1, what="bot-0's 21st refused")  # fmt: skip
    assert "the limit per signer" not in attack.sign(bot(1), items=[{"id": "unit-test-coverage", "value": "9"}]).stderr
    record(bot(1), 19)
    for n in range(2, 10):
        record(bot(n), 20)
    eventually(lambda: attack.sign(bot(10), items=[{"id": "unit-test-coverage", "value": "99"}], check=False).stderr
               .count("the limit per release (200)") == 1, what="the 201st refused")  # fmt: skip
    attack.sign(OPS, name="veto", role="devops-lead", decision="reject", comment="a veto is always recordable")
    attack.wait(lambda: attack.condition("Stalled").get("status") == "True", "vetoed")


def test_only_platform_admins_move_the_gate_label(attack: AttackFlow, kubectl: Kubectl) -> None:
    ns = attack.prod
    kubectl.run("label", "namespace", ns, "readiness.dev/gate=enforce")
    kubectl.run("create", "clusterrole", f"ns-patch-{ns}", "--verb=get,patch,update", "--resource=namespaces")
    kubectl.run("create", "clusterrolebinding", f"ns-patch-{ns}", f"--clusterrole=ns-patch-{ns}",
                "--group=developers", "--group=platform-admins")  # fmt: skip
    for change in ("readiness.dev/gate-", "readiness.dev/gate=audit"):
        proc = attack.run_as(DEV, "label", "namespace", ns, change, "--overwrite")
        assert proc.returncode != 0
        assert "tried to change label readiness.dev/gate from enforce to" in proc.stderr
    labels = kubectl.run("get", "namespace", ns, "-o", "jsonpath={.metadata.labels.readiness\\.dev/gate}").stdout
    assert labels == "enforce"
    # Other labels stay the developers' business (the webhook is not even called), and admins may move the gate.
    assert attack.run_as(DEV, "label", "namespace", ns, "team=payments").returncode == 0
    assert attack.run_as(ADMIN, "label", "namespace", ns, "readiness.dev/gate=warn", "--overwrite").returncode == 0
    kubectl.run("delete", "namespace", ns, "--wait=false")


def test_deleting_a_vetoed_release_does_not_lift_the_veto(attack: AttackFlow) -> None:
    attack.kubectl.run("create", "role", "release-deleter", "--verb=delete", "--resource=rr", "-n", attack.prod)
    attack.kubectl.run(
        "create", "rolebinding", "deleters", "--role=release-deleter", "--group=developers", "-n", attack.prod
    )
    attack.sign(OPS, name="veto", role="devops-lead", decision="reject", comment="no rollback plan")
    attack.wait(lambda: attack.condition("Stalled").get("status") == "True", "Stalled")
    proc = attack.run_as(DEV, "delete", "rr", attack.release, "-n", attack.prod)
    assert proc.returncode != 0
    assert "tried to delete a vetoed release (devops-lead by ops-lead-1 (ReleaseSignoff veto))" in proc.stderr
    assert attack.get("releasereadinesses", attack.release)["metadata"]["name"] == attack.release
    assert attack.run_as(OPS, "delete", "releasesignoff", "veto", "-n", attack.prod).returncode == 0
    eventually(
        lambda: attack.run_as(DEV, "delete", "rr", attack.release, "-n", attack.prod).returncode == 0,
        what="the release deleted once its veto is withdrawn",
    )


def test_rules_hold_in_evaluation_when_admission_could_not_see_them(attack: AttackFlow) -> None:
    """Deterministic twin of the race: both roles are signed while the checklist allows it, then the platform team
    turns distinctApprovers on. The earlier signoff counts; the later one is shown as refused, with the reason."""
    body = attack.get_checklist()
    body["metadata"] = {"name": attack.checklist}
    body["spec"]["rules"]["distinctApprovers"] = False
    attack.kubectl.apply(json.dumps(body))
    attack.wait(
        lambda: attack.sign(ENG, name="first", role="engineering-lead", check=False).returncode == 0, "first signed"
    )
    attack.sign(ENG, name="second", role="devops-lead")
    attack.wait(lambda: attack.approval("devops-lead").get("state") == "Approved", "both roles approved")
    body["spec"]["rules"]["distinctApprovers"] = True
    attack.kubectl.apply(json.dumps(body))
    refused = attack.wait(lambda: attack.status().get("refusedSignoffs"), "the later signoff refused")
    assert refused == [
        {
            "name": "second",
            "signer": "eng-lead-1",
            "reason": "eng-lead-1 already counts as engineering-lead (ReleaseSignoff first); distinctApprovers allows "
            "one role per person, so devops-lead must be signed by someone else",
        }
    ]
    assert attack.approval("engineering-lead")["state"] == "Approved"
    devops = attack.approval("devops-lead")
    assert devops["state"] == "Missing"
    assert "not counted: ReleaseSignoff second: eng-lead-1 already counts as engineering-lead" in devops["message"]


def test_a_release_re_created_with_the_same_name_has_none_of_the_old_approvals(attack: AttackFlow) -> None:
    """Finding 1: signoffs are bound to the release object (its uid), not its name. The release is deleted (no
    garbage collector runs here, so its signoffs stay, as `kubectl delete --cascade=orphan` leaves them: the GC
    strips their ownerReferences, which the signoff webhook lets it do) and re-created with the same name."""
    attack.sign(CI, name="ci", items=[{"id": "unit-test-coverage", "value": "91"}])
    attack.sign(ENG, name="eng", role="engineering-lead")
    attack.sign(OPS, name="ops", role="devops-lead")
    attack.wait(lambda: attack.condition("Ready").get("status") == "True", "Ready")
    old_uid = attack.get("releasereadinesses", attack.release)["metadata"]["uid"]
    assert attack.get("releasesignoffs", "eng")["spec"]["releaseUID"] == old_uid
    attack.kubectl.run("delete", "rr", attack.release, "-n", attack.prod)
    attack.kubectl.run("create", "rolebinding", "gc", "--clusterrole=readiness-signer", f"--user={GC[0]}", "-n",
                       attack.prod)  # fmt: skip
    for name in ("ci", "ops"):  # orphaned as the GC does it; "eng" keeps its (dangling) ownerReference
        proc = attack.run_as(GC, "patch", "releasesignoff", name, "-n", attack.prod, "--type=json", "-p",
                             '[{"op": "remove", "path": "/metadata/ownerReferences"}]')  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "ownerReferences" not in attack.get("releasesignoffs", name)["metadata"]
    attack.create_release()
    new_uid = attack.get("releasereadinesses", attack.release)["metadata"]["uid"]
    assert new_uid != old_uid
    status = attack.wait(lambda: (s := attack.status()).get("approvals") and s, "the new release evaluated")
    assert status["summary"]["approvals"] == "0/2"
    assert {a["state"] for a in status["approvals"]} == {"Missing"}
    assert attack.item("unit-test-coverage")["state"] == "Pending"
    assert attack.condition("Ready")["status"] == "False"
    refused = {r["name"]: r["reason"] for r in status["refusedSignoffs"]}
    assert set(refused) == {"ci", "eng", "ops"}
    assert refused["eng"] == (
        f"signed for another ReleaseReadiness of the same name (uid {old_uid}, since deleted), not this one "
        f"(uid {new_uid}); sign again"
    )
    # Nobody can point a signoff at the old object (or any other uid) by setting spec.releaseUID.
    forged = attack.sign(ENG, role="engineering-lead", releaseUID=old_uid, check=False)
    assert forged.returncode != 0
    assert f"tried to sign release {attack.release} with spec.releaseUID '{old_uid}', but ReleaseReadiness " in (
        forged.stderr
    )
    # Signing the new object counts.
    attack.sign(ENG, name="eng-again", role="engineering-lead")
    assert attack.get("releasesignoffs", "eng-again")["spec"]["releaseUID"] == new_uid
    attack.wait(lambda: attack.approval("engineering-lead").get("state") == "Approved", "the new approval counts")


def test_no_approval_before_the_candidate_is_inspected(attack: AttackFlow) -> None:
    """Finding 6: an approval signed while the release has no candidate fingerprint would count for any candidate
    deployed later: refused at admission, saying why; once the candidate is inspected, approving works."""
    empty = f"stg-empty-{uuid.uuid4().hex[:6]}"
    attack.kubectl.run("create", "namespace", empty)
    attack.apply(builders.release("other", attack.prod, "other-api", "1.0.0", attack.checklist, empty), as_user=ENG2)

    def other() -> dict[str, Any]:
        return dict(attack.get("releasereadinesses", "other").get("status") or {})

    attack.wait(lambda: other().get("approvals"), "the release evaluated without a candidate")
    assert not other().get("candidate", {}).get("fingerprint")
    for who, spec in ((OPS, {"role": "devops-lead"}), (CI, {"items": [{"id": "unit-test-coverage", "value": "91"}]})):
        proc = sign(attack.kubectl, who, attack.prod, "other", check=False, **spec)
        assert proc.returncode != 0
        assert "on release other, but its candidate was not inspected yet (status.candidate.fingerprint is empty: " in (
            proc.stderr
        )
        assert f"no workload in namespace {empty} matches the candidate selector" in proc.stderr
    # Nor can a client supply the fingerprint: the webhook stamps the release's (none), replacing a forged one.
    forged = sign(attack.kubectl, OPS, attack.prod, "other", check=False, role="devops-lead",
                  candidateFingerprint=attack.status()["candidate"]["fingerprint"])  # fmt: skip
    assert forged.returncode != 0
    assert "its candidate was not inspected yet" in forged.stderr
    # A veto needs no candidate.
    veto = sign(attack.kubectl, ENG, attack.prod, "other", role="engineering-lead", decision="reject", comment="wait")
    assert veto.returncode == 0
    labels = {"app.kubernetes.io/name": "other-api", "app.kubernetes.io/version": "1.0.0"}
    container = {"name": "api", "image": "registry.example.com/other/api:1.0.0"}
    attack.apply(builders.deployment("other-api", empty, labels=labels, containers=[container]))
    fingerprint = attack.wait(lambda: other().get("candidate", {}).get("fingerprint"), "the candidate inspected")
    sign(attack.kubectl, OPS, attack.prod, "other", name="ops-other", role="devops-lead")
    assert attack.get("releasesignoffs", "ops-other")["spec"]["candidateFingerprint"] == fingerprint
    attack.wait(
        lambda: next(a for a in other()["approvals"] if a["role"] == "devops-lead")["state"] == "Approved", "approved"
    )


def test_evidence_and_attestations_are_bound_to_the_candidate(attack: AttackFlow) -> None:
    """Finding 9: after a template swap, CI's evidence and a person's attestation recorded for the old candidate
    no longer satisfy their items (Pending, saying why) until recorded again for the new one."""
    attack.sign(CI, items=[{"id": "unit-test-coverage", "value": "91"}])
    attack.sign(OPS, items=[{"id": "runbooks"}])
    attack.wait(lambda: attack.condition("ChecksPassed").get("status") == "True", "ChecksPassed")
    attack.deploy("registry.example.com/payments/api:3.2.0-swapped")
    coverage = attack.wait(lambda: (i := attack.item("unit-test-coverage")).get("state") == "Pending" and i, "Pending")
    assert coverage["message"] == (
        "coverage-percent 91 was recorded by system:serviceaccount:ci:ci-bot but does not count: recorded for an older "
        "candidate (its images or pod template changed since); record it again"
    )
    assert attack.item("runbooks")["message"].startswith("attested by ops-lead-1 but does not count: attested for an ")
    assert attack.condition("ChecksPassed")["status"] == "False"
    attack.sign(CI, items=[{"id": "unit-test-coverage", "value": "92"}])
    attack.sign(OPS, items=[{"id": "runbooks"}])
    attack.wait(lambda: attack.condition("ChecksPassed").get("status") == "True", "recorded again: ChecksPassed")
