"""Pure evaluation of one release: checklist + candidate snapshot + signoffs -> ReleaseStatus.

Nothing here talks to the cluster. The reconciler gathers the inputs from its indexes, calls
`evaluate_release`, and patches the status only when `status_changed` says it differs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from release_readiness import CREATED_BY
from release_readiness.api import (
    ApprovalStatus,
    ChecklistItem,
    Condition,
    ItemState,
    ItemStatus,
    ReadinessChecklist,
    ReleaseReadiness,
    ReleaseSignoff,
    ReleaseStatus,
    Summary,
)
from release_readiness.api.checklist import Approval
from release_readiness.api.release import CandidateImage, CandidateStatus, CandidateWorkload, RefusedSignoff
from release_readiness.checks.cel import run_cel_check
from release_readiness.checks.model import CandidateSnapshot, CheckResult
from release_readiness.checks.workload import run_workload_check
from release_readiness.constants import SATISFIED, Reason
from release_readiness.podtemplate import (
    DEFAULT_ENVIRONMENT_FIELDS,
    controller_labels,
    normalize_template,
    template_hash,
)
from release_readiness.tally import (
    MAX_REFUSED_SHOWN,
    Tally,
    Waiver,
    holds_role,
    note,
    signed_at,
    signer_of,
    tally,
    waiver_fingerprint,
    who_may,
)

__all__ = [
    "Blocker",
    "Reason",
    "abbreviate",
    "candidate_status",
    "environment_fields",
    "evaluate_item",
    "evaluate_release",
    "holds_role",
    "outstanding",
    "status_changed",
    "who_may",
]


@dataclass(frozen=True)
class Blocker:
    """Why a release cannot progress by itself (Stalled=True)."""

    reason: str
    message: str


@dataclass
class EvaluationInput:
    release: ReleaseReadiness
    checklist: ReadinessChecklist | None
    snapshot: CandidateSnapshot | None
    signoffs: Sequence[ReleaseSignoff] = ()
    metric_results: Mapping[str, CheckResult] = field(default_factory=dict)
    unreadable_signoffs: Mapping[str, str] = field(default_factory=dict)
    """Signoffs naming the release that the operator's model cannot read: name -> why (listed as not counted)."""
    blocker: Blocker | None = None
    admitted: bool = False
    """A workload of this application and version runs in the release's (production) namespace."""
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def creator(self) -> str | None:
        """Who created the release (stamped at creation), for preventSelfApproval."""
        return self.release.metadata.annotations.get(CREATED_BY)

    def tally(self) -> Tally:
        """The signoffs that count for this release object (bound to its uid), by the checklist's rules."""
        if self.checklist is None:
            return Tally()
        return tally(self.checklist, self.creator, self.signoffs, self.release.metadata.uid)


def environment_fields(checklist: ReadinessChecklist | None) -> Sequence[str]:
    """The pod-template fields allowed to differ between candidate and production under this checklist."""
    chosen = checklist.spec.rules.environment_fields if checklist is not None else None
    return DEFAULT_ENVIRONMENT_FIELDS if chosen is None else chosen


def candidate_status(
    snapshot: CandidateSnapshot | None, fields: Sequence[str] = DEFAULT_ENVIRONMENT_FIELDS
) -> CandidateStatus:
    """The inspected workloads: images, and the hash of each pod template without the environment fields.
    The fingerprint covers both, so approvals turn Stale when the candidate's template changes."""
    if snapshot is None:
        return CandidateStatus()
    workloads = []
    for wl in sorted(snapshot.workloads, key=lambda w: (w.kind, w.name)):
        images = []
        for c in wl.containers(include_init=True):
            digest = c.image.partition("@")[2] or None
            images.append(CandidateImage(container=c.name, image=c.image, digest=digest))
        generated = controller_labels(wl.kind, wl.body, wl.template)
        digest = template_hash(normalize_template(wl.template, fields, generated))
        workloads.append(CandidateWorkload(kind=wl.kind, name=wl.name, images=images, template_hash=digest))
    lines = [f"{w.kind}/{w.name}/{i.container}={i.image}" for w in workloads for i in w.images]
    lines += [f"{w.kind}/{w.name}#template={w.template_hash}" for w in workloads]
    material = "\n".join(lines)
    fingerprint = "sha256:" + hashlib.sha256(material.encode()).hexdigest() if material else ""
    return CandidateStatus(namespace=snapshot.namespace, workloads=workloads, fingerprint=fingerprint)


