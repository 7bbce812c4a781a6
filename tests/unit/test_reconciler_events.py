"""Events on transitions only: Ready flips, stalls, stale and rejected approvals, failures, expiring waivers."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from release_readiness.api import ReleaseReadiness, ReleaseStatus
from release_readiness.config import Settings
from release_readiness.indexes import ClusterIndex
from release_readiness.reconciler import Reconciler, transition_events
from release_readiness_dev.fakekube import FakeKubeApi

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def status(
    ready: str,
    *,
    stalled: str = "False",
    reason: str = "ItemsOutstanding",
    approvals: list[dict[str, Any]] | None = None,
    items: list[dict[str, Any]] | None = None,
) -> ReleaseStatus:
    def cond(type_: str, value: str, why: str) -> dict[str, Any]:
        return {
            "type": type_,
            "status": value,
            "reason": why,
            "message": f"{type_} {why}",
            "lastTransitionTime": NOW.isoformat(),
        }

    return ReleaseStatus.model_validate(
        {
            "conditions": [
                cond("Ready", ready, reason),
                cond("Stalled", stalled, reason if stalled == "True" else "Progressing"),
            ],
            "approvals": approvals or [],
            "items": items or [],
        }
    )


def test_nothing_changed_means_no_events() -> None:
    assert transition_events(status("False"), status("False")) == []


def test_ready_and_not_ready() -> None:
    assert transition_events(status("False"), status("True", reason="ReleaseReady")) == [
        ("Normal", "Ready", "Ready ReleaseReady")
    ]
    assert transition_events(status("True", reason="ReleaseReady"), status("False")) == [
        ("Warning", "NotReady", "Ready ItemsOutstanding")
    ]


def test_a_veto_a_stale_approval_and_a_newly_failed_item() -> None:
    old = status(
        "False", approvals=[{"role": "security-lead", "state": "Approved"}], items=[{"id": "limits", "state": "Passed"}]
    )
    new = status(
        "False",
        stalled="True",
        reason="Vetoed",
        approvals=[{"role": "security-lead", "state": "Stale", "message": "images changed"}],
        items=[{"id": "limits", "state": "Failed", "message": "no memory limit"}],
    )
    assert transition_events(old, new) == [
        ("Warning", "Vetoed", "Stalled Vetoed"),
        ("Warning", "ApprovalStale", "security-lead: images changed"),
        ("Warning", "ItemFailed", "limits: no memory limit"),
    ]


def one_release() -> ClusterIndex:
    """An index holding release prod/r (uid-r), whose checklist does not exist: its status is written once."""
    index = ClusterIndex()
    release = ReleaseReadiness.model_validate(
        {
            "metadata": {"name": "r", "namespace": "prod", "uid": "uid-r"},
            "spec": {"application": "a", "version": "1", "candidate": {"namespace": "stg"}},
        }
    )
    index.releases[("prod", "r")] = release
    return index


def test_an_expiring_waiver_is_announced_once() -> None:
    index = one_release()
    for name, item, expires in (("soon", "limits", dt.timedelta(hours=5)), ("later", "probes", dt.timedelta(days=9))):
        index.upsert(
            "ReleaseSignoff",
            {
                "metadata": {"name": name, "namespace": "prod"},
                "spec": {
                    "release": "r",
                    "releaseUID": "uid-r",
                    "role": "vp",
                    "decision": "waive",
                    "items": [{"id": item}],
                    "comment": "vendor",
                    "expires": (NOW + expires).isoformat(),
                    "signer": {"username": "vp-1"},
                },
            },
        )
    api = FakeKubeApi()
    clock = [NOW]
    reconciler = Reconciler(index, api=api, settings=Settings(), clock=lambda: clock[0])

    def waiver_events() -> list[tuple[str, str, str]]:
        asyncio.run(reconciler.reconcile(("prod", "r")))
        return [(type_, reason, message) for _, type_, reason, message in api.events if reason == "WaiverExpiring"]

    first = waiver_events()
    assert first == [
        (
            "Warning",
            "WaiverExpiring",
            "the waiver of limits (ReleaseSignoff soon) expires at 2026-11-27T17:00:00Z; fix the item(s) or have a "
            "waiving role sign a new waiver",
        )
    ]
    clock[0] = NOW + dt.timedelta(hours=1)
    assert waiver_events() == first  # not again


async def written(api: FakeKubeApi, times: int) -> None:
    """Until the reconciler has tried to write a status `times` times."""
    await asyncio.to_thread(api.wait_for_calls, "replace_release_status", times)


def test_a_failing_reconcile_backs_off_and_recovers() -> None:
    api = FakeKubeApi()
    api.fail("replace_release_status", RuntimeError("the API server is away"), RuntimeError("still away"))

    async def run() -> dict[tuple[str, str], int]:
        reconciler = Reconciler(one_release(), api=api, settings=Settings(workers=1), retry_first_seconds=0.05)
        await reconciler.start_soon()
        await written(api, 3)
        await asyncio.sleep(0.3)  # time for a (wrong) fourth call to show
        await reconciler.stop()
        return reconciler.failures

    failures = asyncio.run(run())
    calls = api.called("replace_release_status")
    assert len(calls) == 3, "retried twice, then succeeded, then stopped"
    # A timer never fires early, so lower bounds hold however loaded the machine is: 0.05 s, then 0.1 s.
    assert calls[1] - calls[0] >= 0.05 * 0.95, "the first retry waits the first back-off"
    assert calls[2] - calls[1] >= 0.1 * 0.95, "the second retry waits twice as long"
    assert failures == {}


def test_events_are_limited_per_object_reason_and_subject() -> None:
    from release_readiness.events import EventLimiter

    limiter = EventLimiter(interval=60)
    key = ("prod", "r", "RolloutRefused", None)
    assert limiter.allow(key, 0.0)
    assert not limiter.allow(key, 59.0)
    assert limiter.allow(("prod", "r", "BreakGlass", ("Deployment", "api", "sre")), 1.0)
    assert limiter.allow(("prod", "other", "RolloutRefused", None), 1.0)
    assert limiter.allow(key, 60.0)


def test_the_event_limiter_stays_bounded_whatever_the_keys() -> None:
    from release_readiness import events

    limiter = events.EventLimiter(interval=60)
    for i in range(events._MAX_KEYS + 500):
        limiter.allow(("ns", f"r{i}", "X", None), float(i // 1000))
    assert len(limiter._last) <= events._MAX_KEYS
    assert limiter.allow(("ns", "late", "X", None), 1000.0)  # old keys are forgotten once past the interval


def test_an_api_error_is_retried_and_logged_in_one_line_a_bug_with_its_traceback(caplog: Any) -> None:
    import json
    import logging

    from kubernetes.client.exceptions import ApiException

    timeout = ApiException(status=500, reason="Internal Server Error")
    message = 'Internal error occurred: failed calling webhook "x": context deadline exceeded'
    timeout.body = json.dumps({"message": message})
    api = FakeKubeApi()
    api.fail("replace_release_status", timeout, KeyError("bug"))

    async def run() -> None:
        reconciler = Reconciler(one_release(), api=api, settings=Settings(workers=1), retry_first_seconds=0.01)
        await reconciler.start_soon()
        await written(api, 3)
        await reconciler.stop()

    with caplog.at_level(logging.WARNING, logger="release_readiness.reconciler"):
        asyncio.run(run())
    api, bug = [r for r in caplog.records if "reconcile of prod/r" in r.getMessage()]
    assert api.levelno == logging.WARNING
    assert api.exc_info is None
    assert "the API server did not take it: 500 Internal error occurred: failed calling webhook" in api.getMessage()
    assert bug.levelno == logging.ERROR
    assert bug.exc_info is not None
