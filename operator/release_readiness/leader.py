"""Leader election for the reconciler with a coordination.k8s.io Lease (as controller-runtime does).

Every replica watches and keeps its indexes warm, so every replica can answer the admission
webhooks from memory; only the lease holder evaluates releases and writes their status. Kopf's own
peering pauses all watching on the standby replicas, which would leave their gate without indexes,
so it is not used for this.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from release_readiness.metrics import LEADER

__all__ = ["LeaderElector", "LeaseState", "decide_lease"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseState:
    holder: str | None
    renewed: dt.datetime | None
    duration_seconds: int


def decide_lease(lease: LeaseState | None, me: str, now: dt.datetime) -> bool:
    """May `me` hold the lease now? (No lease, mine, released, or expired.)"""
    if lease is None or lease.holder in (None, "", me):
        return True
    if lease.renewed is None:
        return True
    return now > lease.renewed + dt.timedelta(seconds=lease.duration_seconds)


@dataclass
class LeaderElector:
    api: client.ApiClient
    namespace: str
    name: str
    identity: str
    lease_seconds: int = 15
    renew_seconds: float = 5.0
    on_elected: Callable[[], None] = lambda: None
    is_leader: bool = False
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def _try(self) -> bool:
        coord = client.CoordinationV1Api(self.api)
        now = dt.datetime.now(dt.UTC)
        spec = client.V1LeaseSpec(
            holder_identity=self.identity, lease_duration_seconds=self.lease_seconds, renew_time=now
        )
        try:
            lease = coord.read_namespaced_lease(self.name, self.namespace)
        except ApiException as err:
            if err.status != 404:
                raise
            spec.acquire_time = now
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=self.name, namespace=self.namespace), spec=spec)
            try:
                coord.create_namespaced_lease(self.namespace, body)
            except ApiException as create_err:
                if create_err.status == 409:
                    return False
                raise
            return True
        old = lease.spec or client.V1LeaseSpec()
        current = LeaseState(old.holder_identity, old.renew_time, int(old.lease_duration_seconds or 15))
        if not decide_lease(current, self.identity, now):
            return False
        spec.acquire_time = old.acquire_time if current.holder == self.identity else now
        lease.spec = spec
        try:
            coord.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as err:
            if err.status == 409:  # someone else renewed or took it first
                return False
            raise
        return True

    def _release(self) -> None:
        coord = client.CoordinationV1Api(self.api)
        try:
            lease = coord.read_namespaced_lease(self.name, self.namespace)
            if lease.spec is not None and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                coord.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as err:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, err.reason)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                held = await asyncio.to_thread(self._try)
            except Exception as err:  # the API server may be away for a while: keep trying
                log.warning("lease %s/%s: %s", self.namespace, self.name, err)
                held = False
            if held and not self.is_leader:
                log.info("elected: this replica (%s) reconciles releases", self.identity)
                self.is_leader = True
                LEADER.set(1)
                self.on_elected()
            elif not held and self.is_leader:
                log.warning("lost the lease %s/%s; standing by", self.namespace, self.name)
                self.is_leader = False
                LEADER.set(0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.renew_seconds)

    async def stop(self) -> None:
        self._stopping.set()
        if self.is_leader:
            self.is_leader = False
            await asyncio.to_thread(self._release)
