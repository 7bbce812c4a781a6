"""Kopf admission handlers (thin): parse the request, call the pure admission functions, answer.

Each handler's id is its URL path on the webhook server (see configuration.py). Nothing here calls
the API server on the request path except one SubjectAccessReview when a release is created (rare;
short timeout; fails closed); side effects (events) are posted after the answer, and never for
dry-run requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import logging
import socket
import ssl
import struct
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, cast

import aiohttp.web
import kopf
from kopf._cogs.structs.reviews import (
    Request,
    Response,
    ResponsePayload,
    ResponseStatus,
    WebhookClientConfig,
    WebhookFn,
)
from pydantic import ValidationError

from release_readiness import CREATED_BY, GROUP, VERSION
from release_readiness.admission.authority import (
    validate_gate_label_change,
    validate_release_delete,
    validate_signoff_change,
    validate_status_write,
)
from release_readiness.admission.configuration import admission_kinds, webhook_configurations
from release_readiness.admission.context import AdmissionContext
from release_readiness.admission.gate import GATE_LABEL, MODES, STARTING, GateRequest, gate_decision, starting_decision
from release_readiness.admission.review import ReviewError, Route, dump_json, parse_review, routes_of
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
from release_readiness.kinds import GatedKind
from release_readiness.logs import ADMISSION
from release_readiness.metricgates import prometheus_url_errors
from release_readiness.metrics import (
    ADMISSION_ERRORS,
    ADMISSION_LATENCY,
    ADMISSION_MALFORMED,
    ADMISSION_REQUESTS,
    ADMISSION_SHED,
    BREAK_GLASS,
    OTHER,
    WEBHOOK_CONNECTIONS,
)
from release_readiness.pki import write_serving_certificate
from release_readiness.suites import SUITE_CREATOR, suite_change_errors, suite_stamp
from release_readiness.tally import signer_of, tally, waiver_fingerprint
from release_readiness.tasks import cancel
from release_readiness.validation import validate_checklist, validate_release, validate_release_unique

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


BODY_TIMEOUT_SECONDS = 10.0
"""The API server gives a webhook at most 30 s (ours: 5 s) for the whole call; a body arrives long before."""


def _one_line(status: int, message: str) -> aiohttp.web.Response:
    return aiohttp.web.Response(status=status, text=message + "\n", content_type="text/plain")


async def _read_capped(request: aiohttp.web.Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (nothing more is read)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


HANDSHAKE_TIMEOUT_SECONDS = 5.0
"""The API server completes a TLS handshake in milliseconds; a client that does not holds a connection no longer."""

_RESET = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: close() resets the connection at once (nothing lingers on our side)."""


class BoundedSite(aiohttp.web.BaseSite):
    """A TLS listener that accepts connections itself, so that it can count them: past `limit` connections (open,
    or in their TLS handshake) a new one is reset at once, before its handshake costs CPU or its buffers memory.
    The API server sees that call fail and applies the webhook's failurePolicy; nothing queues. SO_REUSEPORT as
    Kopf's: several processes may share the port (the kernel spreads connections among them)."""

    BACKLOG = 128

    def __init__(
        self, runner: aiohttp.web.BaseRunner, host: str, port: int, *, ssl_context: ssl.SSLContext | None, limit: int
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self.host, self.port, self.limit = host, port, limit
        self.handshaking = 0
        self._sock: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connecting: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self.host}:{self.port}"

    def open_connections(self) -> int:
        server = self._runner.server
        return self.handshaking + (len(server.connections) if server is not None else 0)

    async def start(self) -> None:
        await super().start()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.create_server((self.host, self.port), family=family, backlog=self.BACKLOG, reuse_port=True)
        self._sock.setblocking(False)
        self._accepting = asyncio.create_task(self._accept(self._sock))

    async def stop(self) -> None:
        if self._accepting is not None:
            await cancel([self._accepting])
        if self._sock is not None:
            self._sock.close()
        await super().stop()

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(sock)
                self._admit(conn)
                # Then every connection already waiting (as asyncio's own servers do): one a loop iteration would
                # leave the kernel's queue full under load, and clients waiting on SYN retries instead of an answer.
                for _ in range(self.BACKLOG):
                    conn, _ = sock.accept()
                    self._admit(conn)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as err:  # out of file descriptors, say: wait rather than spin
                log.warning("webhook server: accept failed: %s", err)
                await asyncio.sleep(0.1)

    def _admit(self, conn: socket.socket) -> None:
        if self.open_connections() >= self.limit:
            ADMISSION_SHED.labels("connections").inc()
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
            conn.close()
            return
        self.handshaking += 1
        task = asyncio.create_task(self._connect(conn))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        try:
            timeout = HANDSHAKE_TIMEOUT_SECONDS if self._ssl_context is not None else None
            await loop.connect_accepted_socket(server, conn, ssl=self._ssl_context, ssl_handshake_timeout=timeout)
        except Exception as err:  # a failed or slow handshake: the client gets nothing more
            log.debug("webhook server: connection dropped before serving: %r", err)
            conn.close()
        finally:
            self.handshaking -= 1


