"""Metric gates: PromQL checks evaluated against the Prometheus HTTP API.

Pure parts (substitution, reading a result, judging a range, choosing the judge) are functions over plain
data; `PrometheusClient` does the HTTP with a timeout, and `MetricGates` evaluates a release's items with
back-off per Prometheus URL, so a slow or absent Prometheus turns items Pending, never the
reconciler.

The judge is the platform's: the servers a release's metric items may be judged by are the operator's
(RR_PROMETHEUS_URL, RR_PROMETHEUS_URLS) and its checklist's (spec.rules.prometheusUrls, cluster-scoped and
platform-owned). A release may pick one of them (spec.prometheusUrl); any other URL is refused at admission
and never queried (a server the release's creator runs could answer every query with its threshold, and
the operator would fetch URLs of the creator's choosing from its own network position).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from release_readiness import placeholders
from release_readiness.api import ChecklistItem, ReadinessChecklist, ReleaseReadiness
from release_readiness.api.checklist import PrometheusCheck
from release_readiness.checks.model import CheckResult
from release_readiness.evaluation import abbreviate

__all__ = [
    "MetricGates",
    "PrometheusClient",
    "PrometheusError",
    "QueryError",
    "allowed_servers",
    "choose_server",
    "first_sample",
    "judge_instant",
    "judge_range",
    "parse_duration",
    "prometheus_url_errors",
    "samples_until",
    "substitute",
]

_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


NO_SERIES = (
    "no data yet (the query returned no series: nothing in its window, such as a load test, or a metric it reads "
    "is not collected)"
)


WHERE_SERVERS = (
    "the operator's RR_PROMETHEUS_URL or RR_PROMETHEUS_URLS (chart operator.prometheusUrl, "
    "operator.prometheusUrls) or the checklist's spec.rules.prometheusUrls"
)


def _norm(url: str) -> str:
    return url.strip().rstrip("/")


def allowed_servers(checklist: ReadinessChecklist | None, default: str | None, extra: Sequence[str]) -> list[str]:
    """The Prometheus servers the platform allows to judge releases following `checklist`: the checklist's
    own (spec.rules.prometheusUrls) first, then the operator's default and its allow-list; without trailing
    slashes, each once."""
    urls = [*(checklist.spec.rules.prometheus_urls if checklist else []), *([default] if default else []), *extra]
    out: list[str] = []
    for url in urls:
        if _norm(url) and _norm(url) not in out:
            out.append(_norm(url))
    return out


def _not_allowed(release: ReleaseReadiness, checklist: ReadinessChecklist | None, allowed: list[str]) -> str:
    url = abbreviate(release.spec.prometheus_url or "")
    missing = "" if checklist else f" (checklist {release.spec.checklist} not found, so its servers are unknown)"
    if not allowed:
        return (
            f"spec.prometheusUrl {url!r} is not an allowed Prometheus: none is allowed{missing}; the platform "
            f"names the servers that judge metric items ({WHERE_SERVERS}): remove spec.prometheusUrl"
        )
    return (
        f"spec.prometheusUrl {url!r} is not an allowed Prometheus{missing}; allowed: {', '.join(allowed)} "
        f"(set one of them, or remove spec.prometheusUrl to be judged by {allowed[0]})"
    )


def prometheus_url_errors(
    release: ReleaseReadiness, checklist: ReadinessChecklist | None, default: str | None, extra: Sequence[str]
) -> list[str]:
    """Admission: a release may only pick one of the servers the platform allows."""
    if release.spec.prometheus_url is None:
        return []
    allowed = allowed_servers(checklist, default, extra)
    if _norm(release.spec.prometheus_url) in allowed:
        return []
    name = f"ReleaseReadiness {release.metadata.namespace}/{release.metadata.name or '(new)'}"
    return [f"{name}: {_not_allowed(release, checklist, allowed)}"]


def choose_server(
    release: ReleaseReadiness, checklist: ReadinessChecklist | None, default: str | None, extra: Sequence[str]
) -> tuple[str | None, str]:
    """(the server that judges the release's metric items, "") or (None, why none does and what to do).

    The release's spec.prometheusUrl when it is allowed (a URL that is not, e.g. one allowed when the release
    was created and taken off the list since, judges nothing); otherwise the checklist's first server, then the
    operator's default."""
    allowed = allowed_servers(checklist, default, extra)
    if release.spec.prometheus_url is not None:
        url = _norm(release.spec.prometheus_url)
        return (url, "") if url in allowed else (None, _not_allowed(release, checklist, allowed))
    if checklist is not None and checklist.spec.rules.prometheus_urls:
        return _norm(checklist.spec.rules.prometheus_urls[0]), ""
    if default:
        return _norm(default), ""
    return None, f"no Prometheus configured: set {WHERE_SERVERS}"


