"""Rate limits of the Kubernetes events the operator posts, per object (and of the notifications it queues).

Every event path goes through one `EventLimiter`: gate refusals, break-glass notices and the reconciler's
transition events. A CD tool retrying a refused rollout, a person flapping a signoff, or a flood of
break-glass requests cannot flood a release's events (nor the API server): at most one event per
(object, reason, subject) per interval. Metrics and logs still record every occurrence.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

__all__ = ["EVENT_INTERVAL", "EventLimiter"]

EVENT_INTERVAL = 60.0
"""Seconds between two events of the same reason about the same object and subject."""

_MAX_KEYS = 10_000


@dataclass
class EventLimiter:
    interval: float = EVENT_INTERVAL
    _last: dict[Hashable, float] = field(default_factory=dict)

    def seen(self, key: Hashable, now: float) -> bool:
        """Whether `key` was allowed less than an interval before `now` (records nothing)."""
        last = self._last.get(key)
        return last is not None and now - last < self.interval

    def allow(self, key: Hashable, now: float) -> bool:
        """Whether an event with this key may be posted at `now` (monotonic seconds); records it if so."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        if len(self._last) >= _MAX_KEYS:  # forget what is past its interval; bounded memory whatever the keys
            self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
            if len(self._last) >= _MAX_KEYS:
                return False
        self._last[key] = now
        return True
