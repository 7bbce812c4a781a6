"""Admission of ReleaseSignoffs and release creators: pure functions over the request and the index.

A sign-off is worth what its signer's identity is worth: the signer is stamped from the request's
authenticated user, checked against the checklist's roles, and bound to the candidate's fingerprint.
Every refusal says who the caller is, what they tried, and who may do it instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from release_readiness import API_VERSION, CREATED_BY
from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.tally import holds_role, who_may

__all__ = [
    "CREATED_BY",
    "Caller",
    "candidate_access_errors",
    "creator_patch",
    "needs_access_review",
    "stamp_signoff",
    "validate_release_update",
    "validate_signoff",
]


@dataclass(frozen=True)
class Caller:
    username: str
    groups: tuple[str, ...] = ()

    @staticmethod
    def from_userinfo(userinfo: Any) -> Caller:
        info = dict(userinfo or {})
        return Caller(str(info.get("username", "")), tuple(info.get("groups") or ()))

    def __str__(self) -> str:
        groups = ", ".join(g for g in self.groups if g != "system:authenticated") or "none"
        return f"user {self.username} (groups: {groups})"


@dataclass
class Patch:
    """What a mutating webhook changes: dotted paths to values (applied by the Kopf handler)."""

    spec: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    owner_references: list[dict[str, Any]] = field(default_factory=list)


def stamp_signoff(
    signoff: ReleaseSignoff,
    caller: Caller,
    release: ReleaseReadiness | None,
    now: dt.datetime,
    waivers: str = "",
    checklist: ReadinessChecklist | None = None,
) -> Patch:
    """Stamp the signer, the time, the candidate fingerprint and the waiver fingerprint (`waivers`, the counted
    waivers the signer saw); own the signoff by its release.

    A signer the client set is kept (so validation can refuse it when it is not the caller);
    the groups always come from the request: those the release's checklist names (the ones that gave the
    right to sign; a person in hundreds of groups does not make every signoff, and the operator, bigger).
    """
    patch = Patch()
    username = signoff.spec.signer.username if signoff.spec.signer else caller.username
    named = checklist.named_groups() if checklist is not None else None
    groups = [g for g in caller.groups if named is None or g in named]
    patch.spec["signer"] = {"username": username, "groups": groups}
    # Microseconds: a veto and its signer's later approval within one second stay in order.
    patch.spec["signedAt"] = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    fingerprint = (
        release.status.candidate.fingerprint if release and release.status and release.status.candidate else ""
    )
    patch.spec["candidateFingerprint"] = fingerprint or None
    # The release object, not its name: a release deleted and re-created with the same name is another release.
    # A client-set value is kept so validation can refuse it when it is not this release's uid.
    patch.spec["releaseUID"] = signoff.spec.release_uid or (release.metadata.uid if release is not None else None)
    approving = signoff.spec.decision == "approve" and signoff.spec.role is not None
    patch.spec["waiverFingerprint"] = (waivers or None) if approving else None
    if release is not None and release.metadata.uid:
        patch.owner_references.append(
            {
                "apiVersion": API_VERSION,
                "kind": "ReleaseReadiness",
                "name": release.metadata.name,
                "uid": release.metadata.uid,
                "blockOwnerDeletion": False,
            }
        )
    return patch


def creator_patch(caller: Caller) -> Patch:
    return Patch(annotations={CREATED_BY: caller.username})


def validate_release_update(old: ReleaseReadiness | None, new: ReleaseReadiness, caller: Caller) -> list[str]:
    """The creator annotation is set once at creation and never changed."""
    if old is None:
        return []
    before = old.metadata.annotations.get(CREATED_BY)
    after = new.metadata.annotations.get(CREATED_BY)
    if before != after:
        return [
            f"ReleaseReadiness {new.metadata.namespace}/{new.metadata.name}: {caller} tried to change annotation "
            f"{CREATED_BY} from {before!r} to {after!r}; it records who created the release and cannot change"
        ]
    return []


def needs_access_review(release: ReleaseReadiness, checklist: ReadinessChecklist | None) -> bool:
    """Whether the creator's right to look at the candidate namespace must be checked (not allow-listed)."""
    allowed = checklist.spec.rules.candidate_namespaces if checklist else []
    return release.spec.candidate.namespace not in allowed


