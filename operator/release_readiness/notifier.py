"""Sends notifications (notifications.py) to their sinks: once, with retries, never in anyone's way.

- Never blocking: reconciliation and admission only `submit()`, which puts onto a bounded queue without
  waiting (a full queue drops the notification, counted and logged). Workers do the rest.
- Once: before sending, a replica claims (notification key, sink) in the ledger, one ConfigMap per release in
  the operator's namespace (`rr-notified-<release uid>`), written with its resourceVersion (compare-and-swap).
  A replica that finds the entry sent, failed, or claimed by another replica recently does not send. The leader
  sends what status transitions announce; gate refusals and break-glass happen on whichever replica answered,
  so the first to claim sends and the others (a CD tool retrying through another replica, a restart) skip it.
- Retried: a failed POST (connection error, timeout, 408, 429, 5xx) is tried again with exponential back-off,
  refreshing the claim each time, until `notify_give_up_seconds`; other 4xx answers are final (a wrong URL).
  A claim not refreshed for `notify_claim_seconds` (its replica died or dropped it) is swept up by the leader.
- Bounded: the queue, the entries of a ledger, what a notification carries, and refusals: at most one a
  release per notify_refusal_interval_seconds and replica.
A replica that dies between sending and recording the send may have it sent again once by the sweep: receivers
that must not see one twice de-duplicate on the CloudEvents id / the body's `id`, stable across replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes.client.exceptions import ApiException

from release_readiness import __version__
from release_readiness.config import Settings
from release_readiness.constants import Label
from release_readiness.events import EventLimiter
from release_readiness.kube import KubeApi
from release_readiness.metrics import NOTIFICATION_QUEUE, NOTIFICATIONS
from release_readiness.notifications import (
    SINK_LABEL,
    Notification,
    Sink,
    SinkError,
    SinkFormat,
    Transition,
    cloudevent,
    delivery_id,
    parse_sink,
    routes,
    slack_body,
    webhook_body,
)
from release_readiness.tasks import cancel

__all__ = ["LEDGER_LABEL", "Ledger", "Notifier", "backoff", "may_claim"]

log = logging.getLogger(__name__)

LEDGER_LABEL: str = Label.NOTIFICATION_LEDGER.value
LEDGER_PREFIX = "rr-notified-"
MAX_ENTRIES = 200
"""Entries one release's ledger keeps: the oldest finished ones go first."""
MAX_PENDING = 50
"""Unsent notifications (with their text) one release's ledger holds; more are dropped, counted."""
RETRY_FIRST_SECONDS = 1.0
PRUNE_AFTER_SECONDS = 600.0
DRAIN_SECONDS = 5.0
"""On shutdown, how long queued notifications may still be sent (within a pod's 30 s grace period)."""
"""A ledger younger than this is kept even if its release is not in the index (yet)."""
RECENT_SECONDS = 600.0
"""A notification key this replica queued is not queued again for this long (the ledger has it anyway)."""


def backoff(attempt: int, first: float, cap: float) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): doubling from `first`, at most `cap`."""
    return float(min(cap, first * 2 ** max(0, attempt - 1)))


def _iso(when: dt.datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}"


def _parse(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def may_claim(entry: Mapping[str, Any] | None, me: str, now: dt.datetime, claim_seconds: float) -> bool:
    """May replica `me` send this (key, sink)? Not when it was sent or given up, nor while another replica's
    claim is fresh; yes when nobody has it, it is mine, or the other's claim went stale (that replica is gone)."""
    if entry is None:
        return True
    if entry.get("state") != "pending":
        return False
    if entry.get("by") == me:
        return True
    try:
        claimed = _parse(str(entry.get("at", "")))
    except ValueError:
        return True
    return (now - claimed).total_seconds() > claim_seconds


def _prune(data: dict[str, str]) -> None:
    """Keep at most MAX_ENTRIES, dropping the oldest finished ones (pending ones are never dropped)."""
    if len(data) < MAX_ENTRIES:
        return
    finished = sorted(
        (json.loads(v).get("at", ""), k) for k, v in data.items() if json.loads(v).get("state") != "pending"
    )
    for _at, k in finished[: len(data) - MAX_ENTRIES + 1]:
        del data[k]


