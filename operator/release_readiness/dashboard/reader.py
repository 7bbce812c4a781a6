"""The dashboard's reads, made with the caller's own client (their kubeconfig identity, and --as if given): the
API server decides what each person sees. Nothing here writes.

Each read answers with the objects or a `Denied`/`Failed` reason shown on the page in place of what could not be
read, so a person without the right to read signoffs or events still sees the release's status.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from release_readiness import GROUP, VERSION
from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff

__all__ = ["Listing", "Reader", "Unreadable"]

NAMESPACE_CACHE_SECONDS = 60.0
MAX_PARALLEL = 8


class Unreadable(Exception):  # noqa: N818 - a reason shown to the user, not a bug
    """What could not be read, and why, in one sentence naming the object."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _reason(err: ApiException, what: str) -> Unreadable:
    message = ""
    try:
        message = json.loads(err.body or "{}").get("message", "")
    except ValueError:
        message = str(err.body or "")[:300]
    if err.status == 403:
        return Unreadable(f"you may not read {what}: {message or 'forbidden'}", 403)
    if err.status == 404:
        return Unreadable(f"{what} not found", 404)
    return Unreadable(f"could not read {what}: the API server said {err.status} {err.reason}", err.status or 0)


@dataclass(frozen=True)
class _Scan:
    at: float
    readable: list[str]
    hidden: int


@dataclass
class Listing:
    releases: list[ReleaseReadiness]
    notes: list[str] = field(default_factory=list)
    error: str = ""


class Reader:
    """Reads for one dashboard, scoped to a namespace (None: every namespace the caller may read)."""

    def __init__(self, api_client: client.ApiClient, namespace: str | None) -> None:
        self.client = api_client
        self.namespace = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.core = client.CoreV1Api(api_client)
        self._scan: _Scan | None = None

    def in_scope(self, namespace: str) -> bool:
        return self.namespace is None or namespace == self.namespace

    # -- releases ------------------------------------------------------------------------------------------------

    async def releases(self) -> Listing:
        if self.namespace is not None:
            try:
                return Listing(await self._list_in(self.namespace))
            except Unreadable as err:
                return Listing([], error=str(err))
        try:
            body = await asyncio.to_thread(self.custom.list_cluster_custom_object, GROUP, VERSION, "releasereadinesses")
            return Listing(_releases(body))
        except ApiException as err:
            if err.status != 403:
                return Listing([], error=str(_reason(err, "releases in every namespace")))
        # No right to list every namespace's releases: list each namespace the caller may list releases in.
        return await self._each_namespace()

    async def _list_in(self, namespace: str) -> list[ReleaseReadiness]:
        try:
            body = await asyncio.to_thread(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "releasereadinesses"
            )
        except ApiException as err:
            raise _reason(err, f"releases in namespace {namespace}") from None
        return _releases(body)

    async def _each_namespace(self) -> Listing:
        """Every namespace the caller may list releases in, when they may not list them cluster-wide: the namespaces
        are scanned once a minute; in between, only those that answered are listed again."""
        now = time.monotonic()
        if self._scan is None or now - self._scan.at > NAMESPACE_CACHE_SECONDS:
            try:
                body = await asyncio.to_thread(self.core.list_namespace)
            except ApiException as err:
                reason = _reason(err, "the list of namespaces")
                return Listing(
                    [],
                    error=f"you may not list releases in every namespace, and {reason}: run the dashboard with "
                    "-n NAMESPACE",
                )
            names = sorted(str(ns.metadata.name) for ns in body.items if ns.metadata is not None)
            results = await self._list_each(names)
            readable = [ns for ns, found in zip(names, results, strict=True) if found is not None]
            self._scan = _Scan(now, readable, len(names) - len(readable))
        else:
            results = await self._list_each(self._scan.readable)
        hidden = self._scan.hidden
        note = f"showing releases in the {len(self._scan.readable)} namespace(s) where you may list them"
        if hidden:
            note += f"; {hidden} namespace(s) are not shown: you may not list their releases"
        return Listing([r for found in results if found for r in found], notes=[note])

    async def _list_each(self, names: list[str]) -> list[list[ReleaseReadiness] | None]:
        gate = asyncio.Semaphore(MAX_PARALLEL)

        async def one(ns: str) -> list[ReleaseReadiness] | None:
            async with gate:
                try:
                    return await self._list_in(ns)
                except Unreadable:
                    return None

        return list(await asyncio.gather(*(one(ns) for ns in names)))

    # -- one release ---------------------------------------------------------------------------------------------

    async def release(self, namespace: str, name: str) -> ReleaseReadiness:
        try:
            body = await asyncio.to_thread(
                self.custom.get_namespaced_custom_object, GROUP, VERSION, namespace, "releasereadinesses", name
            )
        except ApiException as err:
            raise _reason(err, f"releasereadiness {namespace}/{name}") from None
        return ReleaseReadiness.model_validate(body)

    async def checklist(self, name: str) -> ReadinessChecklist:
        try:
            body = await asyncio.to_thread(
                self.custom.get_cluster_custom_object, GROUP, VERSION, "readinesschecklists", name
            )
        except ApiException as err:
            raise _reason(err, f"readinesschecklist {name}") from None
        return ReadinessChecklist.model_validate(body)

    async def signoffs(self, namespace: str) -> list[ReleaseSignoff]:
        try:
            body = await asyncio.to_thread(
                self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "releasesignoffs"
            )
        except ApiException as err:
            raise _reason(err, f"the signoffs in namespace {namespace}") from None
        items = body.get("items", []) if isinstance(body, dict) else []
        return [ReleaseSignoff.model_validate(i) for i in items]

    async def events(self, release: ReleaseReadiness) -> list[dict[str, Any]]:
        """The events recorded about this release object (by uid), newest first."""
        ns, name = release.metadata.namespace or "default", release.metadata.name
        selector = f"involvedObject.kind=ReleaseReadiness,involvedObject.name={name}"
        try:
            listed = await asyncio.to_thread(self.core.list_namespaced_event, ns, field_selector=selector)
        except ApiException as err:
            raise _reason(err, f"the events in namespace {ns}") from None
        body: dict[str, Any] = self.client.sanitize_for_serialization(listed)
        items = [
            e
            for e in body.get("items", [])
            if (e.get("involvedObject") or {}).get("uid") in (None, release.metadata.uid)
        ]
        epoch = "1970-01-01T00:00:00Z"
        items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or epoch, reverse=True)
        return items


def _releases(body: Any) -> list[ReleaseReadiness]:
    out = [ReleaseReadiness.model_validate(i) for i in (body or {}).get("items", [])]
    out.sort(key=lambda r: (r.metadata.namespace or "", r.metadata.name))
    return out
