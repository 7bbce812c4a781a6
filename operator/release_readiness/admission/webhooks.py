"""Kopf admission handlers (thin): parse the request, call the pure admission functions, answer.

Each handler's id is its URL path on the webhook server (see configuration.py). Nothing here calls
the API server on the request path except one SubjectAccessReview when a release is created (rare;
short timeout; fails closed); side effects (events) are posted after the answer, and never for
dry-run requests.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kopf
from kopf._cogs.structs.reviews import Request, Response, WebhookClientConfig, WebhookFn
from pydantic import ValidationError

from release_readiness import CREATED_BY, GROUP, VERSION
from release_readiness.admission.authority import (
    validate_gate_label_change,
    validate_signoff_change,
    validate_status_write,
)
from release_readiness.admission.gate import GATE_LABEL, GateRequest, gate_decision
from release_readiness.admission.signoffs import (
    Caller,
    candidate_access_errors,
    creator_patch,
    needs_access_review,
    stamp_signoff,
    validate_release_update,
    validate_signoff,
)
from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.kinds import BUILTIN_GATED_KINDS, GatedKind
from release_readiness.logs import ADMISSION
from release_readiness.metrics import ADMISSION_ERRORS, ADMISSION_LATENCY, ADMISSION_REQUESTS, BREAK_GLASS
from release_readiness.pki import write_serving_certificate
from release_readiness.tally import tally, waiver_fingerprint
from release_readiness.validation import validate_checklist, validate_release, validate_release_unique

if TYPE_CHECKING:
    from release_readiness.handlers import OperatorState

__all__ = ["register_webhooks", "serving_certificate", "webhook_server"]

log = logging.getLogger(__name__)


def serving_certificate(cert_dir: str | None, hosts: tuple[str, ...]) -> tuple[Path, Path]:
    """(tls.crt, tls.key) from cert_dir, or a fresh self-signed pair in a temporary directory."""
    if cert_dir:
        directory = Path(cert_dir)
        missing = [name for name in ("tls.crt", "tls.key") if not (directory / name).is_file()]
        if missing:
            raise SystemExit(
                f"error: RR_WEBHOOK_CERT_DIR={cert_dir} has no {' or '.join(missing)}; mount the webhook's TLS Secret "
                "there (the chart does), or unset RR_WEBHOOK_CERT_DIR to use a self-signed certificate"
            )
        return directory / "tls.crt", directory / "tls.key"
    directory = Path(tempfile.mkdtemp(prefix="rr-webhook-"))
    write_serving_certificate(directory, hosts, "release-readiness-webhook-ca")
    log.warning("no RR_WEBHOOK_CERT_DIR: serving the webhooks with a self-signed certificate from %s", directory)
    return directory / "tls.crt", directory / "tls.key"


class InstrumentedWebhookServer(kopf.WebhookServer):
    """Kopf's webhook server, measuring each request and tagging the logs with the request's uid."""

    async def __call__(self, fn: WebhookFn) -> AsyncIterator[WebhookClientConfig]:
        async def measured(
            request: Request, *, webhook: str | None = None, headers: Any = None, sslpeer: Any = None
        ) -> Response:
            payload = request.get("request") or {}
            context = {"uid": str(payload.get("uid", "")), "mode": "", "decision": ""}
            token = ADMISSION.set(context)
            started = time.perf_counter()
            hook = webhook or "unknown"
            try:
                response = await fn(request, webhook=webhook, headers=headers, sslpeer=sslpeer)
            except Exception:
                ADMISSION_ERRORS.labels(hook).inc()
                raise
            finally:
                ADMISSION_LATENCY.labels(hook).observe(time.perf_counter() - started)
                ADMISSION.reset(token)
            allowed = bool(response.get("response", {}).get("allowed"))
            decision = context["decision"] or ("allowed" if allowed else "refused")
            kind = str((payload.get("kind") or {}).get("kind", ""))
            ADMISSION_REQUESTS.labels(hook, kind, context["mode"] or "-", decision).inc()
            return response

        async for client_config in super().__call__(measured):
            yield client_config


def webhook_server(state: OperatorState) -> kopf.WebhookServer:
    s = state.settings
    certfile, keyfile = serving_certificate(s.webhook_cert_dir, ("localhost", "127.0.0.1"))
    return InstrumentedWebhookServer(addr=s.webhook_host, port=s.webhook_port, certfile=certfile, pkeyfile=keyfile)


def _state(memo: Any) -> OperatorState:
    state: OperatorState = memo.state
    return state


def _refuse(errors: list[str]) -> None:
    if errors:
        raise kopf.AdmissionError("\n".join(errors), code=403)


def _parse(model: type[Any], body: Any, what: str) -> Any:
    try:
        return model.model_validate(dict(body))
    except ValidationError as err:
        # The API server validates the schema after mutation; here a malformed object is refused plainly.
        first = err.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise kopf.AdmissionError(f"{what}: {path}: {first['msg']}", code=422) from None


def register_webhooks(registry: kopf.OperatorRegistry, kinds: Sequence[GatedKind] = BUILTIN_GATED_KINDS) -> None:
    """The signoff and release webhooks, and one gate handler for each gated kind (its id is its path)."""
    on = kopf.on

    @on.mutate(GROUP, VERSION, "releasesignoffs", operation="CREATE", id="stamp-signoff", registry=registry)
    async def stamp(body: kopf.Body, userinfo: kopf.UserInfo, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        state = _state(memo)
        signoff = _parse(ReleaseSignoff, body, "ReleaseSignoff")
        namespace = body.metadata.namespace or ""
        release = state.index.releases.get((namespace, signoff.spec.release))
        checklist = state.index.checklists.get(release.spec.checklist) if release else None
        waivers = ""
        if release is not None and checklist is not None:
            signed = state.index.signoffs_for((namespace, signoff.spec.release))
            waivers = waiver_fingerprint(tally(checklist, release.metadata.annotations.get(CREATED_BY), signed).waivers)
        caller = Caller.from_userinfo(userinfo)
        stamped = stamp_signoff(signoff, caller, release, dt.datetime.now(dt.UTC), waivers, checklist)
        patch["spec"] = stamped.spec
        if stamped.owner_references:
            existing = list(body.metadata.get("ownerReferences") or [])
            patch["metadata"] = {"ownerReferences": existing + stamped.owner_references}

    @on.mutate(GROUP, VERSION, "releasereadinesses", operation="CREATE", id="record-creator", registry=registry)
    async def record_creator(userinfo: kopf.UserInfo, patch: kopf.Patch, **_: Any) -> None:
        patch["metadata"] = {"annotations": creator_patch(Caller.from_userinfo(userinfo)).annotations}

    @on.validate(GROUP, VERSION, "releasesignoffs", id="validate-signoff", registry=registry)
    async def check_signoff(
        body: kopf.Body,
        userinfo: kopf.UserInfo,
        memo: Any,
        old: Any = None,
        operation: str | None = None,
        **_: Any,
    ) -> None:
        state = _state(memo)
        caller = Caller.from_userinfo(userinfo)
        if operation in ("DELETE", "UPDATE") and old:
            after = dict(body) if operation == "UPDATE" else None
            _refuse(validate_signoff_change(operation, dict(old), after, caller, state.authority))
            if operation == "DELETE":
                return
        new = _parse(ReleaseSignoff, body, "ReleaseSignoff")
        previous = _parse(ReleaseSignoff, old, "ReleaseSignoff") if old else None
        namespace = body.metadata.namespace or ""
        release = state.index.releases.get((namespace, new.spec.release))
        checklist = state.index.checklists.get(release.spec.checklist) if release else None
        others = [
            s for s in state.index.signoffs_for((namespace, new.spec.release)) if s.metadata.name != new.metadata.name
        ]
        limit = state.settings.max_signoffs_per_release
        _refuse(validate_signoff(new, previous, caller, release, checklist, others, limit=limit))

    @on.validate(GROUP, VERSION, "readinesschecklists", id="validate-checklist", registry=registry)
    async def check_checklist(body: kopf.Body, **_: Any) -> None:
        _refuse(validate_checklist(_parse(ReadinessChecklist, body, "ReadinessChecklist")))

    for gated in kinds:
        on.validate(
            gated.group,
            gated.version,
            gated.plural,
            id=gated.webhook,
            subresource="*" if gated.subresources else None,
            registry=registry,
        )(_gate_handler(gated))
    _register_release_webhook(registry)
    _register_authority_webhooks(registry)


def _gate_handler(gated: GatedKind) -> Callable[..., Awaitable[None]]:
    async def gate(**kwargs: Any) -> None:
        await _gate(gated, **kwargs)

    gate.__name__ = f"gate_{gated.plural}"
    return gate


def _register_release_webhook(registry: kopf.OperatorRegistry) -> None:
    """Releases: semantic rules, one release per version, the creator recorded, and the creator's right to look
    at the candidate namespace (a SubjectAccessReview at creation)."""
    on = kopf.on

    @on.validate(GROUP, VERSION, "releasereadinesses", id="validate-release", registry=registry)
    async def check_release(
        body: kopf.Body,
        userinfo: kopf.UserInfo,
        memo: Any,
        old: Any = None,
        operation: str | None = None,
        **_: Any,
    ) -> None:
        state = _state(memo)
        caller = Caller.from_userinfo(userinfo)
        new = _parse(ReleaseReadiness, body, "ReleaseReadiness")
        previous = _parse(ReleaseReadiness, old, "ReleaseReadiness") if old else None
        checklist = state.index.checklists.get(new.spec.checklist)
        errors = validate_release(new, checklist)
        errors += validate_release_update(previous, new, caller)
        if previous is None:
            errors += validate_release_unique(new, state.index.releases.values())
        if operation == "CREATE" and not errors and needs_access_review(new, checklist):
            allowed, reason = await _may_list_deployments(state, userinfo, new.spec.candidate.namespace)
            errors += candidate_access_errors(new, caller, allowed, reason)
        _refuse(errors)


def _register_authority_webhooks(registry: kopf.OperatorRegistry) -> None:
    """What RBAC cannot express: only the operator writes release status; only platform admins move the gate."""
    on = kopf.on

    @on.validate(
        GROUP, VERSION, "releasereadinesses", subresource="status", id="validate-release-status", registry=registry
    )
    async def check_release_status(body: kopf.Body, userinfo: kopf.UserInfo, memo: Any, **_: Any) -> None:
        name = f"ReleaseReadiness {body.metadata.namespace}/{body.metadata.name}"
        _refuse(validate_status_write(name, Caller.from_userinfo(userinfo), _state(memo).authority))

    @on.validate("", "v1", "namespaces", id="validate-namespace-gate", registry=registry)
    async def check_namespace(body: kopf.Body, userinfo: kopf.UserInfo, memo: Any, old: Any = None, **_: Any) -> None:
        previous = dict(old) if old else None
        caller = Caller.from_userinfo(userinfo)
        _refuse(validate_gate_label_change(previous, dict(body), caller, _state(memo).authority))


async def _may_list_deployments(state: OperatorState, userinfo: Any, namespace: str) -> tuple[bool | None, str]:
    """The SubjectAccessReview for the release's creator (None: no answer in time, which refuses)."""
    info = dict(userinfo or {})
    timeout = state.settings.access_review_timeout_seconds
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(
                state.api.may,
                str(info.get("username", "")),
                list(info.get("groups") or []),
                {k: list(v) for k, v in dict(info.get("extra") or {}).items()},
                info.get("uid"),
                "list",
                "apps",
                "deployments",
                namespace,
                timeout,
            ),
            timeout=timeout + 0.5,
        )
    except Exception as err:
        log.warning("SubjectAccessReview for %s in %s failed: %s", info.get("username"), namespace, err)
        return None, f"the SubjectAccessReview failed ({type(err).__name__})"


