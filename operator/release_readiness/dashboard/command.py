"""The plugin's `dashboard` command: `kubectl readiness dashboard [--port N] [-n NS | -A]`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from release_readiness.clierror import CliError

__all__ = ["add_dashboard_command", "cmd_dashboard"]

EXIT_OK = 0


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port: use 1-65535, or 0 for a free one")
    return port


def _refresh(value: str) -> float:
    try:
        seconds = float(value.removesuffix("s"))
    except ValueError:
        seconds = -1.0
    if not 1.0 <= seconds <= 300.0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a refresh interval: use 1s to 300s, e.g. --refresh 5s")
    return seconds


def add_dashboard_command(sub: Callable[..., argparse.ArgumentParser]) -> None:
    """Register the command through the plugin's `sub` helper (which gives it kubectl's global flags)."""
    db = sub(
        "dashboard",
        help="serve a read-only web dashboard on 127.0.0.1 with your own identity (-n NS, or -A: every namespace)",
    )
    db.add_argument("--port", type=_port, default=0, help="port on 127.0.0.1 (default 0: a free one, printed)")
    db.add_argument(
        "--refresh", type=_refresh, default=5.0, metavar="SECONDS", help="how often pages update (default 5s)"
    )
    db.set_defaults(fn=cmd_dashboard)


def cmd_dashboard(api: Any, args: argparse.Namespace) -> int:
    """Serve until interrupted. `api` is the plugin's client (the caller's kubeconfig, --as and timeouts)."""
    from release_readiness.dashboard.reader import Reader
    from release_readiness.dashboard.server import Dashboard, serve
    from release_readiness.kube import authenticated_username

    try:
        user = authenticated_username(api.client) or "an unnamed user"
    except Exception:  # an old API server without SelfSubjectReview: still serve, the reads say what is allowed
        user = "(the API server did not say)"
    scope = None if args.all_namespaces else str(api.namespace)
    dashboard = Dashboard(Reader(api.client, scope), args.port, user, refresh=args.refresh)

    def ready(url: str) -> None:
        where = "every namespace you may read" if scope is None else f"namespace {scope}"
        print(f"Dashboard for {user} ({where}), read-only, at {url}", flush=True)
        print("Open that address (it carries this session's token); Ctrl-C stops it.", flush=True)

    try:
        asyncio.run(serve(dashboard, ready))
    except OSError as err:
        raise CliError(f"cannot listen on 127.0.0.1:{args.port}: {err.strerror or err}; choose --port") from None
    return EXIT_OK  # served until stopped
