"""The reconciler's queue: a change's releases are evaluated before those of a periodic pass (the resync)."""

from __future__ import annotations

import asyncio

from release_readiness.config import Settings
from release_readiness.indexes import ClusterIndex, Key
from release_readiness.reconciler import PERIODIC, Reconciler


def order_of_evaluation(enqueue: list[tuple[list[Key], int]]) -> list[Key]:
    async def run() -> list[Key]:
        seen: list[Key] = []
        done = asyncio.Event()

        class Recording(Reconciler):
            async def reconcile(self, key: Key) -> None:
                seen.append(key)
                if not self.queued:
                    done.set()

        reconciler = Recording(ClusterIndex(), api=None, settings=Settings(workers=1))  # type: ignore[arg-type]
        for keys, priority in enqueue:
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
