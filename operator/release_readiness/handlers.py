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
import datetime as dt
import logging
import tempfile
import time
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import kopf

from release_readiness import API_VERSION, GROUP, VERSION
from release_readiness.admission.authority import Authority
from release_readiness.admission.gate import Decision, GateRequest
from release_readiness.admission.webhooks import register_webhooks, webhook_server
from release_readiness.certificates import CertificateKeeper
from release_readiness.config import Settings
from release_readiness.defaultchecklist import apply_default_checklist
from release_readiness.indexes import ClusterIndex, Watched, watched
from release_readiness.kinds import GatedKind
from release_readiness.kube import KubeApi
from release_readiness.leader import LeaderElector
from release_readiness.notifications import gate_notification
from release_readiness.notifier import Notifier
from release_readiness.reconciler import Reconciler
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


OPTIONAL_RECHECK_SECONDS = 5.0
"""While not synced, how often optional kinds are looked up again (a CRD installed or removed meanwhile)."""


class OperatorState:
    """Everything the handlers share; stored in Kopf's memo."""

    def __init__(self, settings: Settings, api: KubeApi | None = None) -> None:
        self.settings = settings
        self.index = ClusterIndex(extra_kinds=settings.extra_gated_kinds)
        self.api = api or KubeApi()
        self.watched = indexed(settings.extra_gated_kinds)
        self.sync = ListingSync(required={w.kind for w in self.watched})
        self.reconciler = Reconciler(self.index, self.api, settings, sync=self.sync)
        self.tap = WatchTap.of(self.index, self.sync, self.watched, self.reconciler.enqueue)
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
        self.notifier = Notifier(
            settings,
            self.api,
            is_leader=self.reconciler.is_leader,
            live_uids=self._release_uids,
        )
        self.reconciler.notify = self.notifier.submit
        self.background: set[asyncio.Task[Any]] = set()
        self.operator_user: str | None = None
        """The operator's own user name (a SelfSubjectReview at start-up): the only writer of release status."""

    def _release_uids(self) -> set[str] | None:
        """The uids of every release, once everything is listed (the notifier prunes ledgers of the others)."""
        return {r.metadata.uid or "" for r in self.index.releases.values()} if self.sync.synced else None

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
        if not self.reconciler.events.allow(
            (meta.get("namespace"), meta.get("name"), reason, subject), time.monotonic()
        ):
            return
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.api.post_event, involved, type_, reason, message)
        )
        self.background.add(task)
        task.add_done_callback(self.background.discard)


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
