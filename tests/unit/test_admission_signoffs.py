"""Admission decisions on signoffs, waivers, release creators, status writers and the gate label (pure functions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from release_readiness import CREATED_BY
from release_readiness.admission.authority import (
    Authority,
    validate_gate_label_change,
    validate_signoff_change,
    validate_status_write,
)
from release_readiness.admission.signoffs import (
    Caller,
    candidate_access_errors,
    needs_access_review,
    stamp_signoff,
    validate_signoff,
)
from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness_dev.builders import CI_ONLY, NOW

CHECKLIST = ReadinessChecklist.model_validate(
    {
        "metadata": {"name": "demo"},
        "spec": {
            "items": [
                {"id": "limits", "section": "S", "title": "T", "check": {"workload": "resourceLimits"}},
                {"id": "latency", "section": "S", "title": "T", "check": {"workload": "replicas"}},
                {"id": "tz", "section": "S", "title": "T", "check": {"cel": {"rules": [{"expression": "true"}]}}},
                {
                    "id": "coverage",
                    "section": "S",
                    "title": "T",
                    "check": {"evidence": {"key": "coverage-percent", "min": 80, "recordedBy": CI_ONLY}},
                },
            ],
            "approvals": [
                {"role": "engineering-lead", "groups": ["eng-leads"]},
                {"role": "vp-engineering", "groups": ["vps"]},
            ],
            "rules": {
                "maxWaiverDays": 7,
                "waivers": [{"roles": ["vp-engineering"]}, {"roles": ["engineering-lead"], "items": ["latency"]}],
                "candidateNamespaces": ["shared-staging"],
            },
        },
    }
)
RELEASE = ReleaseReadiness.model_validate(
    {
        "metadata": {"name": "r", "namespace": "prod", "uid": "uid-r", "annotations": {CREATED_BY: "rm"}},
        "spec": {"application": "a", "version": "1", "checklist": "demo", "candidate": {"namespace": "staging"}},
        "status": {"candidate": {"fingerprint": "sha256:images"}},
    }
)
VP = Caller("vp-1", ("vps", "system:authenticated"))
ENG = Caller("eng-1", ("eng-leads",))
DEV = Caller("dev-1", ("developers",))
CI = Caller("system:serviceaccount:ci:bot", ("system:serviceaccounts", "system:serviceaccounts:ci"))
ADMINS = Authority(admin_groups=("platform-admins",), operator="system:serviceaccount:rr:operator")


def signoff(caller: Caller, name: str = "s", **spec: Any) -> ReleaseSignoff:
    return ReleaseSignoff.model_validate(
        {
            "metadata": {"name": name, "namespace": "prod"},
            "spec": {
                "release": "r",
                "releaseUID": "uid-r",
                "candidateFingerprint": "sha256:images",
                "signer": {"username": caller.username, "groups": list(caller.groups)},
                **spec,
            },
        }
    )


def check(
    caller: Caller, others: list[ReleaseSignoff] | None = None, limit: int = 200, per_signer: int = 20, **spec: Any
) -> list[str]:
    new = signoff(caller, **spec)
    return validate_signoff(new, None, caller, RELEASE, CHECKLIST, others or [], NOW, limit, per_signer)


def waive(caller: Caller, role: str, items: list[str], days: float = 3) -> list[str]:
    expires = (NOW + dt.timedelta(days=days)).isoformat()
    return check(caller, role=role, decision="waive", items=[{"id": i} for i in items], comment="why", expires=expires)


def test_a_waiving_role_may_waive_within_max_waiver_days() -> None:
    assert waive(VP, "vp-engineering", ["limits", "latency"]) == []
    assert waive(ENG, "engineering-lead", ["latency"]) == []


def test_a_waiver_outside_the_grant_names_who_may() -> None:
    assert waive(ENG, "engineering-lead", ["limits"]) == [
        "ReleaseSignoff prod/s: user eng-1 (groups: eng-leads) tried to waive 'limits' (spec.items[0]) as "
        "engineering-lead, which may not waive it; it may be waived by vp-engineering (groups vps)"
    ]
    assert waive(DEV, "vp-engineering", ["limits"]) == [
        "ReleaseSignoff prod/s: user dev-1 (groups: developers) tried to waive as vp-engineering but does not hold "
        "that role; it may be signed by groups vps"
    ]


def test_a_waiver_too_long_or_already_expired_is_refused() -> None:
    assert waive(VP, "vp-engineering", ["limits"], days=30) == [
        "ReleaseSignoff prod/s: spec.expires 2026-12-27T12:00:00Z is more than maxWaiverDays (7) away; set it no "
        "later than 2026-12-04T12:00:00Z"
    ]
    assert "is in the past" in waive(VP, "vp-engineering", ["limits"], days=-1)[0]


def test_evidence_only_from_the_identities_the_checklist_names() -> None:
    assert check(CI, items=[{"id": "coverage", "value": "61"}]) == []
    assert check(DEV, items=[{"id": "coverage", "value": "95"}]) == [
        "ReleaseSignoff prod/s: user dev-1 (groups: developers) tried to record evidence 'coverage' (spec.items[0]); "
        "checklist demo takes coverage-percent only from groups system:serviceaccounts:ci (check.evidence.recordedBy): "
        "let CI record it"
    ]


def test_live_signoffs_per_release_are_limited() -> None:
    others = [signoff(CI, name=f"o{i}", items=[{"id": "coverage", "value": "1"}]) for i in range(3)]
    assert check(CI, others, limit=4, items=[{"id": "coverage", "value": "90"}]) == []
    assert check(CI, others, limit=3, items=[{"id": "coverage", "value": "90"}]) == [
        "ReleaseSignoff prod/s: release r already has 3 signoffs, the limit per release (3); delete signoffs that no "
        "longer matter (kubectl get rso -n prod) or ask a platform admin (a veto, decision: reject, is still "
        "accepted)"
    ]


def test_one_signer_cannot_fill_the_quota_and_a_veto_is_always_recordable() -> None:
    """Finding 5: live signoffs per signer are capped; at the release's limit a veto is still accepted."""
    mine = [signoff(ENG, name=f"e{i}", role="engineering-lead") for i in range(3)]
    assert check(ENG, mine, per_signer=4, role="engineering-lead") == []
    assert check(ENG, mine, per_signer=3, role="engineering-lead", decision="reject", comment="no") == [
        "ReleaseSignoff prod/s: user eng-1 (groups: eng-leads) already has 3 live signoffs on release r, the limit "
        "per signer (3); delete your own that no longer matter (kubectl readiness withdraw r --role ROLE --all -n "
        "prod, or kubectl delete rso NAME -n prod)"
    ]
    assert check(VP, mine, per_signer=3, role="vp-engineering") == []  # others are not limited by ENG's signoffs
    full = mine + [signoff(CI, name=f"c{i}", items=[{"id": "coverage", "value": "1"}]) for i in range(3)]
    assert "the limit per release (6)" in check(VP, full, limit=6, role="vp-engineering")[0]
    assert check(VP, full, limit=6, role="vp-engineering", decision="reject", comment="not this week") == []


