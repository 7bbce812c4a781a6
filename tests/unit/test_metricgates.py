"""Metric gates: substitution, instant and range judgements, back-off while Prometheus is away."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from release_readiness.api import ChecklistItem, ReadinessChecklist, ReleaseReadiness
from release_readiness.api.checklist import PrometheusCheck
from release_readiness.evaluation import abbreviate
from release_readiness.metricgates import (
    NO_SERIES,
    MetricGates,
    PrometheusError,
    QueryError,
    allowed_servers,
    choose_server,
    first_sample,
    judge_instant,
    judge_range,
    parse_duration,
    prometheus_url_errors,
    samples_until,
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


def test_explicit_namespaces_do_not_depend_on_the_phase() -> None:
    rel = release()
    query = 'x{c="$candidateNamespace", p="${productionNamespace}", n="$namespace", a="$application", v="$version"}'
    prod = rel.metadata.namespace
    assert substitute(query, rel, "pre") == f'x{{c="stg", p="{prod}", n="stg", a="pay\\"ments", v="3.2.0"}}'
    assert substitute(query, rel, "post") == f'x{{c="stg", p="{prod}", n="{prod}", a="pay\\"ments", v="3.2.0"}}'


def test_a_placeholder_never_eats_the_start_of_a_longer_name() -> None:
    """`$namespace` is not taken out of `$namespaces`; unknown names stay as written (the webhook refuses them),
    and label_replace's `$1` is left alone."""
    rel = release()
    assert substitute('x{a="$namespaces", b="$versionX", c="$1"}', rel) == 'x{a="$namespaces", b="$versionX", c="$1"}'
    assert substitute('x{a="$namespace-$version"}', rel) == 'x{a="stg-3.2.0"}'


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
    assert watching.message.startswith("holding <= 0.5 for 3 min of 10 min so far")


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


def checklist(items: list[ChecklistItem], urls: list[str] | None = None) -> ReadinessChecklist:
    return ReadinessChecklist.model_validate(
        {
            "metadata": {"name": "c"},
            "spec": {
                "items": [i.model_dump(by_alias=True, exclude_none=True) for i in items],
                "rules": {"prometheusUrls": urls or []},
            },
        }
    )


def evaluate(gates: MetricGates, rel: ReleaseReadiness, urls: list[str] | None = None) -> Any:
    return asyncio.run(gates.evaluate(rel, checklist([ITEM], urls), NOW, None))


class RecordingClient(FakeClient):
    def __init__(self, answer: Any) -> None:
        super().__init__(answer)
        self.urls: list[str] = []

    async def query(self, url: str, query: str) -> dict[str, Any]:
        self.urls.append(url)
        return await super().query(url, query)


def test_no_prometheus_configured_is_pending_with_the_fix() -> None:
    result = evaluate(MetricGates(FakeClient(vector("0.1")), None), release())  # type: ignore[arg-type]
    assert result["p95"].state == "Pending"
    assert "no Prometheus configured: set the operator's RR_PROMETHEUS_URL" in result["p95"].message
    assert "the checklist's spec.rules.prometheusUrls" in result["p95"].message


def test_an_allowed_release_url_is_used_and_a_rejected_query_fails() -> None:
    error = QueryError("Prometheus at http://prom:9090 rejected the query: bad_data: parse error")
    gates = MetricGates(FakeClient(error), None, ["http://prom:9090"])  # type: ignore[arg-type]
    result = evaluate(gates, release("http://prom:9090/"))
    assert result["p95"].state == "Failed"
    assert "parse error" in result["p95"].message


def test_the_judge_is_the_platforms_and_every_verdict_names_it() -> None:
    client = RecordingClient(vector("0.1"))
    gates = MetricGates(client, "http://platform:9090", ["http://team:9090"])  # type: ignore[arg-type]
    judged = evaluate(gates, release())
    assert judged["p95"].state == "Passed"
    assert judged["p95"].message == "0.1 within <= 0.5: p95 (Prometheus at http://platform:9090)"
    assert evaluate(gates, release("http://team:9090"))["p95"].message.endswith("(Prometheus at http://team:9090)")
    # The checklist's own server is its releases' default; the release may still pick the operator's.
    assert evaluate(gates, release(), ["http://checklist:9090"])["p95"].message.endswith("http://checklist:9090)")
    assert client.urls == ["http://platform:9090", "http://team:9090", "http://checklist:9090"]


