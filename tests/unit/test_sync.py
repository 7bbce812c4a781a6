"""The watch tap: the index fed in stream order, a kind listed at its LISTED marker, a re-list replacing a kind."""

from __future__ import annotations

from typing import Any

from kopf._cogs.clients import scanning, watching

from release_readiness import sync
from release_readiness.handlers import indexed
from release_readiness.indexes import ClusterIndex
from release_readiness.sync import ListingSync, WatchTap
from release_readiness_dev import builders


def pod_owner(name: str, namespace: str = "stg") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "spec": {}}


def tapped(required: set[str] | None = None) -> tuple[WatchTap, ListingSync, list[tuple[str, str]]]:
    changed: list[tuple[str, str]] = []
    listing = ListingSync(required=required or {"Deployment", "Namespace"})
    tap = WatchTap.of(ClusterIndex(), listing, indexed(), changed.extend)
    return tap, listing, changed


def test_a_kind_is_listed_at_its_marker_and_synced_when_every_kind_is() -> None:
    tap, listing, _ = tapped()
    tap("apps", "deployments", {"type": None, "object": pod_owner("a")})
    assert not listing.is_listed("Deployment")
    tap("apps", "deployments", None)
    assert listing.is_listed("Deployment")
    assert not listing.synced
    assert listing.missing() == ["Namespace"]
    tap("", "namespaces", None)  # an empty listing is a listing
    assert listing.synced
    assert listing.event.is_set()
    assert tap.index.keys("Deployment") == {("stg", "a")}


