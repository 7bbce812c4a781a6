"""What a gate decision leaves behind: a Warning event on the release (RolloutRefused, RolloutWouldBeRefused*,
BreakGlass), rate-limited per release, and a queued notification. The admission adapter depends on this narrow
recorder (and on `AdmissionContext`), not on the operator's whole state: no import circle with handlers.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Hashable
from typing import Any

from release_readiness import API_VERSION
from release_readiness.admission.gate import Decision, GateRequest
from release_readiness.events import EventLimiter
from release_readiness.indexes import ClusterIndex
from release_readiness.kube import KubeApi
from release_readiness.notifications import gate_notification
from release_readiness.notifier import Notifier

__all__ = ["GateRecorder"]

log = logging.getLogger(__name__)


class GateRecorder:
    def __init__(
        self,
        index: ClusterIndex,
        api: KubeApi,
        events: EventLimiter,
        notifier: Notifier,
    ) -> None:
        self.index = index
        self.api = api
        self.events = events
        self.notifier = notifier
        self.background: set[asyncio.Task[Any]] = set()

    def on_gate_decision(self, req: GateRequest, decision: Decision) -> None:
        """Side effects of a real (not dry-run) gate decision: events on the release, after the answer."""
        if decision.release is None:
            return
        body = self.index.release_bodies.get(decision.release)
        if body is None:
            return
        involved = {**body, "apiVersion": API_VERSION, "kind": "ReleaseReadiness"}
        if decision.verdict == "break-glass":
            message = (
                f"{req.kind} {req.namespace}/{req.name} admitted by break-glass by {req.caller.username}: "
                f"{decision.break_glass_reason}"
            )
            # One a minute per workload and user: a loop of break-glass applies is one event (each is logged, counted).
            self._post(involved, "Warning", "BreakGlass", message, (req.kind, req.name, req.caller.username))
        elif decision.refused:
            # enforce: RolloutRefused; warn and audit: RolloutWouldBeRefusedWarn / ...Audit. One a minute per release.
            mode = (decision.mode or "").capitalize()
            reason = "RolloutRefused" if not decision.allowed else f"RolloutWouldBeRefused{mode}"
            self._post(involved, "Warning", reason, decision.message)
        if not (decision.refused or decision.verdict == "break-glass"):
            return
        if decision.verdict != "break-glass" and not self.notifier.refusal_allowed(*decision.release):
            return
        # Built after the answer is on its way, not on the request path.
        asyncio.get_running_loop().call_soon(self._notify, req, decision)

    def _notify(self, req: GateRequest, decision: Decision) -> None:
        """Refusals and break-glass to the notification sinks: queued, never waited for (notifier.py)."""
        try:
            self._queue_notification(req, decision)
        except Exception:  # nothing may break the loop's callbacks
            log.exception("could not queue the notification of a gate decision on %s/%s", req.namespace, req.name)

    def _queue_notification(self, req: GateRequest, decision: Decision) -> None:
        release = self.index.releases.get(decision.release) if decision.release else None
        if release is None:
            return
        found = gate_notification(
            release,
            self.index.checklists.get(release.spec.checklist),
            verdict=decision.verdict,
            refused=decision.refused,
            allowed=decision.allowed,
            mode=decision.mode,
            message=decision.message,
            kind=req.kind,
            name=req.name,
            template=req.gated.template(req.obj),
            user=req.caller.username,
            break_glass_reason=decision.break_glass_reason,
            now=dt.datetime.now(dt.UTC),
        )
        if found is not None:
            self.notifier.submit([found])

    def _post(self, involved: dict[str, Any], type_: str, reason: str, message: str, subject: Hashable = None) -> None:
        meta = involved.get("metadata") or {}
        if not self.events.allow((meta.get("namespace"), meta.get("name"), reason, subject), time.monotonic()):
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.api.post_event, involved, type_, reason, message)
        )
        self.background.add(task)
        task.add_done_callback(self.background.discard)