MAX_CANDIDATE_BYTES = 256 * 1024
"""What status.candidate may take. Red-team 3 finding 4: the developer who writes the candidate namespace chose its
size (two Deployments with a 1 MB image string each, or a thousand with ten containers): the status grew past
what the API server stores, every status write failed, and the last one written stayed, Ready included, so a veto
signed after that never reached the gate."""


def bounded_candidate(candidate: CandidateStatus) -> tuple[CandidateStatus, Blocker | None]:
    """The candidate as recorded, or, past MAX_CANDIDATE_BYTES, nothing of it (no fingerprint: approvals and
    evidence do not count, the gate has no template to admit) and why the release is stalled."""
    size = len(json.dumps(candidate.to_dict()))
    if size <= MAX_CANDIDATE_BYTES:
        return candidate, None
    count = sum(len(w.images) for w in candidate.workloads)
    longest = max((len(i.image) for w in candidate.workloads for i in w.images), default=0)
    why = (
        f"the candidate in {candidate.namespace} is too large to record: {len(candidate.workloads)} workload(s) with "
        f"{count} image reference(s), the longest {longest:,} characters, would take {size:,} bytes of the status "
        f"(at most {MAX_CANDIDATE_BYTES:,}); select fewer workloads (the app.kubernetes.io/name label) or fix the "
        "image references (a valid one is under 512 characters)"
    )
    return CandidateStatus(namespace=candidate.namespace), Blocker(Reason.CANDIDATE_TOO_LARGE, why)


def for_candidate(s: ReleaseSignoff, fingerprint: str) -> bool:
    """Whether `s` was signed for the candidate inspected now. No fingerprint (nothing inspected, or a signoff
    stamped while nothing was) never matches: a sign-off must say which candidate it is about."""
    return bool(fingerprint) and s.spec.candidate_fingerprint == fingerprint


def not_for_candidate(s: ReleaseSignoff, fingerprint: str, done: str = "") -> str:
    """Why `s` is not about the current candidate (for_candidate is False). `done`: 'recorded' or 'attested' for
    evidence and attestations; approvals otherwise."""
    if not fingerprint:
        return "the candidate is not inspected now (no workload matches the candidate selector)"
    if not s.spec.candidate_fingerprint:
        return "signed while the candidate was not inspected (no fingerprint), so it does not say what it approves"
    if done:
        return f"{done} for an older candidate (its images or pod template changed since)"
    return "the candidate's images or pod template changed after this sign-off"


def evaluate_approvals(
    checklist: ReadinessChecklist, counted: Tally, fingerprint: str, waivers: str
) -> list[ApprovalStatus]:
    """One status per role: Rejected while a veto holds; else Approved by the latest approval that covers the
    current candidate and waivers; else Stale (signed for something else); else Missing."""
    out = []
    for approval in checklist.spec.approvals:
        vetoes = counted.vetoes.get(approval.role, [])
        if vetoes:
            veto = vetoes[0]
            out.append(
                ApprovalStatus(
                    role=approval.role,
                    state="Rejected",
                    by=signer_of(veto),
                    at=signed_at(veto),
                    message=f"vetoed: {note(veto.spec.comment) or 'no comment'} (only {signer_of(veto)} can lift "
                    f"it: delete ReleaseSignoff {veto.metadata.name}, or approve as {approval.role})",
                )
            )
            continue
        signed = counted.approvals.get(approval.role, [])
        current = [s for s in signed if for_candidate(s, fingerprint) and (s.spec.waiver_fingerprint or "") == waivers]
        if current:
            latest = current[-1]
            out.append(
                ApprovalStatus(
                    role=approval.role, state="Approved", by=signer_of(latest), at=signed_at(latest), message=""
                )
            )
        elif signed:
            latest = signed[-1]
            why = (
                "the waivers changed after this sign-off (a waiver changes what was approved)"
                if for_candidate(latest, fingerprint)
                else not_for_candidate(latest, fingerprint)
            )
            out.append(
                ApprovalStatus(
                    role=approval.role,
                    state="Stale",
                    by=signer_of(latest),
                    at=signed_at(latest),
                    message=f"{why}; sign again",
                )
            )
        else:
            message = f"waiting for a sign-off by {who_may(approval)}"
            refused = counted.refused_by_role.get(approval.role, [])
            if refused:
                message += "; not counted: " + "; ".join(f"ReleaseSignoff {r.name}: {r.reason}" for r in refused[:3])
            out.append(ApprovalStatus(role=approval.role, state="Missing", message=message))
    return out