class PrometheusError(Exception):
    """Prometheus could not answer (down, slow, or an error status); the item stays Pending."""


def parse_duration(text: str) -> dt.timedelta:
    seconds = sum(int(n) * _UNITS[u] for n, u in _DURATION.findall(text))
    return dt.timedelta(seconds=seconds)


def _quote(value: str) -> str:
    """Escape for a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def substitute(query: str, release: ReleaseReadiness, phase: str = "pre") -> str:
    """Fill in the placeholders (release_readiness.placeholders): $candidateNamespace, $productionNamespace,
    $application, $version, and $namespace, the namespace of the item's phase: the candidate's before
    admission, the release's own (production) one for post-deployment items, which watch what was admitted.
    Values are escaped for a PromQL double-quoted string."""
    candidate = release.spec.candidate.namespace or ""
    production = release.metadata.namespace or ""
    values = {
        "candidateNamespace": candidate,
        "productionNamespace": production,
        "application": release.spec.application,
        "version": release.spec.version,
        "namespace": production if phase == "post" else candidate,
    }
    return placeholders.fill(query, {k: _quote(v) for k, v in values.items()})


def _bounds(check: PrometheusCheck) -> str:
    parts = [f">= {check.min:g}" if check.min is not None else "", f"<= {check.max:g}" if check.max is not None else ""]
    return " and ".join(p for p in parts if p)


def _within(value: float, check: PrometheusCheck) -> bool:
    return not ((check.min is not None and value < check.min) or (check.max is not None and value > check.max))


def judge_instant(data: Mapping[str, Any], check: PrometheusCheck, query: str) -> CheckResult:
    """Judge the `data` of an instant query's answer (resultType vector or scalar)."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list):
        values = [float(result[1])]
    elif kind == "vector" and isinstance(result, list):
        if len(result) > 1:
            labels = ", ".join(str(r.get("metric", {})) for r in result[:3])
            return CheckResult.failed(
                [f"query returned {len(result)} series ({labels}); aggregate it to one (sum, max, ...): {query}"]
            )
        values = [float(r["value"][1]) for r in result]
    else:
        return CheckResult.failed([f"query returned a {kind}, not a vector or scalar: {query}"])
    if not values:
        return CheckResult.pending(f"{NO_SERIES}: {query}")
    value = values[0]
    if math.isnan(value):
        return CheckResult.pending(f"the query returned NaN (no traffic in the window?): {query}")
    ok = _within(value, check)
    text = f"{value:.3g} {'within' if ok else 'outside'} {_bounds(check)}: {query}"
    return CheckResult.passed(text) if ok else CheckResult.failed([text])


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def judge_range(
    data: Mapping[str, Any],
    check: PrometheusCheck,
    query: str,
    start: dt.datetime,
    end: dt.datetime,
    step: float,
    complete: bool,
) -> CheckResult:
    """Judge a query_range answer: every point within bounds over [start, end].

    `complete` says whether the whole required window has passed (a post-deployment watch still
    running is Pending while it holds, Failed as soon as it breaks).
    """
    result = data.get("result")
    if not isinstance(result, list):
        return CheckResult.failed([f"query_range returned {data.get('resultType')}: {query}"])
    if len(result) > 1:
        return CheckResult.failed(
            [f"query returned {len(result)} series; aggregate it to one (sum, max, ...): {query}"]
        )
    points = [(float(t), float(v)) for t, v in (result[0].get("values", []) if result else [])]
    points = [(t, v) for t, v in points if not math.isnan(v)]
    if not points:
        return CheckResult.pending(f"no data in {start:%H:%M} to {end:%H:%M} UTC yet: {query}")
    bad = [(t, v) for t, v in points if not _within(v, check)]
    span = f"{start:%Y-%m-%d %H:%M} to {end:%H:%M} UTC"
    if bad:
        when = dt.datetime.fromtimestamp(bad[0][0], dt.UTC)
        worst = max(bad, key=lambda p: abs(p[1]))[1]
        return CheckResult.failed(
            [
                f"{len(bad)} of {len(points)} samples outside {_bounds(check)} in {span} (first at {when:%H:%M:%S} "
                f"UTC, worst {worst:.3g}): {query}"
            ]
        )
    covered = points[-1][0] - points[0][0] + step
    wanted = (end - start).total_seconds()
    if not complete or covered + step < wanted:
        return CheckResult.pending(
            f"holding {_bounds(check)} for {_span(covered)} of {_span(wanted)} so far "
            f"(last {points[-1][1]:.3g}): {query}"
        )
    return CheckResult.passed(f"held {_bounds(check)} over {span} (last {points[-1][1]:.3g}): {query}")