def candidate_access_errors(release: ReleaseReadiness, caller: Caller, allowed: bool | None, reason: str) -> list[str]:
    """A release reports what runs in its candidate namespace, so its creator must be able to list Deployments
    there. `allowed`: the SubjectAccessReview's answer, None when it could not be made (refused: fail closed)."""
    if allowed:
        return []
    name = f"ReleaseReadiness {release.metadata.namespace}/{release.metadata.name}"
    ns = release.spec.candidate.namespace
    if allowed is None:
        return [
            f"{name}: could not check whether {caller} may list Deployments in {ns} (spec.candidate.namespace): "
            f"{reason or 'no answer'}; retry, and if it persists ask a platform admin"
        ]
    because = f" ({reason})" if reason else ""
    return [
        f"{name}: {caller} may not list Deployments in namespace {ns}{because}, so may not create a release that "
        f"inspects it (spec.candidate.namespace). Point it at a namespace you can read, ask for read access to "
        f"{ns}, or ask a platform admin to add {ns} to the checklist's spec.rules.candidateNamespaces"
    ]


def _role_holders(checklist: ReadinessChecklist, roles: Sequence[str]) -> str:
    parts = []
    for role in roles:
        approval = checklist.approval(role)
        parts.append(f"{role} ({who_may(approval)})" if approval else role)
    return "; ".join(parts)


def validate_signoff(
    new: ReleaseSignoff,
    old: ReleaseSignoff | None,
    caller: Caller,
    release: ReleaseReadiness | None,
    checklist: ReadinessChecklist | None,
    others: Sequence[ReleaseSignoff],
    now: dt.datetime | None = None,
    limit: int = 200,
    per_signer: int = 20,
) -> list[str]:
    """Errors refusing the signoff; empty when it may be stored. `others`: this release's other signoffs;
    `limit`: how many live signoffs a release may have (a veto is accepted beyond it: it must always be
    recordable); `per_signer`: how many one person may have on it (so one role holder cannot fill the quota)."""
    now = now or dt.datetime.now(dt.UTC)
    name = f"ReleaseSignoff {new.metadata.namespace}/{new.metadata.name}"
    spec = new.spec
    if old is not None:
        if old.spec.to_dict() != spec.to_dict():
            return [
                f"{name}: {caller} tried to change spec; signoffs are immutable. Delete it to revoke "
                "(kubectl delete releasesignoff ...) and create a new one"
            ]
        return []
    errors = _quota_errors(name, new, caller, others, limit, per_signer)
    if errors:
        return errors
    if spec.signer is None or spec.signer.username != caller.username:
        claimed = spec.signer.username if spec.signer else "nobody"
        errors.append(
            f"{name}: {caller} tried to sign as {claimed!r} (spec.signer); the signer is always the "
            "authenticated caller: remove spec.signer and the webhook records you"
        )
        return errors
    if release is None:
        return [
            f"{name}: {caller} tried to sign release {spec.release!r} (spec.release), which does not exist in "
            f"namespace {new.metadata.namespace}; sign an existing ReleaseReadiness there (kubectl get rr -n "
            f"{new.metadata.namespace})"
        ]
    unbound = _binding_errors(name, new, caller, release)
    if unbound:
        return unbound
    if checklist is None:
        return [
            f"{name}: release {spec.release} follows checklist {release.spec.checklist!r}, which does not exist; "
            "a platform engineer must create it before anyone can sign"
        ]
    rules = checklist.spec.rules
    if spec.role is not None:
        approval = checklist.approval(spec.role)
        if approval is None:
            roles = ", ".join(a.role for a in checklist.spec.approvals) or "none"
            errors.append(
                f"{name}: {caller} tried to sign as role {spec.role!r} (spec.role), which checklist "
                f"{checklist.metadata.name} does not define; its roles are: {roles}"
            )
        elif not holds_role(approval, caller.username, caller.groups):
            errors.append(
                f"{name}: {caller} tried to {spec.decision} as {spec.role} but does not hold that role; "
                f"it may be signed by {who_may(approval)}"
            )
        elif spec.decision == "approve":
            if rules.distinct_approvers:
                for other in others:
                    signer = other.spec.signer.username if other.spec.signer else None
                    if (
                        signer == caller.username
                        and other.spec.decision == "approve"
                        and other.spec.role not in (None, spec.role)
                        and other.metadata.deletion_timestamp is None
                    ):
                        errors.append(
                            f"{name}: {caller} already signed release {spec.release} as {other.spec.role} "
                            f"(ReleaseSignoff {other.metadata.name}); distinctApprovers allows one role per person, "
                            f"so {spec.role} must be signed by another of {who_may(approval)}"
                        )
                        break
            creator = release.metadata.annotations.get(CREATED_BY)
            if rules.prevent_self_approval and creator == caller.username:
                errors.append(
                    f"{name}: {caller} created release {spec.release} and may not approve it "
                    f"(preventSelfApproval); {spec.role} must be signed by another of {who_may(approval)}"
                )
    if spec.decision == "waive":
        return errors + _waiver_errors(name, new, caller, checklist, now)
    return errors + _item_errors(name, new, caller, checklist)


