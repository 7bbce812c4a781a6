"""Metric gates against a real Prometheus scraping a test exporter with known values."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hack import seed_checklist as default
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import Kubectl, eventually, roll_out
from tests.integration.prometheus import ClusterExporter, PrometheusServer, TrafficExporter

pytestmark = pytest.mark.usefixtures("operator")

SEL = 'app="$application", namespace="$namespace", version="$version"'
P95 = f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{SEL}}}[10s])))"
ERRORS = f'sum(rate(http_requests_total{{{SEL}, code=~"5.."}}[10s])) / sum(rate(http_requests_total{{{SEL}}}[10s]))'
ITEMS = [
    {
        "id": "latency-p95",
        "section": "Performance",
        "title": "P95 < 500ms",
        "check": {
            "prometheus": {
                "query": P95,
                "max": 0.5,
            }
        },
    },
    {
        "id": "throughput",
        "section": "Performance",
        "title": "> 500 req/s",
        "check": {"prometheus": {"query": f"sum(rate(http_requests_total{{{SEL}}}[10s]))", "min": 500}},
    },
    {
        "id": "error-rate",
        "section": "Performance",
        "title": "Errors < 0.1%",
        "check": {
            "prometheus": {
                "query": ERRORS,
                "max": 0.001,
            }
        },
    },
    {
        "id": "watch-errors",
        "section": "Post-Deployment Tasks",
        "title": "Monitor error rates",
        "phase": "post",
        "check": {
            "prometheus": {
                "query": ERRORS,
                "max": 0.001,
                "for": "12s",
            }
        },
    },
]


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, str, TrafficExporter]]:
    namespace = f"stg-{uuid.uuid4().hex[:6]}"
    # fast-api: 600 req/s at 0.2 s, no errors; slow-api: 300 req/s at 0.8 s, 5 % errors.
    exporter = TrafficExporter({"fast-api": (600, 0.2, 0.0), "slow-api": (300, 0.8, 0.05)}, namespace).start()
    directory: Path = tmp_path_factory.mktemp("prometheus")
    server = PrometheusServer(directory, [exporter.port]).start()
    yield server, namespace, exporter
    server.stop()
    exporter.stop()


def release(
    kubectl: Kubectl, api: client.ApiClient, app: str, candidate: str, url: str, items: list[dict[str, Any]] = ITEMS
) -> Any:
    suffix = uuid.uuid4().hex[:6]
    prod, checklist = f"prod-{suffix}", f"metrics-{suffix}"
    kubectl.run("create", "namespace", candidate, check=False)
    kubectl.run("create", "namespace", prod)
    kubectl.apply(json.dumps(builders.checklist(checklist, items, rules={"prometheusUrls": [url]})))
    kubectl.apply(json.dumps(builders.release(app, prod, app, "3.2.0", checklist, candidate, prometheusUrl=url)))
    custom = client.CustomObjectsApi(api)

    def items() -> dict[str, dict[str, Any]]:
        body = custom.get_namespaced_custom_object("readiness.dev", "v1alpha1", prod, "releasereadinesses", app)
        return {i["id"]: i for i in (body.get("status") or {}).get("items", [])}

    return prod, items


def wait_states(items: Any, want: dict[str, str], timeout: float = 60) -> dict[str, dict[str, Any]]:
    seen: dict[str, Any] = {}

    def reached() -> dict[str, dict[str, Any]] | None:
        now = items()
        seen.update({k: now.get(k) for k in want})
        return now if all(now.get(k, {}).get("state") == v for k, v in want.items()) else None

    try:
        result: dict[str, dict[str, Any]] = eventually(reached, timeout=timeout, what=f"items {want}")
    except AssertionError as err:
        raise AssertionError(f"{err}; the items were: {seen}") from None
    return result


def test_latency_throughput_and_error_rate_pass_on_real_promql(
    traffic: Any, kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    server, namespace, _ = traffic
    _, items = release(kubectl, api_client, "fast-api", namespace, server.url)
    got = wait_states(items, {"latency-p95": "Passed", "throughput": "Passed", "error-rate": "Passed"})
    assert "within <= 0.5: histogram_quantile(0.95" in got["latency-p95"]["message"]
    assert 'app="fast-api"' in got["throughput"]["message"]
    assert got["watch-errors"]["state"] == "Pending"  # not admitted: post items wait


def test_slow_and_failing_app_fails_with_value_and_threshold(
    traffic: Any, kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    server, namespace, _ = traffic
    _, items = release(kubectl, api_client, "slow-api", namespace, server.url)
    got = wait_states(items, {"latency-p95": "Failed", "throughput": "Failed", "error-rate": "Failed"})
    assert "outside <= 0.5" in got["latency-p95"]["message"]
    assert "outside >= 500" in got["throughput"]["message"]
    assert "outside <= 0.001" in got["error-rate"]["message"]


def test_prometheus_down_turns_items_pending_and_they_recover(
    traffic: Any, kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    server, namespace, _ = traffic
    _, items = release(kubectl, api_client, "fast-api", namespace, server.url)
    wait_states(items, {"throughput": "Passed"})
    server.stop()
    try:
        got = wait_states(items, {"throughput": "Pending", "latency-p95": "Pending"})
        assert f"Prometheus at {server.url} is unreachable" in got["throughput"]["message"]
        assert "retrying in" in got["throughput"]["message"]
    finally:
        server.start()
    wait_states(items, {"throughput": "Passed", "latency-p95": "Passed"}, timeout=90)


def run_in_production(kubectl: Kubectl, prod: str, app: str) -> None:
    """The version runs in production (the namespace is not gated here): the release records its admission."""
    labels = {"app.kubernetes.io/name": app, "app.kubernetes.io/version": "3.2.0"}
    container = builders.container(image=f"reg/{app}:3.2.0")
    body = builders.deployment(
        app, prod, labels={}, template_labels=labels, selector=labels, containers=[container], replicas=None
    )
    kubectl.apply(json.dumps(body))
    roll_out(kubectl, prod, app)


def test_post_deployment_watch_after_admission(traffic: Any, kubectl: Kubectl, api_client: client.ApiClient) -> None:
    server, namespace, exporter = traffic
    prod, items = release(kubectl, api_client, "fast-api", namespace, server.url)
    # After the rollout the watch reads production's series (not staging's): they appear once it runs there.
    exporter.namespaces.append(prod)
    run_in_production(kubectl, prod, "fast-api")
    watching = wait_states(items, {"watch-errors": "Pending"})
    assert "after deployment" not in watching["watch-errors"]["message"]
    wait_states(items, {"watch-errors": "Passed"}, timeout=60)

    def healthy() -> bool:
        out = kubectl.run(
            "get",
            "rr",
            "fast-api",
            "-n",
            prod,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='PostDeploymentHealthy')].status}",
        ).stdout
        return out == "True"

    eventually(healthy, what="PostDeploymentHealthy=True")


@pytest.mark.parametrize(
    ("app", "production", "pre", "post"),
    [
        # fast-api is clean in staging and fails in production; slow-api (5 % errors in staging) is clean there.
        ("fast-api", (600, 0.2, 0.05), "Passed", "Failed"),
        ("slow-api", (600, 0.2, 0.0), "Failed", "Passed"),
    ],
)
def test_pre_items_read_staging_and_post_items_read_production(
    traffic: Any,
    kubectl: Kubectl,
    api_client: client.ApiClient,
    app: str,
    production: tuple[float, float, float],
    pre: str,
    post: str,
) -> None:
    """The same error-rate query, before and after admission: staging's series judge the pre item, production's
    the post item, even when they say the opposite."""
    server, namespace, exporter = traffic
    prod, items = release(kubectl, api_client, app, namespace, server.url)
    exporter.behaviour[(app, prod)] = production
    exporter.namespaces.append(prod)
    run_in_production(kubectl, prod, app)
    got = wait_states(items, {"error-rate": pre, "watch-errors": post}, timeout=90)
    assert f'namespace="{namespace}"' in got["error-rate"]["message"]
    assert f'namespace="{prod}"' in got["watch-errors"]["message"]


# -- the default checklist's load-window gates, with windows scaled from hours to seconds ------------------------

WINDOW = {"window": "2m", "step": "1s", "rate": "5s"}
LOAD_ITEMS = [
    {"id": item_id, "section": "Performance", "title": item_id, "check": {"prometheus": {"query": query, **bounds}}}
    for item_id, query, bounds in [
        ("throughput", default.throughput(**WINDOW), {"min": 500}),
        ("usage", default.usage_ratio(**WINDOW), {"max": 0.8}),
        ("exhaustion", default.exhaustion(**WINDOW), {"max": 0}),
        ("scaled", default.scaled_out(window="2m", step="1s"), {"min": 1}),
        ("sustained", default.sustained(window="2m", hold="5s", step="1s", points=5, rate="5s"), {"min": 500}),
    ]
]


@pytest.fixture(scope="module")
def cluster_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrometheusServer, ClusterExporter]]:
    namespace = f"stg-{uuid.uuid4().hex[:6]}"
    traffic = TrafficExporter({"fast-api": (600, 0.2, 0.0)}, namespace).start()
    cluster = ClusterExporter(namespace).start()
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus"), [traffic.port, cluster.port]).start()
    yield server, cluster
    server.stop()
    cluster.stop()
    traffic.stop()


def test_load_window_gates_wait_for_a_load_test_then_judge_it(
    cluster_metrics: tuple[PrometheusServer, ClusterExporter], kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    server, cluster = cluster_metrics
    _, items = release(kubectl, api_client, "fast-api", cluster.namespace, server.url, LOAD_ITEMS)
    # 600 req/s flow, but no load test ran in the window: nothing is judged, nothing passes at idle.
    idle = wait_states(items, {i["id"]: "Pending" for i in LOAD_ITEMS})
    assert "the query returned no series: nothing in its window, such as a load test" in idle["throughput"]["message"]
    cluster.replicas = 4
    cluster.load = True
    got = wait_states(items, {"throughput": "Passed", "usage": "Passed", "exhaustion": "Passed", "scaled": "Passed"})
    assert "within >= 500" in got["throughput"]["message"]
    wait_states(items, {"sustained": "Passed"})
    # The load test ends: its results stay in the window (a windowed query, not the current rate).
    cluster.load = False
    cluster.replicas = 2
    wait_states(items, {"throughput": "Passed", "scaled": "Passed"})


def test_load_window_gates_fail_on_what_the_load_test_showed(
    cluster_metrics: tuple[PrometheusServer, ClusterExporter], kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    server, cluster = cluster_metrics
    cluster.memory = 500 * 2**20  # 98% of the 512 MiB limit
    cluster.load = True
    cluster.restarts += 1
    try:
        _, items = release(kubectl, api_client, "fast-api", cluster.namespace, server.url, LOAD_ITEMS)
        got = wait_states(items, {"usage": "Failed", "exhaustion": "Failed"})
        assert "outside <= 0.8" in got["usage"]["message"]
        assert "outside <= 0" in got["exhaustion"]["message"]
    finally:
        cluster.load = False
        cluster.memory = 200 * 2**20


def test_a_bad_query_or_placeholder_never_reaches_the_operator(kubectl: Kubectl) -> None:
    """The checklist webhook refuses at `kubectl apply`: an unknown placeholder with its position, a query that is
    not PromQL with the parser's reason; each names the item. Nothing is stored."""
    name = f"bad-query-{uuid.uuid4().hex[:6]}"
    typo = 'sum(rate(http_requests_total{namespace="$namespce"}[5m]))'
    broken = 'sum(rate(http_requests_total{namespace="$productionNamespace"}[5m])'
    checks = {"typo": {"prometheus": {"query": typo, "min": 1}}, "broken": {"prometheus": {"query": broken, "min": 1}}}
    proc = kubectl.apply(json.dumps(builders.checklist(name, checks)), check=False)
    assert proc.returncode != 0
    assert (
        f"spec.items[0].check.prometheus.query (typo): unknown placeholder $namespce at position "
        f"{typo.index('$namespce') + 1} of query" in proc.stderr
    )
    assert (
        f"spec.items[1].check.prometheus.query (broken): not valid PromQL at position {broken.index('(') + 1}: "
        "unclosed left parenthesis" in proc.stderr
    )
    assert kubectl.run("get", "rcl", name, check=False).returncode != 0


