"""gate_decision: every branch, from a plain admission request and indexed release state."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from release_readiness.admission.gate import GateRequest, gate_decision, gated_kind
from release_readiness.admission.signoffs import Caller
from release_readiness.api import ChecklistItem, ReadinessChecklist, ReleaseReadiness
from release_readiness.checks.model import Workload
from release_readiness.podtemplate import DEFAULT_ENVIRONMENT_FIELDS, normalize_template, template_hash
from release_readiness_dev import builders
from release_readiness_dev.builders import NOW

IMAGE = "registry.example.com/payments/api:3.2.0"
PROD = "payments-prod"


def workload(
    image: str = IMAGE,
    labels: dict[str, str] | None = None,
    replicas: int = 3,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The production rollout of payments-api (`labels`: its pod template's)."""
    container = builders.container(image=image)
    return builders.deployment(
        namespace=PROD, template_labels=labels, containers=[container], replicas=replicas, annotations=annotations or {}
    )


def inspected_hash(template: dict[str, Any] | None = None, fields: Any = DEFAULT_ENVIRONMENT_FIELDS) -> str:
    return template_hash(normalize_template(template or workload()["spec"]["template"], fields))


def release(
    ready: bool = True,
    window: tuple[str, str] | None = None,
    items: int = 0,
    name: str = "payments-api-3.2.0",
    passed: tuple[str, ...] = (),
    template: str | None = None,
) -> ReleaseReadiness:
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "ReleaseReady" if ready else "ItemsOutstanding",
                "message": "m",
                "lastTransitionTime": "2026-11-27T00:00:00Z",
            }
        ],
        "items": [{"id": f"item-{i}", "state": "Failed", "message": f"problem {i}"} for i in range(items)]
        + [{"id": i, "state": "Passed", "message": "ok"} for i in passed],
        "approvals": [] if ready else [{"role": "security-lead", "state": "Missing"}],
        "candidate": {
            "namespace": "payments-staging",
            "fingerprint": "sha256:x",
            "workloads": [
                {
                    "kind": "Deployment",
                    "name": "payments-api",
                    "images": [{"container": "api", "image": IMAGE}],
                    "templateHash": template if template is not None else inspected_hash(),
                }
            ],
        },
    }
    spec: dict[str, Any] = {
        "application": "payments-api",
        "version": "3.2.0",
        "checklist": "demo",
        "candidate": {"namespace": "payments-staging"},
    }
    if window:
        spec["window"] = {"start": window[0], "end": window[1]}
    return ReleaseReadiness.model_validate(
        {"metadata": {"name": name, "namespace": PROD}, "spec": spec, "status": status}
    )


CHECKLIST = ReadinessChecklist.model_validate(
    {
        "metadata": {"name": "demo"},
        "spec": {
            "items": [
                {"id": f"item-{i}", "section": "S", "title": "T", "check": {"workload": "replicas"}} for i in range(15)
            ]
            + [
                {"id": "security", "section": "S", "title": "T", "check": {"workload": "securityContext"}},
                {"id": "secrets", "section": "S", "title": "T", "check": {"workload": "noHardcodedSecrets"}},
            ],
            "approvals": [{"role": "security-lead", "groups": ["security-leads"]}],
        },
    }
)


def decide(
    obj: dict[str, Any],
    *,
    old: dict[str, Any] | None = None,
    mode: str = "enforce",
    releases: list[ReleaseReadiness] | None = None,
    groups: tuple[str, ...] = ("deployers",),
    now: dt.datetime = NOW,
    kind: str = "Deployment",
    user: str = "alice",
    subresource: str | None = None,
    checklist: ReadinessChecklist = CHECKLIST,
    inspected: list[Workload] | None = None,
) -> Any:
    req = GateRequest(
        operation="UPDATE" if old else "CREATE",
        gated=gated_kind(kind),
        namespace=PROD,
        name="payments-api",
        obj=obj,
        old=old,
        caller=Caller(user, groups),
        subresource=subresource,
    )
    return gate_decision(
        req,
        mode,
        [release()] if releases is None else releases,
        {"demo": checklist},
        ["sre-oncall"],
        now,
        lambda _: inspected or [],
    )