class InstrumentedWebhookServer(kopf.WebhookServer):
    """Kopf's webhook server, hardened: it serves only the configured paths, checks every body before a handler
    sees it (400 with one line otherwise), never answers 500 or shows an exception, labels its metrics from fixed
    sets, and tags the logs with the request's uid. With `verify_cafile` and CERT_REQUIRED (RR_WEBHOOK_CLIENT_CA)
    a client without a certificate signed by that CA fails the TLS handshake: no request, no metric, no event.

    Its memory is bounded under any load: at most `max_connections` connections (a new one past that is reset
    before its handshake, see BoundedSite), and at most `max_in_flight` requests, and `max_bytes_in_flight` bytes
    of bodies, being handled at once (past that a request is answered 503 at once, without reading its body).
    Either way the API server applies the webhook's failurePolicy."""

    def __init__(
        self,
        *,
        routes: Mapping[str, frozenset[Route]],
        kinds: frozenset[str],
        max_body: int,
        max_connections: int = 256,
        max_in_flight: int = 64,
        max_bytes_in_flight: int = 32 * 1024 * 1024,
        direct: Mapping[str, DirectFn] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.routes = dict(routes)
        self.direct = dict(direct or {})
        self.kinds = kinds
        self.max_body = max_body
        self.max_connections = max_connections
        self.max_in_flight = max_in_flight
        self.max_bytes_in_flight = max(max_bytes_in_flight, max_body)  # one request of the largest size fits
        self.in_flight = 0
        self.bytes_in_flight = 0
        self.site: BoundedSite | None = None
        WEBHOOK_CONNECTIONS.set_function(lambda: self.site.open_connections() if self.site else 0)
        for hook in [*self.routes, OTHER]:  # every series exists from the start: posts never add any
            ADMISSION_LATENCY.labels(hook)
            ADMISSION_ERRORS.labels(hook)
            ADMISSION_MALFORMED.labels(hook)
        self._context: ssl.SSLContext | None = None

    def _build_ssl(self) -> tuple[bytes | None, ssl.SSLContext | None]:
        cadata, context = super()._build_ssl()
        self._context = context
        return cadata, context

    @staticmethod
    def _digest(*paths: Any) -> str:
        hasher = hashlib.sha256()
        for path in paths:
            if path is not None:
                with contextlib.suppress(OSError):
                    hasher.update(Path(path).read_bytes())
        return hasher.hexdigest()

    async def _WebhookServer__sleep_forever_or_until_ssl_files_change(self) -> None:  # noqa: N802 - Kopf's hook
        """Replaces Kopf's wait, which restarts the server (closing the port for a moment) when a file changes:
        a rotated serving certificate is loaded into the live TLS context, so the next handshake presents it and
        no request is refused meanwhile. A changed client CA (RR_WEBHOOK_CLIENT_CA) still restarts the server,
        since a context can trust more CAs but never fewer."""
        serving = self._digest(self.certfile, self.pkeyfile)
        client_ca = self._digest(self.cafile)
        while True:
            await asyncio.sleep(self.file_check_interval)
            if self._digest(self.cafile) != client_ca:
                log.info("the webhook client CA changed: restarting the webhook server")
                return
            now = self._digest(self.certfile, self.pkeyfile)
            if now == serving or self._context is None or self.certfile is None:
                continue
            try:
                _load_pair(self._context, Path(self.certfile), Path(self.pkeyfile or self.certfile))
            except (ssl.SSLError, OSError, ValueError) as err:  # caught between two writes: retry next time
                log.info("the serving certificate changed but does not load yet (%s); retrying", err)
                continue
            serving = now
            log.info("reloaded the webhook serving certificate without a restart")

    async def __call__(self, fn: WebhookFn) -> AsyncIterator[WebhookClientConfig]:
        """Kopf's server loop (serve; restart when the certificate files change) on a BoundedSite."""

        async def serve(request: aiohttp.web.Request) -> aiohttp.web.Response:
            return await self._serve(fn, request)

        while True:
            _, context = self._build_ssl()
            path = self.path.rstrip("/") if self.path else ""
            app = aiohttp.web.Application()
            app.add_routes([aiohttp.web.post(f"{path}/{{id:.*}}", serve)])
            runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
            await runner.setup()
            try:
                port = self.port or self._allocate_free_port()
                site = BoundedSite(
                    runner,
                    self.addr or "0.0.0.0",  # noqa: S104 - Kopf's default: every interface when no address is set
                    port,
                    ssl_context=context,
                    limit=self.max_connections,
                )
                await site.start()
                self.site = site
                host = self.host or self.DEFAULT_HOST or self._get_accessible_addr(self.addr)
                schema = "http" if context is None else "https"
                yield WebhookClientConfig(url=self._build_url(schema, host, port, self.path or ""))
                # Kopf's (name-mangled): returns when the certificate, key or client CA file changes.
                sleep: Callable[[], Awaitable[None]] = getattr(  # noqa: B009 - a private name mypy cannot see
                    self, "_WebhookServer__sleep_forever_or_until_ssl_files_change"
                )
                await sleep()
                log.info("webhook server: restarting with the renewed certificate files")
            finally:
                self.site = None
                await runner.cleanup()

    def _shed(self, what: str) -> aiohttp.web.Response:
        ADMISSION_SHED.labels("requests").inc()
        response = _one_line(
            503,
            f"release-readiness is at its limit of {what}; the API server applies the webhook's failurePolicy; retry",
        )
        response.headers["Retry-After"] = "1"
        return response

    async def _serve(  # type: ignore[override]  # Kopf's is a staticmethod; ours needs the routes
        self, fn: WebhookFn, request: aiohttp.web.Request
    ) -> aiohttp.web.Response:
        hook = request.match_info.get("id", "")
        if hook not in self.routes:
            ADMISSION_MALFORMED.labels(OTHER).inc()
            return _one_line(404, "no admission webhook is served at this path")
        if self.in_flight >= self.max_in_flight:
            return self._shed(f"{self.max_in_flight} requests being answered at once")
        size = min(request.content_length or self.max_body, self.max_body)
        if self.bytes_in_flight + size > self.max_bytes_in_flight:
            return self._shed(f"{self.max_bytes_in_flight} bytes of requests being answered at once")
        self.in_flight += 1
        self.bytes_in_flight += size
        try:
            return await self._answer(fn, request, hook)
        finally:
            self.in_flight -= 1
            self.bytes_in_flight -= size

    async def _answer(self, fn: WebhookFn, request: aiohttp.web.Request, hook: str) -> aiohttp.web.Response:
        started = time.perf_counter()
        try:
            try:
                async with asyncio.timeout(BODY_TIMEOUT_SECONDS):  # a slow client holds no connection for long
                    body = await _read_capped(request, self.max_body)
            except TimeoutError:
                raise ReviewError(f"the body did not arrive within {BODY_TIMEOUT_SECONDS:g} seconds") from None
            if body is None:
                raise ReviewError(f"the body is larger than {self.max_body} bytes")
            review = parse_review(body, hook, self.routes)
        except ReviewError as err:
            ADMISSION_MALFORMED.labels(hook).inc()
            return _one_line(400, str(err))
        payload = review["request"]
        context = {"uid": str(payload["uid"]), "mode": "", "decision": ""}
        token = ADMISSION.set(context)
        direct = self.direct.get(hook)
        try:
            if direct is not None:
                response = direct(review)
            else:
                sslpeer = request.transport.get_extra_info("peercert") if request.transport else None
                response = await fn(cast(Request, review), webhook=hook, headers=dict(request.headers), sslpeer=sslpeer)
        except Exception:
            # Kopf itself failed on a well-formed review: refuse (fail closed), say where to look, show nothing.
            log.exception("webhook %s failed on request %s", hook, context["uid"])
            response = _internal_error(review, hook)
        finally:
            ADMISSION_LATENCY.labels(hook).observe(time.perf_counter() - started)
            ADMISSION.reset(token)
        status = response.get("response", {}).get("status") or {}
        if status.get("code") == 500:  # a handler raised something other than an AdmissionError
            ADMISSION_ERRORS.labels(hook).inc()
            response = _internal_error(review, hook)
        allowed = bool(response.get("response", {}).get("allowed"))
        decision = context["decision"] or ("allowed" if allowed else "refused")
        kind = str(payload["kind"]["kind"])
        ADMISSION_REQUESTS.labels(hook, kind if kind in self.kinds else OTHER, context["mode"] or "-", decision).inc()
        return aiohttp.web.Response(body=dump_json(response), content_type="application/json")


DirectFn = Callable[[Mapping[str, Any]], Response]
"""An answer to a well-formed review (checked by parse_review) without Kopf: the gate's (see _gate_answer)."""


def _load_pair(context: ssl.SSLContext, certfile: Path, keyfile: Path) -> None:
    """Load a certificate and key into a live context only once they are known to pair: both are read once into a
    private file, tried on a scratch context, then loaded (a mismatched key would leave the live context without
    a certificate)."""
    with tempfile.TemporaryDirectory(prefix="rr-tls-") as tmp:
        pair = Path(tmp) / "pair.pem"
        pair.write_bytes(keyfile.read_bytes() + b"\n" + certfile.read_bytes())
        pair.chmod(0o600)
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(str(pair))
        context.load_cert_chain(str(pair))


def _internal_error(review: Mapping[str, Any], hook: str) -> Response:
    uid = str(review["request"]["uid"])
    return Response(
        apiVersion="admission.k8s.io/v1",
        kind="AdmissionReview",
        response=ResponsePayload(
            uid=uid,
            allowed=False,
            status=ResponseStatus(
                code=500,
                message=f"release-readiness could not judge this request ({hook}, an internal error); "
                f"the operator's log has the details under admissionUid {uid}; retry, or report it",
            ),
        ),
    )


def webhook_server(state: AdmissionContext) -> kopf.WebhookServer:
    s = state.settings
    certfile, keyfile = serving_certificate(s.webhook_cert_dir, ("localhost", "127.0.0.1"))
    client_ca: dict[str, Any] = {}
    if s.webhook_client_ca:
        if not Path(s.webhook_client_ca).is_file():
            raise SystemExit(
                f"error: RR_WEBHOOK_CLIENT_CA={s.webhook_client_ca} is not a file; mount the CA that signs the API "
                "server's webhook client certificate there, or unset RR_WEBHOOK_CLIENT_CA"
            )
        # cafile too: Kopf re-reads certfile, pkeyfile and cafile every minute and restarts the server when one
        # changes, so a rotated client CA takes effect without a restart (cafile is otherwise only the caBundle of
        # Kopf's managed webhook configurations, which this project does not use).
        client_ca = {
            "verify_mode": ssl.CERT_REQUIRED,
            "verify_cafile": s.webhook_client_ca,
            "cafile": s.webhook_client_ca,
        }
    return InstrumentedWebhookServer(
        direct={
            path: functools.partial(_gate_answer, gated, state, path == gated.advisory_webhook)
            for gated in s.gated_kinds
            for path in (gated.webhook, gated.advisory_webhook)
        },
        routes=routes_of(webhook_configurations(b"", base_url="https://webhook", extra_kinds=s.extra_gated_kinds)),
        kinds=admission_kinds(s.extra_gated_kinds),
        max_body=s.webhook_max_body_bytes,
        max_connections=s.webhook_max_connections,
        max_in_flight=s.webhook_max_in_flight,
        max_bytes_in_flight=s.webhook_max_bytes_in_flight,
        addr=s.webhook_host,
        port=s.webhook_port,
        certfile=certfile,
        pkeyfile=keyfile,
        file_check_interval=s.webhook_cert_check_seconds,
        **client_ca,
    )


def _state(memo: Any) -> AdmissionContext:
    state: AdmissionContext = memo.state
    return state


def _require_synced(state: AdmissionContext, what: str) -> None:
    """Signoffs and releases are judged against the index: never against an incomplete one."""
    if not state.sync.synced:
        raise kopf.AdmissionError(
            f"{what}: release-readiness is {STARTING} in a few seconds: it has not listed "
            f"{', '.join(state.sync.missing())} yet",
            code=503,
        )


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


def register_webhooks(registry: kopf.OperatorRegistry) -> None:
    """The signoff, release, authority and suite Job webhooks (each id is its path). The gate's paths are answered by
    the server itself (InstrumentedWebhookServer.direct, _gate_answer), without Kopf's admission machinery."""
    on = kopf.on

    @on.mutate(GROUP, VERSION, "releasesignoffs", operation="CREATE", id="stamp-signoff", registry=registry)
    async def stamp(body: kopf.Body, userinfo: kopf.UserInfo, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        state = _state(memo)
        _require_synced(state, "ReleaseSignoff")
        signoff = _parse(ReleaseSignoff, body, "ReleaseSignoff")
        namespace = body.metadata.namespace or ""
        release = state.index.releases.get((namespace, signoff.spec.release))
        checklist = state.index.checklists.get(release.spec.checklist) if release else None
        waivers = ""
        if release is not None and checklist is not None:
            signed = state.index.signoffs_for((namespace, signoff.spec.release))
            creator = release.metadata.annotations.get(CREATED_BY)
            waivers = waiver_fingerprint(tally(checklist, creator, signed, release.metadata.uid).waivers)
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
        _require_synced(state, "ReleaseSignoff")
        new = _parse(ReleaseSignoff, body, "ReleaseSignoff")
        previous = _parse(ReleaseSignoff, old, "ReleaseSignoff") if old else None
        namespace = body.metadata.namespace or ""
        release = state.index.releases.get((namespace, new.spec.release))
        checklist = state.index.checklists.get(release.spec.checklist) if release else None
        others = [
            s for s in state.index.signoffs_for((namespace, new.spec.release)) if s.metadata.name != new.metadata.name
        ]
        settings = state.settings
        per_release, per_signer = settings.max_signoffs_per_release, settings.max_signoffs_per_signer
        _refuse(
            validate_signoff(
                new, previous, caller, release, checklist, others, limit=per_release, per_signer=per_signer
            )
        )

    @on.validate(GROUP, VERSION, "readinesschecklists", id="validate-checklist", registry=registry)
    async def check_checklist(body: kopf.Body, **_: Any) -> None:
        _refuse(validate_checklist(_parse(ReadinessChecklist, body, "ReadinessChecklist")))

    _register_release_webhook(registry)
    _register_authority_webhooks(registry)
    _register_suite_job_webhook(registry)


def _register_suite_job_webhook(registry: kopf.OperatorRegistry) -> None:
    """Suite Jobs: their creator stamped; only it or a platform admin deletes or relabels them (suites.py)."""
    on = kopf.on

    @on.validate("batch", "v1", "jobs", operations=["DELETE"], id="validate-suite-job-delete", registry=registry)
    async def check_suite_job_delete(userinfo: kopf.UserInfo, memo: Any, old: Any = None, **_: Any) -> None:
        # The API server calls only validating webhooks on DELETE.
        caller = Caller.from_userinfo(userinfo)
        admins = _state(memo).settings.platform_admin_groups
        _refuse(suite_change_errors("DELETE", None, old, caller.username, caller.groups, admins))

    @on.mutate("batch", "v1", "jobs", operations=["CREATE", "UPDATE"], id="stamp-suite-job", registry=registry)
    async def stamp_suite_job(
        body: kopf.Body,
        userinfo: kopf.UserInfo,
        patch: kopf.Patch,
        memo: Any,
        old: Any = None,
        operation: str = "",
        **_: Any,
    ) -> None:
        # Who created a suite Job, from the request's authenticated user (see suites.py); needs no index.
        caller = Caller.from_userinfo(userinfo)
        admins = _state(memo).settings.platform_admin_groups
        _refuse(suite_change_errors(operation, body, old, caller.username, caller.groups, admins))
        value = suite_stamp(operation, body, old, caller.username, caller.groups)
        if (body.metadata.annotations or {}).get(SUITE_CREATOR) != value:
            patch["metadata"] = {"annotations": {SUITE_CREATOR: value}}


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
        _require_synced(state, "ReleaseReadiness")
        caller = Caller.from_userinfo(userinfo)
        new = _parse(ReleaseReadiness, body, "ReleaseReadiness")
        if operation == "DELETE":
            _refuse(validate_release_delete(_name(new), _vetoes(state, new), caller, state.authority))
            return
        previous = _parse(ReleaseReadiness, old, "ReleaseReadiness") if old else None
        checklist = state.index.checklists.get(new.spec.checklist)
        errors = validate_release(new, checklist)
        if previous is None:
            settings = state.settings
            errors += prometheus_url_errors(new, checklist, settings.prometheus_url, settings.prometheus_urls)
        errors += validate_release_update(previous, new, caller)
        if previous is None:
            errors += validate_release_unique(new, state.index.releases_in(new.metadata.namespace or ""))
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


def _name(release: ReleaseReadiness) -> str:
    return f"ReleaseReadiness {release.metadata.namespace}/{release.metadata.name}"


def _vetoes(state: AdmissionContext, release: ReleaseReadiness) -> list[tuple[str, str, str]]:
    """(role, signer, signoff) of the vetoes that hold on `release`, by the index."""
    checklist = state.index.checklists.get(release.spec.checklist)
    if checklist is None:
        return []
    signoffs = state.index.signoffs_for((release.metadata.namespace or "", release.metadata.name))
    counted = tally(checklist, release.metadata.annotations.get(CREATED_BY), signoffs, release.metadata.uid)
    return [(role, signer_of(veto), veto.metadata.name) for role, vetoes in counted.vetoes.items() for veto in vetoes]


async def _may_list_deployments(state: AdmissionContext, userinfo: Any, namespace: str) -> tuple[bool | None, str]:
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


def _gate_answer(gated: GatedKind, state: AdmissionContext, advisory_hook: bool, review: Mapping[str, Any]) -> Response:
    """The gate's answer to a well-formed review of a gated kind (checked by parse_review). Served without Kopf's
    general admission machinery (causes, handler lookup, progress state, patches, its JSON): that machinery cost
    more CPU than the decision itself (docs/benchmarks.md). The same inputs Kopf gave: the object (the old one for
    a DELETE), the old object, the operation, subresource, dry-run flag and the requesting user."""
    payload = review["request"]
    new, old = payload.get("object"), payload.get("oldObject")
    body: Mapping[str, Any] = new if new is not None else old
    meta = body.get("metadata") or {}
    dryrun = bool(payload.get("dryRun"))
    operation = payload.get("operation")
    subresource = payload.get("subResource")
    userinfo = payload["userInfo"]
    warnings: list[str] = []
    namespace = meta.get("namespace") or payload.get("namespace") or ""
    # The mode comes from the listed namespaces, never from an empty index (see starting_decision).
    listed = state.index.namespaces.get(namespace) if state.sync.is_listed("Namespace") else None
    mode = ((listed or {}).get("metadata", {}).get("labels") or {}).get(GATE_LABEL)
    kind = gated.kind
    req = GateRequest(
        operation=operation or "CREATE",
        gated=gated,
        namespace=namespace,
        name=meta.get("name") or "",
        obj=dict(body),
        old=dict(old) if old else None,
        caller=Caller.from_userinfo(userinfo),
        dry_run=dryrun,
        subresource=subresource or None,
    )
    if listed is None:
        missing = state.sync.missing() or [f"namespace {namespace}"]
        decision = starting_decision(req, None, missing, advisory_hook=advisory_hook)
    elif mode not in MODES:  # the API server asks only about labelled namespaces: the label is not seen yet
        label = [f"the {GATE_LABEL} label of namespace {namespace}"]
        decision = starting_decision(req, None, label, advisory_hook=advisory_hook)
    elif not state.sync.synced:
        decision = starting_decision(req, mode, state.sync.missing())
    else:
        decision = gate_decision(
            req,
            mode,
            functools.partial(state.index.releases_for, namespace),
            state.index.checklists,
            state.settings.break_glass_groups,
            dt.datetime.now(dt.UTC),
            state.index.candidate_workloads,
            state.index.invalid_releases_in(namespace),
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
        state.recorder.on_gate_decision(req, decision)
    answer = ResponsePayload(uid=str(payload["uid"]), allowed=decision.allowed)
    if warnings:
        answer["warnings"] = warnings
    if not decision.allowed:
        answer["status"] = ResponseStatus(code=403, message=decision.message)
    return Response(apiVersion="admission.k8s.io/v1", kind="AdmissionReview", response=answer)