def _item_errors(name: str, new: ReleaseSignoff, caller: Caller, checklist: ReadinessChecklist) -> list[str]:
    """Attested items: known, attestable by a person (not checked by the operator), by whom the checklist names."""
    errors: list[str] = []
    for index, entry in enumerate(new.spec.items):
        at = f"spec.items[{index}]"
        item = checklist.item(entry.id)
        if item is None:
            errors.append(
                f"{name}: {caller} tried to attest {entry.id!r} ({at}.id), which is not an item of checklist "
                f"{checklist.metadata.name}; use an id from its spec.items"
            )
            continue
        check = item.check
        if check.workload is not None or check.prometheus is not None or check.cel is not None:
            how = (
                f"workload check {check.workload}"
                if check.workload
                else "CEL rules"
                if check.cel
                else "a Prometheus query"
            )
            errors.append(
                f"{name}: {caller} tried to attest {entry.id!r} ({at}), which the operator checks itself ({how}); "
                "fix the cluster, or have a waiving role waive it (kubectl readiness waive)"
            )
        elif check.evidence is not None and not check.evidence.recorded_by.include(caller.username, caller.groups):
            errors.append(
                f"{name}: {caller} tried to record evidence {entry.id!r} ({at}); checklist "
                f"{checklist.metadata.name} takes {check.evidence.key} only from {check.evidence.recorded_by} "
                "(check.evidence.recordedBy): let CI record it"
            )
        elif check.evidence is not None and entry.value is None:
            errors.append(
                f"{name}: {caller} attested {entry.id!r} ({at}) without a value; it needs "
                f"{at}.value with the measured {check.evidence.key}"
            )
        elif check.attestation is not None:
            holders = [checklist.approval(r) for r in check.attestation.roles]
            if not any(a is not None and holds_role(a, caller.username, caller.groups) for a in holders):
                errors.append(
                    f"{name}: {caller} tried to attest {entry.id!r} ({at}) but holds none of its roles; it may be "
                    f"attested by {_role_holders(checklist, check.attestation.roles)}"
                )
    return errors


def _quota_errors(
    name: str, new: ReleaseSignoff, caller: Caller, others: Sequence[ReleaseSignoff], limit: int, per_signer: int
) -> list[str]:
    """Live signoffs per signer and per release are bounded (the operator keeps them in memory); a veto is
    accepted beyond the release's limit, so filling the release's quota can never silence a veto."""
    spec, ns = new.spec, new.metadata.namespace
    live = [o for o in others if o.metadata.deletion_timestamp is None]
    mine = [o for o in live if o.spec.signer is not None and o.spec.signer.username == caller.username]
    if len(mine) >= per_signer:
        return [
            f"{name}: {caller} already has {len(mine)} live signoffs on release {spec.release}, the limit per signer "
            f"({per_signer}); delete your own that no longer matter (kubectl readiness withdraw {spec.release} "
            f"--role ROLE --all -n {ns}, or kubectl delete rso NAME -n {ns})"
        ]
    if len(live) >= limit and spec.decision != "reject":
        return [
            f"{name}: release {spec.release} already has {len(live)} signoffs, the limit per release ({limit}); "
            f"delete signoffs that no longer matter (kubectl get rso -n {ns}) or ask a platform admin (a veto, "
            "decision: reject, is still accepted)"
        ]
    return []