def test_ready_release_with_the_inspected_images_passes() -> None:
    d = decide(workload())
    assert (d.allowed, d.verdict) == (True, "passed")
    assert (
        d.message == "deployment payments-prod/payments-api: ReleaseReadiness payments-prod/payments-api-3.2.0 is Ready"
    )


def test_an_update_that_leaves_the_pod_template_unchanged_passes() -> None:
    old = workload()
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 10
    scaled["metadata"]["labels"] = {"team": "payments"}
    d = decide(scaled, old=old, releases=[])
    assert (d.allowed, d.verdict) == (True, "unchanged")


def test_missing_labels_are_named() -> None:
    d = decide(workload(labels={"app.kubernetes.io/name": "payments-api"}))
    assert (d.allowed, d.verdict) == (False, "missing-labels")
    assert "the pod template (spec.template.metadata.labels) has no app.kubernetes.io/version; add them" in d.message
    both = decide(workload(labels={}))
    assert "has no app.kubernetes.io/name or app.kubernetes.io/version" in both.message


def test_no_release_says_how_to_create_one() -> None:
    d = decide(workload(), releases=[])
    assert (d.allowed, d.verdict) == (False, "no-release")
    assert (
        "no ReleaseReadiness for payments-api 3.2.0 in namespace payments-prod; create one: kubectl readiness "
        "init payments-api 3.2.0 --candidate-namespace <staging-namespace> -n payments-prod" in d.message
    )


def test_not_ready_lists_the_first_ten_items_and_a_count() -> None:
    d = decide(workload(), releases=[release(ready=False, items=12)])
    assert (d.allowed, d.verdict) == (False, "not-ready")
    assert "is not Ready (ItemsOutstanding)." in d.message
    assert "12 required item(s) outstanding:" in d.message
    assert "item-9 (Failed: problem 9)" in d.message
    assert "item-10" not in d.message
    assert "... and 2 more" in d.message
    assert "1 approval(s) missing:\n  - security-lead (Missing)" in d.message


def test_outside_the_window_names_it() -> None:
    d = decide(workload(), releases=[release(window=("2026-12-01T20:00:00Z", "2026-12-01T22:00:00Z"))])
    assert (d.allowed, d.verdict) == (False, "outside-window")
    assert (
        "outside the deployment window of ReleaseReadiness payments-prod/payments-api-3.2.0: "
        "2026-12-01T20:00:00Z to 2026-12-01T22:00:00Z (now 2026-11-27T12:00:00Z)" in d.message
    )
    inside = decide(workload(), releases=[release(window=("2026-11-27T11:00:00Z", "2026-11-27T13:00:00Z"))])
    assert inside.allowed


def test_images_not_inspected_name_both() -> None:
    d = decide(workload(image="registry.example.com/payments/api:3.2.1"))
    assert (d.allowed, d.verdict) == (False, "image-mismatch")
    assert (
        "container 'api' image registry.example.com/payments/api:3.2.1 is not the image inspected in "
        f"payments-staging ({IMAGE})" in d.message
    )


def test_break_glass_by_an_allowed_user_passes_with_a_warning() -> None:
    obj = workload(annotations={"readiness.dev/break-glass": "INC-4711 payments down"})
    d = decide(obj, releases=[release(ready=False)], groups=("sre-oncall",))
    assert (d.allowed, d.verdict) == (True, "break-glass")
    assert d.break_glass_reason == "INC-4711 payments down"
    assert d.warnings == [
        "readiness gate bypassed by break-glass (INC-4711 payments down); this is recorded on "
        "ReleaseReadiness payments-prod/payments-api-3.2.0"
    ]


def test_break_glass_by_anyone_else_is_refused() -> None:
    obj = workload(annotations={"readiness.dev/break-glass": "trust me"})
    d = decide(obj, releases=[release(ready=True)])
    assert (d.allowed, d.verdict) == (False, "break-glass-denied")
    assert (
        "user alice (groups: deployers) may not use the readiness.dev/break-glass annotation; only members of "
        "these groups may: sre-oncall" in d.message
    )


