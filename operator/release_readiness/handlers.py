"""Kopf registrations: thin handlers that feed the index and wake the reconciler.

Only `on.event` handlers are used for watching: they add no finalizers and write no annotations
to the objects they watch, so the operator never changes a team's Deployments, and a release can
be deleted while the operator is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import kopf

from release_readiness import API_VERSION, GROUP, VERSION
from release_readiness.admission.authority import Authority
from release_readiness.admission.gate import Decision, GateRequest
from release_readiness.admission.webhooks import register_webhooks, webhook_server
from release_readiness.config import Settings
from release_readiness.indexes import ClusterIndex, watched
from release_readiness.kinds import GatedKind, gated_kinds
from release_readiness.kube import KubeApi
from release_readiness.leader import LeaderElector
from release_readiness.reconciler import Reconciler

__all__ = ["OperatorState", "register"]

log = logging.getLogger(__name__)

REFUSAL_EVENT_INTERVAL = 60.0
"""At most one refusal event per release a minute: a CD tool retrying must not flood the release's events."""


class OperatorState:
    """Everything the handlers share; stored in Kopf's memo."""

    def __init__(self, settings: Settings, api: KubeApi | None = None) -> None:
        self.settings = settings
        self.index = ClusterIndex(extra_kinds=settings.extra_gated_kinds)
        self.api = api or KubeApi()
        self.reconciler = Reconciler(self.index, self.api, settings)
        self.elector: LeaderElector | None = None
        if settings.leader_election:
            self.elector = LeaderElector(
                self.api.api_client,
                settings.lease_namespace,
                settings.lease_name,
                settings.identity,
                on_elected=lambda: self.reconciler.enqueue(list(self.index.releases)),
            )
            elector = self.elector
            self.reconciler.is_leader = lambda: elector.is_leader
        self.background: set[asyncio.Task[Any]] = set()
        self._last_refusal_event: dict[tuple[str, str], float] = {}
        self.operator_user: str | None = None
        """The operator's own user name (a SelfSubjectReview at start-up): the only writer of release status."""

    @property
    def authority(self) -> Authority:
        return Authority(self.settings.platform_admin_groups, self.operator_user)

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
            self._post(involved, "Warning", "BreakGlass", message)
        elif decision.refused:
            now = time.monotonic()
            if now - self._last_refusal_event.get(decision.release, -1e9) >= REFUSAL_EVENT_INTERVAL:
                self._last_refusal_event[decision.release] = now
                # enforce: RolloutRefused; warn and audit: RolloutWouldBeRefusedWarn / ...Audit
                mode = (decision.mode or "").capitalize()
                reason = "RolloutRefused" if not decision.allowed else f"RolloutWouldBeRefused{mode}"
                self._post(involved, "Warning", reason, decision.message)

    def _post(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.api.post_event, involved, type_, reason, message)
        )
        self.background.add(task)
        task.add_done_callback(self.background.discard)


def _state(memo: Any) -> OperatorState:
    state: OperatorState = memo.state
    return state


def _feeder(kind: str) -> Callable[..., Awaitable[None]]:
    async def feed(event: dict[str, Any], memo: Any, **_: Any) -> None:
        state = _state(memo)
        obj = event.get("object")
        if not obj:
            return
        deleted = event.get("type") == "DELETED"
        keys = state.index.delete(kind, obj) if deleted else state.index.upsert(kind, obj)
        state.reconciler.enqueue(keys)

    feed.__name__ = f"index_{kind.lower()}"
    return feed


def register(
    registry: kopf.OperatorRegistry | None = None, extra_kinds: Sequence[GatedKind] = ()
) -> kopf.OperatorRegistry:
    """Register every handler on `registry` (a fresh one by default, so tests can run several operators);
    `extra_kinds`: configured kinds with a pod template, watched as candidates and gated."""
    registry = registry or kopf.get_default_registry()
    on = kopf.on

    for w in watched(extra_kinds):
        on.event(group=w.group, version=w.version, plural=w.plural, registry=registry, id=f"index-{w.plural}")(
            _feeder(w.kind)
        )
    on.event(group="", version="v1", plural="namespaces", registry=registry, id="index-namespaces")(
        _feeder("Namespace")
    )
    on.event(GROUP, VERSION, "releasereadinesses", registry=registry, id="index-releases")(_feeder("ReleaseReadiness"))
    on.event(GROUP, VERSION, "readinesschecklists", registry=registry, id="index-checklists")(
        _feeder("ReadinessChecklist")
    )
    on.event(GROUP, VERSION, "releasesignoffs", registry=registry, id="index-signoffs")(_feeder("ReleaseSignoff"))

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
        settings.admission.server = webhook_server(_state(memo))
        settings.admission.managed = None  # the project owns its webhook configurations (namespaceSelector, timeouts)
        state = _state(memo)
        try:
            state.operator_user = await asyncio.to_thread(state.api.whoami)
        except Exception as err:  # retried by Kopf: until then status writes are refused (fail closed)
            raise kopf.TemporaryError(f"cannot learn the operator's own identity (SelfSubjectReview): {err}") from err
        log.info("operator identity: %s (the only writer of release status)", state.operator_user)
        await state.reconciler.start_soon()
        if state.elector is not None:
            task = asyncio.create_task(state.elector.run())
            state.background.add(task)

    @on.cleanup(registry=registry)
    async def shutdown(memo: Any, **_: Any) -> None:
        state = _state(memo)
        if state.elector is not None:
            await state.elector.stop()  # hand over at once rather than after the lease expires
        await state.reconciler.stop()

    register_webhooks(registry, gated_kinds(extra_kinds))
    return registry
