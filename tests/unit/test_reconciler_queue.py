"""The reconciler's queue: a change's releases are evaluated before those of a periodic pass (the resync)."""

from __future__ import annotations

import asyncio

from release_readiness.config import Settings
from release_readiness.indexes import ClusterIndex, Key
from release_readiness.reconciler import CHANGED, PERIODIC, PERIODIC_LAG_SECONDS, Reconciler


def order_of_evaluation(enqueue: list[tuple[list[Key], int]], at: list[float] | None = None) -> list[Key]:
    """The order one worker evaluates releases queued in these steps (step i at monotonic time at[i], default 0)."""
    times = iter(at or [0.0] * len(enqueue))
    now = [0.0]

    async def run() -> list[Key]:
        seen: list[Key] = []
        done = asyncio.Event()

        class Recording(Reconciler):
            async def reconcile(self, key: Key) -> None:
                seen.append(key)
                if not self.queued:
                    done.set()

        reconciler = Recording(ClusterIndex(), api=None, settings=Settings(workers=1))  # type: ignore[arg-type]
        reconciler.monotonic = lambda: now[0]
        for keys, priority in enqueue:
            now[0] = next(times)
            reconciler.enqueue(keys, priority)
        worker = asyncio.create_task(reconciler._worker(0))
        await asyncio.wait_for(done.wait(), timeout=30)
        worker.cancel()
        return seen

    return asyncio.run(run())


def test_a_change_goes_before_a_resync_of_every_release() -> None:
    resync = [("prod", f"r{i}") for i in range(5)]
    seen = order_of_evaluation([(resync, PERIODIC), ([("prod", "changed")], 0)])
    assert seen == [("prod", "changed"), *resync]


def test_a_release_queued_by_the_resync_and_then_changed_moves_ahead_and_is_evaluated_once() -> None:
    resync = [("prod", f"r{i}") for i in range(5)]
    seen = order_of_evaluation([(resync, PERIODIC), ([("prod", "r3")], 0)])
    assert seen == [("prod", "r3"), ("prod", "r0"), ("prod", "r1"), ("prod", "r2"), ("prod", "r4")]


def test_a_periodic_pass_does_not_push_back_a_queued_change() -> None:
    seen = order_of_evaluation([([("prod", "b")], PERIODIC), ([("prod", "a")], 0), ([("prod", "a")], PERIODIC)])
    assert seen == [("prod", "a"), ("prod", "b")]


def test_a_stream_of_changes_never_starves_the_resync() -> None:
    """Only the resync sees a waiver or signoff expire: a change queued long after it (anyone who can edit a
    watched object can keep changes coming) goes behind it, so the expiry is written and the gate refuses."""
    resync = [("prod", f"r{i}") for i in range(3)]
    late = PERIODIC_LAG_SECONDS + 1
    seen = order_of_evaluation(
        [(resync, PERIODIC), ([("team", "soon")], CHANGED), ([("team", "late")], CHANGED)], at=[0.0, 1.0, late]
    )
    assert seen == [("team", "soon"), *resync, ("team", "late")]


def test_a_change_to_a_release_the_resync_queued_long_ago_keeps_its_place() -> None:
    seen = order_of_evaluation(
        [([("prod", "a"), ("prod", "b")], PERIODIC), ([("prod", "b")], CHANGED)], at=[0.0, PERIODIC_LAG_SECONDS + 1]
    )
    assert seen == [("prod", "a"), ("prod", "b")]


def test_the_worker_lets_the_event_loop_run_between_evaluations() -> None:
    """An evaluation that writes nothing awaits nothing: without a yield, a resync of every release held the event
    loop (no watch event read, no admission answered) until the whole queue was done."""

    async def run() -> list[str]:
        seen: list[str] = []
        done = asyncio.Event()

        class Silent(Reconciler):
            async def reconcile(self, key: Key) -> None:
                seen.append(key[1])
                if not self.queued:
                    done.set()

        reconciler = Silent(ClusterIndex(), api=None, settings=Settings(workers=1))  # type: ignore[arg-type]
        reconciler.enqueue([("prod", f"r{i}") for i in range(50)], PERIODIC)
        worker = asyncio.create_task(reconciler._worker(0))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen.append("other task")
        await asyncio.wait_for(done.wait(), timeout=30)
        worker.cancel()
        return seen

    seen = asyncio.run(run())
    assert seen.index("other task") < 5