@pytest.mark.parametrize("mode", ["warn", "audit"])
def test_advisory_modes_pass_and_keep_the_verdict(mode: str) -> None:
    d = decide(workload(), mode=mode, releases=[])
    assert d.allowed
    assert d.verdict == "no-release"
    assert d.refused
    if mode == "warn":
        assert d.warnings[0].startswith("readiness gate (warn mode) would refuse this: deployment payments-prod/")
    else:
        assert d.warnings == []


def test_ungated_namespace_passes() -> None:
    d = decide(workload(), mode="off", releases=[])
    assert (d.allowed, d.verdict) == (True, "not-gated")


def test_dry_run_gets_the_same_answer() -> None:
    req = GateRequest(
        operation="CREATE",
        gated=gated_kind("Deployment"),
        namespace=PROD,
        name="payments-api",
        obj=workload(),
        old=None,
        caller=Caller("alice"),
        dry_run=True,
    )
    wet = decide(workload(), releases=[release(ready=False)])
    dry = gate_decision(req, "enforce", [release(ready=False)], {"demo": CHECKLIST}, [], NOW)
    assert (dry.allowed, dry.verdict, dry.message) == (wet.allowed, wet.verdict, wet.message)


# -- every pod-creating kind ------------------------------------------------------------------------------


def pod(
    owner: str | None = None, labels: dict[str, str] | None = None, spec: dict[str, Any] | None = None
) -> dict[str, Any]:
    template = workload(labels=labels)["spec"]["template"]
    meta: dict[str, Any] = {"name": "payments-api", "namespace": PROD, "labels": template["metadata"]["labels"]}
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": owner, "name": "payments-api-5d4f", "controller": True}
        ]
    return {"metadata": meta, "spec": spec if spec is not None else copy.deepcopy(template["spec"])}


def cronjob(image: str = IMAGE) -> dict[str, Any]:
    template = workload(image=image)["spec"]["template"]
    return {
        "metadata": {"name": "payments-api", "namespace": PROD},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}},
    }


def test_a_pod_the_replicaset_controller_makes_for_its_owner_passes() -> None:
    d = decide(pod(owner="ReplicaSet"), kind="Pod", user="system:serviceaccount:kube-system:replicaset-controller")
    assert (d.allowed, d.verdict) == (True, "controller-made")
    assert "made by system:serviceaccount:kube-system:replicaset-controller for ReplicaSet payments-api-5d4f" in (
        d.message
    )


@pytest.mark.parametrize(
    ("user", "owner"),
    [
        ("alice", "ReplicaSet"),  # a forged ownerReference, a person's identity
        ("system:serviceaccount:kube-system:replicaset-controller", None),  # no owner
        ("system:serviceaccount:kube-system:deployment-controller", "ReplicaSet"),  # not that owner's controller
    ],
)
def test_a_pod_not_made_by_the_owners_controller_is_judged_like_a_workload(user: str, owner: str | None) -> None:
    d = decide(pod(owner=owner, labels={}), kind="Pod", user=user)
    assert (d.allowed, d.verdict) == (False, "missing-labels")
    assert "the pod template (metadata.labels) has no app.kubernetes.io/name" in d.message


def test_a_bare_pod_equal_to_the_inspected_template_passes_and_an_unreviewed_one_is_refused() -> None:
    assert decide(pod(), kind="Pod").verdict == "passed"
    spec = {"containers": [{"name": "api", "image": "evil.example.com/miner:1"}]}
    d = decide(pod(spec=spec), kind="Pod")
    assert (d.allowed, d.verdict) == (False, "image-mismatch")
    assert d.message.startswith("pod payments-prod/payments-api: its images are not the ones")


def test_a_cronjob_is_judged_on_its_job_template() -> None:
    assert decide(cronjob(), kind="CronJob").verdict == "passed"
    d = decide(cronjob(image="evil.example.com/miner:1"), kind="CronJob", releases=[release(ready=False)])
    assert (d.allowed, d.verdict) == (False, "not-ready")
    unlabelled = cronjob()
    unlabelled["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"] = {}
    missing = decide(unlabelled, kind="CronJob")
    assert "(spec.jobTemplate.spec.template.metadata.labels) has no app.kubernetes.io/name" in missing.message


