"""Which webhook registrations `make cluster`, `make install` and `make run` remove: loopback URLs where nothing
listens, never a Service (the chart's) and never a live or remote URL."""

from __future__ import annotations

import socket

from release_readiness_dev.stale import stale_url


def config(*client_configs: dict[str, object]) -> dict[str, object]:
    return {"webhooks": [{"name": f"h{i}", "clientConfig": c} for i, c in enumerate(client_configs)]}


def test_only_loopback_urls_where_nothing_listens_are_stale() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        live = f"https://127.0.0.1:{listening.getsockname()[1]}/validate"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            dead = f"https://127.0.0.1:{probe.getsockname()[1]}/validate"  # bound, never listening
            assert stale_url(config({"url": dead})) == dead
            assert stale_url(config({"url": live})) is None
            assert stale_url(config({"service": {"name": "rr", "namespace": "rr"}})) is None
            assert stale_url(config({"url": "https://webhook.example.com:9443/x"})) is None
            assert stale_url(config({"service": {"name": "rr", "namespace": "rr"}}, {"url": dead})) is None
