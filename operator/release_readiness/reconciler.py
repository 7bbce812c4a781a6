"""The reconciler: re-evaluates releases when their inputs change and patches status only on change.

The watch tap (sync.py) feeds the ClusterIndex and calls `enqueue()` with the releases an object
affects; workers start once every watched kind is listed. Workers take releases off a deduplicating
queue, build the inputs from the index, call the pure `evaluate_release`, and write the status only
when it differs from what is stored. A slow periodic resync catches time-based changes (waiver
expiry, certificate days).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
import urllib3
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from release_readiness import API_VERSION, metrics
from release_readiness.api import ReleaseReadiness, ReleaseStatus
from release_readiness.checks.model import CheckResult
from release_readiness.config import Settings
from release_readiness.evaluation import (
    Blocker,
    EvaluationInput,
    Reason,
    evaluate_release,
    invalid_release_status,
    status_changed,
)
from release_readiness.events import EventLimiter
from release_readiness.indexes import ClusterIndex, Key
from release_readiness.kube import KubeApi
from release_readiness.metricgates import MetricGates, PrometheusClient
from release_readiness.notifications import Notification, status_notifications
from release_readiness.sync import ListingSync
from release_readiness.tasks import cancel

__all__ = ["Reconciler", "transition_events"]

log = logging.getLogger(__name__)

RETRY_FIRST_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
"""A failed reconcile is retried with exponential back-off, never in a tight loop."""

MISSING_SECRET_RETRY = 5.0
"""Seconds before a TLS Secret that was missing is looked for again (cert-manager may be issuing it)."""

CHANGED, PERIODIC = 0, 1
"""Reconciler.enqueue priorities: releases an object's change affects, then those of a periodic pass."""

PERIODIC_LAG_SECONDS = 30.0
"""How far behind later changes a periodic pass's release may fall: it goes before any change queued more than this
after it. A bound, not a strict priority: a steady stream of changes (anyone who can edit a watched object can make
one) must not keep the resync from ever running, since only the resync sees time pass (a waiver or signoff
expiring, a certificate's days, metric gates)."""

Event = tuple[str, str, str]
"""(type, reason, message) of a Kubernetes event."""


def transition_events(old: ReleaseStatus | None, new: ReleaseStatus) -> list[Event]:
    """Events for what changed between two statuses: Ready flips, vetoes, stale approvals."""
    events: list[Event] = []
    old_ready = old.condition("Ready") if old else None
    new_ready = new.condition("Ready")
    if new_ready is not None and (old_ready is None or old_ready.status != new_ready.status):
        if new_ready.status == "True":
            events.append(("Normal", "Ready", new_ready.message))
        elif old_ready is not None and old_ready.status == "True":
            events.append(("Warning", "NotReady", new_ready.message))
    old_stalled = old.condition("Stalled") if old else None
    new_stalled = new.condition("Stalled")
    if (
        new_stalled is not None
        and new_stalled.status == "True"
        and (old_stalled is None or old_stalled.status != "True" or old_stalled.reason != new_stalled.reason)
    ):
        events.append(("Warning", new_stalled.reason, new_stalled.message))
    old_approvals = {a.role: a.state for a in (old.approvals if old else [])}
    for a in new.approvals:
        if a.state in ("Stale", "Rejected") and old_approvals.get(a.role) != a.state:
            events.append(("Warning", f"Approval{a.state}", f"{a.role}: {a.message}"))
    old_post = old.condition("PostDeploymentHealthy") if old else None
    new_post = new.condition("PostDeploymentHealthy")
    if (
        new_post is not None
        and new_post.reason == "PostDeploymentChecksFailing"
        and (old_post is None or old_post.reason != new_post.reason)
    ):
        events.append(("Warning", "PostDeploymentCheckFailed", new_post.message))
    elif new_post is not None and new_post.status == "True" and (old_post is None or old_post.status != "True"):
        events.append(("Normal", "PostDeploymentHealthy", new_post.message))
    old_items = {i.id: i.state for i in (old.items if old else [])}
    for item in new.items:
        if item.state == "Failed" and old_items.get(item.id) not in (None, "Failed"):
            events.append(("Warning", "ItemFailed", f"{item.id}: {item.message}"))
    return events


