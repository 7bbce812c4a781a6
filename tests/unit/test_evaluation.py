"""evaluate_release: items, approvals, summary and kstatus-compatible conditions, from plain inputs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.checks.model import CheckResult
from release_readiness.evaluation import Blocker, EvaluationInput, Reason, evaluate_release, status_changed
from tests.unit.builders import NOW, deployment, good_container, snapshot


def make_checklist(items: list[dict[str, Any]], approvals: list[dict[str, Any]] | None = None) -> ReadinessChecklist:
    return ReadinessChecklist.model_validate(
        {
            "metadata": {"name": "demo"},
            "spec": {"items": items, "approvals": approvals or []},
        }
    )


WORKLOAD_ONLY = [
    {"id": "limits", "section": "Infra", "title": "Limits", "check": {"workload": "resourceLimits"}},
    {"id": "probes", "section": "Infra", "title": "Probes", "check": {"workload": "livenessProbe"}},
]
COVERAGE = {
    "id": "unit-test-coverage",
    "section": "Tests",
    "title": "Coverage",
    "check": {"evidence": {"key": "coverage-percent", "min": 80}},
}
ATTEST = {
    "id": "runbooks",
    "section": "Docs",
    "title": "Runbooks",
    "check": {"attestation": {"roles": ["devops-lead"]}},
}
APPROVALS = [
    {"role": "engineering-lead", "groups": ["eng-leads"], "items": []},
    {"role": "devops-lead", "groups": ["devops-leads"], "items": ["runbooks"]},
]


def make_release(waivers: list[dict[str, Any]] | None = None, status: dict[str, Any] | None = None) -> ReleaseReadiness:
    body: dict[str, Any] = {
        "metadata": {"name": "payments-api-3.2.0", "namespace": "payments-prod", "generation": 3},
        "spec": {
            "application": "payments-api",
            "version": "3.2.0",
            "checklist": "demo",
            "candidate": {"namespace": "payments-staging"},
            "waivers": waivers or [],
        },
    }
    if status is not None:
        body["status"] = status
    return ReleaseReadiness.model_validate(body)


def signoff(
    name: str,
    *,
    role: str | None = None,
    items: list[dict[str, Any]] | None = None,
    decision: str = "approve",
    user: str = "eng-lead-1",
    fingerprint: str | None = None,
    minutes: int = 0,
    comment: str | None = None,
) -> ReleaseSignoff:
    spec: dict[str, Any] = {
        "release": "payments-api-3.2.0",
        "decision": decision,
        "items": items or [],
        "signer": {"username": user, "groups": []},
        "signedAt": (NOW + dt.timedelta(minutes=minutes)).isoformat(),
        "candidateFingerprint": fingerprint,
        "comment": comment,
    }
    if role:
        spec["role"] = role
    return ReleaseSignoff.model_validate({"metadata": {"name": name, "namespace": "payments-prod"}, "spec": spec})


def evaluate(checklist: ReadinessChecklist | None, release: ReleaseReadiness | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("snapshot", snapshot())
    return evaluate_release(EvaluationInput(release=release or make_release(), checklist=checklist, now=NOW, **kwargs))


def conditions(status: Any) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def test_workload_only_checklist_reaches_ready() -> None:
    status = evaluate(make_checklist(WORKLOAD_ONLY))
    assert conditions(status) == {
        "Ready": ("True", Reason.READY),
        "ChecksPassed": ("True", Reason.ALL_ITEMS_PASSED),
        "Approved": ("True", Reason.APPROVED),
        "Reconciling": ("False", Reason.RECONCILED),
        "Stalled": ("False", Reason.NOT_STALLED),
    }
    assert status.summary.progress == "2/2"
    assert status.observed_generation == 3
    assert all(c.observed_generation == 3 for c in status.conditions)


def test_failing_item_is_reconciling_with_the_outstanding_list() -> None:
    c = good_container()
    del c["resources"]["limits"]
    status = evaluate(make_checklist(WORKLOAD_ONLY), snapshot=snapshot(deployment(containers=[c])))
    ready = status.condition("Ready")
    assert (ready.status, ready.reason) == ("False", Reason.ITEMS_OUTSTANDING)
    assert ready.message.startswith("1 required item(s) outstanding: limits (Failed: deployment payments-staging/")
    assert conditions(status)["Reconciling"] == ("True", Reason.ITEMS_OUTSTANDING)
    assert status.summary.failed == 1
    assert status.summary.required_outstanding == 1


def test_attestation_pending_says_who_can_complete_it() -> None:
    status = evaluate(make_checklist([ATTEST], APPROVALS))
    item = status.items[0]
    assert item.state == "Pending"
    assert item.message == "waiting for an attestation by devops-lead (groups devops-leads)"


def test_evidence_pass_and_fail_name_the_signer() -> None:
    checklist = make_checklist([COVERAGE])
    ci = "system:serviceaccount:ci:ci-bot"
    low = evaluate(checklist, signoffs=[signoff("s1", items=[{"id": "unit-test-coverage", "value": "71"}], user=ci)])
    assert low.items[0].state == "Failed"
    assert low.items[0].message == f"unit-test-coverage: 71 < 80 (attested by {ci})"
    good = evaluate(
        checklist,
        signoffs=[
            signoff("s1", items=[{"id": "unit-test-coverage", "value": "71"}], user=ci),
            signoff("s2", items=[{"id": "unit-test-coverage", "value": "84.2"}], user=ci, minutes=5),
        ],
    )
    assert good.items[0].state == "Passed"
    assert good.items[0].message == f"unit-test-coverage: 84.2 >= 80 (attested by {ci})"
    nan = evaluate(checklist, signoffs=[signoff("s1", items=[{"id": "unit-test-coverage", "value": "lots"}])])
    assert "attested value 'lots' is not a number" in nan.items[0].message
    for weird in ("nan", "NaN", "inf", "-inf"):  # nan compares false both ways: it must not pass a bound
        odd = evaluate(checklist, signoffs=[signoff("s1", items=[{"id": "unit-test-coverage", "value": weird}])])
        assert odd.items[0].state == "Failed", weird
        assert "is not a number" in odd.items[0].message


def test_evidence_pending_without_a_signoff() -> None:
    status = evaluate(make_checklist([COVERAGE]))
    assert status.items[0].state == "Pending"
    assert "waiting for evidence 'coverage-percent' (>= 80)" in status.items[0].message


def test_active_waiver_counts_and_expired_one_does_not() -> None:
    c = good_container()
    del c["resources"]["limits"]
    snap = snapshot(deployment(containers=[c]))
    active = make_release([{"item": "limits", "reason": "vendor image", "expires": "2026-12-01T00:00:00Z"}])
    status = evaluate(make_checklist(WORKLOAD_ONLY), active, snapshot=snap)
    assert status.items[0].state == "Waived"
    assert status.items[0].message.startswith("waived until 2026-12-01T00:00:00Z: vendor image (was Failed:")
    assert conditions(status)["Ready"] == ("True", Reason.READY)
    expired = make_release([{"item": "limits", "reason": "vendor image", "expires": "2026-11-01T00:00:00Z"}])
    assert evaluate(make_checklist(WORKLOAD_ONLY), expired, snapshot=snap).items[0].state == "Failed"


def test_approvals_missing_approved_and_covering_items() -> None:
    checklist = make_checklist([ATTEST], APPROVALS)
    fp = evaluate(checklist).candidate.fingerprint
    status = evaluate(checklist, signoffs=[signoff("d", role="devops-lead", user="ops-1", fingerprint=fp)])
    states = {a.role: (a.state, a.by) for a in status.approvals}
    assert states == {"engineering-lead": ("Missing", None), "devops-lead": ("Approved", "ops-1")}
    assert status.items[0].state == "Passed"
    assert status.items[0].message == "covered by the devops-lead sign-off of ops-1"
    assert conditions(status)["Approved"] == ("False", Reason.APPROVALS_MISSING)
    assert status.summary.approvals == "1/2"


def test_new_images_make_approvals_stale() -> None:
    checklist = make_checklist([], APPROVALS[:1])
    status = evaluate(checklist, signoffs=[signoff("e", role="engineering-lead", fingerprint="sha256:old")])
    assert status.approvals[0].state == "Stale"
    assert conditions(status)["Ready"] == ("False", Reason.APPROVALS_STALE)


def test_a_veto_stalls_the_release() -> None:
    checklist = make_checklist([], APPROVALS[:1])
    status = evaluate(
        checklist,
        signoffs=[signoff("e", role="engineering-lead", decision="reject", comment="p95 regressed", user="eng-lead-1")],
    )
    assert status.approvals[0].state == "Rejected"
    assert conditions(status)["Stalled"] == ("True", Reason.VETOED)
    assert conditions(status)["Reconciling"][0] == "False"
    assert conditions(status)["Ready"] == ("False", Reason.VETOED)
    assert "engineering-lead vetoed by eng-lead-1: vetoed: p95 regressed" in status.condition("Ready").message


def test_missing_checklist_blocker_stalls() -> None:
    blocker = Blocker(Reason.CHECKLIST_NOT_FOUND, "ReadinessChecklist 'demo' (spec.checklist) not found")
    status = evaluate(None, blocker=blocker, snapshot=None)
    assert conditions(status)["Stalled"] == ("True", Reason.CHECKLIST_NOT_FOUND)
    assert status.items == []


def test_metric_results_are_used_and_post_items_wait_for_admission() -> None:
    items = [
        {"id": "p95", "section": "Perf", "title": "P95", "check": {"prometheus": {"query": "x", "max": 0.5}}},
        {
            "id": "watch",
            "section": "Post",
            "title": "Watch",
            "phase": "post",
            "check": {"prometheus": {"query": "x", "max": 0.5}},
        },
    ]
    status = evaluate(make_checklist(items), metric_results={"p95": CheckResult.passed("0.2 <= 0.5")})
    assert [i.state for i in status.items] == ["Passed", "Pending"]
    assert conditions(status)["Ready"][0] == "True"  # post items do not gate readiness
    assert conditions(status)["PostDeploymentHealthy"] == ("False", Reason.POST_PENDING)


def test_no_churn_when_nothing_changed() -> None:
    checklist = make_checklist([*WORKLOAD_ONLY, ATTEST], APPROVALS)
    first = evaluate(checklist)
    again = evaluate_release(
        EvaluationInput(
            release=make_release(status=first.to_dict()),
            checklist=checklist,
            snapshot=snapshot(),
            now=NOW + dt.timedelta(hours=1),
        )
    )
    assert not status_changed(
        ReleaseReadiness.model_validate({**make_release().to_dict(), "status": first.to_dict()}).status, again
    )
    assert again.condition("Ready").last_transition_time == NOW
    assert again.items[0].checked_at == NOW


def test_fingerprint_follows_the_images() -> None:
    a = evaluate(make_checklist(WORKLOAD_ONLY)).candidate
    b = evaluate(
        make_checklist(WORKLOAD_ONLY), snapshot=snapshot(deployment(containers=[good_container(image="reg/api:3.2.1")]))
    ).candidate
    assert a.fingerprint.startswith("sha256:")
    assert a.fingerprint != b.fingerprint
    assert b.workloads[0].images[0].image == "reg/api:3.2.1"


def test_fingerprint_follows_the_pod_template_but_not_its_environment_fields() -> None:
    base = evaluate(make_checklist(WORKLOAD_ONLY)).candidate
    privileged = good_container()
    privileged["securityContext"]["privileged"] = True
    changed = evaluate(make_checklist(WORKLOAD_ONLY), snapshot=snapshot(deployment(containers=[privileged]))).candidate
    restarted = evaluate(
        make_checklist(WORKLOAD_ONLY), snapshot=snapshot(deployment(template_annotations={"restartedAt": "now"}))
    ).candidate
    assert base.workloads[0].template_hash.startswith("sha256:")
    assert changed.workloads[0].template_hash != base.workloads[0].template_hash
    assert changed.fingerprint != base.fingerprint
    assert restarted.fingerprint == base.fingerprint


def test_admission_is_recorded_once_and_kept() -> None:
    checklist = make_checklist(WORKLOAD_ONLY)
    assert evaluate(checklist).admitted_at is None
    first = evaluate(checklist, admitted=True)
    assert first.admitted_at == NOW
    later = evaluate_release(
        EvaluationInput(
            release=make_release(status=first.to_dict()),
            checklist=checklist,
            snapshot=snapshot(),
            admitted=True,
            now=NOW + dt.timedelta(hours=2),
        )
    )
    assert later.admitted_at == NOW


def test_a_selector_matching_nothing_says_how_to_fix_it() -> None:
    empty = snapshot()
    empty.workloads = []
    status = evaluate(make_checklist(WORKLOAD_ONLY), snapshot=empty)
    ready = status.condition("Ready")
    assert (ready.status, ready.reason) == ("False", Reason.NO_CANDIDATE_WORKLOADS)
    assert "label the candidate app.kubernetes.io/name=payments-api, set spec.candidate.selector" in ready.message
    assert conditions(status)["Stalled"][0] == "False"
    assert conditions(status)["Reconciling"] == ("True", Reason.NO_CANDIDATE_WORKLOADS)
