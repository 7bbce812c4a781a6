"""No answer before the facts: the index is fed from Kopf's watch streams in order, and knows when each kind's
initial listing is complete.

Why a tap on the stream and not Kopf's handlers or a listing of our own:
- Kopf has no public "synced" signal. Its watch stream (kopf._cogs.clients.watching.infinite_watch) lists each
  kind page by page, yields every listed object as an event of type None, then a `Bookmark.LISTED` marker, then
  the watch events from the list's resourceVersion. That marker is the one exact "this kind is listed" signal.
- Kopf's `on.event` handlers run later, in per-object workers, batched, in no order across objects; a handler
  can even run with an older body than one that arrived after it. Counting handler calls cannot say when a
  listing has been processed.
- A paged list of our own beside Kopf's watch races it: an object deleted between our list and Kopf's never
  gets a DELETED event, and stays in the index forever (a deleted Ready release would keep admitting).
So `WatchTap` sees every raw event in the order of the stream, before Kopf dispatches it: the index is fed
exactly like an informer's store, a kind is listed when its LISTED marker passes, and a re-list (after a
"410 Gone") replaces the kind's objects, dropping those deleted while the watch was down.

`ListingSync` is the pure bookkeeping: which kinds must be listed, which are, and which are pending.
Optional kinds whose CRDs the cluster does not serve count as listed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from kopf._cogs.clients import api, errors, scanning, watching

from release_readiness import GROUP
from release_readiness.indexes import ClusterIndex, Key, Watched

__all__ = ["ListingSync", "WatchTap", "install", "register_tap", "unregister_tap"]

log = logging.getLogger(__name__)


@dataclass
class ListingSync:
    """Which kinds must be listed before the operator answers, and which are."""

    required: set[str]
    listed: set[str] = field(default_factory=set)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def mark_listed(self, kind: str) -> None:
        self.listed.add(kind)
        if self.synced:
            self.event.set()

    def not_required(self, kind: str) -> None:
        """An optional kind the cluster does not serve: nothing to list."""
        self.required.discard(kind)
        if self.synced:
            self.event.set()

    def is_listed(self, kind: str) -> bool:
        return kind in self.listed

    @property
    def synced(self) -> bool:
        return self.required <= self.listed

    def missing(self) -> list[str]:
        return sorted(self.required - self.listed)

    async def wait(self) -> None:
        await self.event.wait()


Feed = Callable[[list[Key]], None]


@dataclass
class WatchTap:
    """Feeds the index from raw watch events, in stream order; marks a kind listed at its LISTED marker."""

    index: ClusterIndex
    sync: ListingSync
    kinds: dict[tuple[str, str], str]
    """(group, plural) -> kind of every watched resource."""
    on_change: Feed
    handled: frozenset[tuple[str, str]] | None = None
    """(group, plural) of the kinds whose events Kopf must still dispatch (a handler acts on them); None: every
    kind. The others are only indexed here: Kopf would start a worker task per object (and hold its whole body) for a
    handler that does nothing: 45,000 of them when the operator starts on a large cluster (docs/benchmarks.md)."""
    _listing: dict[str, set[Key]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        index: ClusterIndex,
        sync: ListingSync,
        watched: Iterable[Watched],
        on_change: Feed,
        handled: frozenset[tuple[str, str]] | None = None,
    ) -> WatchTap:
        return cls(index, sync, {(w.group, w.plural): w.kind for w in watched}, on_change, handled)

    def dispatches(self, group: str, plural: str) -> bool:
        """Whether Kopf gets this resource's object events (else they are only indexed)."""
        return self.handled is None or (group, plural) in self.handled or (group, plural) not in self.kinds

    def __call__(self, group: str, plural: str, event: dict[str, Any] | None) -> None:
        """One raw event of the stream of (group, plural); None is the end of a listing."""
        kind = self.kinds.get((group, plural))
        if kind is None:
            return
        if event is None:
            self._listed(kind)
            return
        obj = event.get("object")
        if not obj or event.get("type") not in (None, "ADDED", "MODIFIED", "DELETED"):
            return  # BOOKMARKs carry no object
        if event.get("type") is None:
            meta = obj.get("metadata") or {}
            self._listing.setdefault(kind, set()).add((str(meta.get("namespace") or ""), str(meta.get("name"))))
        if event.get("type") == "DELETED":
            self.on_change(self.index.delete(kind, obj))
        else:
            self.on_change(self.index.upsert(kind, obj))

    def restart(self, group: str, plural: str) -> None:
        """A watch stream of (group, plural) starts again with a listing: what a listing broken off before its end
        (a dropped connection) saw does not count as seen by this one, else an object deleted in between (a
        release, a signoff) would stay in the index."""
        kind = self.kinds.get((group, plural))
        if kind is not None:
            self._listing.pop(kind, None)

    def _listed(self, kind: str) -> None:
        """A listing is over: what the index holds of this kind and the listing did not include is gone."""
        seen = self._listing.pop(kind, set())
        for namespace, name in self.index.keys(kind) - seen:
            self.on_change(self.index.delete(kind, {"metadata": {"namespace": namespace, "name": name}}))
        if not self.sync.is_listed(kind):
            log.info("listed every %s", kind)
        self.on_change(self.index.listed(kind))
        self.sync.mark_listed(kind)


