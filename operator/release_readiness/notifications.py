"""Notifications, as pure logic: which transitions people hear about, what the message says, where it goes.

Six transitions: a release starts waiting for a role's sign-off (`ApprovalNeeded`), is vetoed (`Vetoed`),
turns Ready (`Ready`), a rollout is refused at the gate (`RolloutRefused`), a rollout is admitted by
break-glass (`BreakGlass`), post-deployment checks fail (`PostDeploymentFailed`). Status transitions come from
the leader's status writes (`status_notifications(old, new)`); gate transitions from whichever replica answered
(`gate_notification`). Each carries a `key` that names the transition instance the same way on every replica
and after every restart: the ledger (notifier.py) records each (key, sink) once, which is what makes a
notification go out once.

Sinks are Secrets (the URL is a credential) in the operator's namespace, labelled
`readiness.dev/notification-sink: "true"`, read by `parse_sink`; `routes` picks the sinks of a notification
(per namespace, per checklist, per transition, per role). `slack_body`, `webhook_body` and `cloudevent` build
what is sent. The runtime (queue, retries, ledger, HTTP) is notifier.py.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from release_readiness import API_VERSION
from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseStatus
from release_readiness.constants import Label, Reason
from release_readiness.evaluation import outstanding
from release_readiness.tally import who_may

__all__ = [
    "SINK_LABEL",
    "Notification",
    "Sink",
    "SinkError",
    "Transition",
    "cloudevent",
    "delivery_id",
    "gate_notification",
    "parse_sink",
    "routes",
    "slack_body",
    "status_notifications",
    "webhook_body",
]

SINK_LABEL: str = Label.NOTIFICATION_SINK.value
"""Label (value "true") of the Secrets that are notification sinks, in the operator's namespace."""

MAX_TEXT = 1500
"""Characters of a refusal or failure message a notification carries (the release's status has the rest)."""


class Transition(StrEnum):
    APPROVAL_NEEDED = "ApprovalNeeded"
    VETOED = "Vetoed"
    READY = "Ready"
    ROLLOUT_REFUSED = "RolloutRefused"
    BREAK_GLASS = "BreakGlass"
    POST_DEPLOYMENT_FAILED = "PostDeploymentFailed"


class SinkFormat(StrEnum):
    SLACK = "slack"
    WEBHOOK = "webhook"
    CLOUDEVENTS = "cloudevents"


@dataclass(frozen=True)
class Notification:
    """One transition of one release, formatted for people: what happened, what is needed, who may do it, and the
    command that does it."""

    transition: Transition
    key: str
    """Names this transition instance the same way on every replica: the ledger's de-duplication key."""
    namespace: str
    release: str
    uid: str
    application: str
    version: str
    checklist: str
    summary: str
    needed: str
    who: str
    command: str
    details: str = ""
    role: str = ""
    time: str = ""

    @property
    def id(self) -> str:
        """A stable id of the transition (the CloudEvents id): the same on every replica and every retry."""
        return hashlib.sha256(self.key.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        fields = {k: str(data.get(k, "")) for k in cls.__dataclass_fields__}
        return cls(**{**fields, "transition": Transition(fields["transition"])})  # type: ignore[arg-type]


def delivery_id(key: str, sink: str) -> str:
    """The ledger entry of (notification key, sink): a valid ConfigMap data key."""
    return "n-" + hashlib.sha256(f"{key}\n{sink}".encode()).hexdigest()[:40]


def _iso(when: dt.datetime | None) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}" if when else ""