SHOWN_QUERY_CHARS = 240


def abbreviate(query: str) -> str:
    """The query as messages show it: long load-window queries are cut (the checklist holds the whole text)."""
    query = " ".join(query.split())
    return query if len(query) <= SHOWN_QUERY_CHARS else query[: SHOWN_QUERY_CHARS - 1] + "…"


def _compare(value: float, low: float | None, high: float | None) -> tuple[bool, str]:
    if low is not None and value < low:
        return False, f"{value:g} < {low:g}"
    if high is not None and value > high:
        return False, f"{value:g} > {high:g}"
    bounds = [f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else ""]
    return True, f"{value:g} " + " and ".join(b for b in bounds if b)


def evaluate_item(
    item: ChecklistItem,
    inp: EvaluationInput,
    approvals: Mapping[str, ApprovalStatus],
    counted: Tally | None = None,
    fingerprint: str | None = None,
) -> CheckResult:
    """The state of one item, before waivers. `counted`: the release's tally, `fingerprint`: the candidate's
    (each computed when not given). Evidence and attestations count only for the candidate they were recorded for:
    CI's evidence is about the build it tested, a person's attestation about what they looked at."""
    check = item.check
    if check.workload is not None:
        if inp.snapshot is None:
            return CheckResult.pending("the candidate could not be inspected (see the Ready condition)")
        return run_workload_check(check.workload, check.params, inp.snapshot)
    if check.cel is not None:
        if inp.snapshot is None:
            return CheckResult.pending("the candidate could not be inspected (see the Ready condition)")
        return run_cel_check(check.cel, inp.snapshot)
    if counted is None:
        counted = inp.tally()
    if fingerprint is None:
        fingerprint = candidate_status(inp.snapshot, environment_fields(inp.checklist)).fingerprint
    attested = [
        (s, entry)
        for s in reversed(counted.attestations)  # latest first
        for entry in s.spec.items
        if entry.id == item.id
    ]
    if check.evidence is not None:
        ev = check.evidence
        # Defence in depth: evidence signed by anyone the checklist does not name is ignored.
        with_value = [
            (s, e)
            for s, e in attested
            if e.value is not None
            and s.spec.signer is not None
            and ev.recorded_by.include(s.spec.signer.username, s.spec.signer.groups)
        ]
        if not with_value:
            return CheckResult.pending(
                f"waiting for evidence '{ev.key}' ({_bounds(ev.min, ev.max, ev.equals)}) in a ReleaseSignoff "
                f"item '{item.id}' recorded by {ev.recorded_by}"
            )
        current = [(s, e) for s, e in with_value if for_candidate(s, fingerprint)]
        if not current:
            old, entry = with_value[0]
            return CheckResult.pending(
                f"{ev.key} {entry.value} was recorded by {signer_of(old)} but does not count: "
                f"{not_for_candidate(old, fingerprint, 'recorded')}; record it again"
            )
        signoff, entry = current[0]
        signer = signoff.spec.signer.username if signoff.spec.signer else "unknown"
        value = entry.value or ""
        if ev.equals is not None:
            ok = value == ev.equals
            text = f"{value} {'==' if ok else '!='} {ev.equals}"
        else:
            try:
                number = float(value)
                if not math.isfinite(number):  # nan compares false both ways and would pass any bound
                    raise ValueError(value)
                ok, text = _compare(number, ev.min, ev.max)
            except ValueError:
                return CheckResult.failed(
                    [f"{item.id}: attested value {value!r} is not a number (attested by {signer})"]
                )
        msg = f"{item.id}: {text} (attested by {signer})"
        return CheckResult.passed(msg) if ok else CheckResult.failed([msg])
    if check.prometheus is not None:
        result = inp.metric_results.get(item.id)
        return result or CheckResult.pending(f"metric query not evaluated yet: {abbreviate(check.prometheus.query)}")
    if check.attestation is not None:
        roles = check.attestation.roles
        holders = [a for a in (inp.checklist.approval(r) for r in roles) if a is not None] if inp.checklist else []
        # Defence in depth: only a holder of one of the roles (by the groups stamped at signing) attests.
        attested = [
            (s, e)
            for s, e in attested
            if s.spec.signer is not None
            and any(holds_role(a, s.spec.signer.username, s.spec.signer.groups) for a in holders)
        ]
        current = [(s, e) for s, e in attested if for_candidate(s, fingerprint)]
        if current:
            signoff, _entry = current[0]
            return CheckResult.passed(f"attested by {signer_of(signoff)}")
        covering = [
            a
            for a in approvals.values()
            if a.state == "Approved"
            and a.role in roles
            and inp.checklist is not None
            and item.id in ((inp.checklist.approval(a.role) or Approval(role=a.role)).items)
        ]
        if covering:
            return CheckResult.passed(f"covered by the {covering[0].role} sign-off of {covering[0].by}")
        if attested:
            old, _entry = attested[0]
            return CheckResult.pending(
                f"attested by {signer_of(old)} but does not count: {not_for_candidate(old, fingerprint, 'attested')}; "
                "attest it again"
            )
        may = []
        if inp.checklist is not None:
            for role in roles:
                approval = inp.checklist.approval(role)
                may.append(f"{role} ({who_may(approval)})" if approval else role)
        return CheckResult.pending(f"waiting for an attestation by {', '.join(may)}")
    return CheckResult.failed([f"{item.id}: the item has no check"])


