"""The readiness report: the seed checklist document, filled in from a release, its checklist and signoffs.

`render_markdown` walks the seed document line by line, so the report keeps its sections, order and
wording: each item becomes `- [x]` or `- [ ]` with its state and message, the Final Approvals get
the signers' names and dates, and the Deployment Details and Sign-Off table are filled in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.api.release import ApprovalStatus, ItemStatus
from release_readiness.constants import SATISFIED
from release_readiness.seed import POST_SECTION

__all__ = ["render_json", "render_markdown"]

_ITEM = re.compile(r"^- \[[ xX]\] (.+?)\s*$")
_SIGN_LINE = re.compile(r"^\*\*Name\*\*: _+")
_TABLE_ROW = re.compile(r"^\| ([^|]+?) \| \| \| \|$")
_BLANK = "_________________"
ROLE_TITLES = {
    "Engineering Lead": "engineering-lead",
    "DevOps Lead": "devops-lead",
    "Security Lead": "security-lead",
    "Product Lead": "product-lead",
    "VP of Engineering / Director": "vp-engineering",
    "VP Engineering": "vp-engineering",
}
DONE = SATISFIED


def _date(value: dt.datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else _BLANK


def _signoff_for(role: str, approvals: dict[str, ApprovalStatus], signoffs: Sequence[ReleaseSignoff]) -> str:
    approval = approvals.get(role)
    if approval is None or approval.state == "Missing":
        return ""
    latest = [
        s
        for s in signoffs
        if s.spec.role == role
        and s.spec.decision == ("reject" if approval.state == "Rejected" else "approve")
        and s.spec.signer
        and s.spec.signer.username == approval.by
    ]
    return latest[-1].metadata.name if latest else ""


def _header(line: str, release: ReleaseReadiness) -> list[str] | None:
    """The document's title block, filled in; None for any other line."""
    status = release.status
    if line.startswith("# "):
        return [f"# Pre-Production Checklist: {release.spec.application} {release.spec.version}"]
    if line.startswith("**API Version**"):
        return [f"**API Version**: {release.spec.version}"]
    if line.startswith("**Deployment Date**"):
        admitted = status.admitted_at if status else None
        return [f"**Deployment Date**: {_date(admitted) if admitted else 'not deployed yet'}"]
    if line.startswith("**Environment**"):
        ready = status.condition("Ready") if status else None
        summary = status.summary if status else None
        verdict = "Ready" if ready and ready.status == "True" else "Not ready"
        counts = (
            f"; {summary.passed}/{summary.total} passed, {summary.failed} failed, {summary.pending} pending, "
            f"{summary.waived} waived; approvals {summary.approvals}"
            if summary
            else ""
        )
        return [
            f"**Environment**: {release.spec.candidate.namespace} → {release.metadata.namespace}",
            "",
            f"**Readiness**: {verdict}" + (f" ({ready.reason})" if ready else "") + counts,
        ]
    return None


def _signature(
    role: str, approvals: dict[str, ApprovalStatus], signoffs: Sequence[ReleaseSignoff], table_title: str | None = None
) -> str | None:
    """A filled signature line (or Sign-Off table row) for a role, or None to keep the blank."""
    approval = approvals.get(role)
    if approval is None or approval.state == "Missing":
        return None
    if table_title is not None:
        if approval.state != "Approved":
            return None
        name = _signoff_for(role, approvals, signoffs)
        return f"| {table_title} | {approval.by} | ReleaseSignoff {name} | {_date(approval.at)} |"
    if approval.state == "Approved":
        name = _signoff_for(role, approvals, signoffs)
        return f"**Name**: {approval.by} **Signature**: ReleaseSignoff {name} **Date**: {_date(approval.at)}"
    return (
        f"**Name**: {approval.by} **Signature**: {approval.state.lower()}: {approval.message} "
        f"**Date**: {_date(approval.at)}"
    )