def test_a_veto_is_never_refused_for_distinct_approvers() -> None:
    both = Caller("alice", ("eng-leads", "vps"))
    approved = signoff(both, name="first", role="vp-engineering")
    assert check(both, [approved], role="engineering-lead", decision="reject", comment="no") == []
    assert "distinctApprovers allows one role per person" in check(both, [approved], role="engineering-lead")[0]


def test_stamping_binds_approvals_to_the_candidate_and_the_waivers() -> None:
    approval = stamp_signoff(signoff(ENG, role="engineering-lead"), ENG, RELEASE, NOW, "sha256:waivers")
    assert approval.spec["candidateFingerprint"] == "sha256:images"
    assert approval.spec["waiverFingerprint"] == "sha256:waivers"
    assert approval.spec["signedAt"] == "2026-11-27T12:00:00.000000Z"
    evidence = stamp_signoff(signoff(CI, items=[{"id": "coverage", "value": "1"}]), CI, RELEASE, NOW, "sha256:w")
    assert evidence.spec["waiverFingerprint"] is None


def body(signer: str, **metadata: Any) -> dict[str, Any]:
    return {"metadata": {"name": "s", "namespace": "prod", **metadata}, "spec": {"signer": {"username": signer}}}


def test_only_the_signer_a_platform_admin_or_a_cleaning_controller_deletes_a_signoff() -> None:
    old = body("eng-1")
    assert validate_signoff_change("DELETE", old, None, ENG, ADMINS) == []
    assert validate_signoff_change("DELETE", old, None, Caller("boss", ("platform-admins",)), ADMINS) == []
    for controller in (
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "system:serviceaccount:kube-system:namespace-controller",
    ):
        assert validate_signoff_change("DELETE", old, None, Caller(controller), ADMINS) == []
    assert validate_signoff_change("DELETE", old, None, DEV, ADMINS) == [
        "ReleaseSignoff prod/s: user dev-1 (groups: developers) tried to delete a signoff signed by eng-1; only its "
        "signer or a platform admin (groups: platform-admins) may delete it (a veto holds until its signer "
        "withdraws it)"
    ]