@dataclass
class Ledger:
    """The record of sent notifications: one ConfigMap per release in the operator's namespace. Synchronous API
    calls: run in a thread."""

    api: KubeApi
    namespace: str
    me: str
    claim_seconds: float

    def _name(self, uid: str) -> str:
        return LEDGER_PREFIX + uid

    def _update(self, n: Notification, change: Callable[[dict[str, str]], bool]) -> bool:
        """Read-modify-write with compare-and-swap; `change` edits the data and says whether to write."""
        for _ in range(8):
            body = self.api.read_config_map(self.namespace, self._name(n.uid)) or {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": self._name(n.uid),
                    "namespace": self.namespace,
                    "labels": {LEDGER_LABEL: "true"},
                    "annotations": {"readiness.dev/release": f"{n.namespace}/{n.release}", "readiness.dev/uid": n.uid},
                },
                "data": {},
            }
            data = body.setdefault("data", None) or {}
            body["data"] = data
            if not change(data):
                return False
            if self.api.write_config_map(self.namespace, body):
                return True
        log.warning("notification ledger %s/%s: too many concurrent writers", self.namespace, self._name(n.uid))
        return False

    def claim(self, n: Notification, sink: str, now: dt.datetime, since: dt.datetime | None = None) -> bool:
        """Claim (n, sink) for this replica (or refresh its claim); False when it is not ours to send."""
        entry_id = delivery_id(n.key, sink)

        def change(data: dict[str, str]) -> bool:
            old = json.loads(data[entry_id]) if entry_id in data else None
            if not may_claim(old, self.me, now, self.claim_seconds):
                return False
            pending = sum(1 for v in data.values() if json.loads(v).get("state") == "pending")
            if old is None and pending >= MAX_PENDING:
                log.warning("notification ledger of %s/%s holds %d unsent: dropping %s", n.namespace, n.release,
                            pending, n.key)  # fmt: skip
                return False
            _prune(data)
            first = (old or {}).get("since") or _iso(since or now)
            data[entry_id] = json.dumps(
                {"key": n.key, "sink": sink, "state": "pending", "by": self.me, "at": _iso(now), "since": first,
                 "notification": n.to_dict()},
                separators=(",", ":"),
            )  # fmt: skip
            return True

        return self._update(n, change)

    def finish(self, n: Notification, sink: str, state: str, now: dt.datetime, why: str = "") -> None:
        """Record (n, sink) as sent or failed (its text dropped: only the record stays)."""
        entry_id = delivery_id(n.key, sink)

        def change(data: dict[str, str]) -> bool:
            old = json.loads(data[entry_id]) if entry_id in data else {}
            if old and old.get("by") != self.me:  # another replica took it over meanwhile: its record stands
                return False
            record = {"key": n.key, "sink": sink, "state": state, "by": self.me, "at": _iso(now)}
            if why:
                record["why"] = why[:300]
            data[entry_id] = json.dumps(record, separators=(",", ":"))
            return True

        self._update(n, change)

    def stale(self, now: dt.datetime) -> list[tuple[Notification, str, dt.datetime]]:
        """Pending entries whose claim went stale: (notification, sink name, first claimed)."""
        out = []
        for cm in self.api.list_labelled("ConfigMap", self.namespace, f"{LEDGER_LABEL}=true"):
            for value in (cm.get("data") or {}).values():
                entry = json.loads(value)
                if entry.get("state") != "pending" or not may_claim(entry, "", now, self.claim_seconds):
                    continue
                with contextlib.suppress(KeyError, ValueError):
                    n = Notification.from_dict(entry["notification"])
                    out.append((n, str(entry["sink"]), _parse(entry.get("since", entry["at"]))))
        return out

    def prune(self, live_uids: set[str], now: dt.datetime) -> int:
        """Delete the ledgers of releases that no longer exist; how many. A young ledger stays: its release may be
        newer than this replica's index."""
        gone = 0
        for cm in self.api.list_labelled("ConfigMap", self.namespace, f"{LEDGER_LABEL}=true"):
            name = cm["metadata"]["name"]
            created = str(cm["metadata"].get("creationTimestamp") or "")
            with contextlib.suppress(ValueError):
                if (now - _parse(created)).total_seconds() < PRUNE_AFTER_SECONDS:
                    continue
            if name.startswith(LEDGER_PREFIX) and name[len(LEDGER_PREFIX) :] not in live_uids:
                self.api.delete_config_map(self.namespace, name)
                gone += 1
        return gone


@dataclass
class Delivery:
    notification: Notification
    sink: str
    since: dt.datetime
    attempts: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return self.notification.key, self.sink