def _bounds(low: float | None, high: float | None, equals: str | None) -> str:
    if equals is not None:
        return f"== {equals}"
    parts = [f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None else ""]
    return " and ".join(p for p in parts if p) or "any value"


def _condition(
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    generation: int | None,
    previous: ReleaseStatus | None,
    now: dt.datetime,
) -> Condition:
    status = "True" if ok else "False"
    old = previous.condition(type_) if previous else None
    since = old.last_transition_time if old is not None and old.status == status else now
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:32000],
        observed_generation=generation,
        last_transition_time=since,
    )


@dataclass(frozen=True)
class Outstanding:
    """What keeps a release from Ready, as data: formatted only where it is shown (conditions, the gate's refusal,
    notifications), never searched as text."""

    items: list[ItemStatus]
    """Required pre-deployment items not satisfied: Failed first (the cluster must change), then Pending."""
    approvals: list[ApprovalStatus]
    """Required approvals not granted (Pending, Stale or Rejected)."""

    @property
    def item_texts(self) -> list[str]:
        return [f"{s.id} ({s.state}: {s.message})" for s in self.items]

    @property
    def approval_texts(self) -> list[str]:
        return [f"{a.role} ({a.state})" for a in self.approvals]

    @property
    def stale(self) -> bool:
        return any(a.state == "Stale" for a in self.approvals)


def outstanding(status: ReleaseStatus, checklist: ReadinessChecklist | None) -> Outstanding:
    """The required pre-deployment items not satisfied and the required approvals not granted."""
    required = {i.id for i in checklist.spec.items if i.required and i.phase == "pre"} if checklist else set()
    open_items = [s for s in status.items if s.id in required and s.state not in SATISFIED]
    open_items.sort(key=lambda s: s.state != "Failed")  # stable: checklist order within each
    needed = {a.role for a in checklist.spec.approvals if a.required} if checklist else set()
    approvals = [a for a in status.approvals if a.role in needed and a.state != "Approved"]
    return Outstanding(open_items, approvals)


def _list(texts: list[str], limit: int = 10) -> str:
    shown = "; ".join(texts[:limit])
    return shown + (f"; and {len(texts) - limit} more" if len(texts) > limit else "")


def _active_waiver(waivers: Sequence[Waiver], item_id: str, now: dt.datetime) -> Waiver | None:
    """The counted waiver of `item_id` that lasts longest, if one is in force at `now`."""
    active = [w for w in waivers if item_id in w.items and w.until > now]
    return max(active, key=lambda w: w.until, default=None)


