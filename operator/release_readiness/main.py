"""`release-readiness-operator`: runs the watches, the reconciler and the admission webhooks."""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

import kopf
import prometheus_client

from release_readiness import kopf_tuning, sync
from release_readiness.config import Settings
from release_readiness.handlers import OperatorState, register
from release_readiness.health import start_health_server
from release_readiness.logs import configure_logging

__all__ = ["main", "run_operator"]


async def run_operator(
    settings: Settings,
    state: OperatorState | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    if settings.metrics_port:
        prometheus_client.start_http_server(settings.metrics_port)
    kopf_tuning.install()
    sync.install()
    # A long-lived server: move start-up objects out of the collector's way, and collect the youngest
    # generation less often (each admission request allocates thousands of short-lived objects).
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    registry = register(kopf.OperatorRegistry(), settings.extra_gated_kinds)
    state = state or OperatorState(settings)
    health = await start_health_server("0.0.0.0", settings.health_port, state.sync)  # noqa: S104 - probes come from the kubelet
    try:
        await kopf.operator(
            registry=registry,
            memo=kopf.Memo(state=state),
            clusterwide=True,
            standalone=True,
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    finally:
        await health.cleanup()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop (libuv; its TLS and transports in C): the webhook's request path costs less CPU
    (docs/benchmarks.md). RR_EVENT_LOOP=asyncio runs the standard loop instead."""
    if os.environ.get("RR_EVENT_LOOP", "uvloop") == "asyncio":
        return None
    import uvloop

    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="release-readiness-operator", description=__doc__)
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_format, logging.DEBUG if args.verbose else logging.INFO)
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack to stderr
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(run_operator(settings))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
