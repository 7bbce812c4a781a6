"""Kopf registrations: the watches, the start-up and clean-up, and the state the handlers share.

Only `on.event` handlers are used for watching: they add no finalizers and write no annotations
to the objects they watch, so the operator never changes a team's Deployments, and a release can
be deleted while the operator is down. The index is fed by a tap on Kopf's watch streams (sync.py),
which also says when every kind is listed; until then admission refuses with "starting, retry" and
nothing is evaluated.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import kopf

from release_readiness import GROUP, VERSION
from release_readiness.admission.authority import Authority
from release_readiness.admission.recorder import GateRecorder
from release_readiness.admission.webhooks import register_webhooks, webhook_server
from release_readiness.certificates import CertificateKeeper
from release_readiness.config import Settings
from release_readiness.defaultchecklist import apply_default_checklist
from release_readiness.indexes import ClusterIndex, Watched, watched
from release_readiness.kinds import GatedKind
from release_readiness.kube import KubeClient
from release_readiness.leader import LeaderElector
from release_readiness.notifier import Notifier
from release_readiness.reconciler import PERIODIC, Reconciler
from release_readiness.sync import ListingSync, WatchTap, register_tap, unregister_tap

__all__ = ["OperatorState", "register"]

log = logging.getLogger(__name__)


def indexed(extra_kinds: Sequence[GatedKind] = ()) -> tuple[Watched, ...]:
    """Every kind the index holds; each must be listed before the operator answers admission or writes status."""
    return (
        *watched(extra_kinds),
        Watched("", "v1", "namespaces", "Namespace"),
        Watched(GROUP, VERSION, "readinesschecklists", "ReadinessChecklist"),
        Watched(GROUP, VERSION, "releasereadinesses", "ReleaseReadiness"),
        Watched(GROUP, VERSION, "releasesignoffs", "ReleaseSignoff"),
    )


HANDLED = frozenset({(GROUP, "readinesschecklists")})
"""The watched resources with a handler that acts on their events (checklist_status); Kopf gets only their object
events, the others are indexed by the tap and never reach Kopf's per-object workers."""

LIST_CHUNK = 500
"""Objects per page of an initial listing."""

OPTIONAL_RECHECK_SECONDS = 5.0
"""While not synced, how often optional kinds are looked up again (a CRD installed or removed meanwhile)."""


class OperatorState:
    """Everything the handlers share; stored in Kopf's memo."""

    def __init__(self, settings: Settings, api: KubeClient | None = None) -> None:
        self.settings = settings
        self.index = ClusterIndex(extra_kinds=settings.extra_gated_kinds)
        self.api = api or KubeClient()
        self.watched = indexed(settings.extra_gated_kinds)
        self.sync = ListingSync(required={w.kind for w in self.watched})
        self.reconciler = Reconciler(self.index, self.api, settings, sync=self.sync)
        self.tap = WatchTap.of(self.index, self.sync, self.watched, self.reconciler.enqueue, HANDLED)
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.elector = LeaderElector(
                self.api.api_client,
                settings.lease_namespace,
                settings.lease_name,
                settings.identity,
                on_elected=lambda: self.reconciler.enqueue(list(self.index.releases), PERIODIC),
            )
            elector = self.elector
            self.reconciler.is_leader = lambda: elector.is_leader
        self.notifier = Notifier(
            settings,
            self.api,
            is_leader=self.reconciler.is_leader,
            live_uids=self._release_uids,
        )
        self.reconciler.notify = self.notifier.submit
        self.background: set[asyncio.Task[Any]] = set()
        self.recorder = GateRecorder(self.index, self.api, self.reconciler.events, self.notifier)
        """What a gate decision leaves behind (events, notifications): all the admission adapter may cause."""
        self.operator_user: str | None = None
        """The operator's own user name (a SelfSubjectReview at start-up): the only writer of release status."""

    def _release_uids(self) -> set[str] | None:
        """The uids of every release, once everything is listed (the notifier prunes ledgers of the others)."""
        return {r.metadata.uid or "" for r in self.index.releases.values()} if self.sync.synced else None

    @property
    def authority(self) -> Authority:
        return Authority(self.settings.platform_admin_groups, self.operator_user)


def _state(memo: Any) -> OperatorState:
    state: OperatorState = memo.state
    return state


async def _watched(**_: Any) -> None:
    """Kopf watches what has a handler; the index is fed by the tap on the watch stream (sync.py), in order."""