def _series(data: Mapping[str, Any]) -> list[Any] | None:
    result = data.get("result")
    return result[0].get("values", []) if isinstance(result, list) and len(result) == 1 else None


def first_sample(data: Mapping[str, Any]) -> dt.datetime | None:
    """When the one series of a query_range answer first has a value (None: no series, several, or no value)."""
    values = _series(data)
    times = [float(t) for t, v in values or [] if not math.isnan(float(v))]
    return dt.datetime.fromtimestamp(min(times), dt.UTC) if times else None


def samples_until(data: Mapping[str, Any], until: dt.datetime) -> Mapping[str, Any]:
    """The query_range answer without the samples after `until` (a single-series answer; others unchanged)."""
    values = _series(data)
    if values is None:
        return data
    kept = [[t, v] for t, v in values if float(t) <= until.timestamp()]
    result = data["result"]
    return {**data, "result": [{**result[0], "values": kept}]}


class QueryError(Exception):
    """Prometheus answered, and said the query itself is wrong: the item Fails (it will not fix itself)."""


class PrometheusClient:
    """The Prometheus HTTP API: instant and range queries with a timeout."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float = 5.0) -> None:
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _get(self, url: str, path: str, params: dict[str, str]) -> dict[str, Any]:
        try:
            async with self.session.get(f"{url.rstrip('/')}{path}", params=params, timeout=self.timeout) as resp:
                body = await resp.json(content_type=None)
        except TimeoutError:
            raise PrometheusError(f"Prometheus at {url} did not answer within {self.timeout.total:g}s") from None
        except (aiohttp.ClientError, ValueError) as err:
            raise PrometheusError(f"Prometheus at {url} is unreachable ({err.__class__.__name__}: {err})") from None
        if body.get("status") != "success":
            raise QueryError(f"Prometheus at {url} rejected the query: {body.get('errorType')}: {body.get('error')}")
        data: dict[str, Any] = body["data"]
        return data

    async def query(self, url: str, query: str) -> dict[str, Any]:
        return await self._get(url, "/api/v1/query", {"query": query})

    async def query_range(
        self, url: str, query: str, start: dt.datetime, end: dt.datetime, step: float
    ) -> dict[str, Any]:
        params = {
            "query": query,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step:g}",
        }
        return await self._get(url, "/api/v1/query_range", params)


@dataclass
class _Backoff:
    failures: int = 0
    retry_at: float = 0.0
    reason: str = ""


@dataclass
class MetricGates:
    """Evaluates a release's prometheus items against the server the platform allows (see `choose_server`);
    backs off per URL while Prometheus is away. Every judged item's message names the server that answered."""

    client: PrometheusClient
    default_url: str | None
    allowed_urls: Sequence[str] = ()
    min_backoff: float = 2.0
    max_backoff: float = 300.0
    _backoff: dict[str, _Backoff] = field(default_factory=dict)

    async def evaluate(
        self,
        release: ReleaseReadiness,
        checklist: ReadinessChecklist,
        now: dt.datetime,
        admitted_at: dt.datetime | None,
    ) -> dict[str, CheckResult]:
        items = checklist.spec.items
        wanted = [i for i in items if i.check.prometheus is not None and (i.phase == "pre" or admitted_at)]
        if not wanted:
            return {}
        url, why = choose_server(release, checklist, self.default_url, self.allowed_urls)
        if url is None:
            return {i.id: CheckResult.pending(why) for i in wanted}
        state = self._backoff.setdefault(url, _Backoff())
        if time.monotonic() < state.retry_at:
            wait = state.retry_at - time.monotonic()
            return {i.id: CheckResult.pending(f"{state.reason}; retrying in {wait:.0f}s") for i in wanted}
        results = await asyncio.gather(
            *(self._one(url, release, i, now, admitted_at) for i in wanted), return_exceptions=True
        )
        out: dict[str, CheckResult] = {}
        down: PrometheusError | None = None
        for item, result in zip(wanted, results, strict=True):
            if isinstance(result, PrometheusError):
                down = result
            elif isinstance(result, QueryError):
                out[item.id] = CheckResult.failed([str(result)])
            elif isinstance(result, BaseException):
                raise result
            else:
                out[item.id] = CheckResult(result.state, f"{result.message} (Prometheus at {url})")
        if down is not None:
            state.failures += 1
            delay = min(self.max_backoff, self.min_backoff * 2 ** (state.failures - 1))
            state.retry_at = time.monotonic() + delay
            state.reason = str(down)
            # Prometheus is away: every answer of this round is suspect, except a query it rejected.
            for item in wanted:
                if item.id not in out or out[item.id].state != "Failed":
                    out[item.id] = CheckResult.pending(f"{down}; retrying in {delay:.0f}s")
        else:
            state.failures, state.retry_at, state.reason = 0, 0.0, ""
        return out

    async def _one(
        self,
        url: str,
        release: ReleaseReadiness,
        item: ChecklistItem,
        now: dt.datetime,
        admitted_at: dt.datetime | None,
    ) -> CheckResult:
        check = item.check.prometheus
        assert check is not None
        query = substitute(check.query, release, item.phase)
        shown = abbreviate(query)
        if item.phase == "post" and admitted_at is not None:
            # Production's series begin once its pods run and are scraped, a little after admission: the watch
            # starts at the first sample after admission (which must come within one window of it) and must
            # then hold for the whole window.
            window = parse_duration(check.for_) if check.for_ else dt.timedelta(hours=1)
            end = min(now, admitted_at + 2 * window)
            if end <= admitted_at:
                return CheckResult.pending(f"watching from {admitted_at:%H:%M} UTC: {shown}")
            step = max(1.0, window.total_seconds() / 240)
            data = await self.client.query_range(url, query, admitted_at, end, step)
            first = first_sample(data)
            if first is None:
                return judge_range(data, check, shown, admitted_at, end, step, complete=False)
            stop = min(end, first + window)
            watched = samples_until(data, stop)
            return judge_range(watched, check, shown, first, stop, step, complete=now >= first + window)
        if check.for_:
            window = parse_duration(check.for_)
            step = max(1.0, window.total_seconds() / 240)
            data = await self.client.query_range(url, query, now - window, now, step)
            return judge_range(data, check, shown, now - window, now, step, complete=True)
        return judge_instant(await self.client.query(url, query), check, shown)