def test_events_are_applied_in_stream_order() -> None:
    tap, _, _ = tapped()
    tap("apps", "deployments", {"type": "ADDED", "object": pod_owner("a")})
    tap("apps", "deployments", {"type": "DELETED", "object": pod_owner("a")})
    tap("apps", "deployments", {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    assert tap.index.keys("Deployment") == set()


def test_a_relist_drops_what_was_deleted_while_the_watch_was_down() -> None:
    tap, _, _ = tapped()
    for name in ("a", "b"):
        tap("apps", "deployments", {"type": None, "object": pod_owner(name)})
    tap("apps", "deployments", None)
    # "410 Gone": Kopf lists again; b was deleted meanwhile and no DELETED event ever comes for it.
    tap("apps", "deployments", {"type": None, "object": pod_owner("a")})
    tap("apps", "deployments", None)
    assert tap.index.keys("Deployment") == {("stg", "a")}


def test_a_listing_broken_off_before_its_end_does_not_count_in_the_next(monkeypatch: Any) -> None:
    """The connection drops in the middle of a listing (no LISTED marker); Kopf lists again. A release and a
    signoff the broken listing saw, deleted before the new listing, are gone: neither keeps admitting."""
    import asyncio

    import kopf

    release = builders.release("r", "prod", "a", "1", "c", "stg")
    streams = [
        [{"type": None, "object": release}],  # broken off here
        [watching.Bookmark.LISTED],  # listed again: r was deleted meanwhile
    ]

    async def continuous_watch(**_: Any) -> Any:
        for event in streams.pop(0):
            yield event

    tap, listing, changed = tapped({"ReleaseReadiness"})
    settings = kopf.OperatorSettings()
    settings.watching.reconnect_backoff = 0
    resource = kopf.Resource("readiness.dev", "v1alpha1", "releasereadinesses")

    async def run() -> None:
        sync.register_tap(settings, tap)
        try:
            async for _ in sync._tapped_watch(settings=settings, resource=resource, namespace=None, _iterations=2):
                pass
        finally:
            sync.unregister_tap(settings)

    monkeypatch.setattr(sync, "_original_stream", continuous_watch)
    monkeypatch.setattr(watching, "continuous_watch", sync._restarted_watch)
    asyncio.run(run())
    assert listing.synced
    assert ("prod", "r") not in tap.index.release_bodies
    assert ("prod", "r") in changed


def test_a_relist_drops_releases_and_wakes_them() -> None:
    tap, _, changed = tapped({"ReleaseReadiness"})
    release = builders.release("r", "prod", "a", "1", "c", "stg")
    tap("readiness.dev", "releasereadinesses", {"type": None, "object": release})
    tap("readiness.dev", "releasereadinesses", None)
    assert ("prod", "r") in tap.index.release_bodies
    changed.clear()
    tap("readiness.dev", "releasereadinesses", None)  # re-listed: it is gone
    assert ("prod", "r") not in tap.index.release_bodies
    assert changed == [("prod", "r")]


def test_an_optional_kind_that_is_not_served_counts_as_listed() -> None:
    listing = ListingSync(required={"Deployment", "ServiceMonitor"})
    listing.mark_listed("Deployment")
    assert not listing.synced
    listing.not_required("ServiceMonitor")
    assert listing.synced


def test_unwatched_resources_are_ignored() -> None:
    tap, listing, changed = tapped()
    tap("example.com", "widgets", {"type": None, "object": pod_owner("w")})
    tap("example.com", "widgets", None)
    assert changed == []
    assert listing.listed == set()


def test_install_taps_kopfs_watch_stream() -> None:
    original, original_stream = watching.infinite_watch, watching.continuous_watch
    original_scan = scanning.scan_resources
    try:
        sync.install()
        assert watching.infinite_watch is sync._tapped_watch
        assert watching.continuous_watch is sync._restarted_watch
        assert watching.Bookmark.LISTED  # the marker the tap relies on
    finally:
        watching.infinite_watch, watching.continuous_watch = original, original_stream
        scanning.scan_resources = original_scan


def test_an_optional_kind_listed_empty_is_installed_and_wakes_releases() -> None:
    """A served CRD with no objects yet: checks judge what is there (none), not 'install it'."""
    tap, _, changed = tapped({"PrometheusRule"})
    release = {
        "metadata": {"name": "r", "namespace": "prod"},
        "spec": {"application": "a", "version": "1", "checklist": "c", "candidate": {"namespace": "stg"}},
    }
    tap("readiness.dev", "releasereadinesses", {"type": "ADDED", "object": release})
    changed.clear()
    assert "PrometheusRule" not in tap.index.installed
    tap("monitoring.coreos.com", "prometheusrules", None)
    assert "PrometheusRule" in tap.index.installed
    assert changed == [("prod", "r")]
    changed.clear()
    tap("apps", "deployments", None)  # a core kind is always served: nothing to record
    assert "Deployment" not in tap.index.installed
    assert changed == []


def test_a_discovery_scan_that_sees_part_of_our_group_is_repeated(monkeypatch: Any) -> None:
    import asyncio

    from kopf._cogs.structs.references import Resource

    def res(group: str, plural: str) -> Resource:
        return Resource(group=group, version="v1alpha1", plural=plural)

    partial = {res("readiness.dev", "readinesschecklists"), res("readiness.dev", "releasereadinesses")}
    complete = partial | {res("readiness.dev", "releasesignoffs")}
    answers = [partial, partial, complete]
    calls: list[Any] = []

    async def scan(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return answers[min(len(calls), len(answers)) - 1]

    monkeypatch.setattr(sync, "_original_scan", scan)
    monkeypatch.setattr(sync, "SCAN_RETRY_SECONDS", 0)
    assert asyncio.run(sync._complete_scan(groups={"readiness.dev"})) == complete
    assert len(calls) == 3, "scanned again until the whole group was served"

    established: set[str] = set()

    async def crds(**kwargs: Any) -> set[str]:
        return established

    monkeypatch.setattr(sync, "_established_own", crds)
    calls.clear()
    answers[:] = [{res("apps", "deployments")}]
    assert asyncio.run(sync._complete_scan(groups=None)) == {res("apps", "deployments")}
    assert len(calls) == 1, "no CRDs of ours at all: nothing to wait for (their CRD events rescan later)"

    # Our CRDs are Established, but discovery does not serve any of them yet: scan again until it does.
    established.update(sync.OWN_PLURALS)
    calls.clear()
    answers[:] = [{res("apps", "deployments")}, {res("apps", "deployments")}, complete]
    assert asyncio.run(sync._complete_scan(groups=None)) == complete
    assert len(calls) == 3, "discovery lagging behind Established CRDs is waited for"

    calls.clear()
    answers[:] = [partial]
    assert asyncio.run(sync._complete_scan(groups=None)) == partial
    assert len(calls) == sync.SCAN_RETRIES + 1, "a CRD really gone: give up after the retries"


def test_only_the_kinds_a_handler_acts_on_reach_kopf_and_every_event_is_indexed(monkeypatch: Any) -> None:
    """Kopf starts a worker task per object it is given; kinds no handler acts on are only indexed."""
    import asyncio
    from types import SimpleNamespace

    from release_readiness.handlers import HANDLED

    stream = [
        {"type": None, "object": pod_owner("a")},
        watching.Bookmark.LISTED,
        {"type": "ADDED", "object": pod_owner("b")},
    ]

    async def original(**_: Any) -> Any:
        for event in stream:
            yield event

    async def kopf_sees(group: str, plural: str, handled: frozenset[tuple[str, str]] | None) -> list[Any]:
        tap = WatchTap.of(ClusterIndex(), ListingSync(required={"Deployment"}), indexed(), lambda _: None, handled)
        settings = object()
        sync.register_tap(settings, tap)
        try:
            resource = SimpleNamespace(group=group, plural=plural)
            seen = [e async for e in sync._tapped_watch(resource=resource, settings=settings)]
        finally:
            sync.unregister_tap(settings)
        if plural == "deployments":
            assert tap.index.keys("Deployment") == {("stg", "a"), ("stg", "b")}
            assert tap.sync.synced
        return seen

    monkeypatch.setattr(sync, "_original", original)
    assert asyncio.run(kopf_sees("apps", "deployments", HANDLED)) == [watching.Bookmark.LISTED]
    assert asyncio.run(kopf_sees("apps", "deployments", None)) == stream
    assert asyncio.run(kopf_sees("readiness.dev", "readinesschecklists", HANDLED)) == stream


def test_an_event_the_index_cannot_take_is_logged_and_the_stream_goes_on(monkeypatch: Any, caplog: Any) -> None:
    """A malformed object (no name, metadata not a mapping) in a kind only the tap sees: neither the stream
    nor the listing stops; the objects after it are indexed and the kind is listed."""
    import asyncio
    from types import SimpleNamespace

    from release_readiness.handlers import HANDLED

    stream = [
        {"type": None, "object": {"metadata": {"namespace": "stg"}}},
        {"type": None, "object": {"metadata": ["not", "a", "mapping"]}},
        {"type": None, "object": pod_owner("a")},
        watching.Bookmark.LISTED,
        {"type": "MODIFIED", "object": "not an object"},
        {"type": "ADDED", "object": pod_owner("b")},
    ]

    async def original(**_: Any) -> Any:
        for event in stream:
            yield event

    tap = WatchTap.of(ClusterIndex(), ListingSync(required={"Deployment"}), indexed(), lambda _: None, HANDLED)
    settings = object()

    async def run() -> list[Any]:
        sync.register_tap(settings, tap)
        try:
            resource = SimpleNamespace(group="apps", plural="deployments")
            return [e async for e in sync._tapped_watch(resource=resource, settings=settings)]
        finally:
            sync.unregister_tap(settings)

    monkeypatch.setattr(sync, "_original", original)
    assert asyncio.run(run()) == [watching.Bookmark.LISTED]
    assert tap.sync.synced
    assert tap.index.keys("Deployment") == {("stg", "a"), ("stg", "b")}
    assert "indexing an event of deployments failed" in caplog.text
