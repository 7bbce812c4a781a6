"""The webhook server under overload, against the real operator process: memory stays bounded and it answers again.

An operator of its own (beside the session's, on another port, not registered with the API server) with small
limits, so that a test-sized flood goes far past them: 12 times as many TLS connections as it may hold, each
presenting the API server's client certificate and posting a review. Past the limit a connection is reset before
its handshake, so the process's memory grows by a few MiB rather than by the TLS buffers of every connection
(256 KiB each in asyncio); once the flood is gone, the next request is answered. No timing is asserted.
"""

from __future__ import annotations

import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from release_readiness_dev.localcluster import LocalCluster, free_port
from tests.integration.conftest import OperatorProcess, eventually
from tests.unit.reviews import valid_review

LIMIT = 32
FLOOD = 12 * LIMIT


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture(scope="module")
def limited(
    cluster: LocalCluster, crds: None, webhook: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    cert_dir, _ = webhook
    proc = OperatorProcess(
        cluster,
        tmp_path_factory.mktemp("limited") / "operator.log",
        cert_dir,
        free_port(),
        RR_WEBHOOK_MAX_CONNECTIONS=str(LIMIT),
        RR_WEBHOOK_MAX_IN_FLIGHT="8",
    ).start()
    yield proc
    proc.stop()


def post(conn: http.client.HTTPSConnection) -> int:
    review = valid_review(namespace="nowhere")
    conn.request("POST", "/gate-deployments", json.dumps(review), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    answer = json.loads(resp.read())
    assert answer["response"]["uid"] == review["request"]["uid"]
    return resp.status


def test_a_flood_of_connections_leaves_memory_bounded_and_the_server_answering(
    cluster: LocalCluster, webhook: tuple[Path, int], limited: OperatorProcess
) -> None:
    assert limited.proc is not None
    pid = limited.proc.pid
    context = cluster.webhook_client_context(webhook[0] / "ca.crt")

    def connect() -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection("127.0.0.1", limited.webhook_port, context=context, timeout=60)
        conn.connect()
        return conn

    warm = connect()  # first-use allocations (TLS, aiohttp, the handler) are not growth
    assert post(warm) == 200
    warm.close()
    before = rss_mib(pid)

    held: list[http.client.HTTPSConnection] = []
    reset = 0
    try:
        for _ in range(FLOOD):  # every connection stays open until the end: the server must refuse the rest
            try:
                conn = connect()
                assert post(conn) == 200
                held.append(conn)
            except (TimeoutError, ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
                reset += 1
        during = rss_mib(pid)
    finally:
        for conn in held:
            conn.close()
    metrics = limited.metrics()
    print(f"\n{FLOOD} connections: {len(held)} served and held, {reset} reset; RSS {before:.0f} -> {during:.0f} MiB")

    assert len(held) <= LIMIT
    assert reset >= FLOOD - LIMIT
    assert 'release_readiness_admission_shed_total{reason="connections"}' in metrics
    # Unbounded, the held TLS connections alone would take 96 MiB (256 KiB of buffer each).
    assert during - before < 24, f"RSS grew from {before:.0f} to {during:.0f} MiB under {FLOOD} connections"

    def answered() -> bool:
        conn = connect()
        try:
            return post(conn) == 200
        finally:
            conn.close()

    eventually(answered, timeout=60, what="an answer once the flood is gone")