def _short(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Release:
    namespace: str
    name: str
    uid: str
    application: str
    version: str
    checklist: str

    @classmethod
    def of(cls, release: ReleaseReadiness) -> _Release:
        meta = release.metadata
        return cls(
            meta.namespace or "",
            meta.name or "",
            meta.uid or "",
            release.spec.application,
            release.spec.version,
            release.spec.checklist,
        )

    @property
    def where(self) -> str:
        return f"ReleaseReadiness {self.namespace}/{self.name} ({self.application} {self.version})"

    def status_command(self, *flags: str) -> str:
        return " ".join(["kubectl readiness status", self.name, "-n", self.namespace, *flags])

    def notification(self, transition: Transition, discriminator: str, **text: str) -> Notification:
        return Notification(
            transition=transition,
            key=f"{self.uid}/{transition}/{discriminator}",
            namespace=self.namespace,
            release=self.name,
            uid=self.uid,
            application=self.application,
            version=self.version,
            checklist=self.checklist,
            **text,
        )


_WAITING = ("Missing", "Stale")


def _on_call(release: ReleaseReadiness) -> str:
    d = release.spec.deployment
    people = ([d.on_call_lead] if d and d.on_call_lead else []) + (list(d.on_call_members) if d else [])
    return f"the on-call team ({', '.join(people)})" if people else "the release's on-call team"


def status_notifications(
    release: ReleaseReadiness,
    old: ReleaseStatus | None,
    new: ReleaseStatus,
    checklist: ReadinessChecklist | None,
    now: dt.datetime,
) -> list[Notification]:
    """What people hear about when the leader writes `new` over `old` (edges only: a status that stays the same
    says nothing again)."""
    r = _Release.of(release)
    out: list[Notification] = []
    at = _iso(now)
    fingerprint = new.candidate.fingerprint if new.candidate else ""
    old_fingerprint = old.candidate.fingerprint if old and old.candidate else ""
    old_approvals = {a.role: a for a in (old.approvals if old else [])}
    for a in new.approvals:
        before = old_approvals.get(a.role)
        approval = checklist.approval(a.role) if checklist else None
        if approval is None:
            continue
        was_waiting = before is not None and before.state in _WAITING and bool(old_fingerprint)
        if a.state in _WAITING and fingerprint and not was_waiting and approval.required:
            title = f" ({approval.title})" if approval.title else ""
            out.append(
                r.notification(
                    Transition.APPROVAL_NEEDED,
                    f"{a.role}/{_digest(fingerprint, new.waiver_fingerprint)}",
                    summary=f"{r.where} waits for a sign-off as {a.role}{title}",
                    needed=f"a sign-off as {a.role} for candidate {fingerprint}"
                    + (f" ({a.message})" if a.state == "Stale" else ""),
                    who=who_may(approval),
                    command=f"kubectl readiness approve {r.name} --role {a.role} -n {r.namespace}",
                    details=f"review it with `{r.status_command('--outstanding')}`; to veto: "
                    f"`kubectl readiness reject {r.name} --role {a.role} --comment WHY -n {r.namespace}`",
                    role=a.role,
                    time=at,
                )
            )
        if a.state == "Rejected" and (before is None or (before.state, before.by, before.at) != (a.state, a.by, a.at)):
            out.append(
                r.notification(
                    Transition.VETOED,
                    f"{a.role}/{a.by}/{_iso(a.at)}",
                    summary=f"{r.where} is vetoed by {a.by} as {a.role}",
                    needed=f"the veto withdrawn by {a.by} (a veto holds until its signer withdraws it)",
                    who=f"{a.by} only",
                    command=f"kubectl readiness withdraw {r.name} --role {a.role} -n {r.namespace}",
                    details=_short(a.message),
                    role=a.role,
                    time=at,
                )
            )
    ready, old_ready = new.condition("Ready"), old.condition("Ready") if old else None
    approvals = new.approvals
    if ready is not None and ready.status == "True" and (old_ready is None or old_ready.status != "True"):
        out.append(
            r.notification(
                Transition.READY,
                # What made it Ready, not when: a leader that took over from a stale index names it the same way.
                _digest(fingerprint, new.waiver_fingerprint, *(f"{a.role}={a.by}@{_iso(a.at)}" for a in approvals)),
                summary=f"{r.where} is Ready: the gate admits its rollout into {r.namespace}",
                needed=f"nothing: roll out {r.application} {r.version} (pipelines waiting on Ready go on)",
                who=f"whoever deploys {r.application} to {r.namespace}",
                command=r.status_command(),
                details=ready.message,
                time=_iso(ready.last_transition_time),
            )
        )
    post, old_post = new.condition("PostDeploymentHealthy"), old.condition("PostDeploymentHealthy") if old else None
    if post is not None and post.reason == Reason.POST_FAILING:
        failing = sorted(i.id for i in new.items if i.state == "Failed" and _is_post(checklist, i.id))
        old_failing = {i.id for i in (old.items if old else []) if i.state == "Failed" and _is_post(checklist, i.id)}
        was_failing = old_post is not None and old_post.reason == Reason.POST_FAILING
        if not was_failing or not set(failing) <= old_failing:
            out.append(
                r.notification(
                    Transition.POST_DEPLOYMENT_FAILED,
                    _digest(fingerprint, *failing),
                    summary=f"{r.where}: post-deployment checks fail in {r.namespace} ({', '.join(failing)})",
                    needed="a fix or a rollback of the rollout",
                    who=_on_call(release),
                    command=r.status_command("--outstanding"),
                    details=_short(post.message),
                    time=at,
                )
            )
    return out


def _is_post(checklist: ReadinessChecklist | None, item_id: str) -> bool:
    return checklist is not None and any(i.id == item_id and i.phase == "post" for i in checklist.spec.items)


def gate_notification(
    release: ReleaseReadiness,
    checklist: ReadinessChecklist | None,
    *,
    verdict: str,
    refused: bool,
    allowed: bool,
    mode: str | None,
    message: str,
    kind: str,
    name: str,
    template: Mapping[str, Any],
    user: str,
    break_glass_reason: str | None,
    now: dt.datetime,
) -> Notification | None:
    """What people hear about a gate decision on a rollout of `release`: refusals (and, in warn and audit mode,
    what would have been refused) and break-glass admissions. A CD tool retrying the same rollout is one
    notification: the key names the workload and its pod template, not the request."""
    r = _Release.of(release)
    shape = _digest(json.dumps(template, sort_keys=True, default=str))
    status = release.status or ReleaseStatus()
    missing = outstanding(status, checklist)
    items = missing.item_texts
    roles = [a.role for a in missing.approvals]
    approvals = missing.approval_texts
    holders = [f"{role}: {who_may(a)}" for role in roles if checklist and (a := checklist.approval(role))]
    who = "; ".join(holders) or f"the owners of {r.application} (see the outstanding items)"
    if verdict == "break-glass":
        return r.notification(
            Transition.BREAK_GLASS,
            f"{kind}/{name}/{shape}/{user}",
            summary=f"{kind} {r.namespace}/{name} was admitted by break-glass by {user} although {r.where} "
            "is not Ready",
            needed=f"a review of the break-glass rollout (reason: {break_glass_reason or 'none given'}), and the "
            f"release made Ready ({len(items)} item(s), {len(approvals)} approval(s) outstanding)",
            who=who,
            command=r.status_command("--outstanding"),
            details=_short("; ".join(items[:5] + approvals)),
            time=_iso(now),
        )
    if not refused:
        return None
    what = "was refused" if not allowed else f"would be refused ({mode} mode: admitted)"
    return r.notification(
        Transition.ROLLOUT_REFUSED,
        f"{kind}/{name}/{shape}/{verdict}/{mode}",
        summary=f"the rollout of {kind} {r.namespace}/{name} (by {user}) {what}: {r.where} does not admit it",
        needed=_short(message.replace("\n  - ", "; ").replace("\n", " ")),
        who=who,
        command=r.status_command("--outstanding"),
        details=_short("; ".join(items[:5] + approvals)),
        time=_iso(now),
    )


# -- sinks -----------------------------------------------------------------------------------------------------


class SinkError(ValueError):
    """A sink Secret that cannot be used; the message names the Secret, the key and the fix."""


@dataclass(frozen=True)
class Sink:
    name: str
    """The Secret's name."""
    url: str = field(repr=False)
    format: SinkFormat = SinkFormat.WEBHOOK
    structured: bool = False
    """cloudevents: structured mode (application/cloudevents+json) instead of binary mode."""
    namespaces: frozenset[str] = frozenset()
    checklists: frozenset[str] = frozenset()
    transitions: frozenset[Transition] = frozenset()
    roles: frozenset[str] = frozenset()
    """ApprovalNeeded and Vetoed only for these roles (other transitions are not role-scoped)."""


def _words(value: str) -> frozenset[str]:
    return frozenset(v.strip() for v in value.replace("\n", ",").split(",") if v.strip())


def parse_sink(secret: Mapping[str, Any]) -> Sink:
    """A sink from a Secret as the API server returns it (data base64-encoded); SinkError says what to fix."""
    meta = secret.get("metadata") or {}
    where = f"Secret {meta.get('namespace', '')}/{meta.get('name', '')}"
    data: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            data[key] = base64.b64decode(value).decode().strip()
        except (binascii.Error, UnicodeDecodeError) as err:
            raise SinkError(f"{where}: data.{key} is not base64-encoded UTF-8 text ({err})") from err
    url = data.get("url", "")
    if not url.startswith(("https://", "http://")) or len(url) > 2048 or any(c.isspace() for c in url):
        raise SinkError(f"{where}: data.url must be an http(s) URL of at most 2048 characters; set it")
    try:
        fmt = SinkFormat(data.get("format", "webhook"))
    except ValueError:
        raise SinkError(
            f"{where}: data.format {data.get('format')!r} is not one of {', '.join(SinkFormat)}; set one"
        ) from None
    mode = data.get("mode", "binary")
    if mode not in ("binary", "structured"):
        raise SinkError(f"{where}: data.mode {mode!r} must be binary or structured (CloudEvents content mode)")
    names = _words(data.get("events", ""))
    unknown = sorted(names - set(Transition))
    if unknown:
        raise SinkError(
            f"{where}: data.events names unknown transitions {', '.join(unknown)}; use {', '.join(Transition)}"
        )
    return Sink(
        name=str(meta.get("name", "")),
        url=url,
        format=fmt,
        structured=mode == "structured",
        namespaces=_words(data.get("namespaces", "")),
        checklists=_words(data.get("checklists", "")),
        transitions=frozenset(Transition(n) for n in names),
        roles=_words(data.get("roles", "")),
    )


def routes(notification: Notification, sinks: Sequence[Sink]) -> list[Sink]:
    """The sinks that want `notification` (an empty filter lets everything through)."""

    def wants(s: Sink) -> bool:
        if s.namespaces and notification.namespace not in s.namespaces:
            return False
        if s.checklists and notification.checklist not in s.checklists:
            return False
        if s.transitions and notification.transition not in s.transitions:
            return False
        return not (s.roles and notification.role and notification.role not in s.roles)

    return [s for s in sinks if wants(s)]


# -- what is sent ----------------------------------------------------------------------------------------------


def text(n: Notification) -> str:
    """The message people read (Slack mrkdwn; plain enough for any chat)."""
    lines = [
        f"*{n.transition}*: {n.summary}",
        f"*Needed*: {n.needed}",
        f"*Who*: {n.who}",
        f"*Run*: `{n.command}`",
    ]
    if n.details:
        lines.append(n.details)
    return "\n".join(lines)


def _slack_escape(value: str) -> str:
    """Slack's control characters escaped: a veto comment or a workload name cannot ping <!channel> or hide a link."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(n: Notification) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message (Slack, Mattermost, Rocket.Chat read `text`)."""
    escaped = _slack_escape(text(n))
    return {"text": escaped, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": escaped[:3000]}}]}


def webhook_body(n: Notification) -> dict[str, Any]:
    """The generic JSON webhook body (and the CloudEvents data)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ReleaseNotification",
        "id": n.id,
        "transition": str(n.transition),
        "release": {
            "namespace": n.namespace,
            "name": n.release,
            "uid": n.uid,
            "application": n.application,
            "version": n.version,
            "checklist": n.checklist,
        },
        "role": n.role or None,
        "summary": n.summary,
        "needed": n.needed,
        "who": n.who,
        "command": n.command,
        "details": n.details,
        "time": n.time,
        "text": text(n),
    }


CLOUDEVENT_TYPE_PREFIX = "dev.readiness.release."


def cloudevent(n: Notification, structured: bool) -> tuple[dict[str, str], bytes]:
    """(headers, body) of a CloudEvents 1.0 HTTP message, binary mode (attributes in ce- headers, data as the
    body) or structured mode (one application/cloudevents+json document)."""
    attributes = {
        "specversion": "1.0",
        "id": n.id,
        "source": f"/apis/{API_VERSION}/namespaces/{n.namespace}/releasereadinesses/{n.release}",
        "type": CLOUDEVENT_TYPE_PREFIX + str(n.transition),
        "subject": f"{n.namespace}/{n.release}",
    }
    if n.time:
        attributes["time"] = n.time
    data = webhook_body(n)
    if structured:
        doc = {**attributes, "datacontenttype": "application/json", "data": data}
        return {"Content-Type": "application/cloudevents+json; charset=utf-8"}, json.dumps(doc).encode()
    headers = {f"ce-{k}": v for k, v in attributes.items()}
    headers["Content-Type"] = "application/json"
    return headers, json.dumps(data).encode()
