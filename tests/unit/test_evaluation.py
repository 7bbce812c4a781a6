"""evaluate_release: items, approvals, summary and kstatus-compatible conditions, from plain inputs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.checks.model import CheckResult
from release_readiness.evaluation import (
    Blocker,
    EvaluationInput,
    Reason,
    candidate_status,
    evaluate_release,
    status_changed,
)
from release_readiness_dev.builders import CI_ONLY, NOW, good_container, snapshot, stored_deployment


def make_checklist(
    items: list[dict[str, Any]], approvals: list[dict[str, Any]] | None = None, **rules: Any
) -> ReadinessChecklist:
    return ReadinessChecklist.model_validate(
        {
            "metadata": {"name": "demo"},
            "spec": {"items": items, "approvals": approvals or [], "rules": rules},
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
    "check": {"evidence": {"key": "coverage-percent", "min": 80, "recordedBy": CI_ONLY}},
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


CURRENT = candidate_status(snapshot()).fingerprint
"""The fingerprint of the candidate evaluate() inspects by default."""

ROLE_GROUPS = {"engineering-lead": ["eng-leads"], "devops-lead": ["devops-leads"], "vp-engineering": ["vps"]}


def make_release(status: dict[str, Any] | None = None, creator: str = "release-manager") -> ReleaseReadiness:
    body: dict[str, Any] = {
        "metadata": {
            "name": "payments-api-3.2.0",
            "namespace": "payments-prod",
            "uid": "uid-release",
            "generation": 3,
            "annotations": {"readiness.dev/created-by": creator},
        },
        "spec": {
            "application": "payments-api",
            "version": "3.2.0",
            "checklist": "demo",
            "candidate": {"namespace": "payments-staging"},
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
    fingerprint: str | None = "current",
    minutes: int = 0,
    comment: str | None = None,
    groups: list[str] | None = None,
    created: int | None = None,
    expires: dt.datetime | None = None,
    waivers: str | None = None,
    deleting: bool = False,
) -> ReleaseSignoff:
    """A stamped signoff; `minutes` after NOW it was signed, `created` (default: the same) it was stored."""
    if groups is None:
        groups = ROLE_GROUPS.get(role or "", [])
    spec: dict[str, Any] = {
        "release": "payments-api-3.2.0",
        "releaseUID": "uid-release",
        "decision": decision,
        "items": items or [],
        "signer": {"username": user, "groups": groups},
        "signedAt": (NOW + dt.timedelta(minutes=minutes)).isoformat(),
        # "current": stamped while the default snapshot's candidate was inspected (as the webhook does).
        "candidateFingerprint": CURRENT if fingerprint == "current" else fingerprint,
        "comment": comment,
        "expires": expires.isoformat() if expires else None,
        "waiverFingerprint": waivers,
    }
    if role:
        spec["role"] = role
    meta: dict[str, Any] = {
        "name": name,
        "namespace": "payments-prod",
        "uid": f"uid-{name}",
        "creationTimestamp": (NOW + dt.timedelta(minutes=minutes if created is None else created)).isoformat(),
    }
    if deleting:
        meta["deletionTimestamp"] = NOW.isoformat()
    return ReleaseSignoff.model_validate({"metadata": meta, "spec": spec})


def evaluate(checklist: ReadinessChecklist | None, release: ReleaseReadiness | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("snapshot", snapshot())
    kwargs.setdefault("now", NOW)
    return evaluate_release(EvaluationInput(release=release or make_release(), checklist=checklist, **kwargs))


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
    status = evaluate(make_checklist(WORKLOAD_ONLY), snapshot=snapshot(stored_deployment(containers=[c])))
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


CI = "system:serviceaccount:ci:ci-bot"
CI_GROUPS = ["system:serviceaccounts", "system:serviceaccounts:ci"]


def evidence(name: str, value: str, *, user: str = CI, minutes: int = 0) -> ReleaseSignoff:
    groups = CI_GROUPS if user == CI else ["developers"]
    items = [{"id": "unit-test-coverage", "value": value}]
    return signoff(name, items=items, user=user, groups=groups, minutes=minutes)


def test_evidence_pass_and_fail_name_the_signer() -> None:
    checklist = make_checklist([COVERAGE])
    low = evaluate(checklist, signoffs=[evidence("s1", "71")])
    assert low.items[0].state == "Failed"
    assert low.items[0].message == f"unit-test-coverage: 71 < 80 (attested by {CI})"
    good = evaluate(checklist, signoffs=[evidence("s1", "71"), evidence("s2", "84.2", minutes=5)])
    assert good.items[0].state == "Passed"
    assert good.items[0].message == f"unit-test-coverage: 84.2 >= 80 (attested by {CI})"
    nan = evaluate(checklist, signoffs=[evidence("s1", "lots")])
    assert "attested value 'lots' is not a number" in nan.items[0].message
    for weird in ("nan", "NaN", "inf", "-inf"):  # nan compares false both ways: it must not pass a bound
        odd = evaluate(checklist, signoffs=[evidence("s1", weird)])
        assert odd.items[0].state == "Failed", weird
        assert "is not a number" in odd.items[0].message


def test_evidence_from_anyone_the_checklist_does_not_name_is_ignored() -> None:
    checklist = make_checklist([COVERAGE])
    status = evaluate(checklist, signoffs=[evidence("ci", "61"), evidence("dev", "95", user="dev-1", minutes=5)])
    assert status.items[0].state == "Failed"
    assert status.items[0].message == f"unit-test-coverage: 61 < 80 (attested by {CI})"
    alone = evaluate(checklist, signoffs=[evidence("dev", "95", user="dev-1")])
    assert alone.items[0].state == "Pending"
    assert "recorded by groups system:serviceaccounts:ci" in alone.items[0].message


def test_evidence_pending_without_a_signoff() -> None:
    status = evaluate(make_checklist([COVERAGE]))
    assert status.items[0].state == "Pending"
    assert "waiting for evidence 'coverage-percent' (>= 80)" in status.items[0].message


VP = [{"role": "vp-engineering", "groups": ["vps"]}]
WAIVABLE = make_checklist(WORKLOAD_ONLY, VP, waivers=[{"roles": ["vp-engineering"], "items": ["limits"]}])


def no_limits() -> Any:
    c = good_container()
    del c["resources"]["limits"]
    return snapshot(stored_deployment(containers=[c]))


def waiver(name: str = "w", *, days: float = 4, role: str = "vp-engineering", item: str = "limits") -> ReleaseSignoff:
    expires = NOW + dt.timedelta(days=days)
    return signoff(
        name, role=role, decision="waive", items=[{"id": item}], user="vp-1", comment="vendor image", expires=expires
    )


def test_a_signed_waiver_counts_until_it_expires() -> None:
    approval = signoff("vp-ok", role="vp-engineering", user="vp-2", minutes=1)
    status = evaluate(WAIVABLE, signoffs=[waiver()], snapshot=no_limits())
    assert status.items[0].state == "Waived"
    assert status.items[0].message.startswith(
        "waived by vp-1 (vp-engineering) until 2026-12-01T12:00:00Z: vendor image (was Failed:"
    )
    assert status.waiver_fingerprint.startswith("sha256:")
    current = signoff("vp-ok", role="vp-engineering", user="vp-2", minutes=1, waivers=status.waiver_fingerprint)
    assert conditions(evaluate(WAIVABLE, signoffs=[waiver(), current], snapshot=no_limits()))["Ready"][0] == "True"
    expired = evaluate(WAIVABLE, signoffs=[waiver(days=-1), approval], snapshot=no_limits())
    assert expired.items[0].state == "Failed"


def test_a_waiver_lasts_at_most_max_waiver_days_whatever_it_says() -> None:
    checklist = make_checklist(WORKLOAD_ONLY, VP, waivers=[{"roles": ["vp-engineering"]}], maxWaiverDays=3)
    status = evaluate(checklist, signoffs=[waiver(days=300)], snapshot=no_limits())
    assert "until 2026-11-30T12:00:00Z" in status.items[0].message
    later = evaluate(checklist, signoffs=[waiver(days=300)], snapshot=no_limits(), now=NOW + dt.timedelta(days=4))
    assert later.items[0].state == "Failed"


def test_a_waiver_by_a_role_the_checklist_does_not_name_does_not_count() -> None:
    checklist = make_checklist(WORKLOAD_ONLY, VP + APPROVALS, waivers=[{"roles": ["vp-engineering"]}])
    forged = waiver(role="engineering-lead")
    status = evaluate(checklist, signoffs=[forged], snapshot=no_limits())
    assert status.items[0].state == "Failed"
    assert status.refused_signoffs[0].name == "w"
    assert status.refused_signoffs[0].reason == (
        "role engineering-lead may not waive limits (checklist spec.rules.waivers)"
    )
    nobody = evaluate(make_checklist(WORKLOAD_ONLY, VP), signoffs=[waiver()], snapshot=no_limits())
    assert nobody.items[0].state == "Failed"


def test_a_waiver_added_after_an_approval_makes_it_stale() -> None:
    checklist = make_checklist(WORKLOAD_ONLY, [*VP, APPROVALS[0]], waivers=[{"roles": ["vp-engineering"]}])
    fp = evaluate(checklist).candidate.fingerprint
    eng = signoff("eng", role="engineering-lead", fingerprint=fp)
    before = evaluate(checklist, signoffs=[eng])
    assert {a.role: a.state for a in before.approvals}["engineering-lead"] == "Approved"
    after = evaluate(checklist, signoffs=[eng, waiver(item="probes")])
    stale = {a.role: a for a in after.approvals}["engineering-lead"]
    assert stale.state == "Stale"
    assert stale.message == "the waivers changed after this sign-off (a waiver changes what was approved); sign again"
    again = signoff("eng-2", role="engineering-lead", fingerprint=fp, minutes=5, waivers=after.waiver_fingerprint)
    renewed = evaluate(checklist, signoffs=[eng, waiver(item="probes"), again])
    assert {a.role: a.state for a in renewed.approvals}["engineering-lead"] == "Approved"


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


def test_a_veto_holds_against_another_persons_later_approval() -> None:
    checklist = make_checklist([], APPROVALS[:1])
    veto = signoff("veto", role="engineering-lead", decision="reject", comment="p95 regressed", user="eng-lead-1")
    other = signoff("other", role="engineering-lead", user="eng-lead-2", minutes=5)
    status = evaluate(checklist, signoffs=[veto, other])
    assert status.approvals[0].state == "Rejected"
    assert status.approvals[0].message == (
        "vetoed: p95 regressed (only eng-lead-1 can lift it: delete ReleaseSignoff veto, or approve as "
        "engineering-lead)"
    )
    withdrawn = signoff("mine", role="engineering-lead", user="eng-lead-1", minutes=6)
    lifted = evaluate(checklist, signoffs=[veto, other, withdrawn])
    assert lifted.approvals[0].state == "Approved"
    assert conditions(lifted)["Stalled"][0] == "False"


def test_an_approval_before_the_veto_does_not_lift_it() -> None:
    checklist = make_checklist([], APPROVALS[:1])
    earlier = signoff("ok", role="engineering-lead", user="eng-lead-1")
    veto = signoff("veto", role="engineering-lead", decision="reject", comment="no", user="eng-lead-1", minutes=1)
    assert evaluate(checklist, signoffs=[earlier, veto]).approvals[0].state == "Rejected"


def test_a_signoff_being_deleted_no_longer_counts() -> None:
    checklist = make_checklist([], APPROVALS[:1])
    veto = signoff("veto", role="engineering-lead", decision="reject", comment="no", deleting=True)
    assert evaluate(checklist, signoffs=[veto]).approvals[0].state == "Missing"
    pinned = signoff("ok", role="engineering-lead", deleting=True)
    assert evaluate(checklist, signoffs=[pinned]).approvals[0].state == "Missing"


def test_distinct_approvers_race_the_earliest_counts_and_the_other_is_refused() -> None:
    checklist = make_checklist([], APPROVALS)
    both = ["eng-leads", "devops-leads"]
    # Stored in the same second: signedAt, then the name, decides.
    a = signoff("a-devops", role="devops-lead", user="alice", groups=both, created=0, minutes=0)
    b = signoff("b-eng", role="engineering-lead", user="alice", groups=both, created=0, minutes=0)
    for order in ([a, b], [b, a]):
        status = evaluate(checklist, signoffs=order)
        states = {x.role: x for x in status.approvals}
        assert states["devops-lead"].state == "Approved"
        assert states["engineering-lead"].state == "Missing"
        assert "not counted: ReleaseSignoff b-eng: alice already counts as devops-lead (ReleaseSignoff a-devops)" in (
            states["engineering-lead"].message
        )
        assert [r.name for r in status.refused_signoffs] == ["b-eng"]


def test_self_approval_and_a_signer_without_the_role_do_not_count() -> None:
    checklist = make_checklist([], APPROVALS[:1])
    own = signoff("own", role="engineering-lead", user="release-manager")
    status = evaluate(checklist, signoffs=[own])
    assert status.approvals[0].state == "Missing"
    assert status.refused_signoffs[0].reason == (
        "release-manager created the release and may not approve it (preventSelfApproval)"
    )
    outsider = signoff("x", role="engineering-lead", user="dev-1", groups=["developers"])
    assert evaluate(checklist, signoffs=[outsider]).refused_signoffs[0].reason == (
        "dev-1 did not hold role engineering-lead when signing"
    )


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
        make_checklist(WORKLOAD_ONLY),
        snapshot=snapshot(stored_deployment(containers=[good_container(image="reg/api:3.2.1")])),
    ).candidate
    assert a.fingerprint.startswith("sha256:")
    assert a.fingerprint != b.fingerprint
    assert b.workloads[0].images[0].image == "reg/api:3.2.1"


def test_fingerprint_follows_the_pod_template_but_not_its_environment_fields() -> None:
    base = evaluate(make_checklist(WORKLOAD_ONLY)).candidate
    privileged = good_container()
    privileged["securityContext"]["privileged"] = True
    changed = evaluate(
        make_checklist(WORKLOAD_ONLY), snapshot=snapshot(stored_deployment(containers=[privileged]))
    ).candidate
    restart = {"kubectl.kubernetes.io/restartedAt": "now"}
    restarted = evaluate(
        make_checklist(WORKLOAD_ONLY), snapshot=snapshot(stored_deployment(template_annotations=restart))
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


def test_signoffs_of_another_release_object_with_the_same_name_do_not_count() -> None:
    """A release deleted and re-created with the same name is a new object: its predecessor's signoffs (and
    signoffs from before releaseUID was stamped) are listed as not counted, with the reason."""
    checklist = make_checklist([ATTEST], APPROVALS)
    fp = evaluate(checklist).candidate.fingerprint
    old = signoff("old", role="devops-lead", user="ops-1", fingerprint=fp, items=[{"id": "runbooks"}])
    old.spec.release_uid = "uid-deleted"
    unstamped = signoff("unstamped", role="engineering-lead", user="eng-1", fingerprint=fp)
    unstamped.spec.release_uid = None
    status = evaluate(checklist, signoffs=[old, unstamped])
    assert [a.state for a in status.approvals] == ["Missing", "Missing"]
    assert status.items[0].state == "Pending"
    reasons = {r.name: r.reason for r in status.refused_signoffs}
    assert reasons == {
        "old": "signed for another ReleaseReadiness of the same name (uid uid-deleted, since deleted), not this one "
        "(uid uid-release); sign again",
        "unstamped": "no spec.releaseUID (signed before signoffs were bound to the release object, or without the "
        "webhook); sign again",
    }
    assert "not counted: ReleaseSignoff old: signed for another ReleaseReadiness" in status.approvals[1].message
    no_uid = make_release()
    no_uid.metadata.uid = None
    bound = signoff("d", role="devops-lead", user="ops-1", fingerprint=fp)
    assert evaluate(checklist, release=no_uid, signoffs=[bound]).approvals[1].state == "Missing"


def test_a_missing_fingerprint_never_matches() -> None:
    """Finding 6: an approval stamped while the candidate was not inspected does not count for the candidate
    inspected later (Stale, saying why); and with no candidate inspected now, no approval counts."""
    checklist = make_checklist([], APPROVALS[:1])
    early = evaluate(checklist, signoffs=[signoff("e", role="engineering-lead", fingerprint=None)])
    assert early.approvals[0].state == "Stale"
    assert early.approvals[0].message == (
        "signed while the candidate was not inspected (no fingerprint), so it does not say what it approves; sign again"
    )
    empty = snapshot()
    empty.workloads = []
    nothing = evaluate(checklist, snapshot=empty, signoffs=[signoff("e", role="engineering-lead", fingerprint=None)])
    assert nothing.candidate.fingerprint == ""
    assert nothing.approvals[0].state == "Stale"
    assert nothing.approvals[0].message.startswith("the candidate is not inspected now")


def test_evidence_and_attestations_count_only_for_the_candidate_they_were_recorded_for() -> None:
    """Finding 9: after the candidate changes, CI's evidence (about the build it tested) and a person's attestation
    show Pending, saying why, until recorded again; recorded for the current candidate they count."""
    checklist = make_checklist([COVERAGE, ATTEST], APPROVALS)
    ci = signoff("ci", items=[{"id": "unit-test-coverage", "value": "91"}], user=CI, groups=CI_GROUPS)
    ops = signoff("ops", items=[{"id": "runbooks"}], user="ops-1", groups=["devops-leads"])
    status = evaluate(checklist, signoffs=[ci, ops])
    assert [(i.state, i.message) for i in status.items] == [
        ("Passed", f"unit-test-coverage: 91 >= 80 (attested by {CI})"),
        ("Passed", "attested by ops-1"),
    ]
    c = good_container(image="registry.example.com/payments/api:3.2.1")
    swapped = evaluate(checklist, snapshot=snapshot(stored_deployment(containers=[c])), signoffs=[ci, ops])
    assert [(i.state, i.message) for i in swapped.items] == [
        (
            "Pending",
            f"coverage-percent 91 was recorded by {CI} but does not count: recorded for an older candidate (its "
            "images or pod template changed since); record it again",
        ),
        (
            "Pending",
            "attested by ops-1 but does not count: attested for an older candidate (its images or pod template "
            "changed since); attest it again",
        ),
    ]
    assert conditions(swapped)["ChecksPassed"][0] == "False"
    early = signoff("early", items=[{"id": "unit-test-coverage", "value": "91"}], user=CI, groups=CI_GROUPS,
                    fingerprint=None)  # fmt: skip
    assert "signed while the candidate was not inspected" in evaluate(checklist, signoffs=[early]).items[0].message


def test_signoffs_the_operator_cannot_read_are_listed_as_not_counted() -> None:
    status = evaluate(make_checklist([]), unreadable_signoffs={"sec-ok": "spec.decision: Input should be 'approve'"})
    assert [(r.name, r.reason) for r in status.refused_signoffs] == [
        ("sec-ok", "the operator cannot read it (spec.decision: Input should be 'approve'); delete it and sign again")
    ]


def test_a_release_the_operator_cannot_read_is_not_ready_and_stalled_with_why() -> None:
    from release_readiness.evaluation import invalid_release_status, status_changed

    status = invalid_release_status("spec.version: too short", 3, None, NOW)
    got = conditions(status)
    assert got["Ready"][0] == got["ChecksPassed"][0] == got["Approved"][0] == "False"
    assert got["Stalled"] == ("True", "InvalidSpec")
    assert all(c.observed_generation == 3 for c in status.conditions)
    stalled = status.condition("Stalled")
    assert stalled is not None
    assert "cannot read this ReleaseReadiness (spec.version: too short)" in stalled.message
    # Written once: the same answer later changes nothing.
    again = invalid_release_status("spec.version: too short", 3, status, NOW + dt.timedelta(minutes=5))
    assert not status_changed(status, again)


def test_outstanding_is_data_failed_items_first_and_stale_approvals_known_by_state() -> None:
    from release_readiness.api import ReleaseStatus
    from release_readiness.evaluation import outstanding

    checklist = make_checklist(
        [
            {"id": "a", "section": "S", "title": "a", "check": {"workload": "resourceLimits"}},
            {"id": "b", "section": "S", "title": "b", "check": {"workload": "resourceLimits"}},
            {"id": "c", "section": "S", "title": "c", "required": False, "check": {"workload": "resourceLimits"}},
        ],
        [{"role": "security-lead", "users": ["sasha"]}, {"role": "product-owner", "users": ["pat"]}],
    )
    status = ReleaseStatus.model_validate(
        {
            "items": [
                {"id": "a", "state": "Pending", "message": "waiting"},
                {"id": "b", "state": "Failed", "message": "no limits"},
                {"id": "c", "state": "Failed", "message": "optional"},
            ],
            "approvals": [
                {"role": "security-lead", "state": "Stale"},
                {"role": "product-owner", "state": "Approved"},
            ],
        }
    )
    missing = outstanding(status, checklist)
    assert [s.id for s in missing.items] == ["b", "a"]
    assert missing.item_texts == ["b (Failed: no limits)", "a (Pending: waiting)"]
    assert [a.role for a in missing.approvals] == ["security-lead"]
    assert missing.approval_texts == ["security-lead (Stale)"]
    assert missing.stale


def test_a_candidate_too_large_to_record_stalls_the_release_instead_of_freezing_its_status() -> None:
    """Red-team 3 finding 4: two Deployments with a 1 MB image string each made the status too large to store;
    every write failed and the last status written (Ready) stayed, vetoes signed later never reaching the gate.
    Now the candidate is not recorded (no fingerprint, no template for the gate) and the release is Stalled."""
    from release_readiness.evaluation import MAX_CANDIDATE_BYTES

    huge = "registry.example.com/payments/api:" + "x" * (MAX_CANDIDATE_BYTES // 2)
    workloads = [stored_deployment(f"api-{i}", containers=[good_container(image=huge)]) for i in range(3)]
    status = evaluate(make_checklist(WORKLOAD_ONLY), snapshot=snapshot(*workloads))
    assert conditions(status)["Ready"] == ("False", "CandidateTooLarge")
    assert conditions(status)["Stalled"] == ("True", "CandidateTooLarge")
    assert status.candidate.workloads == []
    assert status.candidate.fingerprint == ""
    assert len(json.dumps(status.to_dict())) < 2 * MAX_CANDIDATE_BYTES
    stalled = next(c for c in status.conditions if c.type == "Stalled")
    assert "3 workload(s) with 3 image reference(s), the longest 131,106 characters" in stalled.message
    # A candidate of ordinary size is recorded as before.
    assert evaluate(
        make_checklist(WORKLOAD_ONLY), snapshot=snapshot(stored_deployment())
    ).candidate.fingerprint.startswith("sha256:")
