"""Webhook registrations a local run left behind: `make run` registers the webhooks at https://127.0.0.1:<port>
in the cluster directory's etcd, which outlives it. A later `make cluster && make install` (or `make run`
against that cluster) would have every checklist, release and signoff refused ("failed calling webhook"),
since nothing listens there any more. `make cluster`, `make install` and `make run` remove such registrations
first: only this project's (labelled app.kubernetes.io/name=release-readiness), only those with a loopback URL,
and only when nothing accepts a connection at it. Registrations that reach a Service (the chart's) are never
touched.

`python -m release_readiness_dev.stale` (against $KUBECONFIG) prints what it removed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from release_readiness_dev.localcluster import find_bin_dir

__all__ = ["remove_stale_registrations", "stale_url"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def stale_url(config: dict[str, Any]) -> str | None:
    """The loopback URL a configuration reaches where nothing listens, or None (a Service, or a live URL)."""
    for hook in config.get("webhooks") or []:
        url = (hook.get("clientConfig") or {}).get("url")
        if not url:
            return None
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK:
            return None
        if not _answers(parts.hostname, parts.port or 443):
            return str(url)
    return None


def _kubectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(find_bin_dir() / "kubectl"), *args], capture_output=True, text=True, check=False)


def remove_stale_registrations() -> list[str]:
    """Delete this project's local webhook registrations that point at nothing; returns what was removed."""
    proc = _kubectl(
        "get",
        "validatingwebhookconfigurations,mutatingwebhookconfigurations",
        "-l",
        "app.kubernetes.io/name=release-readiness",
        "-o",
        "json",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot list the webhook configurations: {proc.stderr.strip()}")
    removed = []
    for config in json.loads(proc.stdout).get("items", []):
        url = stale_url(config)
        if url is None:
            continue
        ref = f"{config['kind'].lower()}/{config['metadata']['name']}"
        deleted = _kubectl("delete", ref, "--ignore-not-found")
        if deleted.returncode != 0:
            raise RuntimeError(f"cannot remove the stale {ref}: {deleted.stderr.strip()}")
        removed.append(f"{ref} (it pointed at {url}, where nothing listens)")
    return removed


def main() -> int:
    try:
        removed = remove_stale_registrations()
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for line in removed:
        print(f"removed the stale webhook registration {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
