"""The dashboard's web server: read-only pages on 127.0.0.1, rendered with Jinja2 (autoescaped) on aiohttp.

What keeps it from becoming a way in:
- it binds to 127.0.0.1 only, and every read is made with the caller's own client (their kubeconfig identity):
  it can show nothing the caller could not `kubectl get` themselves;
- every path is under a random capability token printed at start (`http://127.0.0.1:PORT/TOKEN/`), so another
  local user (or a process of theirs) cannot browse with the caller's credentials; compared in constant time;
- the Host header must be 127.0.0.1:PORT or localhost:PORT (DNS rebinding: a hostile site whose name resolves to
  127.0.0.1 sends its own name), cross-site requests (Origin or Sec-Fetch-Site) are refused, and only GET and
  HEAD are served: there is nothing to forge (no writes), and no CORS headers are sent;
- a strict Content-Security-Policy (only our own script and style), no framing, no referrer, no caching.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from release_readiness.dashboard.reader import Reader, Unreadable
from release_readiness.dashboard.views import SYMBOLS, checklist_view, release_row, release_view

__all__ = ["SECURITY_HEADERS", "Dashboard", "make_app", "serve"]

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("release_readiness.dashboard", "templates"),
        autoescape=True,  # every template, whatever its name: everything shown comes from the cluster
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["symbols"] = SYMBOLS
    return env


class Dashboard:
    def __init__(self, reader: Reader, port: int, user: str, refresh: float = 5.0, token: str | None = None) -> None:
        self.reader = reader
        self.port = port
        self.user = user
        self.refresh = refresh
        self.token = token or secrets.token_urlsafe(24)
        self.root = f"/{self.token}/"
        self.env = environment()
        self.static = {
            name: (resources.files("release_readiness.dashboard") / "static" / name).read_bytes() for name in STATIC
        }

    @property
    def hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    @property
    def origins(self) -> set[str]:
        return {f"http://{h}" for h in self.hosts}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.root}"

    # -- the guard -----------------------------------------------------------------------------------------------

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why this request is not served, or None to serve it."""
        if request.host not in self.hosts:
            return web.Response(
                status=421,
                text=f"unexpected Host header {request.host!r}: open {self.url} (the dashboard answers only on "
                "127.0.0.1 and localhost)\n",
            )
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"}, text="the dashboard is read-only\n")
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self.origins:
            return web.Response(status=403, text="cross-origin requests are refused\n")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return web.Response(status=403, text="cross-site requests are refused\n")
        if request.path.startswith("/static/"):
            return None
        token = request.path.split("/", 2)[1] if request.path.count("/") >= 2 else ""
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return web.Response(
                status=403,
                text="open the address `kubectl readiness dashboard` printed (it carries this session's token)\n",
            )
        return None

    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response: web.StreamResponse | None = self.refusal(request)
        if response is None:
            try:
                response = await handler(request)
            except web.HTTPException as err:
                response = web.Response(status=err.status, text=f"{err.reason}\n")
        response.headers.update(SECURITY_HEADERS)
        return response

    # -- pages ---------------------------------------------------------------------------------------------------

    def _html(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(
            root=self.root, user=self.user, scope=self.reader.namespace, refresh=self.refresh, **context
        )

    def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        return web.Response(text=self._html(template, **context), status=status, content_type="text/html")

    def render_live(self, page: str, fragment: str, request: web.Request, status: int, **context: Any) -> web.Response:
        """A page with a live region, or (for a /fragments/ request) only its fragment. The fragment's digest is its
        ETag: the page's script sends it back (If-None-Match) and gets a bodyless 304 while nothing changed, so a
        poll costs a few bytes and an unchanged page keeps focus and selection (nothing is swapped)."""
        as_fragment = request.path.startswith(f"{self.root}fragments/")
        html = self._html(fragment, **context)
        digest = hashlib.sha256(html.encode()).hexdigest()[:20]
        if as_fragment:
            etag = f'"{digest}"'
            if status == 200 and request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})  # unchanged: a poll costs a few bytes
            response = web.Response(text=html, status=status, content_type="text/html")
            response.headers["ETag"] = etag
            return response
        return self.render(page, status=status, digest=digest, updated=_now(), **context)

    async def releases_context(self) -> dict[str, Any]:
        listing = await self.reader.releases()
        return {
            "rows": [release_row(r) for r in listing.releases],
            "notes": listing.notes,
            "error": listing.error,
        }

    async def releases_page(self, request: web.Request) -> web.Response:
        return self.render_live("releases.html", "_releases.html", request, 200, **await self.releases_context())

    async def releases_fragment(self, request: web.Request) -> web.Response:
        return self.render_live("releases.html", "_releases.html", request, 200, **await self.releases_context())

    async def release_context(self, namespace: str, name: str) -> tuple[int, dict[str, Any]]:
        if not self.reader.in_scope(namespace):
            message = f"namespace {namespace} is outside this dashboard's scope (-n {self.reader.namespace})"
            return 404, {"error": message, "namespace": namespace, "name": name}
        try:
            release = await self.reader.release(namespace, name)
        except Unreadable as err:
            return err.status if err.status in (403, 404) else 502, {
                "error": str(err),
                "namespace": namespace,
                "name": name,
            }
        notes: list[str] = []

        async def optional(coro: Awaitable[Any], default: Any) -> Any:
            try:
                return await coro
            except Unreadable as err:
                notes.append(str(err))
                return default

        checklist, signoffs, events = await asyncio.gather(
            optional(self.reader.checklist(release.spec.checklist), None),
            optional(self.reader.signoffs(namespace), []),
            optional(self.reader.events(release), []),
        )
        view = release_view(release, checklist, signoffs, events)
        return 200, {"r": view, "notes": notes, "error": "", "namespace": namespace, "name": name}

    async def release_page(self, request: web.Request) -> web.Response:
        status, context = await self.release_context(request.match_info["namespace"], request.match_info["name"])
        return self.render_live("release.html", "_release.html", request, status, **context)

    async def release_fragment(self, request: web.Request) -> web.Response:
        status, context = await self.release_context(request.match_info["namespace"], request.match_info["name"])
        return self.render_live("release.html", "_release.html", request, status, **context)

    async def checklist_page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        try:
            view = checklist_view(await self.reader.checklist(name))
        except Unreadable as err:
            return self.render("checklist.html", status=err.status or 502, c=None, name=name, error=str(err))
        return self.render("checklist.html", c=view, name=name, error="")

    async def static_file(self, request: web.Request) -> web.Response:
        name = request.match_info["file"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=self.static[name], content_type=STATIC[name])


def make_app(dashboard: Dashboard) -> web.Application:
    app = web.Application(middlewares=[dashboard.guard])
    app.router.add_get("/{token}/", dashboard.releases_page)
    app.router.add_get("/{token}/fragments/releases", dashboard.releases_fragment)
    app.router.add_get("/{token}/releases/{namespace}/{name}", dashboard.release_page)
    app.router.add_get("/{token}/fragments/releases/{namespace}/{name}", dashboard.release_fragment)
    app.router.add_get("/{token}/checklists/{name}", dashboard.checklist_page)
    app.router.add_get("/static/{file}", dashboard.static_file)
    return app


def _now() -> str:
    return f"{dt.datetime.now(dt.UTC):%H:%M:%S} UTC"


async def serve(dashboard: Dashboard, ready: Callable[[str], None] | None = None) -> None:
    """Serve until cancelled (Ctrl-C), on 127.0.0.1 only."""
    runner = web.AppRunner(make_app(dashboard), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host="127.0.0.1", port=dashboard.port)
    await site.start()
    if dashboard.port == 0:  # the port the system chose
        dashboard.port = int(runner.addresses[0][1])
    if ready is not None:
        ready(dashboard.url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
