"""Metric gates: substitution, instant and range judgements, back-off while Prometheus is away."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from release_readiness.api import ChecklistItem, ReleaseReadiness
from release_readiness.api.checklist import PrometheusCheck
from release_readiness.evaluation import abbreviate
from release_readiness.metricgates import (
    NO_SERIES,
    MetricGates,
    PrometheusError,
    QueryError,
    judge_instant,
    judge_range,
    parse_duration,
    substitute,
)

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
P95 = PrometheusCheck(query="p95", max=0.5)


def release(url: str | None = None) -> ReleaseReadiness:
    spec: dict[str, Any] = {"application": 'pay"ments', "version": "3.2.0", "candidate": {"namespace": "stg"}}
    if url:
        spec["prometheusUrl"] = url
    return ReleaseReadiness.model_validate({"metadata": {"name": "r", "namespace": "prod"}, "spec": spec})


def vector(*values: str) -> dict[str, Any]:
    return {
        "resultType": "vector",
        "result": [{"metric": {"i": str(i)}, "value": [0, v]} for i, v in enumerate(values)],
    }


def test_substitute_quotes_values() -> None:
    q = substitute('rate(x{app="$application", v="${version}", ns="$namespace"}[5m])', release())
    assert q == 'rate(x{app="pay\\"ments", v="3.2.0", ns="stg"}[5m])'


def test_post_deployment_queries_watch_the_production_namespace() -> None:
    rel = release()
    assert substitute('x{ns="$namespace"}', rel, "post") == f'x{{ns="{rel.metadata.namespace}"}}'
    assert substitute('x{ns="$namespace"}', rel, "pre") == 'x{ns="stg"}'


def test_parse_duration() -> None:
    assert parse_duration("1h30m") == dt.timedelta(minutes=90)
    assert parse_duration("10s") == dt.timedelta(seconds=10)


def test_instant_pass_fail_and_the_message_shows_value_threshold_and_query() -> None:
    ok = judge_instant(vector("0.21"), P95, "p95")
    assert (ok.state, ok.message) == ("Passed", "0.21 within <= 0.5: p95")
    bad = judge_instant(vector("0.73"), P95, "p95")
    assert (bad.state, bad.message) == ("Failed", "0.73 outside <= 0.5: p95")
    scalar = judge_instant({"resultType": "scalar", "result": [0, "600"]}, PrometheusCheck(query="q", min=500), "q")
    assert scalar.state == "Passed"


def test_instant_several_none_and_nan() -> None:
    several = judge_instant(vector("1", "2"), P95, "p95")
    assert several.state == "Failed"
    assert "query returned 2 series" in several.message
    assert "aggregate it to one" in several.message
    none = judge_instant(vector(), P95, "p95")
    assert (none.state, none.message) == ("Pending", f"{NO_SERIES}: p95")
    assert "returned no series" in NO_SERIES
    nan = judge_instant(vector("NaN"), P95, "p95")
    assert nan.state == "Pending"
    assert "NaN" in nan.message


def matrix(values: list[float], start: dt.datetime, step: float) -> dict[str, Any]:
    return {
        "resultType": "matrix",
        "result": [{"metric": {}, "values": [[start.timestamp() + i * step, str(v)] for i, v in enumerate(values)]}],
    }


def test_range_holds_breaks_or_is_still_watching() -> None:
    start, end = NOW - dt.timedelta(minutes=10), NOW
    held = judge_range(matrix([0.2] * 10, start, 60), P95, "p95", start, end, 60, complete=True)
    assert held.state == "Passed"
    assert held.message.startswith("held <= 0.5 over 2026-11-27 11:50 to 12:00 UTC")
    broke = judge_range(matrix([0.2, 0.9, 0.3], start, 60), P95, "p95", start, end, 60, complete=False)
    assert broke.state == "Failed"
    assert "1 of 3 samples outside <= 0.5" in broke.message
    assert "worst 0.9" in broke.message
    watching = judge_range(matrix([0.2] * 3, start, 60), P95, "p95", start, end, 60, complete=False)
    assert watching.state == "Pending"
    assert watching.message.startswith("holding <= 0.5 for 3 of 10 minutes so far")


class FakeClient:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls = 0

    async def query(self, url: str, query: str) -> dict[str, Any]:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return dict(self.answer)

    async def query_range(self, url: str, query: str, *args: Any) -> dict[str, Any]:
        return await self.query(url, query)


ITEM = ChecklistItem.model_validate(
    {"id": "p95", "section": "S", "title": "T", "check": {"prometheus": {"query": "p95", "max": 0.5}}}
)


def evaluate(gates: MetricGates, rel: ReleaseReadiness) -> Any:
    return asyncio.run(gates.evaluate(rel, [ITEM], NOW, None))


def test_no_prometheus_configured_is_pending_with_the_fix() -> None:
    result = evaluate(MetricGates(FakeClient(vector("0.1")), None), release())  # type: ignore[arg-type]
    assert result["p95"].state == "Pending"
    assert "set the operator's RR_PROMETHEUS_URL or the release's spec.prometheusUrl" in result["p95"].message


def test_release_url_overrides_and_a_rejected_query_fails() -> None:
    gates = MetricGates(FakeClient(QueryError("Prometheus rejected the query: bad_data: parse error")), None)  # type: ignore[arg-type]
    result = evaluate(gates, release("http://prom:9090"))
    assert result["p95"].state == "Failed"
    assert "parse error" in result["p95"].message


def test_prometheus_down_backs_off_then_recovers() -> None:
    client = FakeClient(PrometheusError("Prometheus at http://prom:9090 is unreachable (ClientConnectorError)"))
    gates = MetricGates(client, "http://prom:9090", min_backoff=60)  # type: ignore[arg-type]
    first = evaluate(gates, release())
    assert first["p95"].state == "Pending"
    assert first["p95"].message.endswith("is unreachable (ClientConnectorError); retrying in 60s")
    again = evaluate(gates, release())
    assert client.calls == 1, "the back-off must hold off a second request"
    assert "retrying in" in again["p95"].message
    gates._backoff["http://prom:9090"].retry_at = 0  # the back-off has elapsed
    client.answer = vector("0.1")
    assert evaluate(gates, release())["p95"].state == "Passed"
    assert gates._backoff["http://prom:9090"].failures == 0


@pytest.mark.parametrize("phase", ["post"])
def test_post_items_wait_for_admission(phase: str) -> None:
    post = ChecklistItem.model_validate(
        {
            "id": "watch",
            "section": "S",
            "title": "T",
            "phase": phase,
            "check": {"prometheus": {"query": "p95", "max": 0.5, "for": "1h"}},
        }
    )
    gates = MetricGates(FakeClient(matrix([0.1] * 5, NOW - dt.timedelta(minutes=5), 15)), "http://p")  # type: ignore[arg-type]
    assert asyncio.run(gates.evaluate(release(), [post], NOW, None)) == {}
    watching = asyncio.run(gates.evaluate(release(), [post], NOW, NOW - dt.timedelta(minutes=5)))
    assert watching["watch"].state == "Pending"
    assert "holding <= 0.5" in watching["watch"].message


def test_messages_cut_long_queries_but_keep_short_ones() -> None:
    assert abbreviate("sum(rate(x[5m]))") == "sum(rate(x[5m]))"
    long = "max_over_time((" + "a + " * 200 + "b)[24h:1m])"
    shown = abbreviate(long)
    assert len(shown) == 240
    assert shown.endswith("…")
    assert shown.startswith("max_over_time((a + a")
