"""Who may do what the RBAC of a cluster cannot tell apart: pure decisions over the caller and the configuration.

RBAC grants verbs on resources; it cannot say "only the signer may delete this signoff", "only the operator writes
release status" or "only platform admins change the readiness.dev/gate label". These functions can.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from release_readiness.admission.gate import GATE_LABEL
from release_readiness.admission.signoffs import Caller

__all__ = [
    "MASTERS",
    "SYSTEM_DELETERS",
    "Authority",
    "validate_gate_label_change",
    "validate_release_delete",
    "validate_signoff_change",
    "validate_status_write",
]

SYSTEM_DELETERS = frozenset(
    {
        "system:serviceaccount:kube-system:generic-garbage-collector",
        "system:serviceaccount:kube-system:namespace-controller",
        "system:kube-controller-manager",
    }
)
"""Controllers that delete signoffs legitimately: the garbage collector (the release was deleted), the namespace
controller (the namespace was deleted), and the controller manager's own identity (when it runs without
--use-service-account-credentials)."""

MASTERS = "system:masters"
"""Bypasses RBAC and can remove the webhook configuration itself, so refusing it would protect nothing."""


@dataclass(frozen=True)
class Authority:
    """Who, besides a signoff's signer, may delete it or change its metadata."""

    admin_groups: tuple[str, ...] = ()
    """The configured platform-admin groups (RR_PLATFORM_ADMIN_GROUPS)."""
    operator: str | None = None
    """The operator's own user name, once known."""

    def overrides(self, caller: Caller) -> bool:
        """A platform admin, system:masters, the operator, or a controller that cleans up."""
        return (
            caller.username in SYSTEM_DELETERS
            or (self.operator is not None and caller.username == self.operator)
            or any(g == MASTERS or g in self.admin_groups for g in caller.groups)
        )

    def describe(self) -> str:
        groups = ", ".join(self.admin_groups) or "none configured"
        return f"its signer or a platform admin (groups: {groups})"


_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")


def validate_signoff_change(
    operation: str,
    old: dict[str, Any],
    new: dict[str, Any] | None,
    caller: Caller,
    authority: Authority,
) -> list[str]:
    """DELETE, or an UPDATE of labels, annotations, finalizers or ownerReferences: only by the signer, a platform
    admin, or a controller that cleans up (garbage collector, namespace controller). `old`/`new`: raw bodies."""
    meta = old.get("metadata") or {}
    name = f"ReleaseSignoff {meta.get('namespace')}/{meta.get('name')}"
    signer = str(((old.get("spec") or {}).get("signer") or {}).get("username") or "")
    if caller.username == signer or authority.overrides(caller):
        return []
    if operation == "DELETE":
        return [
            f"{name}: {caller} tried to delete a signoff signed by {signer or 'nobody'}; only "
            f"{authority.describe()} may delete it (a veto holds until its signer withdraws it)"
        ]
    after = (new or {}).get("metadata") or {}
    changed = [k for k in _METADATA if (meta.get(k) or None) != (after.get(k) or None)]
    if changed:
        return [
            f"{name}: {caller} tried to change metadata.{', metadata.'.join(changed)} of a signoff signed by "
            f"{signer or 'nobody'}; only {authority.describe()} may (a finalizer or label must not pin or hide "
            "someone else's signoff)"
        ]
    return []


def validate_status_write(name: str, caller: Caller, authority: Authority) -> list[str]:
    """Only the operator writes a release's status (a Ready=True written by anyone else would open the gate)."""
    if authority.operator is None:
        return [
            f"{name}: status is written only by the release-readiness operator, which has not learned its own "
            "identity yet; retry in a moment"
        ]
    if caller.username == authority.operator:
        return []
    return [
        f"{name}: {caller} tried to write status; only the release-readiness operator ({authority.operator}) "
        "writes it. Sign, attest or waive with a ReleaseSignoff instead (kubectl readiness ...)"
    ]


def _gate(body: dict[str, Any] | None) -> str | None:
    labels = ((body or {}).get("metadata") or {}).get("labels") or {}
    value = labels.get(GATE_LABEL)
    return str(value) if value is not None else None


def validate_gate_label_change(
    old: dict[str, Any] | None, new: dict[str, Any], caller: Caller, authority: Authority
) -> list[str]:
    """Adding, removing or changing a namespace's readiness.dev/gate label: platform admins (and system:masters, and
    the operator) only; it decides whether rollouts there are judged at all."""
    before, after = _gate(old), _gate(new)
    if old is None or before == after:
        return []
    if any(g == MASTERS or g in authority.admin_groups for g in caller.groups) or (
        authority.operator is not None and caller.username == authority.operator
    ):
        return []
    name = ((new.get("metadata") or {}).get("name")) or "?"
    groups = ", ".join(authority.admin_groups) or "none configured"
    return [
        f"Namespace {name}: {caller} tried to change label {GATE_LABEL} from {before or '(unset)'} to "
        f"{after or '(unset)'}; only platform admins (groups: {groups}) may, because it decides whether rollouts "
        "in the namespace are judged. Ask a platform admin"
    ]


def validate_release_delete(
    name: str, vetoes: Sequence[tuple[str, str, str]], caller: Caller, authority: Authority
) -> list[str]:
    """Deleting a release deletes its signoffs (they are owned by it): not while a veto holds, except by a platform
    admin, so a veto cannot be lifted by deleting and recreating the release. `vetoes`: (role, signer, signoff)."""
    if not vetoes or authority.overrides(caller):
        return []
    held = "; ".join(f"{role} by {signer} (ReleaseSignoff {signoff})" for role, signer, signoff in vetoes)
    return [
        f"{name}: {caller} tried to delete a vetoed release ({held}); deleting it would delete the veto. The veto's "
        f"signer withdraws it first (kubectl readiness withdraw), or a platform admin "
        f"(groups: {', '.join(authority.admin_groups) or 'none configured'}) deletes the release"
    ]
