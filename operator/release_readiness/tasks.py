"""Stopping background asyncio tasks (the reconciler's and the notifier's workers, the webhook's accept loop)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

__all__ = ["cancel"]


async def cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel every task, then wait until each has ended (its CancelledError swallowed); the list is emptied."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()