async def _gate(
    gated: GatedKind,
    body: kopf.Body,
    userinfo: kopf.UserInfo,
    dryrun: bool,
    warnings: list[str],
    memo: Any,
    old: Any = None,
    operation: str | None = None,
    subresource: str | None = None,
    **_: Any,
) -> None:
    state = _state(memo)
    namespace = body.metadata.namespace or ""
    mode = (state.index.namespaces.get(namespace, {}).get("metadata", {}).get("labels") or {}).get(GATE_LABEL)
    kind = gated.kind
    req = GateRequest(
        operation=operation or "CREATE",
        gated=gated,
        namespace=namespace,
        name=body.metadata.name or "",
        obj=dict(body),
        old=dict(old) if old else None,
        caller=Caller.from_userinfo(userinfo),
        dry_run=dryrun,
        subresource=subresource or None,
    )
    releases = [r for (ns, _), r in state.index.releases.items() if ns == namespace]
    decision = gate_decision(
        req,
        mode,
        releases,
        state.index.checklists,
        state.settings.break_glass_groups,
        dt.datetime.now(dt.UTC),
        state.index.candidate_workloads,
    )
    warnings.extend(decision.warnings)
    context = ADMISSION.get(None)
    if context is not None:
        context["mode"], context["decision"] = decision.mode or "-", decision.verdict
    if decision.verdict == "break-glass" and decision.release and not dryrun:
        BREAK_GLASS.labels(*decision.release).inc()
    # Refusals, advisory (warn/audit) verdicts and break-glass are recorded; routine admits only at debug
    # level (one log line a request was a tenth of the gate's CPU under load).
    level = logging.INFO if decision.refused or decision.verdict == "break-glass" else logging.DEBUG
    log.log(
        level,
        "gate %s %s/%s: %s (%s)",
        kind,
        namespace,
        req.name,
        "allowed" if decision.allowed else "refused",
        decision.verdict,
        extra={
            "namespace": namespace,
            "kind": kind,
            "operation": req.operation,
            "user": req.caller.username,
            "decision": decision.verdict,
        },
    )
    if not dryrun:
        state.on_gate_decision(req, decision)
    if not decision.allowed:
        raise kopf.AdmissionError(decision.message, code=403)