def test_a_job_the_cronjob_controller_makes_passes() -> None:
    job = workload()
    job["metadata"]["ownerReferences"] = [{"kind": "CronJob", "name": "nightly", "controller": True}]
    d = decide(job, kind="Job", user="system:serviceaccount:kube-system:cronjob-controller", releases=[])
    assert d.verdict == "controller-made"


def test_a_pod_update_that_only_relabels_is_unchanged() -> None:
    old = pod()
    new = copy.deepcopy(old)
    new["metadata"]["labels"]["debug"] = "true"
    assert decide(new, old=old, kind="Pod", releases=[]).verdict == "unchanged"


def test_an_ephemeral_container_is_refused_naming_its_image() -> None:
    old = pod(owner="ReplicaSet")
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox:1.36"}]
    d = decide(new, old=old, kind="Pod", subresource="ephemeralcontainers")
    assert (d.allowed, d.verdict) == (False, "image-mismatch")
    assert "ephemeral container 'debugger' (busybox:1.36) was never inspected" in d.message
    glass = copy.deepcopy(new)
    glass["metadata"]["annotations"] = {"readiness.dev/break-glass": "INC-1 debug"}
    sre = decide(glass, old=old, kind="Pod", subresource="ephemeralcontainers", groups=("sre-oncall",))
    assert sre.verdict == "break-glass"


# -- what was inspected is what runs -------------------------------------------------------------------------


def candidate_workload() -> Workload:
    body = workload()
    body["kind"] = "Deployment"
    body["metadata"]["namespace"] = "payments-staging"
    return Workload(body)


def privileged(**extra: Any) -> dict[str, Any]:
    obj = workload()
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True}
    obj["spec"]["template"]["spec"].update(extra)
    return obj


def test_a_changed_template_with_the_inspected_image_is_refused_naming_the_field_and_both_values() -> None:
    d = decide(privileged(), inspected=[candidate_workload()])
    assert (d.allowed, d.verdict) == (False, "template-mismatch")
    assert (
        "spec.template.spec.containers[0].securityContext.privileged is true, but the candidate inspected "
        "(deployment payments-staging/payments-api) has (not set)\n" in d.message
    )
    assert "Make it equal to the candidate's, or list the field in spec.rules.environmentFields of " in d.message
    host_pid = workload()
    host_pid["spec"]["template"]["spec"]["hostPID"] = True
    host = decide(host_pid, inspected=[candidate_workload()])
    assert "spec.template.spec.hostPID is true, but the candidate inspected" in host.message
    unknown = decide(privileged())
    assert "the pod template is none of the ones inspected in payments-staging" in unknown.message


