"""What the dashboard's pages show, built from a release, its checklist, signoffs and events: pure functions, no
I/O, so every page's content is unit-tested without a browser or a cluster.

Every state carries a symbol and a word (colour is never the only signal) and every time is UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from release_readiness.api import ChecklistItem, ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.api.release import ApprovalStatus, ItemStatus
from release_readiness.constants import SATISFIED

__all__ = [
    "SYMBOLS",
    "ChecklistView",
    "EventView",
    "ReleaseRow",
    "ReleaseView",
    "checklist_view",
    "how_verified",
    "release_row",
    "release_view",
    "stage",
    "suggestion",
]

SYMBOLS = {
    "Passed": "✓",
    "Failed": "✗",
    "Pending": "…",
    "Waived": "~",
    "NotApplicable": "-",
    "Approved": "✓",
    "Missing": "…",
    "Stale": "↺",
    "Rejected": "✗",
    "Ready": "✓",
    "Admitted": "✓",
    "Healthy": "✓",
    "Waiting": "…",
    "Vetoed": "✗",
    "Unhealthy": "✗",
    "Unknown": "?",
    "Expired": "✗",
    "Active": "~",
}
GATE_REASONS = ("RolloutRefused", "RolloutWouldBeRefusedWarn", "RolloutWouldBeRefusedAudit")
BREAK_GLASS = "BreakGlass"


def _utc(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def _span(seconds: float) -> str:
    """A short human duration: 6d 23h, 3h 5m, 12m, 40s."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


# -- the stage a release is in -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """Where a release is on its way: Waiting → Ready → Admitted → Healthy (or Vetoed / Unhealthy)."""

    state: str
    text: str

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.state, "?")


def stage(release: ReleaseReadiness) -> Stage:
    status = release.status
    if status is None:
        return Stage("Waiting", "not evaluated by the operator yet")
    ready = status.condition("Ready")
    stalled = status.condition("Stalled")
    post = status.condition("PostDeploymentHealthy")
    if stalled is not None and stalled.status == "True" and stalled.reason == "Vetoed":
        return Stage("Vetoed", stalled.message)
    if status.admitted_at is not None:
        if post is not None and post.status == "True":
            return Stage("Healthy", f"admitted {_utc(status.admitted_at)}; {post.message}")
        if post is not None and post.reason == "PostDeploymentCheckFailed":
            return Stage("Unhealthy", post.message)
        return Stage("Admitted", f"admitted {_utc(status.admitted_at)}" + (f"; {post.message}" if post else ""))
    if ready is not None and ready.status == "True":
        return Stage("Ready", ready.message or "ready to be deployed")
    if ready is None:
        return Stage("Waiting", "not evaluated by the operator yet")
    return Stage("Waiting", f"{ready.reason}: {ready.message}" if ready.message else ready.reason)


# -- the list of releases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseRow:
    namespace: str
    name: str
    application: str
    version: str
    stage: Stage
    done: int
    total: int
    passed: int
    failed: int
    pending: int
    approvals: str
    required_outstanding: int
    created: str


def release_row(release: ReleaseReadiness) -> ReleaseRow:
    summary = release.status.summary if release.status else None
    done = (summary.passed + summary.waived + summary.not_applicable) if summary else 0
    return ReleaseRow(
        namespace=release.metadata.namespace or "",
        name=release.metadata.name,
        application=release.spec.application,
        version=release.spec.version,
        stage=stage(release),
        done=done,
        total=summary.total if summary else 0,
        passed=summary.passed if summary else 0,
        failed=summary.failed if summary else 0,
        pending=summary.pending if summary else 0,
        approvals=summary.approvals if summary else "0/0",
        required_outstanding=summary.required_outstanding if summary else 0,
        created=_utc(release.metadata.creation_timestamp),
    )


# -- how each item is verified, and what to do about it ----------------------------------------------------------


def _bounds(minimum: Any, maximum: Any, equals: Any = None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"at least {minimum:g}" if isinstance(minimum, float) else f"at least {minimum}")
    if maximum is not None:
        parts.append(f"at most {maximum:g}" if isinstance(maximum, float) else f"at most {maximum}")
    if equals is not None:
        parts.append(f"equal to {equals!r}")
    return " and ".join(parts)


