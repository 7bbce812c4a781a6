"""Who judges a release: the metric items are judged by a Prometheus the platform names (the operator's settings or
the checklist's spec.rules.prometheusUrls), never by one the release's creator chooses (red-team finding 2: a fake
Prometheus answering every query with its threshold turned 21 of 23 metric items Passed, and the operator fetched
URLs of the creator's choosing from its own network position)."""

from __future__ import annotations

import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import Kubectl, eventually
from tests.integration.prometheus import PrometheusServer, TrafficExporter
from tests.integration.test_signoffs import ENG2

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

SEL = 'app="$application", namespace="$namespace", version="$version"'
ITEMS = [
    {
        "id": "throughput",
        "section": "Performance",
        "title": "> 500 req/s",
        "check": {"prometheus": {"query": f"sum(rate(http_requests_total{{{SEL}}}[10s]))", "min": 500}},
    }
]


class FakePrometheus:
    """The attacker's server: answers every query with a value inside any threshold, and counts its callers."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append(self.path)
                result = [{"metric": {}, "value": [0, "1000"]}]
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, str, FakePrometheus]]:
    namespace = f"stg-{uuid.uuid4().hex[:6]}"
    # slow-api serves 300 req/s: the platform's Prometheus fails it against >= 500; the fake says 1000.
    exporter = TrafficExporter({"slow-api": (300, 0.8, 0.05)}, namespace).start()
    directory: Path = tmp_path_factory.mktemp("prometheus")
    server = PrometheusServer(directory, [exporter.port]).start()
    fake = FakePrometheus()
    yield server, namespace, fake
    fake.stop()
    server.stop()
    exporter.stop()


def setup(kubectl: Kubectl, candidate: str, urls: list[str]) -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:6]
    prod, checklist = f"prod-{suffix}", f"judges-{suffix}"
    kubectl.run("create", "namespace", candidate, check=False)
    kubectl.run("create", "namespace", prod)
    body = builders.checklist(checklist, ITEMS, rules={"prometheusUrls": urls})
    kubectl.apply(json.dumps(body))
    return prod, checklist


def test_a_creator_chosen_prometheus_is_refused_at_apply_and_never_queried(
    servers: tuple[PrometheusServer, str, FakePrometheus], kubectl: Kubectl
) -> None:
    server, candidate, fake = servers
    prod, checklist = setup(kubectl, candidate, [server.url])
    for url in (fake.url, f"{fake.url}/", "http://169.254.169.254/latest/meta-data"):
        rel = builders.release("slow-api", prod, "slow-api", "3.2.0", checklist, candidate, prometheusUrl=url)
        proc = kubectl.run("create", "-f", "-", stdin=json.dumps(rel), as_user=ENG2[0], as_groups=ENG2[1], check=False)
        assert proc.returncode != 0
        assert (
            f"ReleaseReadiness {prod}/slow-api: spec.prometheusUrl '{url}' is not an allowed Prometheus; allowed: "
            f"{server.url} (set one of them, or remove spec.prometheusUrl to be judged by {server.url})" in proc.stderr
        )
    assert fake.requests == []


def test_metric_items_are_judged_by_the_platforms_prometheus_and_name_it(
    servers: tuple[PrometheusServer, str, FakePrometheus], kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    server, candidate, fake = servers
    custom = client.CustomObjectsApi(api_client)

    def judged(prod: str) -> dict[str, Any] | None:
        body = custom.get_namespaced_custom_object("readiness.dev", "v1alpha1", prod, "releasereadinesses", "slow-api")
        found = {i["id"]: i for i in (body.get("status") or {}).get("items", [])}.get("throughput", {})
        return found if found.get("state") == "Failed" else None

    # Without spec.prometheusUrl the checklist's server judges; naming it (an allowed one) is the same.
    for spec in ({}, {"prometheusUrl": server.url + "/"}):
        prod, checklist = setup(kubectl, candidate, [server.url])
        rel = builders.release("slow-api", prod, "slow-api", "3.2.0", checklist, candidate, **spec)
        kubectl.run("create", "-f", "-", stdin=json.dumps(rel), as_user=ENG2[0], as_groups=ENG2[1])
        item: dict[str, Any] = eventually(lambda p=prod: judged(p), what=f"{spec}: throughput judged")  # type: ignore[misc]
        assert "outside >= 500" in item["message"]
        assert item["message"].endswith(f"(Prometheus at {server.url})")
    assert fake.requests == []