def _evaluate_items(
    inp: EvaluationInput, approvals: list[ApprovalStatus], counted: Tally, fingerprint: str
) -> list[ItemStatus]:
    release, checklist, now = inp.release, inp.checklist, inp.now
    if checklist is None:
        return []
    previous = release.status
    prev_items = {i.id: i for i in previous.items} if previous else {}
    by_role = {a.role: a for a in approvals}
    admitted = (previous is not None and previous.admitted_at is not None) or inp.admitted
    items = []
    for item in checklist.spec.items:
        if item.phase == "post" and not admitted:
            result = CheckResult.pending("post-deployment: evaluated once the gate admits the release")
        else:
            result = evaluate_item(item, inp, by_role, counted, fingerprint)
        state: ItemState = result.state
        message = result.message
        waiver = _active_waiver(counted.waivers, item.id, now)
        if state != "Passed" and waiver is not None:
            state = "Waived"
            until = f"{waiver.until:%Y-%m-%dT%H:%M:%SZ}"
            by = f"{signer_of(waiver.signoff)} ({waiver.signoff.spec.role})"
            message = (
                f"waived by {by} until {until}: {note(waiver.signoff.spec.comment)} "
                f"(was {result.state}: {result.message})"
            )
        old = prev_items.get(item.id)
        checked_at = old.checked_at if old and old.state == state and old.message == message else now
        items.append(ItemStatus(id=item.id, state=state, message=message[:4000], checked_at=checked_at))
    return items


def _summarize(status: ReleaseStatus, checklist: ReadinessChecklist | None) -> Summary:
    counts = Counter(s.state for s in status.items)
    missing_items = outstanding(status, checklist).items
    required_roles = {a.role for a in checklist.spec.approvals if a.required} if checklist else set()
    approved = sum(1 for a in status.approvals if a.role in required_roles and a.state == "Approved")
    return Summary(
        total=len(status.items),
        passed=counts["Passed"],
        failed=counts["Failed"],
        pending=counts["Pending"],
        waived=counts["Waived"],
        not_applicable=counts["NotApplicable"],
        required_outstanding=len(missing_items),
        approvals_required=len(required_roles),
        approvals_approved=approved,
        progress=f"{counts['Passed']}/{len(status.items)}",
        approvals=f"{approved}/{len(required_roles)}",
    )


@dataclass(frozen=True)
class _Verdict:
    ok: bool
    reason: str
    message: str


def _verdicts(
    status: ReleaseStatus,
    checklist: ReadinessChecklist | None,
    blocker: Blocker | None,
    snapshot: CandidateSnapshot | None = None,
) -> tuple[_Verdict, _Verdict, _Verdict]:
    """(Ready, ChecksPassed, Approved)."""
    missing = outstanding(status, checklist)
    missing_items, missing_approvals = missing.item_texts, missing.approval_texts
    if blocker is not None:
        stalled = _Verdict(False, blocker.reason, blocker.message)
        return stalled, stalled, stalled
    has_workload_items = checklist is not None and any(i.check.workload or i.check.cel for i in checklist.spec.items)
    if snapshot is not None and not snapshot.workloads and has_workload_items:
        # Not Stalled: the candidate may simply not be deployed yet.
        checks = _Verdict(
            False,
            Reason.NO_CANDIDATE_WORKLOADS,
            f"no Deployment, StatefulSet or DaemonSet in {snapshot.namespace} matches the candidate selector; "
            f"label the candidate app.kubernetes.io/name={snapshot.application}, set spec.candidate.selector, or "
            "check spec.candidate.namespace",
        )
    elif missing_items:
        checks = _Verdict(
            False,
            Reason.ITEMS_OUTSTANDING,
            f"{len(missing_items)} required item(s) outstanding: {_list(missing_items)}",
        )
    else:
        pre = {i.id for i in checklist.spec.items if i.phase == "pre"} if checklist else set()
        done = sum(1 for s in status.items if s.id in pre and s.state in SATISFIED)
        checks = _Verdict(True, Reason.ALL_ITEMS_PASSED, f"{done} pre-deployment item(s) satisfied")
    if missing_approvals:
        approved = _Verdict(
            False,
            Reason.APPROVALS_STALE if missing.stale else Reason.APPROVALS_MISSING,
            f"{len(missing_approvals)} approval(s) outstanding: {_list(missing_approvals)}",
        )
    else:
        count = sum(1 for a in status.approvals if a.state == "Approved")
        approved = _Verdict(True, Reason.APPROVED, f"{count} approval(s) granted")
    if checks.ok and approved.ok:
        ready = _Verdict(True, Reason.READY, "every required item and approval is satisfied")
    else:
        failing = [v for v in (checks, approved) if not v.ok]
        ready = _Verdict(False, failing[0].reason, "; ".join(v.message for v in failing))
    return ready, checks, approved


