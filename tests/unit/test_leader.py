"""decide_lease: when a replica may take or keep the reconciler's Lease."""

from __future__ import annotations

import datetime as dt

from release_readiness.leader import LeaseState, decide_lease

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def test_no_lease_or_a_released_one_can_be_taken() -> None:
    assert decide_lease(None, "a", NOW)
    assert decide_lease(LeaseState(None, NOW, 15), "a", NOW)


def test_my_own_lease_is_renewed() -> None:
    assert decide_lease(LeaseState("a", NOW - dt.timedelta(seconds=5), 15), "a", NOW)


def test_someone_elses_live_lease_is_respected_until_it_expires() -> None:
    assert not decide_lease(LeaseState("b", NOW - dt.timedelta(seconds=14), 15), "a", NOW)
    assert decide_lease(LeaseState("b", NOW - dt.timedelta(seconds=16), 15), "a", NOW)