def test_a_url_the_creator_chose_is_never_queried() -> None:
    client = RecordingClient(vector("0.5"))
    gates = MetricGates(client, "http://platform:9090")  # type: ignore[arg-type]
    for url in ["http://evil.example:9090", "http://169.254.169.254/latest", "http://platform:9090.evil"]:
        result = evaluate(gates, release(url))
        assert result["p95"].state == "Pending"
        assert f"spec.prometheusUrl '{url}' is not an allowed Prometheus" in result["p95"].message
        assert "allowed: http://platform:9090" in result["p95"].message
    assert client.urls == []


def test_allowed_servers_checklist_first_each_once_without_trailing_slash() -> None:
    with_urls = checklist([ITEM], ["http://c:9090/", "http://p:9090"])
    assert allowed_servers(with_urls, "http://p:9090", ["http://x:9090/"]) == [
        "http://c:9090",
        "http://p:9090",
        "http://x:9090",
    ]
    assert allowed_servers(None, None, []) == []
    assert choose_server(release(), None, None, [])[0] is None


def test_admission_refuses_a_url_outside_the_allow_list_naming_the_field_and_the_allowed_values() -> None:
    listed = checklist([ITEM], ["http://c:9090"])
    assert prometheus_url_errors(release(), listed, None, []) == []
    assert prometheus_url_errors(release("http://c:9090"), listed, None, []) == []
    assert prometheus_url_errors(release("http://p:9090/"), listed, "http://p:9090", []) == []
    (error,) = prometheus_url_errors(release("http://evil:9090"), listed, "http://p:9090", ["http://x:9090"])
    assert error == (
        "ReleaseReadiness prod/r: spec.prometheusUrl 'http://evil:9090' is not an allowed Prometheus; allowed: "
        "http://c:9090, http://p:9090, http://x:9090 (set one of them, or remove spec.prometheusUrl to be judged by "
        "http://c:9090)"
    )
    (none,) = prometheus_url_errors(release("http://evil:9090"), None, None, [])
    assert "none is allowed (checklist pre-production not found, so its servers are unknown)" in none
    assert none.endswith("remove spec.prometheusUrl")


@pytest.mark.parametrize("url", ["ftp://p", "http://user:pw@p:9090", "http://p:9090/?x=1", "http:// p", "p:9090"])
def test_checklist_servers_are_plain_http_urls(url: str) -> None:
    with pytest.raises(ValueError, match="prometheusUrls"):
        checklist([ITEM], [url])


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
    assert asyncio.run(gates.evaluate(release(), checklist([post]), NOW, None)) == {}
    watching = asyncio.run(gates.evaluate(release(), checklist([post]), NOW, NOW - dt.timedelta(minutes=5)))
    assert watching["watch"].state == "Pending"
    assert "holding <= 0.5" in watching["watch"].message


def test_messages_cut_long_queries_but_keep_short_ones() -> None:
    assert abbreviate("sum(rate(x[5m]))") == "sum(rate(x[5m]))"
    long = "max_over_time((" + "a + " * 200 + "b)[24h:1m])"
    shown = abbreviate(long)
    assert len(shown) == 240
    assert shown.endswith("…")
    assert shown.startswith("max_over_time((a + a")


def test_a_post_deployment_watch_starts_at_the_first_sample_and_keeps_only_its_window() -> None:
    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    data = {
        "resultType": "matrix",
        "result": [{"metric": {}, "values": [[start.timestamp() + 5, "NaN"], [start.timestamp() + 10, "0.1"]]}],
    }
    data["result"][0]["values"] += [[start.timestamp() + 10 + i, "0.2"] for i in range(1, 30)]
    assert first_sample(data) == start + dt.timedelta(seconds=10), "NaN is no sample"
    kept = samples_until(data, start + dt.timedelta(seconds=20))
    assert [float(t) - start.timestamp() for t, _ in kept["result"][0]["values"]][-1] == 20
    assert len(data["result"][0]["values"]) == 31, "the answer itself is left as it was"
    assert first_sample({"resultType": "matrix", "result": []}) is None
    two = {"resultType": "matrix", "result": [data["result"][0], data["result"][0]]}
    assert first_sample(two) is None
    assert samples_until(two, start) is two, "several series are judge_range's to refuse"