def _who(users: Sequence[str], groups: Sequence[str]) -> str:
    names = [*users, *(f"group {g}" for g in groups)]
    return ", ".join(names) if names else "anyone allowed to create signoffs"


def how_verified(item: ChecklistItem) -> tuple[str, str]:
    """(kind, description) of how an item is verified: the operator's workload check, recorded evidence, a
    Prometheus query or a person's attestation."""
    check = item.check
    if check.workload is not None:
        params = ", ".join(f"{k}={v}" for k, v in sorted((check.params or {}).items()))
        return "workload", f"the operator checks the candidate's workloads: {check.workload}" + (
            f" ({params})" if params else ""
        )
    if check.cel is not None:
        rules = "; ".join(r.message or r.expression for r in check.cel.rules)
        return "cel", f"the operator checks the candidate's workloads with CEL rules: {rules}"
    if check.evidence is not None:
        ev = check.evidence
        bounds = _bounds(ev.min, ev.max, ev.equals)
        who = _who(ev.recorded_by.users, ev.recorded_by.groups)
        return "evidence", f"evidence {ev.key}" + (f" {bounds}" if bounds else "") + f", recorded by {who}"
    if check.prometheus is not None:
        pq = check.prometheus
        bounds = _bounds(pq.min, pq.max)
        held = f" for {pq.for_}" if pq.for_ else ""
        return "prometheus", f"Prometheus query {pq.query}" + (f" must be {bounds}" if bounds else "") + held
    if check.attestation is not None:
        return "attestation", f"attested by a holder of {' or '.join(check.attestation.roles)}"
    return "unknown", "no check"


def suggestion(item: ChecklistItem, state: ItemStatus | None, release: ReleaseReadiness) -> str:
    """What to do about an outstanding item, as the operator sees it: its own message for a failing workload or
    metric check, or the command that records what is missing."""
    ns, name = release.metadata.namespace or "default", release.metadata.name
    check = item.check
    message = state.message if state else ""
    if check.workload is not None or check.cel is not None:
        where = release.spec.candidate.namespace
        if state is not None and state.state == "Failed":
            return f"Fix the candidate in {where}: {message}"
        return message or f"Waiting for the operator to inspect the candidate in {where}"
    if check.evidence is not None:
        ev = check.evidence
        who = _who(ev.recorded_by.users, ev.recorded_by.groups)
        value = "VALUE"
        if ev.equals is not None:
            value = ev.equals
        bounds = _bounds(ev.min, ev.max)
        hint = f"Record it as {who}: kubectl readiness -n {ns} attest {name} {item.id} --value {value}" + (
            f" ({ev.key} {bounds})" if bounds else ""
        )
        return f"{message}. {hint}" if message and state is not None and state.state == "Failed" else hint
    if check.attestation is not None:
        roles = " or ".join(check.attestation.roles)
        return f"A holder of {roles} attests it: kubectl readiness -n {ns} attest {name} {item.id}"
    if check.prometheus is not None:
        return message or "Waiting for Prometheus to answer the query"
    return message


# -- one release -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemView:
    id: str
    title: str
    section: str
    required: bool
    phase: str
    state: str
    message: str
    suggestion: str
    checked_at: str

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.state, "?")


@dataclass(frozen=True)
class SectionView:
    name: str
    total: int
    done: int
    passed: int
    failed: int
    pending: int
    waived: int
    not_applicable: int


@dataclass(frozen=True)
class ApprovalView:
    role: str
    title: str
    required: bool
    state: str
    by: str
    at: str
    message: str

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.state, "?")


@dataclass(frozen=True)
class SignoffView:
    name: str
    role: str
    by: str
    at: str
    items: str
    comment: str
    expires: str = ""
    state: str = ""
    remaining: str = ""

    @property
    def symbol(self) -> str:
        return SYMBOLS.get(self.state, "?")


@dataclass(frozen=True)
class EventView:
    type: str
    reason: str
    message: str
    at: str
    count: int
    reporter: str


