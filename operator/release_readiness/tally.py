"""Which stored signoffs count: the admission rules applied again when status is computed.

Admission refuses what breaks the rules, but two signoffs can race past it (each webhook call sees
the index before the other is stored), a checklist can change after signing, and a webhook can be
down or reconfigured. So evaluation counts signoffs in one deterministic order (creationTimestamp,
then signedAt, then name) and applies the same rules: the signer must hold the role (by the groups
stamped at signing), one person one role (distinctApprovers: the earliest counts), no approving one's
own release (preventSelfApproval), waivers only by the roles the checklist names and for at most
maxWaiverDays. A veto holds until its own signer withdraws it: by deleting it, or by approving the
same role later. Signoffs being deleted (deletionTimestamp set) no longer count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from release_readiness.api import ReadinessChecklist, ReleaseSignoff
from release_readiness.api.checklist import Approval
from release_readiness.api.release import RefusedSignoff
from release_readiness.api.signoff import LIMITS

__all__ = [
    "MAX_REFUSED_SHOWN",
    "Tally",
    "Waiver",
    "holds_role",
    "note",
    "order_key",
    "signed_at",
    "signer_of",
    "tally",
    "unbound_reason",
    "waiver_fingerprint",
    "who_may",
]

MAX_REFUSED_SHOWN = 50
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def holds_role(approval: Approval, username: str, groups: Sequence[str]) -> bool:
    return username in approval.users or any(g in approval.groups for g in groups)


def who_may(approval: Approval) -> str:
    parts = []
    if approval.groups:
        parts.append(f"groups {', '.join(approval.groups)}")
    if approval.users:
        parts.append(f"users {', '.join(approval.users)}")
    return " or ".join(parts) or "nobody (the checklist lists no groups or users for this role)"


def signed_at(s: ReleaseSignoff) -> dt.datetime:
    return s.spec.signed_at or s.metadata.creation_timestamp or _EPOCH


def order_key(s: ReleaseSignoff) -> tuple[dt.datetime, dt.datetime, str]:
    """The order signoffs count in: the API server's creationTimestamp, then the stamped signedAt, then name."""
    return (s.metadata.creation_timestamp or signed_at(s), signed_at(s), s.metadata.name)


def signer_of(s: ReleaseSignoff) -> str:
    return s.spec.signer.username if s.spec.signer else ""


@dataclass(frozen=True)
class Waiver:
    """A counted waiver signoff, with the moment it stops counting (its expiry, capped at maxWaiverDays)."""

    signoff: ReleaseSignoff
    until: dt.datetime

    @property
    def items(self) -> set[str]:
        return {i.id for i in self.signoff.spec.items}


@dataclass
class Tally:
    approvals: dict[str, list[ReleaseSignoff]] = field(default_factory=dict)
    """role -> counted approvals, in order."""
    vetoes: dict[str, list[ReleaseSignoff]] = field(default_factory=dict)
    """role -> vetoes not withdrawn by their signer, in order."""
    attestations: list[ReleaseSignoff] = field(default_factory=list)
    """Counted approve signoffs (with or without a role): their items attest, in order."""
    waivers: list[Waiver] = field(default_factory=list)
    """Counted waivers (expired ones too: expiry does not change what approvers approved)."""
    refused: list[RefusedSignoff] = field(default_factory=list)
    """Stored signoffs that do not count, with the reason."""
    refused_by_role: dict[str, list[RefusedSignoff]] = field(default_factory=dict)
    """The same, by the role they were signed as."""


def _refuse(t: Tally, s: ReleaseSignoff, reason: str) -> None:
    refused = RefusedSignoff(name=s.metadata.name, signer=signer_of(s), reason=reason)
    t.refused.append(refused)
    if s.spec.role:
        t.refused_by_role.setdefault(s.spec.role, []).append(refused)


def unbound_reason(s: ReleaseSignoff, release_uid: str | None) -> str | None:
    """Why `s` is not bound to the release object with uid `release_uid` (None when it is)."""
    stamped = s.spec.release_uid
    if release_uid and stamped == release_uid:
        return None
    if not release_uid:
        return "the release has no metadata.uid yet, so no signoff can be matched to it"
    if not stamped:
        return (
            "no spec.releaseUID (signed before signoffs were bound to the release object, or without the webhook); "
            "sign again"
        )
    return (
        f"signed for another ReleaseReadiness of the same name (uid {stamped}, since deleted), not this one "
        f"(uid {release_uid}); sign again"
    )