@dataclass
class Reconciler:
    index: ClusterIndex
    api: KubeApi
    settings: Settings
    queue: asyncio.PriorityQueue[tuple[float, int, Key]] = field(default_factory=asyncio.PriorityQueue)
    """(due, order, release): due is when it was queued, PERIODIC_LAG_SECONDS later for a periodic pass, so a
    change's releases go before a periodic pass's queued at most that long before them."""
    queued: dict[Key, tuple[float, int]] = field(default_factory=dict)
    """Each queued release and its live entry's (due, order) (any other entry of it in the queue is stale)."""
    _order: int = 0
    active: set[Key] = field(default_factory=set)
    warned_waivers: set[tuple[Key, str]] = field(default_factory=set)
    failures: dict[Key, int] = field(default_factory=dict)
    retry_first_seconds: float = RETRY_FIRST_SECONDS
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    is_leader: Callable[[], bool] = lambda: True
    metric_gates: MetricGates | None = None
    _session: aiohttp.ClientSession | None = None
    sync: ListingSync | None = None
    events: EventLimiter = field(default_factory=EventLimiter)
    """Rate limits every event the operator posts (transitions here, gate refusals and break-glass in handlers)."""
    """When given, nothing is evaluated (no status written) before every watched kind is listed."""
    notify: Callable[[list[Notification]], None] = lambda _: None
    """Queues notifications of the status transitions written (notifier.py); never waits."""
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    """The time evaluations are made at (a unit test sets it)."""
    monotonic: Callable[[], float] = time.monotonic
    """The queue's clock (a unit test sets it)."""

    def enqueue(self, keys: Iterable[Key], priority: int = CHANGED) -> None:
        """Queue releases for evaluation, each once. A change's releases (CHANGED) go before those of a periodic
        pass (PERIODIC: the start, the resync, metric gates, an election) queued up to PERIODIC_LAG_SECONDS
        earlier, so a change does not wait behind a resync of every release, and a resync is never starved by a
        stream of changes; a release queued by a periodic pass and then changed moves ahead."""
        due = self.monotonic() + (PERIODIC_LAG_SECONDS if priority == PERIODIC else 0.0)
        for key in keys:
            queued = self.queued.get(key)
            if queued is None or due < queued[0]:
                self._order += 1
                self.queued[key] = (due, self._order)
                self.queue.put_nowait((due, self._order, key))

    async def _next(self) -> Key:
        """The next queued release (entries left behind when a release moved ahead are skipped)."""
        while True:
            due, order, key = await self.queue.get()
            if self.queued.get(key) == (due, order):
                del self.queued[key]
                return key

    async def start_soon(self) -> None:
        """Start the workers once every watched kind is listed, so the first evaluation sees the whole cluster."""
        self._tasks.append(asyncio.create_task(self._start()))

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession()
        client = PrometheusClient(self._session, self.settings.prometheus_timeout_seconds)
        self.metric_gates = MetricGates(client, self.settings.prometheus_url, self.settings.prometheus_urls)
        if self.sync is not None:
            await self.sync.wait()
        self._tasks += [asyncio.create_task(self._worker(i)) for i in range(self.settings.workers)]
        self._tasks.append(asyncio.create_task(self._resync()))
        self._tasks.append(asyncio.create_task(self._metrics_refresh()))
        self.enqueue(list(self.index.releases), PERIODIC)

    async def stop(self) -> None:
        await cancel(self._tasks)
        if self._session is not None:
            await self._session.close()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_seconds)
            self.enqueue(list(self.index.releases), PERIODIC)

    async def _metrics_refresh(self) -> None:
        """Metric values change without any Kubernetes event: look again at releases that have metric gates."""
        while True:
            await asyncio.sleep(self.settings.metrics_interval_seconds)
            self.enqueue(
                [k for k, r in self.index.releases.items() if self._has_metric_gates(r.spec.checklist)], PERIODIC
            )

    def _has_metric_gates(self, checklist: str) -> bool:
        found = self.index.checklists.get(checklist)
        return found is not None and any(i.check.prometheus is not None for i in found.spec.items)

    async def _worker(self, number: int) -> None:
        while True:
            key = await self._next()
            if not self.is_leader():  # the leader evaluates; on election everything is enqueued again
                metrics.forget_release(*key)
                continue
            if key in self.active:  # another worker has it; come back after it
                await asyncio.sleep(0.05)
                self.enqueue([key])
                continue
            self.active.add(key)
            started = time.perf_counter()
            try:
                await self.reconcile(key)
                self.failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as err:
                # The API server (or a webhook it calls) refused or timed out: transient, said in one line.
                self._retry_later(key, f"the API server did not take it: {_api_error(err)}", trace=False)
            except Exception:
                self._retry_later(key, "failed", trace=True)
            finally:
                metrics.RECONCILE_DURATION.observe(time.perf_counter() - started)
                self.active.discard(key)
            # Let the event loop run between evaluations: one that writes nothing awaits nothing, and a resync of
            # 2,000 unchanged releases held the loop for 20-30 s (no watch event read, no admission answered;
            # bench scale10).
            await asyncio.sleep(0)

    def _retry_later(self, key: Key, what: str, trace: bool) -> None:
        metrics.RECONCILE_ERRORS.inc()
        count = self.failures[key] = self.failures.get(key, 0) + 1
        delay = min(RETRY_MAX_SECONDS, self.retry_first_seconds * 2 ** (count - 1))
        (log.exception if trace else log.warning)(
            "reconcile of %s/%s %s (%d in a row); retrying in %.0fs",
            *key,
            what,
            count,
            delay,
            extra={"namespace": key[0], "release": key[1]},
        )
        asyncio.get_running_loop().call_later(delay, self.enqueue, [key])

    async def _refresh_tls_secrets(self, names: list[Key]) -> None:
        """Read the TLS Secrets Ingresses name (never a Secret watch): again after the TTL, sooner while missing."""
        now = time.monotonic()
        for key in names:
            ttl = self.settings.secret_ttl_seconds if key in self.index.tls_secrets else MISSING_SECRET_RETRY
            if now - self.index.tls_secret_read_at.get(key, -1e9) < ttl:
                continue
            body = await asyncio.to_thread(self.api.read_secret, *key)
            self.index.tls_secret_read_at[key] = now
            if body is None:
                self.index.tls_secrets.pop(key, None)
            else:
                self.index.tls_secrets[key] = body

    def build_input(
        self,
        key: Key,
        now: dt.datetime,
        metric_results: dict[str, CheckResult] | None = None,
        admitted: bool | None = None,
    ) -> EvaluationInput | None:
        release = self.index.releases.get(key)
        if release is None:
            return None
        checklist = self.index.checklists.get(release.spec.checklist)
        blocker: Blocker | None = None
        snapshot = None
        if checklist is None:
            known = ", ".join(sorted(self.index.checklists)) or "none exist yet"
            invalid = self.index.invalid_checklists.get(release.spec.checklist)
            detail = f" (it exists but is invalid: {invalid})" if invalid else ""
            blocker = Blocker(
                Reason.CHECKLIST_NOT_FOUND,
                f"ReadinessChecklist {release.spec.checklist!r} (spec.checklist) not found{detail}; create it "
                f"(kubectl apply -f deploy/checklists/), or create a new ReleaseReadiness following one of: {known} "
                "(spec.checklist is fixed at creation)",
            )
        elif release.spec.candidate.namespace not in self.index.namespaces:
            blocker = Blocker(
                Reason.CANDIDATE_NAMESPACE_NOT_FOUND,
                f"candidate namespace {release.spec.candidate.namespace!r} (spec.candidate.namespace) does not "
                "exist; create it, or create a new ReleaseReadiness whose spec.candidate.namespace is where the "
                "release candidate runs (it is fixed at creation)",
            )
        else:
            snapshot = self.index.snapshot(release, now)
        return EvaluationInput(
            release=release,
            checklist=checklist,
            snapshot=snapshot,
            signoffs=self.index.signoffs_naming(key),  # tally counts only those bound to this object's uid
            unreadable_signoffs=self.index.invalid_signoffs_naming(key),
            metric_results=metric_results or {},
            blocker=blocker,
            admitted=bool(self.index.production_workloads(release)) if admitted is None else admitted,
            now=now,
        )

    async def metric_results(
        self, release: ReleaseReadiness, now: dt.datetime, admitted: bool
    ) -> dict[str, CheckResult]:
        checklist = self.index.checklists.get(release.spec.checklist)
        if checklist is None or self.metric_gates is None:
            return {}
        admitted_at = release.status.admitted_at if release.status else None
        if admitted_at is None and admitted:
            admitted_at = now
        return await self.metric_gates.evaluate(release, checklist, now, admitted_at)

    async def reconcile(self, key: Key) -> None:
        release = self.index.releases.get(key)
        if release is None:
            metrics.forget_release(*key)
            if key in self.index.invalid_releases:
                await self._report_invalid(key, self.index.invalid_releases[key])
            return
        await self._refresh_tls_secrets(self.index.tls_secret_names(release))
        now = self.clock().replace(microsecond=0)
        admitted = bool(self.index.production_workloads(release))
        inp = self.build_input(key, now, await self.metric_results(release, now, admitted), admitted)
        if inp is None:
            return
        new = evaluate_release(inp)
        old = release.status
        events = self._waiver_events(key, now)
        created = release.metadata.creation_timestamp
        metrics.observe_release(key[0], key[1], new, created.timestamp() if created else None)
        if status_changed(old, new):
            await asyncio.to_thread(self.api.replace_release_status, key[0], key[1], new.to_dict())
            metrics.STATUS_WRITES.inc()
            events = transition_events(old, new) + events
            try:  # the status is written: nothing here may fail the reconcile
                checklist = self.index.checklists.get(release.spec.checklist)
                self.notify(status_notifications(release, old, new, checklist, now))
            except Exception:
                log.exception("could not queue the notifications of %s/%s", *key)
            ready = new.condition("Ready")
            log.info(
                "release %s/%s: Ready=%s (%s)",
                key[0],
                key[1],
                ready.status if ready else "?",
                ready.reason if ready else "",
            )
        body = {
            **self.index.release_bodies.get(key, {}),
            "apiVersion": API_VERSION,
            "kind": "ReleaseReadiness",
        }
        for type_, reason, message in events:
            if self.events.allow((key[0], key[1], reason, None), time.monotonic()):
                await asyncio.to_thread(self.api.post_event, body, type_, reason, message)

    async def _report_invalid(self, key: Key, why: str) -> None:
        """A release stored under a schema the operator's model refuses: say so on its status (once)."""
        body = self.index.release_bodies.get(key, {})
        try:
            previous = ReleaseStatus.model_validate(body["status"]) if body.get("status") else None
        except ValidationError:
            previous = None
        generation = (body.get("metadata") or {}).get("generation")
        now = self.clock().replace(microsecond=0)
        new = invalid_release_status(why, generation if isinstance(generation, int) else None, previous, now)
        if status_changed(previous, new):
            log.warning("release %s/%s cannot be read: %s", key[0], key[1], why)
            await asyncio.to_thread(self.api.replace_release_status, key[0], key[1], new.to_dict())
            metrics.STATUS_WRITES.inc()

    def _waiver_events(self, key: Key, now: dt.datetime) -> list[Event]:
        release = self.index.releases.get(key)
        if release is None:
            return []
        events: list[Event] = []
        for signoff in self.index.signoffs_for(key):
            expires = signoff.spec.expires
            if signoff.spec.decision != "waive" or expires is None:
                continue
            soon = now < expires <= now + dt.timedelta(days=1)
            if soon and (key, signoff.metadata.name) not in self.warned_waivers:
                self.warned_waivers.add((key, signoff.metadata.name))
                waived = ", ".join(i.id for i in signoff.spec.items)
                events.append(
                    (
                        "Warning",
                        "WaiverExpiring",
                        f"the waiver of {waived} (ReleaseSignoff {signoff.metadata.name}) expires at "
                        f"{expires:%Y-%m-%dT%H:%M:%SZ}; fix the item(s) or have a waiving role sign a new waiver",
                    )
                )
        return events


def _api_error(err: Exception) -> str:
    """One line for an API error: the status and the server's message (a webhook timeout, a conflict)."""
    if isinstance(err, ApiException):
        message = str(err.reason or "")
        with contextlib.suppress(ValueError, AttributeError):
            message = str(json.loads(err.body or "{}").get("message") or message)
        return f"{err.status} {message}"[:500]
    return f"{type(err).__name__}: {err}"[:500]