@dataclass
class ReleaseView:
    namespace: str
    name: str
    uid: str
    application: str
    version: str
    checklist: str
    candidate_namespace: str
    stage: Stage
    summary: dict[str, Any]
    sections: list[SectionView]
    outstanding: list[ItemView]
    approvals: list[ApprovalView]
    stale: list[ApprovalView]
    vetoes: list[SignoffView]
    waivers: list[SignoffView]
    refused_signoffs: list[tuple[str, str, str]]
    gate_refusals: list[EventView]
    break_glass: list[EventView]
    other_events: list[EventView]
    post_items: list[ItemView]
    post_condition: tuple[str, str, str] | None
    conditions: list[tuple[str, str, str, str]]
    candidate_fingerprint: str
    candidate_images: list[tuple[str, str, str, str]]
    deployment: dict[str, str] = field(default_factory=dict)


def _item_view(item: ChecklistItem, state: ItemStatus | None, release: ReleaseReadiness) -> ItemView:
    name = state.state if state else "Pending"
    return ItemView(
        id=item.id,
        title=item.title,
        section=item.section,
        required=item.required,
        phase=item.phase,
        state=name,
        message=state.message if state else "",
        suggestion=suggestion(item, state, release) if name not in SATISFIED else "",
        checked_at=_utc(state.checked_at) if state else "",
    )


def _sections(checklist: ReadinessChecklist, states: dict[str, ItemStatus]) -> list[SectionView]:
    order: list[str] = []
    counts: dict[str, dict[str, int]] = {}
    for item in checklist.spec.items:
        if item.section not in counts:
            order.append(item.section)
            counts[item.section] = dict.fromkeys(("Passed", "Failed", "Pending", "Waived", "NotApplicable"), 0)
        state = states.get(item.id)
        counts[item.section][state.state if state else "Pending"] += 1
    return [
        SectionView(
            name=name,
            total=sum(c.values()),
            done=c["Passed"] + c["Waived"] + c["NotApplicable"],
            passed=c["Passed"],
            failed=c["Failed"],
            pending=c["Pending"],
            waived=c["Waived"],
            not_applicable=c["NotApplicable"],
        )
        for name, c in ((n, counts[n]) for n in order)
    ]


def _approval_view(a: ApprovalStatus, titles: dict[str, tuple[str, bool]]) -> ApprovalView:
    title, required = titles.get(a.role, ("", True))
    return ApprovalView(
        role=a.role,
        title=title,
        required=required,
        state=a.state,
        by=a.by or "",
        at=_utc(a.at),
        message=a.message,
    )


def _event_view(raw: dict[str, Any]) -> EventView:
    at = raw.get("lastTimestamp") or raw.get("eventTime") or raw.get("firstTimestamp") or ""
    return EventView(
        type=str(raw.get("type") or ""),
        reason=str(raw.get("reason") or ""),
        message=str(raw.get("message") or ""),
        at=_utc(dt.datetime.fromisoformat(at.replace("Z", "+00:00"))) if isinstance(at, str) and at else "",
        count=int(raw.get("count") or 1),
        reporter=str(raw.get("reportingComponent") or (raw.get("source") or {}).get("component") or ""),
    )