def render_markdown(
    seed: str,
    release: ReleaseReadiness,
    checklist: ReadinessChecklist,
    signoffs: Sequence[ReleaseSignoff] = (),
) -> str:
    status = release.status
    items = {i.id: i for i in (status.items if status else [])}
    approvals = {a.role: a for a in (status.approvals if status else [])}
    by_title = {(i.section, i.title): i.id for i in checklist.spec.items}
    out: list[str] = []
    top = sub = ""
    for line in seed.splitlines():
        header = _header(line, release)
        if header is not None:
            out += header
            continue
        if line.startswith("## "):
            top, sub = line[3:].strip(), ""
        elif line.startswith("### "):
            sub = line[4:].strip()
        match = _ITEM.match(line)
        row = _TABLE_ROW.match(line)
        if match:
            section = f"{top} / {sub}" if sub else top
            item_id = by_title.get((section, match.group(1)))
            out.append(_item_line(match.group(1), items.get(item_id) if item_id else None, section))
        elif _SIGN_LINE.match(line):
            out.append(_signature(ROLE_TITLES.get(sub, ""), approvals, signoffs) or line)
        elif row and row.group(1) in ROLE_TITLES:
            out.append(_signature(ROLE_TITLES[row.group(1)], approvals, signoffs, row.group(1)) or line)
        else:
            out.append(_fill_detail(line, release.spec.deployment, release.spec.window))
    return "\n".join(out) + "\n"


def _item_line(title: str, state: ItemStatus | None, section: str) -> str:
    if state is None:
        return f"- [ ] {title} — not in this release's checklist"
    box = "x" if state.state in DONE else " "
    post = section == POST_SECTION and state.state == "Pending"
    note = state.message.replace("\n", " ")
    if len(note) > 300:
        note = note[:297] + "..."
    label = "Pending (after deployment)" if post else state.state
    return f"- [{box}] {title} — **{label}**" + (f": {note}" if note else "")


def _fill_detail(line: str, details: Any, window: Any) -> str:
    if line.startswith("**Deployment Window**") and window is not None:
        return f"**Deployment Window**: {window.start:%Y-%m-%d %H:%M} UTC to {window.end:%Y-%m-%d %H:%M} UTC"
    if details is None:
        return line
    fields = {
        "**Estimated Duration**": details.estimated_duration,
        "**Rollback Duration**": details.rollback_duration,
        "**Expected Downtime**": details.expected_downtime,
        "**On-Call Team Lead**": details.on_call_lead,
        "**On-Call Team Members**": ", ".join(details.on_call_members) or None,
        "**War Room Link**": details.war_room,
    }
    for prefix, value in fields.items():
        if line.startswith(prefix) and value:
            suffix = " (if any)" if "(if any)" in line else ""
            return f"{prefix}: {value}{suffix}"
    return line


def render_json(release: ReleaseReadiness, checklist: ReadinessChecklist) -> dict[str, Any]:
    status = release.status
    items = {i.id: i for i in (status.items if status else [])}
    return {
        "release": {
            "namespace": release.metadata.namespace,
            "name": release.metadata.name,
            "application": release.spec.application,
            "version": release.spec.version,
        },
        "ready": bool(status and (c := status.condition("Ready")) and c.status == "True"),
        "summary": status.summary.to_dict() if status and status.summary else {},
        "sections": _sections(checklist, items),
        "approvals": [a.to_dict() for a in (status.approvals if status else [])],
        "refusedSignoffs": [r.to_dict() for r in (status.refused_signoffs if status else [])],
        "deployment": release.spec.deployment.to_dict() if release.spec.deployment else {},
    }


def _sections(checklist: ReadinessChecklist, items: dict[str, ItemStatus]) -> list[dict[str, Any]]:
    sections: list[dict[str, Any]] = []
    for item in checklist.spec.items:
        if not sections or sections[-1]["section"] != item.section:
            sections.append({"section": item.section, "items": []})
        state = items.get(item.id)
        sections[-1]["items"].append(
            {
                "id": item.id,
                "title": item.title,
                "required": item.required,
                "phase": item.phase,
                "state": state.state if state else "Pending",
                "message": state.message if state else "",
            }
        )
    return sections
