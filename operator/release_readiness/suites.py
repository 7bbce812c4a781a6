"""Test-suite Jobs and who created them, on the API server's word rather than the Job's.

A Job labelled `readiness.dev/suite` counts for the `smokeTests` check only when an identity the checklist names
(by default CI: group `system:serviceaccounts:ci`) created it: otherwise anyone who may create Jobs in the
candidate namespace satisfies the item with a Job that does nothing. A Job does not say who created it
(managedFields' manager is whatever the client claims), so the mutating webhook `stamp-suite-job` (objectSelector:
the suite label, so only suite Jobs reach it; CREATE and UPDATE; fails closed) writes the annotation
`readiness.dev/suite-creator` from the request's authenticated user info:

- CREATE of a suite Job: the caller, replacing any value the client set;
- UPDATE of a Job that already was a suite Job: the value it had (the stamp never changes);
- UPDATE that makes a Job a suite Job (adds the label): no stamp. Its creator is unknown: an unlabelled Job never
  reached the webhook, so its annotations are the client's.

By induction every labelled Job's stamp was written by the webhook (as long as the webhook was registered when
the Job was created or labelled; see docs/operations.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from release_readiness.constants import Annotation, Label

__all__ = ["SUITE_CREATOR", "SUITE_LABEL", "TTL_CONTROLLER", "creator_of", "suite_change_errors", "suite_stamp"]

SUITE_LABEL: str = Label.SUITE.value
SUITE_CREATOR: str = Annotation.SUITE_CREATOR.value
TTL_CONTROLLER = "system:serviceaccount:kube-system:ttl-after-finished-controller"


def _labels(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return ((obj or {}).get("metadata") or {}).get("annotations") or {}


def _stamp(username: str, groups: Sequence[str]) -> str:
    kept = sorted({g for g in groups if g != "system:authenticated"})
    return json.dumps({"username": username, "groups": kept}, separators=(",", ":"))


def suite_stamp(
    operation: str, new: Mapping[str, Any], old: Mapping[str, Any] | None, username: str, groups: Sequence[str]
) -> str | None:
    """The value `readiness.dev/suite-creator` must have after this request (None: the annotation is removed)."""
    if SUITE_LABEL not in _labels(new):
        return None
    if operation == "CREATE":
        return _stamp(username, groups)
    if old is not None and SUITE_LABEL in _labels(old):
        before = _annotations(old).get(SUITE_CREATOR)
        return before if isinstance(before, str) else None
    return None


def creator_of(job: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """(username, groups) that created the suite Job, from the webhook's stamp; None when unstamped or malformed."""
    raw = _annotations(job).get(SUITE_CREATOR)
    if not isinstance(raw, str):
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    username, groups = data.get("username"), data.get("groups")
    if not isinstance(username, str) or not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        return None
    return username, tuple(groups)


def suite_change_errors(
    operation: str,
    new: Mapping[str, Any] | None,
    old: Mapping[str, Any] | None,
    username: str,
    groups: Sequence[str],
    admin_groups: Sequence[str],
) -> list[str]:
    """A stamped suite Job records a run (a failed one fails the release until a newer run passes): only its
    creator and platform admins may delete it or change its labels (which say what it tested), so nobody else
    hides a failed run; the Job TTL controller may delete it too (see docs/operations.md)."""
    if old is None or SUITE_LABEL not in _labels(old):
        return []
    who = creator_of(old)
    if who is None or username == who[0] or any(g in admin_groups for g in groups):
        return []
    meta = old.get("metadata") or {}
    name = f"Job {meta.get('namespace', '')}/{meta.get('name', '')}"
    if operation == "DELETE" and username != TTL_CONTROLLER:
        return [
            f"{name} is a {_labels(old)[SUITE_LABEL]} suite run by {who[0]}: only its creator or a platform admin may "
            f"delete it (a deleted failed run would no longer hold the release back)"
        ]
    if operation == "UPDATE" and dict(_labels(new)) != dict(_labels(old)):
        return [
            f"{name} is a {_labels(old)[SUITE_LABEL]} suite run by {who[0]}: only its creator or a platform admin may "
            f"change its labels (metadata.labels say which application, version and suite it tested)"
        ]
    return []