def test_nobody_else_pins_or_relabels_a_signoff() -> None:
    old = body("eng-1")
    pinned = body("eng-1", finalizers=["example.com/pin"])
    assert "tried to change metadata.finalizers" in validate_signoff_change("UPDATE", old, pinned, DEV, ADMINS)[0]
    assert validate_signoff_change("UPDATE", old, pinned, ENG, ADMINS) == []
    relabelled = body("eng-1", labels={"x": "y"}, annotations={"a": "b"})
    assert "metadata.labels, metadata.annotations" in validate_signoff_change("UPDATE", old, relabelled, DEV, ADMINS)[0]
    untouched = body("eng-1", resourceVersion="9")
    assert validate_signoff_change("UPDATE", old, untouched, DEV, ADMINS) == []


def test_only_the_operator_writes_status() -> None:
    operator = Caller("system:serviceaccount:rr:operator")
    assert validate_status_write("ReleaseReadiness prod/r", operator, ADMINS) == []
    assert validate_status_write("ReleaseReadiness prod/r", Caller("boss", ("platform-admins",)), ADMINS) == [
        "ReleaseReadiness prod/r: user boss (groups: platform-admins) tried to write status; only the "
        "release-readiness operator (system:serviceaccount:rr:operator) writes it. Sign, attest or waive with a "
        "ReleaseSignoff instead (kubectl readiness ...)"
    ]
    assert "has not learned its own identity yet" in validate_status_write("x", operator, Authority())[0]


def namespace(gate: str | None) -> dict[str, Any]:
    return {"metadata": {"name": "payments-prod", "labels": {"readiness.dev/gate": gate} if gate else {}}}


def test_only_platform_admins_change_the_gate_label() -> None:
    boss = Caller("boss", ("platform-admins",))
    masters = Caller("root", ("system:masters",))
    for before, after in (("enforce", None), ("enforce", "audit"), (None, "warn")):
        assert validate_gate_label_change(namespace(before), namespace(after), boss, ADMINS) == []
        assert validate_gate_label_change(namespace(before), namespace(after), masters, ADMINS) == []
        refused = validate_gate_label_change(namespace(before), namespace(after), DEV, ADMINS)
        assert refused == [
            f"Namespace payments-prod: user dev-1 (groups: developers) tried to change label readiness.dev/gate from "
            f"{before or '(unset)'} to {after or '(unset)'}; only platform admins (groups: platform-admins) may, "
            "because it decides whether rollouts in the namespace are judged. Ask a platform admin"
        ]
    assert validate_gate_label_change(namespace("enforce"), namespace("enforce"), DEV, ADMINS) == []


def test_a_release_may_only_look_where_its_creator_may_look() -> None:
    assert needs_access_review(RELEASE, CHECKLIST)
    shared = RELEASE.model_copy(deep=True)
    shared.spec.candidate.namespace = "shared-staging"
    assert not needs_access_review(shared, CHECKLIST)
    assert candidate_access_errors(RELEASE, DEV, True, "") == []
    assert candidate_access_errors(RELEASE, DEV, False, "") == [
        "ReleaseReadiness prod/r: user dev-1 (groups: developers) may not list Deployments in namespace staging, so "
        "may not create a release that inspects it (spec.candidate.namespace). Point it at a namespace you can read, "
        "ask for read access to staging, or ask a platform admin to add staging to the checklist's "
        "spec.rules.candidateNamespaces"
    ]
    assert "could not check whether user dev-1" in candidate_access_errors(RELEASE, DEV, None, "timeout")[0]


def test_only_the_groups_the_checklist_names_are_stamped() -> None:
    many = Caller("eng-1", ("eng-leads", *(f"team-{i}" for i in range(300)), "system:serviceaccounts:ci"))
    stamped = stamp_signoff(signoff(ENG, role="engineering-lead"), many, RELEASE, NOW, "", CHECKLIST)
    assert stamped.spec["signer"] == {"username": "eng-1", "groups": ["eng-leads", "system:serviceaccounts:ci"]}


def test_a_vetoed_release_is_deleted_only_by_a_platform_admin() -> None:
    from release_readiness.admission.authority import validate_release_delete

    vetoes = [("security-lead", "sasha", "veto-1")]
    assert validate_release_delete("ReleaseReadiness prod/r", vetoes, DEV, ADMINS) == [
        "ReleaseReadiness prod/r: user dev-1 (groups: developers) tried to delete a vetoed release (security-lead by "
        "sasha (ReleaseSignoff veto-1)); deleting it would delete the veto. The veto's signer withdraws it first "
        "(kubectl readiness withdraw), or a platform admin (groups: platform-admins) deletes the release"
    ]
    boss = Caller("boss", ("platform-admins",))
    assert validate_release_delete("ReleaseReadiness prod/r", vetoes, boss, ADMINS) == []
    assert validate_release_delete("ReleaseReadiness prod/r", [], DEV, ADMINS) == []