def release_view(
    release: ReleaseReadiness,
    checklist: ReadinessChecklist | None,
    signoffs: Sequence[ReleaseSignoff] = (),
    events: Sequence[dict[str, Any]] = (),
    now: dt.datetime | None = None,
) -> ReleaseView:
    """Everything the release page shows. Signoffs and events are those of this release object (matched by uid);
    events newest first."""
    now = now or dt.datetime.now(dt.UTC)
    status = release.status
    states = {s.id: s for s in (status.items if status else [])}
    items = checklist.spec.items if checklist else []
    views = [_item_view(i, states.get(i.id), release) for i in items]
    pre_open = [v for v in views if v.phase == "pre" and v.state not in SATISFIED]
    # Required first, then failing before pending (the cluster must change), each in checklist order.
    outstanding = sorted(pre_open, key=lambda v: (not v.required, v.state != "Failed"))
    titles = {a.role: (a.title, a.required) for a in (checklist.spec.approvals if checklist else [])}
    approvals = [_approval_view(a, titles) for a in (status.approvals if status else [])]
    uid = release.metadata.uid
    name = release.metadata.name
    mine = [s for s in signoffs if s.spec.release == name and (uid is None or s.spec.release_uid == uid)]
    mine.sort(key=lambda s: s.spec.signed_at or dt.datetime.min.replace(tzinfo=dt.UTC))
    vetoes = [
        SignoffView(
            name=s.metadata.name,
            role=s.spec.role or "",
            by=s.spec.signer.username if s.spec.signer else "",
            at=_utc(s.spec.signed_at),
            items="",
            comment=s.spec.comment or "",
            state="Rejected",
        )
        for s in mine
        if s.spec.decision == "reject"
    ]
    waivers = []
    for s in mine:
        if s.spec.decision != "waive":
            continue
        expires = s.spec.expires
        expired = expires is not None and expires <= now
        waivers.append(
            SignoffView(
                name=s.metadata.name,
                role=s.spec.role or "",
                by=s.spec.signer.username if s.spec.signer else "",
                at=_utc(s.spec.signed_at),
                items=", ".join(i.id for i in s.spec.items),
                comment=s.spec.comment or "",
                expires=_utc(expires),
                state="Expired" if expired else "Active",
                remaining="expired" if expired or expires is None else f"in {_span((expires - now).total_seconds())}",
            )
        )
    event_views = [_event_view(e) for e in events]
    post = status.condition("PostDeploymentHealthy") if status else None
    candidate = status.candidate if status else None
    deployment = release.spec.deployment.to_dict() if release.spec.deployment else {}
    return ReleaseView(
        namespace=release.metadata.namespace or "",
        name=release.metadata.name,
        uid=uid or "",
        application=release.spec.application,
        version=release.spec.version,
        checklist=release.spec.checklist,
        candidate_namespace=release.spec.candidate.namespace,
        stage=stage(release),
        summary=status.summary.to_dict() if status and status.summary else {},
        sections=_sections(checklist, states) if checklist else [],
        outstanding=outstanding,
        approvals=approvals,
        stale=[a for a in approvals if a.state == "Stale"],
        vetoes=vetoes,
        waivers=waivers,
        refused_signoffs=[(r.name, r.signer, r.reason) for r in (status.refused_signoffs if status else [])],
        gate_refusals=[e for e in event_views if e.reason in GATE_REASONS],
        break_glass=[e for e in event_views if e.reason == BREAK_GLASS],
        other_events=[e for e in event_views if e.reason not in (*GATE_REASONS, BREAK_GLASS)][:20],
        post_items=[v for v in views if v.phase == "post"],
        post_condition=(post.status, post.reason, post.message) if post else None,
        conditions=[
            (c.type, c.status, c.reason, c.message) for c in (status.conditions if status else []) if c.type != "Ready"
        ],
        candidate_fingerprint=candidate.fingerprint if candidate and candidate.fingerprint else "",
        candidate_images=[
            (w.kind, w.name, img.container, img.image + (f"@{img.digest}" if img.digest else ""))
            for w in (candidate.workloads if candidate else [])
            for img in w.images
        ],
        deployment={k: (", ".join(v) if isinstance(v, list) else str(v)) for k, v in deployment.items()},
    )


# -- a checklist -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChecklistItemView:
    id: str
    title: str
    required: bool
    phase: str
    kind: str
    verified: str


@dataclass(frozen=True)
class ChecklistView:
    name: str
    description: str
    sections: list[tuple[str, list[ChecklistItemView]]]
    approvals: list[tuple[str, str, str, bool, str]]
    rules: list[str]


def checklist_view(checklist: ReadinessChecklist) -> ChecklistView:
    sections: list[tuple[str, list[ChecklistItemView]]] = []
    for item in checklist.spec.items:
        if not sections or sections[-1][0] != item.section:
            sections.append((item.section, []))
        kind, verified = how_verified(item)
        sections[-1][1].append(ChecklistItemView(item.id, item.title, item.required, item.phase, kind, verified))
    rules = checklist.spec.rules
    waivers = [
        f"{' or '.join(w.roles)} may waive {', '.join(w.items) if w.items else 'any item'}" for w in rules.waivers
    ]
    return ChecklistView(
        name=checklist.metadata.name,
        description=checklist.spec.description,
        sections=sections,
        approvals=[
            (a.role, a.title, _who(a.users, a.groups), a.required, ", ".join(a.items)) for a in checklist.spec.approvals
        ],
        rules=[
            f"distinct approvers (one person, one role): {'yes' if rules.distinct_approvers else 'no'}",
            f"the release's creator may not approve it: {'yes' if rules.prevent_self_approval else 'no'}",
            f"waivers last at most {rules.max_waiver_days} days",
            *waivers,
        ],
    )