def test_environment_fields_may_differ_and_a_checklist_can_narrow_them() -> None:
    obj = workload(annotations={})
    template = obj["spec"]["template"]
    template["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "2026-11-27T12:00:00Z"}
    template["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "4"}}
    template["spec"]["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "zone"}]
    assert decide(obj).verdict == "passed"
    strict = CHECKLIST.model_copy(deep=True)
    strict.spec.rules.environment_fields = ["spec.nodeSelector"]
    d = decide(
        obj,
        checklist=strict,
        releases=[release(template=inspected_hash(fields=["spec.nodeSelector"]))],
        inspected=[candidate_workload()],
    )
    assert (d.allowed, d.verdict) == (False, "template-mismatch")
    assert (
        'spec.template.spec.containers[0].resources.limits.cpu is "4", but the candidate inspected '
        "(deployment payments-staging/payments-api) has (not set)" in d.message
    )
    # restartedAt is never compared: `kubectl rollout restart` works under any checklist.
    assert "restartedAt" not in d.message


def test_a_checklist_may_let_one_annotation_or_a_prefix_differ() -> None:
    obj = workload()
    obj["spec"]["template"]["metadata"]["annotations"] = {"checksum/config": "abc", "checksum/secret": "def"}
    assert decide(obj, inspected=[candidate_workload()]).verdict == "template-mismatch"
    for fields in (["metadata.annotations['checksum/*']"], ["metadata.annotations['checksum/config']"]):
        lenient = CHECKLIST.model_copy(deep=True)
        lenient.spec.rules.environment_fields = fields
        d = decide(obj, checklist=lenient, releases=[release(template=inspected_hash(fields=fields))])
        prefix = fields[0].endswith("*']")
        assert d.verdict == ("passed" if prefix else "template-mismatch")


def test_template_checks_that_passed_on_the_candidate_run_on_production() -> None:
    # A checklist that lets env valueFrom differ (the default does not): the literal still fails the check.
    lenient = CHECKLIST.model_copy(deep=True)
    fields = ["spec.containers[*].env[*].value", "spec.containers[*].env[*].valueFrom"]
    lenient.spec.rules.environment_fields = fields
    obj = workload()
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
    candidate = workload()
    candidate["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    ]
    inspected = inspected_hash(candidate["spec"]["template"], fields)
    d = decide(obj, checklist=lenient, releases=[release(passed=("secrets",), template=inspected)])
    assert (d.allowed, d.verdict) == (False, "check-failed")
    assert (
        "check secrets (noHardcodedSecrets) fails on it: deployment payments-prod/payments-api: container 'api' "
        "sets secret-looking env DB_PASSWORD to a literal value (spec.template.spec.containers[0].env[0].value)"
    ) in d.message
    # An item that did not pass on the candidate (waived, failed) is not judged again here.
    assert decide(obj, checklist=lenient, releases=[release(template=inspected)]).verdict == "passed"
    # Under the default fields, switching from the Secret to a literal is a template change.
    was = inspected_hash(candidate["spec"]["template"])
    default = decide(obj, releases=[release(passed=("secrets",), template=was)])
    assert default.verdict == "template-mismatch"


def test_template_checks_on_production_judge_the_template_not_the_rollout() -> None:
    """readinessProbe with requireReady passed on the candidate; production's pods are not all Ready (that may be
    why it is being updated): the gate judges the template, which has the probe."""
    strict = CHECKLIST.model_copy(deep=True)
    for item in strict.spec.items:
        if item.id == "secrets":
            item.check.workload = "readinessProbe"
            item.check.params = {"requireReady": True}
    obj = workload()
    obj["spec"]["template"]["spec"]["containers"][0]["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}}
    obj["metadata"]["generation"] = 4
    obj["spec"]["replicas"] = 3
    obj["status"] = {"observedGeneration": 4, "updatedReplicas": 3, "availableReplicas": 1}
    inspected = inspected_hash(obj["spec"]["template"])
    d = decide(obj, checklist=strict, releases=[release(passed=("secrets",), template=inspected)])
    assert d.verdict == "passed", d.message
    del obj["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    missing = decide(
        obj, checklist=strict, releases=[release(passed=("secrets",), template=inspected_hash(obj["spec"]["template"]))]
    )
    assert missing.verdict == "check-failed"
    assert "has no readinessProbe" in missing.message


# -- one release decides ---------------------------------------------------------------------------------------


def test_two_releases_for_one_version_must_both_admit() -> None:
    easy, strict = release(name="a-easy"), release(ready=False, name="b-strict")
    d = decide(workload(), releases=[easy, strict])
    assert (d.allowed, d.verdict) == (False, "not-ready")
    assert "ReleaseReadiness payments-prod/b-strict is not Ready" in d.message
    assert "2 ReleaseReadiness objects cover payments-api 3.2.0: payments-prod/a-easy, payments-prod/b-strict" in (
        d.message
    )
    assert decide(workload(), releases=[easy, release(name="b-also-ready")]).verdict == "passed"


def test_a_ready_status_for_an_earlier_generation_is_not_ready() -> None:
    stale = release()
    stale.metadata.generation = 4
    assert stale.status is not None
    stale.status.observed_generation = 3
    d = decide(workload(), releases=[stale])
    assert (d.allowed, d.verdict) == (False, "not-ready")
    assert (
        "is not Ready (its status is for an earlier generation; the operator has not evaluated the current spec yet)"
        in d.message
    )
    stale.status.observed_generation = 4
    assert decide(workload(), releases=[stale]).allowed


# -- before the operator's listings are complete ---------------------------------------------------------------


def request(obj: dict[str, Any]) -> GateRequest:
    return GateRequest("CREATE", gated_kind("Deployment"), PROD, "payments-api", obj, None, Caller("alice", ("a",)))


def test_starting_refuses_in_enforce_and_in_a_namespace_not_listed_yet() -> None:
    from release_readiness.admission.gate import STARTING, starting_decision

    req = request(workload())
    for mode in ("enforce", None):
        decision = starting_decision(req, mode, ["ReleaseReadiness", "Deployment"])
        assert not decision.allowed
        assert decision.verdict == "starting"
        assert STARTING in decision.message
        assert "ReleaseReadiness, Deployment" in decision.message


def test_starting_passes_warn_and_audit_with_a_warning() -> None:
    from release_readiness.admission.gate import starting_decision

    for mode in ("warn", "audit"):
        decision = starting_decision(request(workload()), mode, ["ReleaseReadiness"])
        assert decision.allowed
        assert decision.mode == mode
        assert decision.warnings
        assert "did not check this" in decision.warnings[0]


def test_starting_in_a_namespace_not_listed_yet_follows_the_webhook_the_api_server_called() -> None:
    """The advisory hook's selector matches only warn and audit namespaces: such a request passes with a warning
    (CI saw a warn namespace refused because the Namespace listing came last); the enforce hook's still refuses,
    and a namespace listed as enforce refuses whichever hook was called."""
    from release_readiness.admission.gate import starting_decision

    req = request(workload())
    advisory = starting_decision(req, None, ["Namespace"], advisory_hook=True)
    assert advisory.allowed
    assert advisory.warnings == [f"readiness gate (warn or audit mode) did not check this: {advisory.message}"]
    assert not starting_decision(req, None, ["Namespace"], advisory_hook=False).allowed
    assert not starting_decision(req, "enforce", ["Namespace"], advisory_hook=True).allowed


def test_each_gated_kind_has_an_enforce_and_an_advisory_path_and_the_server_serves_both() -> None:
    from release_readiness.admission.configuration import Endpoint, gate_webhooks
    from release_readiness.kinds import BUILTIN_GATED_KINDS

    hooks = gate_webhooks(Endpoint(b"", service={"name": "rr", "namespace": "rr", "port": 443}), BUILTIN_GATED_KINDS)
    paths = {h["name"]: h["clientConfig"]["service"]["path"] for h in hooks}
    for kind in BUILTIN_GATED_KINDS:
        assert paths[f"{kind.webhook}-enforce.readiness.dev"] == f"/{kind.webhook}"
        assert paths[f"{kind.webhook}-advisory.readiness.dev"] == f"/{kind.advisory_webhook}"


def test_a_passed_template_is_remembered_only_for_that_version_of_the_release_and_checklist() -> None:
    def versioned(rv: str, template: str | None = None) -> ReleaseReadiness:
        r = release(template=template)
        r.metadata.uid, r.metadata.resource_version = "uid-r", rv
        return r

    checklist = CHECKLIST.model_copy(deep=True)
    checklist.metadata.uid, checklist.metadata.resource_version = "uid-c", "1"
    assert decide(workload(), releases=[versioned("1")], checklist=checklist).verdict == "passed"
    assert decide(workload(), releases=[versioned("1")], checklist=checklist).verdict == "passed"
    # The candidate was inspected again with another template: a new resourceVersion, judged afresh.
    changed = decide(workload(), releases=[versioned("2", template="sha256:other")], checklist=checklist)
    assert (changed.allowed, changed.verdict) == (False, "template-mismatch")


def test_distinct_huge_passing_templates_leave_the_memo_bounded_by_entries_and_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Red-team finding 4: 1,400 dry-runs with distinct 250 KB annotations grew the memo by the templates."""
    from release_readiness.admission import gate

    memo = gate._PassedTemplates(size=64, max_bytes=20_000)
    monkeypatch.setattr(gate, "_PASSED", memo)
    r = release()
    r.metadata.uid, r.metadata.resource_version = "uid-r", "1"
    lenient = CHECKLIST.model_copy(deep=True)
    lenient.metadata.uid, lenient.metadata.resource_version = "uid-c", "1"
    lenient.spec.rules.environment_fields = ["metadata.annotations"]
    huge = "x" * 250_000
    for i in range(200):
        obj = workload()
        obj["spec"]["template"]["metadata"]["annotations"] = {"note": f"{i}{huge}"}
        assert decide(obj, releases=[r], checklist=lenient).verdict == "passed"
        assert len(memo) <= 64
        assert memo.bytes <= 20_000
    # Each entry costs a few hundred bytes whatever the template's size: the byte bound keeps ~40 of them.
    assert 20 < len(memo) < 64
    assert all(len(part) <= 64 for key in memo._keys for part in key)
    assert memo.bytes == sum(memo._keys.values())
    # The newest is still remembered, the oldest went first.
    newest = workload()
    newest["spec"]["template"]["metadata"]["annotations"] = {"note": f"199{huge}"}
    oldest = workload()
    oldest["spec"]["template"]["metadata"]["annotations"] = {"note": f"0{huge}"}
    assert memo.key(request(newest), r, lenient) in memo
    assert memo.key(request(oldest), r, lenient) not in memo


DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize(
    ("inspected", "production"),
    [(f"{IMAGE}@{DIGEST}", IMAGE), (IMAGE, f"{IMAGE}@{DIGEST}"), (f"{IMAGE}@{DIGEST}", f"{IMAGE}@sha256:{'d' * 64}")],
)
def test_production_images_are_compared_with_the_inspected_ones_digest_included(
    inspected: str, production: str
) -> None:
    """Red-team finding 3: the tag of an image inspected by digest can be pushed again; only the digest pins it."""
    r = release()
    assert r.status is not None
    assert r.status.candidate is not None
    r.status.candidate.workloads[0].images[0].image = inspected
    d = decide(workload(image=production), releases=[r])
    assert (d.allowed, d.verdict) == (False, "image-mismatch")
    expected = f"container 'api' image {production} is not the image inspected in payments-staging ({inspected})"
    assert expected in d.message
    r.status.candidate.workloads[0].images[0].image = production
    assert decide(workload(image=production), releases=[r]).verdict != "image-mismatch"


def test_with_no_release_the_refusal_names_the_namespaces_releases_the_operator_cannot_read() -> None:
    req = request(workload())
    invalid = {"payments-api-3-2-0": "spec.version: String should have at least 1 character"}
    d = gate_decision(req, "enforce", [], {"demo": CHECKLIST}, [], NOW, invalid=invalid)
    assert (d.allowed, d.verdict) == (False, "no-release")
    assert d.message.endswith(
        "; ReleaseReadiness payments-api-3-2-0 cannot be read by the operator (spec.version: String should have at "
        "least 1 character): fix or recreate it"
    )
    assert "cannot be read" not in gate_decision(req, "enforce", [], {"demo": CHECKLIST}, [], NOW).message


def test_cel_rules_over_the_template_alone_run_on_production_too() -> None:
    """An env value is a per-environment field: the production template may set TZ to something else than the
    candidate did. A CEL item that reads only workload/podSpec/containers is judged again on it; one that reads the
    related objects (which the gate does not have) is not."""
    house = CHECKLIST.model_copy(deep=True)
    utc = "containers.all(c, has(c.env) && c.env.exists(e, e.name == 'TZ' && e.value == 'UTC'))"
    rules = [{"expression": utc, "messageExpression": "'TZ is not UTC in ' + containers.map(c, c.name).join(', ')"}]
    cross = [{"expression": "services.size() > 0 && " + utc}]
    house.spec.items += [
        ChecklistItem.model_validate({"id": "tz", "section": "S", "title": "T", "check": {"cel": {"rules": rules}}}),
        ChecklistItem.model_validate({"id": "svc", "section": "S", "title": "T", "check": {"cel": {"rules": cross}}}),
    ]
    candidate, obj = workload(), workload()
    candidate["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "TZ", "value": "UTC"}]
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "TZ", "value": "Europe/Paris"}]
    inspected = inspected_hash(candidate["spec"]["template"])
    d = decide(obj, checklist=house, releases=[release(passed=("tz", "svc"), template=inspected)])
    assert (d.allowed, d.verdict) == (False, "check-failed")
    assert "check tz (cel) fails on it: deployment payments-prod/payments-api: TZ is not UTC in api" in d.message
    assert "check svc" not in d.message
    ok = decide(candidate, checklist=house, releases=[release(passed=("tz", "svc"), template=inspected)])
    assert ok.verdict == "passed"


def test_a_refusal_lists_the_releases_current_state_when_it_changes() -> None:
    """The outstanding items are kept per release object (the index replaces it on change): a new state shows."""
    before = release(ready=False, items=12)
    assert "12 required item(s) outstanding:" in decide(workload(), releases=[before]).message
    assert "12 required item(s) outstanding:" in decide(workload(), releases=[before]).message
    after = release(ready=False, items=3)
    message = decide(workload(), releases=[after]).message
    assert "3 required item(s) outstanding:" in message
    assert "item-3" not in message


def test_the_template_memo_key_is_canonical_and_takes_any_json() -> None:
    from release_readiness.admission.gate import _canonical

    assert _canonical({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == _canonical({"a": [1, {"c": 3, "d": 2}], "b": 1})
    assert _canonical({"big": 2**70}) == b'{"big":1180591620717411303424}'  # past orjson's 64 bits: json's


def test_a_remembered_pass_admits_only_the_same_workload_not_the_same_template(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Red-team 3 finding 1: a CEL item may read the workload object itself (here spec.replicas). A server dry-run
    with 3 replicas passed and was remembered by its pod template alone; the real create with 1 replica and the same
    template was then admitted from the memo without judging the item."""
    from release_readiness.admission import gate

    memo = gate._PassedTemplates()
    monkeypatch.setattr(gate, "_PASSED", memo)
    house = CHECKLIST.model_copy(deep=True)
    ha = [{"expression": "workload.spec.replicas >= 3", "message": "fewer than 3 replicas"}]
    house.spec.items.append(
        ChecklistItem.model_validate({"id": "ha", "section": "S", "title": "T", "check": {"cel": {"rules": ha}}})
    )
    house.metadata.uid, house.metadata.resource_version = "uid-c", "1"
    r = release(passed=("ha",))
    r.metadata.uid, r.metadata.resource_version = "uid-r", "1"
    assert decide(workload(replicas=3), checklist=house, releases=[r]).verdict == "passed"
    d = decide(workload(replicas=1), checklist=house, releases=[r])
    assert (d.allowed, d.verdict) == (False, "check-failed")
    assert "check ha (cel) fails on it: deployment payments-prod/payments-api: fewer than 3 replicas" in d.message
    # The fields the API server sets are not part of what is judged: the same object again still hits the memo.
    again = workload(replicas=3)
    again["metadata"] |= {"resourceVersion": "42", "uid": "u", "managedFields": [{"manager": "kubectl"}]}
    assert decide(again, checklist=house, releases=[r]).verdict == "passed"
    assert len(memo) == 1


def test_a_cel_item_the_time_limit_left_unjudged_on_production_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Red-team 3 finding 2: the CEL items of one evaluation share a time limit, so an item can be Pending on the
    production workload; the gate admitted everything but Failed. Unjudged is never admitted."""
    from release_readiness.checks import cel

    monkeypatch.setattr(cel, "EVALUATION_SECONDS", -1.0)  # the budget is spent before the first workload
    house = CHECKLIST.model_copy(deep=True)
    rule = [{"expression": "workload.spec.replicas >= 1"}]
    house.spec.items.append(
        ChecklistItem.model_validate({"id": "ha", "section": "S", "title": "T", "check": {"cel": {"rules": rule}}})
    )
    d = decide(workload(), checklist=house, releases=[release(passed=("ha",))])
    assert (d.allowed, d.verdict) == (False, "check-failed")
    assert "check ha (cel) could not be judged on it: evaluation stopped after the -1s all CEL items" in d.message