def _post_deployment(status: ReleaseStatus, checklist: ReadinessChecklist | None) -> _Verdict | None:
    post_ids = {i.id for i in checklist.spec.items if i.phase == "post"} if checklist else set()
    if not post_ids:
        return None
    post = [s for s in status.items if s.id in post_ids]
    failing = [s for s in post if s.state == "Failed"]
    if status.admitted_at is None:
        return _Verdict(False, Reason.POST_PENDING, "the release has not been admitted into production yet")
    if failing:
        return _Verdict(False, Reason.POST_FAILING, _list([f"{s.id}: {s.message}" for s in failing]))
    if all(s.state in SATISFIED for s in post):
        return _Verdict(True, Reason.POST_HEALTHY, f"{len(post)} post-deployment item(s) satisfied")
    return _Verdict(False, Reason.POST_WATCHING, "post-deployment items are still being watched")


def evaluate_release(inp: EvaluationInput) -> ReleaseStatus:
    release, checklist, now = inp.release, inp.checklist, inp.now
    previous = release.status
    generation = release.metadata.generation
    candidate, too_large = bounded_candidate(candidate_status(inp.snapshot, environment_fields(checklist)))
    counted = inp.tally()
    waivers = waiver_fingerprint(counted.waivers)
    approvals = evaluate_approvals(checklist, counted, candidate.fingerprint, waivers) if checklist else []
    status = ReleaseStatus(
        observed_generation=generation,
        items=_evaluate_items(inp, approvals, counted, candidate.fingerprint),
        approvals=approvals,
        refused_signoffs=[
            *counted.refused,
            *(
                RefusedSignoff(name=name, reason=f"the operator cannot read it ({why}); delete it and sign again")
                for name, why in sorted(inp.unreadable_signoffs.items())
            ),
        ][:MAX_REFUSED_SHOWN],
        waiver_fingerprint=waivers,
        candidate=candidate,
        admitted_at=(previous.admitted_at if previous else None) or (now if inp.admitted else None),
    )
    status.summary = _summarize(status, checklist)

    blocker = inp.blocker or too_large
    vetoes = [a for a in approvals if a.state == "Rejected"]
    if blocker is None and vetoes:
        blocker = Blocker(Reason.VETOED, "; ".join(f"{a.role} vetoed by {a.by}: {a.message}" for a in vetoes))
    ready, checks, approved = _verdicts(status, checklist, blocker, inp.snapshot)
    progressing = not ready.ok and blocker is None

    def cond(type_: str, v: _Verdict) -> Condition:
        return _condition(type_, v.ok, v.reason, v.message, generation, previous, now)

    status.conditions = [
        cond("Ready", ready),
        cond("ChecksPassed", checks),
        cond("Approved", approved),
        cond(
            "Reconciling",
            _Verdict(
                progressing, ready.reason if progressing else Reason.RECONCILED, ready.message if progressing else ""
            ),
        ),
        cond(
            "Stalled",
            _Verdict(
                blocker is not None,
                blocker.reason if blocker else Reason.NOT_STALLED,
                blocker.message if blocker else "",
            ),
        ),
    ]
    post = _post_deployment(status, checklist)
    if post is not None:
        status.conditions.append(cond("PostDeploymentHealthy", post))
    return status


def invalid_release_status(
    why: str, generation: int | None, previous: ReleaseStatus | None, now: dt.datetime
) -> ReleaseStatus:
    """The status of a release the operator's model cannot read (stored under an older schema): not Ready and
    Stalled with the reason, so `kubectl wait` and GitOps tools say why instead of waiting forever."""
    message = f"the operator cannot read this ReleaseReadiness ({why}); fix the field or recreate the release"
    status = ReleaseStatus(observed_generation=generation)
    status.conditions = [
        _condition(
            type_,
            ok,
            Reason.INVALID_SPEC if type_ != "Reconciling" else Reason.RECONCILED,
            text,
            generation,
            previous,
            now,
        )
        for type_, ok, text in (
            ("Ready", False, message),
            ("ChecksPassed", False, message),
            ("Approved", False, message),
            ("Reconciling", False, ""),
            ("Stalled", True, message),
        )
    ]
    return status


def status_changed(old: ReleaseStatus | None, new: ReleaseStatus) -> bool:
    """True when patching would change what the API server stores (timestamps carried over)."""
    if old is None:
        return True
    return old.to_dict() != new.to_dict()