def test_a_signoff_is_bound_to_the_release_object_not_its_name() -> None:
    stamped = stamp_signoff(signoff(ENG, role="engineering-lead", releaseUID=None), ENG, RELEASE, NOW)
    assert stamped.spec["releaseUID"] == "uid-r"
    forged = signoff(ENG, role="engineering-lead", releaseUID="uid-of-a-deleted-release")
    assert stamp_signoff(forged, ENG, RELEASE, NOW).spec["releaseUID"] == "uid-of-a-deleted-release"  # kept: refused
    assert check(ENG, role="engineering-lead", releaseUID="uid-of-a-deleted-release") == [
        "ReleaseSignoff prod/s: user eng-1 (groups: eng-leads) tried to sign release r with spec.releaseUID "
        "'uid-of-a-deleted-release', but ReleaseReadiness prod/r is uid uid-r. The webhook records the uid of the "
        "release signed, so a signoff never counts for another object of the same name: remove spec.releaseUID and "
        "sign again"
    ]
    assert "spec.releaseUID None" in check(ENG, role="engineering-lead", releaseUID=None)[0]
    unknown = RELEASE.model_copy(deep=True)
    unknown.metadata.uid = None
    refused = validate_signoff(signoff(ENG, role="engineering-lead"), None, ENG, unknown, CHECKLIST, [], NOW)
    assert refused == [
        "ReleaseSignoff prod/s: release r is not fully known to release-readiness yet (no metadata.uid in its index); "
        "retry in a moment"
    ]


def test_no_approval_or_attestation_before_the_candidate_is_inspected() -> None:
    """Finding 6: stamped while the release has no candidate fingerprint, an approval would approve any later
    candidate; refused, saying why. A veto and a waiver need no candidate."""
    uninspected = RELEASE.model_copy(deep=True)
    uninspected.status = None
    for spec, what in (
        ({"role": "engineering-lead"}, "approve as engineering-lead"),
        ({"items": [{"id": "coverage", "value": "90"}]}, "attest coverage"),
    ):
        stamped = stamp_signoff(signoff(ENG, **spec), ENG, uninspected, NOW)
        assert stamped.spec["candidateFingerprint"] is None
        caller = ENG if "role" in spec else CI
        new = signoff(caller, candidateFingerprint=None, **spec)
        assert validate_signoff(new, None, caller, uninspected, CHECKLIST, [], NOW) == [
            f"ReleaseSignoff prod/s: {caller} tried to {what} on release r, but its candidate was not inspected yet "
            "(status.candidate.fingerprint is empty: no workload in namespace staging matches the candidate selector, "
            "or the release is not evaluated yet), so the sign-off would not say what it approves. Sign once "
            "`kubectl readiness status r -n prod` shows the candidate"
        ]
    veto = signoff(ENG, candidateFingerprint=None, role="engineering-lead", decision="reject", comment="no")
    assert validate_signoff(veto, None, ENG, uninspected, CHECKLIST, [], NOW) == []
    expires = (NOW + dt.timedelta(days=1)).isoformat()
    waiver = signoff(
        VP, candidateFingerprint=None, role="vp-engineering", decision="waive", items=[{"id": "limits"}],
        comment="why", expires=expires,
    )  # fmt: skip
    assert validate_signoff(waiver, None, VP, uninspected, CHECKLIST, [], NOW) == []


def test_a_signer_says_which_candidate_they_reviewed() -> None:
    """Finding 10: spec.expectedFingerprint (client-set) is refused when the stamped candidate differs."""
    assert check(ENG, role="engineering-lead", expectedFingerprint="sha256:images") == []
    assert check(ENG, role="engineering-lead", expectedFingerprint="sha256:before") == [
        "ReleaseSignoff prod/s: user eng-1 (groups: eng-leads) signed for candidate sha256:before "
        "(spec.expectedFingerprint), but the candidate of release r is now sha256:images: it changed since you "
        "reviewed it. Look again (kubectl readiness status r -n prod) and sign for what it shows"
    ]
    vetoed = check(ENG, role="engineering-lead", decision="reject", comment="no", expectedFingerprint="sha256:x")
    assert "signed for candidate sha256:x (spec.expectedFingerprint)" in vetoed[0]  # asked for: honoured
    gone = check(ENG, role="engineering-lead", expectedFingerprint="sha256:images", candidateFingerprint=None)
    assert "but the candidate of release r is now none (the candidate is not inspected)" in gone[0]


def test_nobody_attests_a_cel_item_the_operator_checks_it() -> None:
    errors = check(VP, items=[{"id": "tz"}])
    assert len(errors) == 1
    assert "tried to attest 'tz' (spec.items[0]), which the operator checks itself (CEL rules)" in errors[0]
    assert waive(VP, "vp-engineering", ["tz"]) == []  # a waiving role may still waive it
