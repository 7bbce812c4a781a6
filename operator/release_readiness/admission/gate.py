"""The production gate: one pure function from an admission request and the indexed state to a decision.

`gate_decision` is called by the validating webhook for apps/v1 Deployments, StatefulSets and
DaemonSets in namespaces labelled readiness.dev/gate=enforce|warn|audit. It reads only what it is
given (the release index), never the API server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from release_readiness.admission.signoffs import Caller
from release_readiness.api import ReadinessChecklist, ReleaseReadiness
from release_readiness.checks.model import Workload
from release_readiness.evaluation import outstanding

__all__ = ["BREAK_GLASS", "GATE_LABEL", "MODES", "Decision", "GateRequest", "gate_decision"]

GATE_LABEL = "readiness.dev/gate"
BREAK_GLASS = "readiness.dev/break-glass"
NAME_LABEL = "app.kubernetes.io/name"
VERSION_LABEL = "app.kubernetes.io/version"
Mode = Literal["enforce", "warn", "audit"]
MODES: tuple[Mode, ...] = ("enforce", "warn", "audit")

Verdict = Literal[
    "passed",
    "unchanged",
    "missing-labels",
    "no-release",
    "not-ready",
    "outside-window",
    "image-mismatch",
    "break-glass",
    "break-glass-denied",
    "not-gated",
]


@dataclass(frozen=True)
class GateRequest:
    operation: str
    kind: str
    namespace: str
    name: str
    obj: Mapping[str, Any]
    old: Mapping[str, Any] | None
    caller: Caller
    dry_run: bool = False


@dataclass
class Decision:
    allowed: bool
    verdict: Verdict
    message: str
    mode: Mode | None = None
    warnings: list[str] = field(default_factory=list)
    release: tuple[str, str] | None = None
    break_glass_reason: str | None = None

    @property
    def refused(self) -> bool:
        """What the gate would have said in enforce mode (recorded for warn and audit)."""
        return self.verdict not in ("passed", "unchanged", "break-glass", "not-gated")


def _template(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return ((obj or {}).get("spec") or {}).get("template") or {}


def _images(obj: Mapping[str, Any]) -> dict[str, str]:
    """Container name -> image of a workload's pod template, init containers first."""
    containers = Workload(dict(obj)).containers(include_init=True)
    return {c.name: c.image for c in sorted(containers, key=lambda c: not c.init)}


def _list(texts: Sequence[str], limit: int = 10) -> str:
    shown = "\n  - ".join(texts[:limit])
    more = f"\n  ... and {len(texts) - limit} more" if len(texts) > limit else ""
    return f"\n  - {shown}{more}"


def _image_problems(obj: Mapping[str, Any], release: ReleaseReadiness) -> list[str]:
    candidate = release.status.candidate if release.status else None
    if candidate is None or not candidate.workloads:
        return ["the release has not inspected any candidate workload yet"]
    inspected: dict[str, set[str]] = {}
    for wl in candidate.workloads:
        for inspected_image in wl.images:
            inspected.setdefault(inspected_image.container, set()).add(inspected_image.image)
    problems = []
    for container, image in _images(obj).items():
        seen = inspected.get(container)
        if seen is None:
            problems.append(
                f"container '{container}' ({image}) has no counterpart in the candidate inspected in "
                f"{candidate.namespace}"
            )
        elif image not in seen:
            problems.append(
                f"container '{container}' image {image} is not the image inspected in {candidate.namespace} "
                f"({', '.join(sorted(seen))})"
            )
    return problems


def _apply_mode(decision: Decision, mode: Mode) -> Decision:
    decision.mode = mode
    if not decision.refused:
        return decision
    if mode == "warn":
        decision.allowed = True
        # The API server drops warnings with line breaks: one warning a line of the message.
        first, *rest = decision.message.split("\n")
        decision.warnings.append(f"readiness gate (warn mode) would refuse this: {first}")
        decision.warnings += [line.strip().removeprefix("- ") for line in rest if line.strip()]
    elif mode == "audit":
        decision.allowed = True
    else:
        decision.allowed = False
    return decision