@dataclass
class Notifier:
    settings: Settings
    api: KubeApi
    is_leader: Callable[[], bool] = lambda: True
    live_uids: Callable[[], set[str] | None] = lambda: None
    """The uids of the releases that exist, once every kind is listed (None before: nothing is pruned)."""
    queue: asyncio.Queue[Notification | Delivery] = field(init=False)
    ledger: Ledger = field(init=False)
    inflight: set[tuple[str, str]] = field(default_factory=set)
    _sinks: list[Sink] = field(default_factory=list)
    _sinks_read: float = -1e9
    _session: aiohttp.ClientSession | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    retry_first_seconds: float = RETRY_FIRST_SECONDS
    _recent: EventLimiter = field(default_factory=lambda: EventLimiter(RECENT_SECONDS))
    _refusals: EventLimiter = field(init=False)
    _warned: set[str] = field(default_factory=set)
    _queued: Counter[str] = field(default_factory=Counter)
    """Items on the queue per release namespace: no namespace may hold more than its share (namespace_share)."""

    def __post_init__(self) -> None:
        self._refusals = EventLimiter(self.settings.notify_refusal_interval_seconds)
        self.queue = asyncio.Queue(maxsize=self.settings.notify_queue_size)
        self.ledger = Ledger(
            self.api, self.settings.notify_namespace, self.settings.identity, self.settings.notify_claim_seconds
        )

    def submit(self, notifications: Iterable[Notification], now: float | None = None) -> None:
        """Queue notifications without waiting (called from reconciliation and admission). What this replica queued
        a moment ago is not queued again (a CD tool retrying a refused rollout costs no ledger read)."""
        now = time.monotonic() if now is None else now
        for n in notifications:
            if self._recent.seen(n.key, now):
                NOTIFICATIONS.labels(str(n.transition), "-", "repeated").inc()
                continue
            self._recent.allow(n.key, now)
            self._put(n)

    @property
    def namespace_share(self) -> int:
        """What one namespace's releases may hold of the queue: all but a quarter, which stays for the others.
        Red-team 3 finding 3: whoever may create releases in one namespace (a few hundred, each waiting for five
        roles) filled the queue, and every other team's notifications were dropped while it drained."""
        return self.queue.maxsize - self.queue.maxsize // 4 if self.queue.maxsize > 0 else 0

    def refusal_allowed(self, namespace: str, release: str, now: float | None = None) -> bool:
        """Whether a refusal of this release may be announced now: at most one per notify_refusal_interval_seconds
        (a flood of refused rollouts, each another pod template, is one message, and costs the gate one check
        each, not a message built each)."""
        if self._refusals.allow((namespace, release), time.monotonic() if now is None else now):
            return True
        NOTIFICATIONS.labels(str(Transition.ROLLOUT_REFUSED), "-", "limited").inc()
        return False

    def _put(self, item: Notification | Delivery) -> bool:
        n = item if isinstance(item, Notification) else item.notification
        share = self.namespace_share
        if isinstance(item, Notification) and share and self._queued[n.namespace] >= share:
            NOTIFICATIONS.labels(str(n.transition), "-", "dropped").inc()
            self._warn_once(
                f"notifications of namespace {n.namespace} dropped: its releases hold {share} of the queue's "
                f"{self.queue.maxsize} places (RR_NOTIFY_QUEUE_SIZE), the most one namespace may: a quarter stays for "
                "the others; the releases' status still says what they need"
            )
            return False
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            NOTIFICATIONS.labels(str(n.transition), "-", "dropped").inc()
            log.warning("notification queue full (%d): dropped %s", self.queue.maxsize, n.key)
            return False
        self._queued[n.namespace] += 1
        NOTIFICATION_QUEUE.set(self.queue.qsize())
        return True

    def _taken(self, item: Notification | Delivery) -> None:
        """An item left the queue: its namespace's share frees a place."""
        ns = (item if isinstance(item, Notification) else item.notification).namespace
        self._queued[ns] -= 1
        if self._queued[ns] <= 0:
            del self._queued[ns]

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.notify_timeout_seconds)
        agent = {"User-Agent": f"release-readiness/{__version__}"}
        self._session = aiohttp.ClientSession(timeout=timeout, headers=agent)
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.settings.notify_workers)]
        self._tasks.append(asyncio.create_task(self._sweep()))

    async def stop(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Stop, after giving the workers a moment to send what is queued (a rolling update loses nothing queued)."""
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), drain_seconds)
        await cancel(self._tasks)
        if self._session is not None:
            await self._session.close()

    async def sinks(self, fresh: bool = False) -> list[Sink]:
        """The sink Secrets, read again at most every notify_sinks_seconds (a Secret edit applies by then)."""
        if fresh or time.monotonic() - self._sinks_read >= self.settings.notify_sinks_seconds:
            secrets = await asyncio.to_thread(self._sink_secrets)
            sinks = []
            for secret in secrets:
                try:
                    sinks.append(parse_sink(secret))
                except SinkError as err:
                    self._warn_once(f"notification sink skipped: {err}")  # once per error, not once per listing
            self._sinks, self._sinks_read = sinks, time.monotonic()
        return self._sinks

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            log.warning("%s", message)

    def _sink_secrets(self) -> list[dict[str, Any]]:
        """The named sink Secrets (RR_NOTIFY_SINKS), or the labelled ones; what cannot be read is said once."""
        ns, names = self.settings.notify_namespace, self.settings.notify_sinks
        try:
            if names is None:
                return self.api.list_labelled("Secret", ns, f"{SINK_LABEL}=true")
            found = []
            for name in names:
                secret = self.api.read_named_secret(ns, name)
                if secret is None:
                    self._warn_once(f"notification sink Secret {ns}/{name} (RR_NOTIFY_SINKS) does not exist; create it")
                else:
                    found.append(secret)
            return found
        except ApiException as err:
            if err.status != 403:
                raise
            what = f"list Secrets in {ns}" if names is None else f"get the Secrets {', '.join(names)} in {ns}"
            self._warn_once(
                f"notifications off: the operator may not {what}; name the sink Secrets in RR_NOTIFY_SINKS "
                "(the chart's notifications.sinks), which grants `get` on exactly those"
            )
            return []

    async def _worker(self) -> None:
        while True:
            item = await self.queue.get()
            self._taken(item)
            NOTIFICATION_QUEUE.set(self.queue.qsize())
            try:
                if isinstance(item, Notification):
                    now = dt.datetime.now(dt.UTC)
                    for sink in routes(item, await self.sinks()):
                        await self._deliver(Delivery(item, sink.name, now))
                else:
                    await self._deliver(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # the API server away, a bug: log, never let a worker die
                log.exception("notification %s failed", getattr(item, "key", item))
            finally:
                self.queue.task_done()

    async def _deliver(self, d: Delivery) -> None:
        n = d.notification
        now = dt.datetime.now(dt.UTC)
        if not await asyncio.to_thread(self.ledger.claim, n, d.sink, now, d.since):
            if d.attempts == 0:
                NOTIFICATIONS.labels(str(n.transition), "-", "duplicate").inc()
            self.inflight.discard(d.key)
            return
        self.inflight.add(d.key)
        sink = next((s for s in await self.sinks() if s.name == d.sink), None)
        if sink is None:
            await self._finish(d, "failed", f"the sink Secret {d.sink} is gone or invalid", "-")
            return
        ok, final, why = await self._post(sink, n)
        if ok:
            await self._finish(d, "sent", "", sink.format)
            return
        d.attempts += 1
        age = (now - d.since).total_seconds()
        if final or age >= self.settings.notify_give_up_seconds:
            await self._finish(d, "failed", why, sink.format)
            return
        delay = backoff(d.attempts, self.retry_first_seconds, self.settings.notify_retry_max_seconds)
        NOTIFICATIONS.labels(str(n.transition), str(sink.format), "retried").inc()
        log.info("notification %s to %s failed (%s); retry %d in %.0fs", n.key, d.sink, why, d.attempts, delay)
        asyncio.get_running_loop().call_later(delay, self._retry, d)

    def _retry(self, d: Delivery) -> None:
        if not self._put(d):  # the sweep finds it once its claim is stale
            self.inflight.discard(d.key)

    async def _finish(self, d: Delivery, state: str, why: str, fmt: str) -> None:
        n = d.notification
        await asyncio.to_thread(self.ledger.finish, n, d.sink, state, dt.datetime.now(dt.UTC), why)
        self.inflight.discard(d.key)
        NOTIFICATIONS.labels(str(n.transition), str(fmt), state).inc()
        if state == "failed":
            log.warning("notification %s to %s given up after %d attempt(s): %s", n.key, d.sink, d.attempts, why)
        else:
            log.info("notification %s sent to %s", n.key, d.sink, extra={"namespace": n.namespace})

    async def _post(self, sink: Sink, n: Notification) -> tuple[bool, bool, str]:
        """(sent, final, why): final when trying again cannot help (a 4xx other than 408 and 429)."""
        assert self._session is not None
        if sink.format == SinkFormat.CLOUDEVENTS:
            headers, body = cloudevent(n, sink.structured)
        else:
            payload = slack_body(n) if sink.format == SinkFormat.SLACK else webhook_body(n)
            headers, body = {"Content-Type": "application/json"}, json.dumps(payload).encode()
        try:
            async with self._session.post(sink.url, data=body, headers=headers, allow_redirects=False) as resp:
                if 200 <= resp.status < 300:
                    return True, False, ""
                final = 300 <= resp.status < 500 and resp.status not in (408, 429)
                return False, final, f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError) as err:
            return False, False, f"{type(err).__name__}: {err}"[:200]

    async def _sweep(self) -> None:
        """The leader sends what a gone replica claimed and never finished, and drops ledgers of deleted releases."""
        while True:
            await asyncio.sleep(self.settings.notify_sweep_seconds)
            if not self.is_leader():
                continue
            try:
                now = dt.datetime.now(dt.UTC)
                for n, sink, since in await asyncio.to_thread(self.ledger.stale, now):
                    if (n.key, sink) not in self.inflight:
                        self._put(Delivery(n, sink, since))
                live = self.live_uids()
                if live is not None:
                    await asyncio.to_thread(self.ledger.prune, live, now)
            except Exception as err:
                log.warning("notification sweep failed: %s", err)