@pytest.mark.parametrize("window", ["10x", "0s", "0h0m", "1h 30m"])
def test_a_bad_for_window_is_refused_at_apply_naming_the_item(kubectl: Kubectl, window: str) -> None:
    """The API server itself (a CEL rule on the item, so the message can name the item's id) refuses a window
    that is not a duration above zero; nothing is stored."""
    name = f"bad-window-{uuid.uuid4().hex[:6]}"
    checks = {"error-rate": {"prometheus": {"query": "vector(0)", "max": 1, "for": window}}}
    proc = kubectl.apply(json.dumps(builders.checklist(name, checks)), check=False)
    assert proc.returncode != 0
    assert f"item error-rate: check.prometheus.for {window} is not a duration above zero" in proc.stderr
    assert "spec.items[0].check.prometheus.for" in proc.stderr
    assert kubectl.run("get", "rcl", name, check=False).returncode != 0


def test_a_window_longer_than_a_month_is_refused_by_the_webhook(kubectl: Kubectl) -> None:
    name = f"long-window-{uuid.uuid4().hex[:6]}"
    checks = {"error-rate": {"prometheus": {"query": "vector(0)", "max": 1, "for": "32d"}}}
    proc = kubectl.apply(json.dumps(builders.checklist(name, checks)), check=False)
    assert proc.returncode != 0
    assert "spec.items[0].check.prometheus.for (error-rate): '32d' is longer than 31d; shorten the window" in (
        proc.stderr
    )