async def _skip_unserved_optional_kinds(state: OperatorState) -> None:
    """Optional kinds whose CRDs are not installed count as listed; looked up again until synced."""
    optional = [w for w in state.watched if w.optional]
    while not state.sync.synced:
        for w in optional:
            if w.kind in state.sync.required and not state.sync.is_listed(w.kind):
                try:
                    served = await asyncio.to_thread(state.api.served, w.group, w.version, w.plural)
                except Exception as err:  # the API server is unreachable: keep waiting, say why
                    log.warning("could not look up %s/%s %s: %s", w.group, w.version, w.plural, err)
                    continue
                if not served:
                    log.info(
                        "%s is not served (its CRD is not installed): not waiting for it; the checks that read it "
                        "say Pending until %s installs it",
                        w.kind,
                        w.provider or f"something serving {w.plural}.{w.group}/{w.version}",
                    )
                    state.sync.not_required(w.kind)
        if state.sync.synced:
            return
        log.info("waiting for the initial listing of: %s", ", ".join(state.sync.missing()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.sync.wait(), OPTIONAL_RECHECK_SECONDS)
    log.info("every watched kind is listed: answering admission and evaluating releases")
    # What the listings put in the index lives as long as the process: out of the collector's way (a full collection
    # would otherwise walk every indexed object; main.py froze the start-up objects the same way).
    gc.freeze()


async def _keep_certificates(state: OperatorState) -> None:
    """RR_WEBHOOK_CERT_NAME: the first pass before the webhook server starts (it needs the files), then a pass
    every RR_WEBHOOK_CERT_CHECK_SECONDS in the background."""
    s = state.settings
    secret = s.webhook_cert_name
    if not secret:
        return
    if not s.webhook_cert_dir:
        state.settings = s = dataclasses.replace(s, webhook_cert_dir=tempfile.mkdtemp(prefix="rr-webhook-"))
    keeper = CertificateKeeper(
        state.api.api_client,
        s.lease_namespace,
        secret,
        s.webhook_service,
        s.webhook_configurations,
        Path(s.webhook_cert_dir or ""),
        s.webhook_cert_check_seconds,
    )
    try:
        await keeper.first()
    except RuntimeError as err:
        raise kopf.TemporaryError(str(err), delay=10) from err
    task = asyncio.create_task(keeper.run())
    state.background.add(task)


async def _apply_default_checklist(state: OperatorState, path: Path) -> None:
    """Once this replica's indexes are complete (so its own webhook answers), and any replica serves."""
    await state.sync.wait()
    try:
        await apply_default_checklist(state.api.api_client, path)
    except ValueError as err:
        log.error("%s", err)


def register(
    registry: kopf.OperatorRegistry | None = None, extra_kinds: Sequence[GatedKind] = ()
) -> kopf.OperatorRegistry:
    """Register every handler on `registry` (a fresh one by default, so tests can run several operators);
    `extra_kinds`: configured kinds with a pod template, watched as candidates and gated."""
    registry = registry or kopf.get_default_registry()
    on = kopf.on

    for w in indexed(extra_kinds):
        on.event(group=w.group, version=w.version, plural=w.plural, registry=registry, id=f"index-{w.plural}")(_watched)

    @on.event(GROUP, VERSION, "readinesschecklists", registry=registry, id="checklist-status")
    async def checklist_status(event: kopf.RawEvent, memo: Any, **_: Any) -> None:
        obj = event.get("object") or {}
        if event.get("type") == "DELETED" or not obj:
            return
        spec = obj.get("spec") or {}
        want = {
            "itemCount": len(spec.get("items") or []),
            "approvalCount": len(spec.get("approvals") or []),
            "observedGeneration": obj["metadata"].get("generation"),
        }
        await _state(memo).sync.wait()  # no status writes before the listings are complete
        if (obj.get("status") or {}) != want:
            await asyncio.to_thread(_state(memo).api.patch_checklist_status, obj["metadata"]["name"], want)

    @on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # In a pod: the service account; elsewhere: $KUBECONFIG, like kubectl.
        info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(
            **kwargs
        )
        return info

    @on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        settings.posting.enabled = False  # we post our own events, on transitions only
        settings.persistence.finalizer = f"{GROUP}/finalizer"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # The initial listings in pages (as kubectl lists), not one response: a cluster's 20,000 Deployments are
        # otherwise one 100 MB JSON document parsed at once, a peak the process keeps as resident memory.
        settings.watching.chunk_size = LIST_CHUNK
        await _keep_certificates(_state(memo))
        settings.admission.server = webhook_server(_state(memo))
        settings.admission.managed = None  # the project owns its webhook configurations (namespaceSelector, timeouts)
        state = _state(memo)
        try:
            state.operator_user = await asyncio.to_thread(state.api.whoami)
        except Exception as err:  # retried by Kopf: until then status writes are refused (fail closed)
            raise kopf.TemporaryError(f"cannot learn the operator's own identity (SelfSubjectReview): {err}") from err
        log.info("operator identity: %s (the only writer of release status)", state.operator_user)
        register_tap(settings, state.tap)
        task = asyncio.create_task(_skip_unserved_optional_kinds(state))
        state.background.add(task)
        if state.settings.default_checklist:
            task = asyncio.create_task(_apply_default_checklist(state, Path(state.settings.default_checklist)))
            state.background.add(task)
        await state.reconciler.start_soon()
        await state.notifier.start()
        if state.elector is not None:
            task = asyncio.create_task(state.elector.run())
            state.background.add(task)

    @on.cleanup(registry=registry)
    async def shutdown(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
        state = _state(memo)
        unregister_tap(settings)
        if state.elector is not None:
            await state.elector.stop()  # hand over at once rather than after the lease expires
        await state.reconciler.stop()
        await state.notifier.stop()

    register_webhooks(registry)
    return registry