# -- the patch of Kopf's watch stream ----------------------------------------------------------------------

_TAPS: dict[int, WatchTap] = {}
_original = watching.infinite_watch
_original_stream = watching.continuous_watch


def register_tap(settings: object, tap: WatchTap) -> None:
    """Tap the watch streams of the operator run with these Kopf settings (several operators may share a process)."""
    _TAPS[id(settings)] = tap


def unregister_tap(settings: object) -> None:
    _TAPS.pop(id(settings), None)


async def _tapped_watch(**kwargs: Any) -> AsyncIterator[Any]:
    resource = kwargs["resource"]
    settings = kwargs["settings"]
    async for raw_event in _original(**kwargs):
        tap = _TAPS.get(id(settings))
        if tap is not None:
            try:
                event = None if raw_event is watching.Bookmark.LISTED else cast(dict[str, Any], raw_event)
                tap(resource.group, resource.plural, event)
            except Exception:
                log.exception("indexing an event of %s failed", resource.plural)
            if not isinstance(raw_event, watching.Bookmark) and not tap.dispatches(resource.group, resource.plural):
                continue  # indexed only: no handler acts on it (Kopf still sees the listing's end)
        yield raw_event


async def _restarted_watch(**kwargs: Any) -> AsyncIterator[Any]:
    """Kopf's infinite_watch runs this for each (re)start of a stream, each beginning with a full listing."""
    tap = _TAPS.get(id(kwargs["settings"]))
    if tap is not None:
        tap.restart(kwargs["resource"].group, kwargs["resource"].plural)
    async for raw_event in _original_stream(**kwargs):
        yield raw_event


# -- Kopf's discovery scans: never half of our own API group -------------------------------------------------

OWN_PLURALS = frozenset({"readinesschecklists", "releasereadinesses", "releasesignoffs"})
"""The operator's own resources: it cannot be synced without every one of them."""
SCAN_RETRIES = 40
SCAN_RETRY_SECONDS = 0.5
_original_scan = scanning.scan_resources


async def _established_own(**kwargs: Any) -> set[str]:
    """Which of our CRDs the API server has Established (read directly, not through discovery); empty when it
    cannot tell (no permission, API error): then only a partial view of our group makes a scan wait."""
    established: set[str] = set()
    for plural in sorted(OWN_PLURALS):
        url = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.{GROUP}"
        try:
            crd = await api.get(url, settings=kwargs["settings"], logger=kwargs["logger"])
        except (errors.APIError, KeyError):
            continue
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            established.add(plural)
    return established


async def _complete_scan(**kwargs: Any) -> Any:
    """Kopf scans API discovery once at start and again on each CRD event. Discovery can lag behind a CRD's
    Established condition, so a scan right after our CRDs are applied may see some of them, or none, and not
    the rest; if no CRD event follows, Kopf never watches the missing ones and the operator never syncs (seen:
    the releasesignoffs watch never started; and in CI, an operator started right after `kubectl wait
    --for=condition=Established` saw none of them and stayed unready). A scan that misses part of our group,
    or one of our CRDs the API server reports Established, is therefore repeated until discovery serves it (or
    about 20 s pass: a CRD really deleted). A cluster without our CRDs is scanned once: their CRD events
    rescan when they are installed."""
    resources = await _original_scan(**kwargs)
    for _ in range(SCAN_RETRIES):
        own = {r.plural for r in resources if r.group == GROUP}
        if own >= OWN_PLURALS:
            break
        expected = OWN_PLURALS if own else await _established_own(**kwargs)
        if not expected - own:
            break
        log.info("API discovery serves %s of %s's resources so far; scanning again", sorted(own), GROUP)
        await asyncio.sleep(SCAN_RETRY_SECONDS)
        resources = await _original_scan(**kwargs)
    return resources


def install() -> None:
    """Patch Kopf's watch stream (its watchers call `watching.infinite_watch` at start). Fails loudly if Kopf's
    internals moved: an operator that could never tell it is synced must not start."""
    if not hasattr(watching, "continuous_watch"):
        raise RuntimeError(
            "this Kopf version has no watching.continuous_watch; release-readiness cannot tell when a watch "
            "stream lists again (pin kopf to a version with it)"
        )
    if not hasattr(watching, "Bookmark") or not hasattr(watching.Bookmark, "LISTED"):
        raise RuntimeError(
            "this Kopf version has no watching.Bookmark.LISTED; release-readiness cannot tell when "
            "its watches are synced (pin kopf to a version with it)"
        )
    watching.infinite_watch = _tapped_watch
    watching.continuous_watch = _restarted_watch
    scanning.scan_resources = _complete_scan