def _binding_errors(name: str, new: ReleaseSignoff, caller: Caller, release: ReleaseReadiness) -> list[str]:
    """The signoff is bound to this release object (its uid, stamped by the webhook), and an approval or attestation
    to an inspected candidate (its fingerprint, stamped too): one signed before the candidate was seen would
    otherwise approve whatever is deployed later. A veto or a waiver needs no candidate."""
    spec = new.spec
    uid = release.metadata.uid
    if not uid:
        return [
            f"{name}: release {spec.release} is not fully known to release-readiness yet (no metadata.uid in its "
            "index); retry in a moment"
        ]
    if spec.release_uid != uid:
        return [
            f"{name}: {caller} tried to sign release {spec.release} with spec.releaseUID {spec.release_uid!r}, but "
            f"ReleaseReadiness {new.metadata.namespace}/{spec.release} is uid {uid}. The webhook records the uid of "
            "the release signed, so a signoff never counts for another object of the same name: remove "
            "spec.releaseUID and sign again"
        ]
    if spec.expected_fingerprint is not None and spec.expected_fingerprint != spec.candidate_fingerprint:
        now = spec.candidate_fingerprint or "none (the candidate is not inspected)"
        return [
            f"{name}: {caller} signed for candidate {spec.expected_fingerprint} (spec.expectedFingerprint), but the "
            f"candidate of release {spec.release} is now {now}: it changed since you reviewed it. Look again "
            f"(kubectl readiness status {spec.release} -n {new.metadata.namespace}) and sign for what it shows"
        ]
    if spec.decision == "approve" and not spec.candidate_fingerprint:
        what = f"approve as {spec.role}" if spec.role else "attest " + ", ".join(i.id for i in spec.items)
        return [
            f"{name}: {caller} tried to {what} on release {spec.release}, but its candidate was not inspected yet "
            f"(status.candidate.fingerprint is empty: no workload in namespace {release.spec.candidate.namespace} "
            "matches the candidate selector, or the release is not evaluated yet), so the sign-off would not say "
            f"what it approves. Sign once `kubectl readiness status {spec.release} -n {new.metadata.namespace}` "
            "shows the candidate"
        ]
    return []


def _waiver_errors(
    name: str, new: ReleaseSignoff, caller: Caller, checklist: ReadinessChecklist, now: dt.datetime
) -> list[str]:
    """A waiver names known items its role may waive, and expires in the future within maxWaiverDays."""
    spec = new.spec
    rules = checklist.spec.rules
    errors = []
    for index, entry in enumerate(spec.items):
        at = f"spec.items[{index}]"
        if checklist.item(entry.id) is None:
            errors.append(
                f"{name}: {caller} tried to waive {entry.id!r} ({at}.id), which is not an item of checklist "
                f"{checklist.metadata.name}; use an id from its spec.items"
            )
            continue
        roles = rules.waiver_roles(entry.id)
        if spec.role not in roles:
            who = _role_holders(checklist, roles) if roles else "nobody (checklist spec.rules.waivers grants no role)"
            errors.append(
                f"{name}: {caller} tried to waive {entry.id!r} ({at}) as {spec.role}, which may not waive it; "
                f"it may be waived by {who}"
            )
    limit = now + dt.timedelta(days=rules.max_waiver_days)
    if spec.expires is not None and spec.expires <= now:
        errors.append(f"{name}: spec.expires {spec.expires:%Y-%m-%dT%H:%M:%SZ} is in the past; set a future time")
    elif spec.expires is not None and spec.expires > limit:
        errors.append(
            f"{name}: spec.expires {spec.expires:%Y-%m-%dT%H:%M:%SZ} is more than maxWaiverDays "
            f"({rules.max_waiver_days}) away; set it no later than {limit:%Y-%m-%dT%H:%M:%SZ}"
        )
    return errors
