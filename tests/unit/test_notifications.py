"""Notifications as pure logic: transitions, keys, messages, sinks, routes, payloads; and the ledger's claims."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseStatus
from release_readiness.api.common import Condition
from release_readiness.api.release import ApprovalStatus, CandidateStatus, ItemStatus
from release_readiness.config import Settings
from release_readiness.notifications import (
    SINK_LABEL,
    Notification,
    Sink,
    SinkError,
    SinkFormat,
    Transition,
    cloudevent,
    gate_notification,
    parse_sink,
    routes,
    slack_body,
    status_notifications,
    webhook_body,
)
from release_readiness.notifier import MAX_PENDING, Ledger, Notifier, backoff, may_claim
from release_readiness_dev.fakekube import FakeKubeApi

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)

CHECKLIST = ReadinessChecklist.model_validate(
    {
        "metadata": {"name": "pre-production"},
        "spec": {
            "items": [
                {"id": "limits", "section": "S", "title": "t", "check": {"workload": "resourceLimits"}},
                {"id": "errors", "section": "S", "title": "t", "phase": "post", "check": {"workload": "replicas"}},
                {"id": "latency", "section": "S", "title": "t", "phase": "post", "check": {"workload": "replicas"}},
            ],
            "approvals": [
                {"role": "security-lead", "title": "Security Lead", "groups": ["security-leads"]},
                {"role": "qa-lead", "users": ["quinn"], "required": False},
            ],
        },
    }
)


def release(**deployment: Any) -> ReleaseReadiness:
    spec: dict[str, Any] = {"application": "payments-api", "version": "3.2.0", "candidate": {"namespace": "stg"}}
    if deployment:
        spec["deployment"] = deployment
    meta = {"name": "payments-api-3.2.0", "namespace": "payments-prod", "uid": "u-1"}
    return ReleaseReadiness.model_validate({"metadata": meta, "spec": spec})


def cond(type_: str, status: str, reason: str = "R", message: str = "", at: dt.datetime = NOW) -> Condition:
    return Condition(type=type_, status=status, reason=reason, message=message, last_transition_time=at)  # type: ignore[arg-type]


def status(
    *approvals: tuple[str, str],
    fingerprint: str = "sha256:aa",
    ready: str = "False",
    ready_at: dt.datetime = NOW,
    by: str | None = None,
    post: str | None = None,
    failed: tuple[str, ...] = (),
) -> ReleaseStatus:
    conditions = [cond("Ready", ready, at=ready_at)]
    if post:
        conditions.append(cond("PostDeploymentHealthy", "False", post, "errors: 0.2 > 0.01"))
    return ReleaseStatus(
        conditions=conditions,
        approvals=[
            ApprovalStatus(role=r, state=s, by=by if s != "Missing" else None, at=NOW if by else None)  # type: ignore[arg-type]
            for r, s in approvals
        ],
        items=[ItemStatus(id=i, state="Failed", message="bad") for i in failed],
        candidate=CandidateStatus(fingerprint=fingerprint),
    )


def transitions(old: ReleaseStatus | None, new: ReleaseStatus, rel: ReleaseReadiness | None = None) -> list[Any]:
    return [(n.transition, n.role) for n in status_notifications(rel or release(), old, new, CHECKLIST, NOW)]


def test_a_required_role_is_announced_once_the_candidate_is_inspected() -> None:
    uninspected = status(("security-lead", "Missing"), ("qa-lead", "Missing"), fingerprint="")
    assert transitions(None, uninspected) == []  # nothing to sign yet
    inspected = status(("security-lead", "Missing"), ("qa-lead", "Missing"))
    assert transitions(uninspected, inspected) == [(Transition.APPROVAL_NEEDED, "security-lead")]  # qa is optional
    assert transitions(inspected, inspected) == []  # still waiting: said once
    [n] = status_notifications(release(), None, inspected, CHECKLIST, NOW)
    assert n.summary == (
        "ReleaseReadiness payments-prod/payments-api-3.2.0 (payments-api 3.2.0) waits for a sign-off as "
        "security-lead (Security Lead)"
    )
    assert n.who == "groups security-leads"
    assert n.command == "kubectl readiness approve payments-api-3.2.0 --role security-lead -n payments-prod"
    assert n.key.startswith("u-1/ApprovalNeeded/security-lead/")
    assert n.time == "2026-11-28T12:00:00Z"


def test_an_approval_gone_stale_is_announced_again_with_a_new_key() -> None:
    approved = status(("security-lead", "Approved"), by="sam")
    first = status_notifications(release(), None, status(("security-lead", "Missing")), CHECKLIST, NOW)[0]
    stale = status(("security-lead", "Stale"), fingerprint="sha256:bb", by="sam")
    [again] = status_notifications(release(), approved, stale, CHECKLIST, NOW)
    assert again.transition == Transition.APPROVAL_NEEDED
    assert again.key != first.key


def test_a_veto_names_its_signer_and_is_said_once() -> None:
    vetoed = status(("security-lead", "Rejected"), by="mallory")
    [n] = status_notifications(release(), status(("security-lead", "Missing")), vetoed, CHECKLIST, NOW)
    assert n.transition == Transition.VETOED
    assert n.who == "mallory only"
    assert n.command == "kubectl readiness withdraw payments-api-3.2.0 --role security-lead -n payments-prod"
    assert transitions(vetoed, vetoed) == []


def test_ready_is_keyed_by_what_made_it_ready_not_when() -> None:
    waiting = status(("security-lead", "Missing"))
    one = status_notifications(release(), waiting, status(("security-lead", "Approved"), ready="True", by="sam"),
                               CHECKLIST, NOW)  # fmt: skip
    later = NOW + dt.timedelta(minutes=5)
    two = status_notifications(
        release(),
        waiting,
        status(("security-lead", "Approved"), ready="True", by="sam", ready_at=later),
        CHECKLIST,
        NOW,
    )
    assert [n.transition for n in one] == [Transition.READY]
    assert one[0].key == two[0].key  # a leader that took over from a stale index names it alike
    assert transitions(status(ready="True"), status(ready="True")) == []


def test_post_deployment_failures_are_announced_when_new_items_fail() -> None:
    rel = release(onCallLead="olga", onCallMembers=["oscar"])
    failing = status(post="PostDeploymentChecksFailing", failed=("errors",))
    [n] = status_notifications(rel, status(post="PostDeploymentWatching"), failing, CHECKLIST, NOW)
    assert n.transition == Transition.POST_DEPLOYMENT_FAILED
    assert n.who == "the on-call team (olga, oscar)"
    assert "post-deployment checks fail in payments-prod (errors)" in n.summary
    assert transitions(failing, failing, rel) == []
    worse = status(post="PostDeploymentChecksFailing", failed=("errors", "latency"))
    assert transitions(failing, worse, rel) == [(Transition.POST_DEPLOYMENT_FAILED, "")]
    assert transitions(status(post="PostDeploymentWatching"), status(post="PostDeploymentWatching")) == []


def gate(verdict: str, refused: bool, allowed: bool, mode: str = "enforce", **over: Any) -> Notification | None:
    waiting = status(("security-lead", "Missing")).to_dict()
    rel = ReleaseReadiness.model_validate({**release().to_dict(), "status": waiting})
    args: dict[str, Any] = {
        "verdict": verdict,
        "refused": refused,
        "allowed": allowed,
        "mode": mode,
        "message": "deployment payments-prod/api: ReleaseReadiness payments-prod/payments-api-3.2.0 is not Ready:\n"
        "  - limits (Failed: no limits)",
        "kind": "Deployment",
        "name": "api",
        "template": {"spec": {"containers": [{"name": "api", "image": "a:1"}]}},
        "user": "alice",
        "break_glass_reason": None,
        "now": NOW,
    }
    return gate_notification(rel, CHECKLIST, **{**args, **over})


def test_a_refusal_names_what_is_missing_and_who_may_sign() -> None:
    n = gate("not-ready", refused=True, allowed=False)
    assert n is not None
    assert n.transition == Transition.ROLLOUT_REFUSED
    assert n.summary.startswith("the rollout of Deployment payments-prod/api (by alice) was refused: ")
    assert n.needed == (
        "deployment payments-prod/api: ReleaseReadiness payments-prod/payments-api-3.2.0 is not Ready:; "
        "limits (Failed: no limits)"
    )
    assert n.who == "security-lead: groups security-leads"
    assert n.command == "kubectl readiness status payments-api-3.2.0 -n payments-prod --outstanding"
    # A retry of the same rollout (by anyone) is the same notification; another pod template another one.
    same = gate("not-ready", refused=True, allowed=False, user="bob")
    assert same is not None
    assert same.key == n.key
    other = gate("not-ready", refused=True, allowed=False, template={"spec": {"containers": [{"image": "a:2"}]}})
    assert other is not None
    assert other.key != n.key


def test_warn_mode_says_would_be_refused_and_passing_says_nothing() -> None:
    warned = gate("not-ready", refused=True, allowed=True, mode="warn")
    assert warned is not None
    assert "would be refused (warn mode: admitted)" in warned.summary
    assert gate("passed", refused=False, allowed=True) is None


def test_break_glass_names_the_user_and_the_reason() -> None:
    n = gate("break-glass", refused=False, allowed=True, user="sam", break_glass_reason="INC-1")
    assert n is not None
    assert n.transition == Transition.BREAK_GLASS
    assert "admitted by break-glass by sam" in n.summary
    assert "(reason: INC-1)" in n.needed


def secret(**data: str) -> dict[str, Any]:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {"metadata": {"name": "s", "namespace": "rr"}, "data": encoded}


def test_parse_sink_reads_the_secret() -> None:
    s = parse_sink(
        secret(
            url="https://hooks.example/x",
            format="cloudevents",
            mode="structured",
            namespaces="a, b",
            events="Ready,Vetoed",
            roles="security-lead",
            checklists="pre-production",
        )
    )
    assert s.format == SinkFormat.CLOUDEVENTS
    assert s.structured
    assert s.namespaces == {"a", "b"}
    assert s.transitions == {Transition.READY, Transition.VETOED}
    assert "hooks.example" not in repr(s)  # the URL is a credential: never in logs
    assert parse_sink(secret(url="http://r:8080/")).format == SinkFormat.WEBHOOK


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, "Secret rr/s: data.url must be an http(s) URL"),
        ({"url": "file:///etc/passwd"}, "data.url must be an http(s) URL"),
        ({"url": "https://x", "format": "teams"}, "data.format 'teams' is not one of slack, webhook, cloudevents"),
        ({"url": "https://x", "mode": "batch"}, "data.mode 'batch' must be binary or structured"),
        ({"url": "https://x", "events": "Ready,Deployed"}, "data.events names unknown transitions Deployed"),
    ],
)
def test_parse_sink_errors_name_the_secret_the_key_and_the_fix(data: dict[str, str], error: str) -> None:
    with pytest.raises(SinkError, match=error.replace("(", r"\(").replace(")", r"\)")):
        parse_sink(secret(**data))


def notification(transition: Transition = Transition.APPROVAL_NEEDED, role: str = "security-lead") -> Notification:
    return Notification(
        transition=transition, key=f"u-1/{transition}/x", namespace="payments-prod", release="r", uid="u-1",
        application="payments-api", version="3.2.0", checklist="pre-production", summary="S", needed="N",
        who="W", command="kubectl readiness status r -n payments-prod", role=role, time="2026-11-28T12:00:00Z",
    )  # fmt: skip


def test_routes_by_namespace_checklist_transition_and_role() -> None:
    n = notification()
    sinks = [
        Sink("all", "https://x"),
        Sink("ns", "https://x", namespaces=frozenset({"payments-prod"})),
        Sink("other-ns", "https://x", namespaces=frozenset({"orders-prod"})),
        Sink("other-list", "https://x", checklists=frozenset({"lite"})),
        Sink("ready-only", "https://x", transitions=frozenset({Transition.READY})),
        Sink("security", "https://x", roles=frozenset({"security-lead"})),
        Sink("qa", "https://x", roles=frozenset({"qa-lead"})),
    ]
    assert [s.name for s in routes(n, sinks)] == ["all", "ns", "security"]
    ready = notification(Transition.READY, role="")
    assert [s.name for s in routes(ready, sinks)] == ["all", "ns", "ready-only", "security", "qa"]


def test_payloads() -> None:
    n = notification()
    assert slack_body(n)["text"] == (
        "*ApprovalNeeded*: S\n*Needed*: N\n*Who*: W\n*Run*: `kubectl readiness status r -n payments-prod`"
    )
    sneaky = replace(n, details="no <!channel> <https://evil.example|see the fix> & more")
    assert "no &lt;!channel&gt; &lt;https://evil.example|see the fix&gt; &amp; more" in slack_body(sneaky)["text"]
    body = webhook_body(n)
    assert body["id"] == n.id
    assert body["release"] == {"namespace": "payments-prod", "name": "r", "uid": "u-1", "application": "payments-api",
                               "version": "3.2.0", "checklist": "pre-production"}  # fmt: skip
    headers, data = cloudevent(n, structured=False)
    assert headers == {
        "ce-specversion": "1.0",
        "ce-id": n.id,
        "ce-source": "/apis/readiness.dev/v1alpha1/namespaces/payments-prod/releasereadinesses/r",
        "ce-type": "dev.readiness.release.ApprovalNeeded",
        "ce-subject": "payments-prod/r",
        "ce-time": "2026-11-28T12:00:00Z",
        "Content-Type": "application/json",
    }
    assert json.loads(data) == body
    headers, data = cloudevent(n, structured=True)
    assert headers == {"Content-Type": "application/cloudevents+json; charset=utf-8"}
    doc = json.loads(data)
    assert doc["specversion"] == "1.0"
    assert doc["datacontenttype"] == "application/json"
    assert doc["data"] == body
    assert Notification.from_dict(n.to_dict()) == n


# -- the ledger ------------------------------------------------------------------------------------------------


def test_may_claim() -> None:
    def entry(state: str, by: str, ago: float) -> dict[str, str]:
        return {"state": state, "by": by, "at": f"{NOW - dt.timedelta(seconds=ago):%Y-%m-%dT%H:%M:%SZ}"}

    assert may_claim(None, "a", NOW, 60)
    assert not may_claim(entry("sent", "a", 0), "a", NOW, 60)
    assert not may_claim(entry("failed", "b", 999), "a", NOW, 60)
    assert may_claim(entry("pending", "a", 0), "a", NOW, 60)  # mine: a retry refreshes it
    assert not may_claim(entry("pending", "b", 30), "a", NOW, 60)  # b is on it
    assert may_claim(entry("pending", "b", 61), "a", NOW, 60)  # b went away


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff(a, 1, 10) for a in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def config_maps(api: FakeKubeApi) -> list[dict[str, Any]]:
    """The ConfigMaps (the ledgers) the fake API server holds."""
    return [body for (kind, _, _), body in api.objects.items() if kind == "ConfigMap"]


def ledger(api: FakeKubeApi, me: str) -> Ledger:
    return Ledger(api, "rr", me, claim_seconds=60)


def test_one_replica_claims_and_the_others_skip_until_its_claim_goes_stale() -> None:
    api = FakeKubeApi(clock=lambda: NOW)
    a, b = ledger(api, "a"), ledger(api, "b")
    n = notification()
    assert a.claim(n, "slack", NOW)
    assert not b.claim(n, "slack", NOW)
    assert b.claim(n, "webhook", NOW)  # per sink
    assert a.stale(NOW) == []
    later = NOW + dt.timedelta(seconds=61)
    assert [(s[0], s[1]) for s in a.stale(later)] == [(n, "slack"), (n, "webhook")]
    assert b.claim(n, "slack", later)  # a is gone: b takes over
    a.finish(n, "slack", "sent", later)  # a's late record does not overwrite b's claim
    b.finish(n, "slack", "sent", later)
    assert not a.claim(n, "slack", later + dt.timedelta(hours=1))
    entry = next(json.loads(v) for v in config_maps(api)[0]["data"].values() if '"slack"' in v)
    assert entry["state"] == "sent"
    assert entry["by"] == "b"
    assert "notification" not in entry  # the text goes once sent


def test_a_ledger_bounds_its_unsent_entries_and_goes_with_its_release() -> None:
    api = FakeKubeApi(clock=lambda: NOW)
    a = ledger(api, "a")
    for i in range(MAX_PENDING):
        assert a.claim(notification(), f"sink-{i}", NOW)
    assert not a.claim(notification(), "one-too-many", NOW)
    assert a.prune({"u-1"}, NOW) == 0
    assert a.prune({"u-2"}, NOW) == 0  # young: its release may be newer than the index
    assert a.prune({"u-2"}, NOW + dt.timedelta(minutes=11)) == 1
    assert config_maps(api) == []


def test_submit_queues_a_key_once_and_one_refusal_a_release_per_interval() -> None:
    notifier = Notifier(Settings(notify_refusal_interval_seconds=60, notify_queue_size=3), api=FakeKubeApi())
    refused = replace(notification(Transition.ROLLOUT_REFUSED), key="u-1/RolloutRefused/a")
    other = replace(refused, key="u-1/RolloutRefused/b")
    notifier.submit([refused, refused, other], now=0)
    assert [n.key for n in drain(notifier)] == [refused.key, other.key]
    notifier.submit([refused], now=61)  # a retry of `refused` is not queued again for a while
    assert drain(notifier) == []
    assert notifier.refusal_allowed("payments-prod", "r", now=0)
    assert not notifier.refusal_allowed("payments-prod", "r", now=30)  # one refusal a release per interval
    assert notifier.refusal_allowed("payments-prod", "r2", now=30)
    assert notifier.refusal_allowed("payments-prod", "r", now=61)
    ready = [replace(notification(Transition.READY), key=f"k{i}") for i in range(5)]
    notifier.submit(ready, now=100)  # the queue is bounded: the rest are dropped, not waited for
    assert len(drain(notifier)) == 3


def drain(notifier: Notifier) -> list[Any]:
    out = []
    while not notifier.queue.empty():
        out.append(notifier.queue.get_nowait())
        notifier._taken(out[-1])  # as the worker does
    return out


# -- the notifier against a local HTTP server, with the ledger in memory -----------------------------------------


def test_the_notifier_retries_a_failing_receiver_gives_up_on_a_wrong_url_and_drains_on_stop() -> None:
    import asyncio

    from aiohttp import web

    calls: Counter[str] = Counter()

    async def flaky(request: web.Request) -> web.Response:
        calls["flaky"] += 1
        return web.Response(status=503 if calls["flaky"] <= 2 else 200)

    async def gone(request: web.Request) -> web.Response:
        calls["gone"] += 1
        return web.Response(status=404)

    async def scenario() -> dict[str, dict[str, Any]]:
        app = web.Application()
        app.router.add_post("/flaky", flaky)
        app.router.add_post("/gone", gone)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        api = FakeKubeApi()
        sink = {"kind": "Secret", "metadata": {"namespace": "", "labels": {SINK_LABEL: "true"}}}
        for name, data in (
            ("flaky", {"url": f"http://127.0.0.1:{port}/flaky", "format": "slack"}),
            ("gone", {"url": f"http://127.0.0.1:{port}/gone"}),
        ):
            api.put({**secret(**data), **sink, "metadata": {**sink["metadata"], "name": name}})
        notifier = Notifier(Settings(identity="me", notify_retry_max_seconds=0.05), api, retry_first_seconds=0.01)
        await notifier.start()
        notifier.submit([notification()])
        states: dict[str, dict[str, Any]] = {}
        for _ in range(500):  # until both are recorded as finished
            data = next(iter(config_maps(api)), {}).get("data") or {}
            states = {e["sink"]: e for e in map(json.loads, data.values())}
            if len(states) == 2 and all(e["state"] != "pending" for e in states.values()):
                break
            await asyncio.sleep(0.02)
        notifier.submit([replace(notification(), key="after")])
        await notifier.stop()  # what is queued is still sent
        await runner.cleanup()
        return states

    states = asyncio.run(scenario())
    assert states["flaky"]["state"] == "sent"
    assert states["gone"]["state"] == "failed"
    assert states["gone"]["why"] == "HTTP 404"
    assert calls["gone"] == 2  # once for each notification: a wrong URL is not retried
    assert calls["flaky"] == 4  # 503, 503, 200; and the one queued before stop


def test_one_namespace_cannot_fill_the_queue_for_every_other() -> None:
    """Red-team 3 finding 3: a developer who may create releases in one namespace (hundreds, each waiting for five
    roles) filled the queue, and every other team's notifications were dropped. One namespace holds at most three
    quarters; a place frees when its item is taken."""
    notifier = Notifier(Settings(notify_queue_size=8), api=FakeKubeApi())
    flood = [replace(notification(Transition.READY), key=f"flood-{i}", namespace="mallory-dev") for i in range(20)]
    notifier.submit(flood, now=0)
    assert notifier.queue.qsize() == 6
    team = [replace(notification(Transition.READY), key=f"team-{i}") for i in range(2)]
    notifier.submit(team, now=0)
    assert [n.namespace for n in drain(notifier)] == ["mallory-dev"] * 6 + ["payments-prod"] * 2
    notifier.submit([replace(flood[0], key="flood-later")], now=0)
    assert [n.key for n in drain(notifier)] == ["flood-later"]