def gate_decision(
    req: GateRequest,
    mode: str | None,
    releases: Sequence[ReleaseReadiness],
    checklists: Mapping[str, ReadinessChecklist],
    break_glass_groups: Sequence[str],
    now: dt.datetime,
) -> Decision:
    """Decide a rollout. `releases`: the ReleaseReadiness objects in the request's namespace."""
    if mode not in MODES:
        return Decision(True, "not-gated", f"namespace {req.namespace} is not gated")
    gate_mode: Mode = mode
    template = _template(req.obj)
    where = f"{req.kind.lower()} {req.namespace}/{req.name}"
    if req.operation == "UPDATE" and req.old is not None and _template(req.old) == template:
        return Decision(True, "unchanged", f"{where}: the pod template is unchanged", gate_mode)

    labels = dict((template.get("metadata") or {}).get("labels") or {})
    app, version = labels.get(NAME_LABEL), labels.get(VERSION_LABEL)
    if not app or not version:
        missing = [k for k, v in ((NAME_LABEL, app), (VERSION_LABEL, version)) if not v]
        return _apply_mode(
            Decision(
                False,
                "missing-labels",
                f"{where}: the pod template (spec.template.metadata.labels) has no {' or '.join(missing)}; add "
                f"them so the gate can find the release's ReleaseReadiness",
            ),
            gate_mode,
        )

    matching = [r for r in releases if r.spec.application == app and r.spec.version == version]
    if not matching:
        return _apply_mode(
            Decision(
                False,
                "no-release",
                f"{where}: no ReleaseReadiness for {app} {version} in namespace {req.namespace}; create one: "
                f"kubectl readiness init {app} {version} --candidate-namespace <staging-namespace> -n {req.namespace}",
            ),
            gate_mode,
        )
    release = matching[0]
    key = (release.metadata.namespace or req.namespace, release.metadata.name)
    rname = f"ReleaseReadiness {key[0]}/{key[1]}"

    reason = str((req.obj.get("metadata") or {}).get("annotations", {}).get(BREAK_GLASS, "")).strip()
    if reason:
        if any(g in break_glass_groups for g in req.caller.groups):
            return Decision(
                True,
                "break-glass",
                f"{where}: admitted by break-glass by {req.caller.username}: {reason}",
                gate_mode,
                warnings=[f"readiness gate bypassed by break-glass ({reason}); this is recorded on {rname}"],
                release=key,
                break_glass_reason=reason,
            )
        allowed = ", ".join(break_glass_groups) or "none configured"
        return _apply_mode(
            Decision(
                False,
                "break-glass-denied",
                f"{where}: {req.caller} may not use the {BREAK_GLASS} annotation; only members of these groups "
                f"may: {allowed}. Remove the annotation, or ask one of them",
                release=key,
            ),
            gate_mode,
        )

    status = release.status
    ready = status.condition("Ready") if status else None
    if ready is None or ready.status != "True":
        items, approvals = outstanding(status, checklists.get(release.spec.checklist)) if status else ([], [])
        parts = [f"{where}: {rname} is not Ready ({ready.reason if ready else 'not evaluated yet'})."]
        if items:
            parts.append(f"{len(items)} required item(s) outstanding:{_list(items)}")
        if approvals:
            parts.append(f"{len(approvals)} approval(s) missing:{_list(approvals)}")
        if not items and not approvals and ready is not None:
            parts.append(ready.message)
        return _apply_mode(Decision(False, "not-ready", "\n".join(parts), release=key), gate_mode)

    window = release.spec.window
    if window is not None and not (window.start <= now <= window.end):
        return _apply_mode(
            Decision(
                False,
                "outside-window",
                f"{where}: outside the deployment window of {rname}: {window.start:%Y-%m-%dT%H:%M:%SZ} to "
                f"{window.end:%Y-%m-%dT%H:%M:%SZ} (now {now:%Y-%m-%dT%H:%M:%SZ}); change spec.window or wait",
                release=key,
            ),
            gate_mode,
        )

    problems = _image_problems(req.obj, release)
    if problems:
        return _apply_mode(
            Decision(
                False,
                "image-mismatch",
                f"{where}: its images are not the ones {rname} inspected:{_list(problems)}",
                release=key,
            ),
            gate_mode,
        )
    return _apply_mode(Decision(True, "passed", f"{where}: {rname} is Ready", release=key), gate_mode)
