"""The probes: /healthz (liveness: the event loop answers) and /readyz (readiness: every watched kind is listed).

A replica whose watches have not listed everything answers admission with "starting, retry"; /readyz keeps
it out of the webhook Service's endpoints meanwhile, so the API server asks a replica that knows the facts.
Liveness does not depend on the listing: a slow start-up must not become a restart loop.
"""

from __future__ import annotations

import aiohttp.web

from release_readiness.sync import ListingSync

__all__ = ["start_health_server"]


async def start_health_server(host: str, port: int, sync: ListingSync) -> aiohttp.web.AppRunner:
    async def healthz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="ok\n")

    async def readyz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        if sync.synced:
            return aiohttp.web.Response(text="ok\n")
        missing = ", ".join(sync.missing())
        return aiohttp.web.Response(status=503, text=f"starting: not yet listed: {missing}\n")

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get("/healthz", healthz), aiohttp.web.get("/readyz", readyz)])
    runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, host, port).start()
    return runner