def tally(
    checklist: ReadinessChecklist, creator: str | None, signoffs: Sequence[ReleaseSignoff], release_uid: str | None
) -> Tally:
    """Count `signoffs` of one release against `checklist`; `creator` is the release's recorded creator, and only
    signoffs stamped with `release_uid` (the release's metadata.uid) count: a name can be re-used by a new object."""
    rules = checklist.spec.rules
    t = Tally()
    first_role: dict[str, tuple[str, str]] = {}  # signer -> (role, signoff name) of their first counted approval
    for s in sorted(signoffs, key=order_key):
        if s.metadata.deletion_timestamp is not None:
            continue  # being deleted: revoked, even while a finalizer holds it
        unbound = unbound_reason(s, release_uid)
        if unbound is not None:
            _refuse(t, s, unbound)
            continue
        signer = signer_of(s)
        groups = s.spec.signer.groups if s.spec.signer else []
        if not signer:
            _refuse(t, s, "no signer was stamped (created while the webhook was not called?); delete it and sign again")
            continue
        spec = s.spec
        approval = checklist.approval(spec.role) if spec.role else None
        if spec.role and approval is None:
            _refuse(t, s, f"checklist {checklist.metadata.name} has no role {spec.role!r}")
            continue
        if approval is not None and not holds_role(approval, signer, groups):
            _refuse(t, s, f"{signer} did not hold role {spec.role} when signing")
            continue
        if spec.decision == "waive":
            assert spec.role is not None  # the schema requires a role on a waiver
            bad = [i.id for i in spec.items if spec.role not in rules.waiver_roles(i.id)]
            if bad:
                _refuse(t, s, f"role {spec.role} may not waive {', '.join(bad)} (checklist spec.rules.waivers)")
                continue
            cap = signed_at(s) + dt.timedelta(days=rules.max_waiver_days)
            until = min(spec.expires, cap) if spec.expires else cap
            t.waivers.append(Waiver(s, until))
            continue
        if spec.role and spec.decision == "reject":
            t.vetoes.setdefault(spec.role, []).append(s)
            continue
        if spec.role:
            # The signer withdraws their own earlier veto for this role by approving it later.
            vetoes = t.vetoes.get(spec.role, [])
            t.vetoes[spec.role] = [v for v in vetoes if signer_of(v) != signer]
            if rules.prevent_self_approval and creator and signer == creator:
                _refuse(t, s, f"{signer} created the release and may not approve it (preventSelfApproval)")
                continue
            earlier = first_role.get(signer)
            if rules.distinct_approvers and earlier is not None and earlier[0] != spec.role:
                _refuse(
                    t,
                    s,
                    f"{signer} already counts as {earlier[0]} (ReleaseSignoff {earlier[1]}); distinctApprovers "
                    f"allows one role per person, so {spec.role} must be signed by someone else",
                )
                continue
            first_role.setdefault(signer, (spec.role, s.metadata.name))
            t.approvals.setdefault(spec.role, []).append(s)
        t.attestations.append(s)
    t.vetoes = {role: v for role, v in t.vetoes.items() if v}
    return t


def waiver_fingerprint(waivers: Sequence[Waiver]) -> str:
    """sha256 over the counted waivers (uid, items, expiry); '' when there are none. Approvals are bound to it."""
    if not waivers:
        return ""
    lines = sorted(
        f"{w.signoff.metadata.uid or w.signoff.metadata.name}:{','.join(sorted(w.items))}:{w.until.isoformat()}"
        for w in waivers
    )
    return "sha256:" + hashlib.sha256("\n".join(lines).encode()).hexdigest()


def note(text: str | None) -> str:
    """The part of a comment the operator keeps and shows (vetoes, waivers)."""
    text = (text or "").strip()
    return text if len(text) <= LIMITS.NOTE else text[: LIMITS.NOTE - 1] + "…"
