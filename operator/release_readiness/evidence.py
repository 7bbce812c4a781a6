"""Evidence from CI's own reports (`kubectl readiness evidence`): JUnit XML, Cobertura XML, coverage.py JSON, lcov,
SARIF, Trivy JSON and k6 summaries, read into named figures and mapped explicitly onto a checklist's evidence keys.

Every parser is a pure function from the report's bytes to {metric: number}; a report that is not what its format
says is a ReportError naming the file and what is wrong, and nothing is signed. XML is parsed with defusedxml and
DTDs refused outright (no entity expansion, no external references).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from release_readiness.api import ReadinessChecklist
from release_readiness.api.signoff import LIMITS, REPORT_FORMATS

__all__ = [
    "MAX_REPORT_BYTES",
    "METRICS",
    "REPORT_FORMATS",
    "EvidenceMapping",
    "ReportError",
    "ci_run_url",
    "evidence_items",
    "format_value",
    "parse_mapping",
    "read_metrics",
]

MAX_REPORT_BYTES = 128 * 1024 * 1024


class ReportError(Exception):
    """A report or mapping that cannot be read, as one sentence naming the file and the fix."""


Metrics = dict[str, float]


def _xml(data: bytes, source: str, what: str) -> Element:
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except defusedxml.DefusedXmlException as err:
        raise ReportError(f"{source}: refused: {what} with a DTD or entities ({type(err).__name__})") from None
    except ParseError as err:
        raise ReportError(f"{source}: not well-formed XML ({err}); is it {what}?") from None


def _json(data: bytes, source: str, what: str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise ReportError(f"{source}: not JSON ({err}); is it {what}?") from None
    except RecursionError:
        raise ReportError(f"{source}: JSON nested too deeply to be {what}") from None
    if not isinstance(parsed, dict):
        raise ReportError(f"{source}: {what} is a JSON object, this is a {type(parsed).__name__}")
    return parsed


def _number(value: Any, source: str, where: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ReportError(f"{source}: {where} is {value!r}, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ReportError(f"{source}: {where} is {value!r}, not a number") from None
    if not math.isfinite(number) or number < 0:
        raise ReportError(f"{source}: {where} is {value!r}, not a finite non-negative number")
    return number


def _percent(part: float, whole: float, source: str, what: str) -> float:
    if whole <= 0:
        raise ReportError(f"{source}: {what} is undefined: the report counts nothing (0 in total) and proves nothing")
    if part > whole:
        raise ReportError(f"{source}: {what}: {part:g} of {whole:g} is more than all of them")
    return part / whole * 100


# -- the parsers -----------------------------------------------------------------------------------------------


def junit(data: bytes, source: str) -> Metrics:
    """Test cases counted one by one (suite attributes disagree between tools and nest): tests, passed, failures,
    errors, skipped, failed (failures + errors), flaky (passed on a rerun: Surefire's flakyFailure/flakyError,
    pytest-rerunfailures' rerunFailure) and pass-rate-percent (passed of those run, skipped excluded)."""
    root = _xml(data, source, "a JUnit XML report")
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"{source}: a JUnit report's root is <testsuites> or <testsuite>, not <{root.tag}>")
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped", "flaky"), 0.0)
    for case in root.iter("testcase"):
        counts["tests"] += 1
        children = {child.tag for child in case}
        if "failure" in children:
            counts["failures"] += 1
        elif "error" in children:
            counts["errors"] += 1
        elif "skipped" in children:
            counts["skipped"] += 1
        if children & {"flakyFailure", "flakyError", "rerunFailure", "rerunError"}:
            counts["flaky"] += 1
    run = counts["tests"] - counts["skipped"]
    failed = counts["failures"] + counts["errors"]
    out = {**counts, "failed": failed, "passed": run - failed}
    if run > 0:
        out["pass-rate-percent"] = (run - failed) / run * 100
    return out


def cobertura(data: bytes, source: str) -> Metrics:
    """line-percent and branch-percent from <coverage>: lines-covered/lines-valid when given (exact), else
    line-rate; lines-covered, lines-valid, branches-covered, branches-valid as counted."""
    root = _xml(data, source, "a Cobertura XML report")
    if root.tag != "coverage":
        raise ReportError(f"{source}: a Cobertura report's root is <coverage>, not <{root.tag}>")
    out: Metrics = {}
    for kind, plural in (("line", "lines"), ("branch", "branches")):
        covered, valid, rate = root.get(f"{plural}-covered"), root.get(f"{plural}-valid"), root.get(f"{kind}-rate")
        if covered is not None and valid is not None:
            out[f"{plural}-covered"] = _number(covered, source, f"<coverage {plural}-covered>")
            out[f"{plural}-valid"] = _number(valid, source, f"<coverage {plural}-valid>")
            if out[f"{plural}-valid"] > 0:
                out[f"{kind}-percent"] = _percent(
                    out[f"{plural}-covered"], out[f"{plural}-valid"], source, f"{kind}-percent"
                )
        elif rate is not None:
            value = _number(rate, source, f"<coverage {kind}-rate>")
            if value > 1:
                raise ReportError(f"{source}: <coverage {kind}-rate> is {rate}, a rate is between 0 and 1")
            out[f"{kind}-percent"] = value * 100
    if "line-percent" not in out:
        raise ReportError(f"{source}: <coverage> has neither lines-covered/lines-valid nor line-rate")
    return out


def coverage_py(data: bytes, source: str) -> Metrics:
    """`coverage json`: line-percent (covered_lines of num_statements), branch-percent, and percent (coverage.py's
    own percent_covered, which mixes lines and branches when branch coverage is on)."""
    report = _json(data, source, "a coverage.py JSON report")
    totals = report.get("totals")
    if not isinstance(totals, dict) or "covered_lines" not in totals or "num_statements" not in totals:
        raise ReportError(f"{source}: a coverage.py JSON report has totals.covered_lines and totals.num_statements")
    covered = _number(totals["covered_lines"], source, "totals.covered_lines")
    statements = _number(totals["num_statements"], source, "totals.num_statements")
    out = {"covered-lines": covered, "statements": statements}
    if statements > 0:
        out["line-percent"] = _percent(covered, statements, source, "line-percent")
    if "percent_covered" in totals:
        out["percent"] = _number(totals["percent_covered"], source, "totals.percent_covered")
    if totals.get("num_branches"):
        out["branch-percent"] = _percent(
            _number(totals.get("covered_branches"), source, "totals.covered_branches"),
            _number(totals["num_branches"], source, "totals.num_branches"),
            source,
            "branch-percent",
        )
    return out


_LCOV_COUNTS = ("LF", "LH", "BRF", "BRH", "FNF", "FNH")


def lcov(data: bytes, source: str) -> Metrics:
    """lcov tracefile: line-percent (LH of LF summed over files; DA lines where LF is missing), branch-percent
    (BRH of BRF), function-percent (FNH of FNF)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ReportError(f"{source}: not UTF-8 text (byte {err.start}); is it an lcov tracefile?") from None
    sums = dict.fromkeys(_LCOV_COUNTS, 0.0)
    found = dict.fromkeys(_LCOV_COUNTS, False)
    files = records = 0
    da_found = da_hit = 0.0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line == "end_of_record":
            records += 1
            continue
        key, sep, value = line.partition(":")
        if not sep or not re.fullmatch(r"[A-Z]+", key):
            raise ReportError(f"{source}:{number}: {line[:60]!r} is not an lcov line (KEY:value or end_of_record)")
        if key == "SF":
            files += 1
        elif key in _LCOV_COUNTS:
            if not value.isdigit():
                raise ReportError(f"{source}:{number}: {key}:{value[:20]} is not a count")
            sums[key] += int(value)
            found[key] = True
        elif key == "DA":
            parts = value.split(",")
            if len(parts) < 2 or not parts[0].isdigit() or not re.fullmatch(r"-?\d+", parts[1]):
                raise ReportError(f"{source}:{number}: DA:{value[:30]} is not DA:<line>,<hits>")
            da_found += 1
            da_hit += int(parts[1]) > 0
    if files == 0 or records == 0:
        raise ReportError(f"{source}: no SF: ... end_of_record section; is it an lcov tracefile?")
    lines_found, lines_hit = (sums["LF"], sums["LH"]) if found["LF"] else (da_found, da_hit)
    out = {"lines-found": lines_found, "lines-hit": lines_hit}
    if lines_found > 0:
        out["line-percent"] = _percent(lines_hit, lines_found, source, "line-percent")
    if sums["BRF"] > 0:
        out["branch-percent"] = _percent(sums["BRH"], sums["BRF"], source, "branch-percent")
    if sums["FNF"] > 0:
        out["function-percent"] = _percent(sums["FNH"], sums["FNF"], source, "function-percent")
    return out


_SARIF_LEVELS = ("error", "warning", "note", "none")


def sarif(data: bytes, source: str) -> Metrics:
    """Findings of SARIF 2.1.0 results by level (a result's level, else its rule's default, else warning): error,
    warning, note, none, total; suppressed results and results of kind pass/notApplicable/informational are not
    findings (suppressed counts the former)."""
    log = _json(data, source, "a SARIF log")
    if log.get("version") != "2.1.0" or not isinstance(log.get("runs"), list):
        raise ReportError(f"{source}: a SARIF log has version 2.1.0 and runs[] (found version {log.get('version')!r})")
    out = dict.fromkeys((*_SARIF_LEVELS, "total", "suppressed"), 0.0)
    for r, run in enumerate(log["runs"]):
        if not isinstance(run, dict):
            raise ReportError(f"{source}: runs[{r}] is not an object")
        driver = ((run.get("tool") or {}).get("driver")) or {}
        rules = driver.get("rules") or []
        defaults: dict[str, str] = {}
        for rule in rules if isinstance(rules, list) else []:
            if isinstance(rule, dict) and isinstance(rule.get("id"), str):
                level = (rule.get("defaultConfiguration") or {}).get("level")
                defaults[rule["id"]] = level if level in _SARIF_LEVELS else "warning"
        results = run.get("results") or []
        if not isinstance(results, list):
            raise ReportError(f"{source}: runs[{r}].results is not a list")
        for i, result in enumerate(results):
            if not isinstance(result, dict):
                raise ReportError(f"{source}: runs[{r}].results[{i}] is not an object")
            if result.get("kind", "fail") not in ("fail", "open", "review"):
                continue
            if result.get("suppressions"):
                out["suppressed"] += 1
                continue
            level = result.get("level")
            if level is None:
                index = result.get("ruleIndex")
                rule_id = result.get("ruleId")
                if isinstance(index, int) and isinstance(rules, list) and 0 <= index < len(rules):
                    rule_id = (rules[index] or {}).get("id", rule_id)
                level = defaults.get(str(rule_id), "warning")
            if level not in _SARIF_LEVELS:
                raise ReportError(f"{source}: runs[{r}].results[{i}].level {level!r} is not a SARIF level")
            out[level] += 1
            out["total"] += 1
    return out


_SEVERITIES = ("critical", "high", "medium", "low", "unknown")


def trivy(data: bytes, source: str) -> Metrics:
    """`trivy ... --format json`: vulnerabilities by severity (critical, high, medium, low, unknown, total), each
    vulnerability of a package counted once per target; secrets found; misconfigurations that failed."""
    report = _json(data, source, "a Trivy JSON report")
    if report.get("SchemaVersion") != 2:
        raise ReportError(
            f"{source}: a Trivy JSON report has SchemaVersion 2 (found {report.get('SchemaVersion')!r}); "
            "write it with --format json"
        )
    results = report.get("Results") or []
    if not isinstance(results, list):
        raise ReportError(f"{source}: Results is not a list")
    out = dict.fromkeys((*_SEVERITIES, "total", "secrets", "misconfigurations"), 0.0)
    for t, result in enumerate(results):
        if not isinstance(result, dict):
            raise ReportError(f"{source}: Results[{t}] is not an object")
        seen: set[tuple[str, str, str]] = set()
        for v, vuln in enumerate(result.get("Vulnerabilities") or []):
            if not isinstance(vuln, dict) or not isinstance(vuln.get("Severity"), str):
                raise ReportError(f"{source}: Results[{t}].Vulnerabilities[{v}] has no Severity")
            key = (str(vuln.get("VulnerabilityID")), str(vuln.get("PkgName")), str(vuln.get("InstalledVersion")))
            if key in seen:
                continue
            seen.add(key)
            severity = vuln["Severity"].lower()
            out[severity if severity in _SEVERITIES else "unknown"] += 1
            out["total"] += 1
        out["secrets"] += len(result.get("Secrets") or [])
        out["misconfigurations"] += sum(
            1 for m in result.get("Misconfigurations") or [] if isinstance(m, dict) and m.get("Status") == "FAIL"
        )
    return out


def _k6_values(metric: Any) -> dict[str, Any]:
    """A k6 metric's figures: handleSummary's data has them under `values`, --summary-export at the top."""
    if not isinstance(metric, dict):
        return {}
    values = metric.get("values")
    return values if isinstance(values, dict) else metric


def k6(data: bytes, source: str) -> Metrics:
    """A k6 end-of-test summary (handleSummary's JSON or --summary-export): p95-latency-ms, p90-latency-ms,
    avg-latency-ms, max-latency-ms (http_req_duration), request-rate and requests (http_reqs), error-rate-percent
    (http_req_failed) and checks-pass-rate-percent (checks)."""
    report = _json(data, source, "a k6 summary")
    metrics = report.get("metrics")
    if not isinstance(metrics, dict) or "http_req_duration" not in metrics or "http_reqs" not in metrics:
        raise ReportError(f"{source}: a k6 summary has metrics.http_req_duration and metrics.http_reqs")
    duration = _k6_values(metrics["http_req_duration"])
    reqs = _k6_values(metrics["http_reqs"])
    out: Metrics = {}
    for name, key in (("p95", "p(95)"), ("p90", "p(90)"), ("avg", "avg"), ("max", "max")):
        if key in duration:
            out[f"{name}-latency-ms"] = _number(duration[key], source, f"metrics.http_req_duration {key}")
    out["request-rate"] = _number(reqs.get("rate"), source, "metrics.http_reqs rate")
    out["requests"] = _number(reqs.get("count"), source, "metrics.http_reqs count")
    failed = _k6_values(metrics.get("http_req_failed"))
    rate = failed.get("rate", failed.get("value"))
    if rate is not None:
        value = _number(rate, source, "metrics.http_req_failed rate")
        if value > 1:
            raise ReportError(f"{source}: metrics.http_req_failed rate is {rate}, a rate is between 0 and 1")
        out["error-rate-percent"] = value * 100
    checks = _k6_values(metrics.get("checks"))
    rate = checks.get("rate", checks.get("value"))
    if rate is not None:
        out["checks-pass-rate-percent"] = _number(rate, source, "metrics.checks rate") * 100
    return out


PARSERS: dict[str, Callable[[bytes, str], Metrics]] = {
    "junit": junit,
    "cobertura": cobertura,
    "coverage-py": coverage_py,
    "lcov": lcov,
    "sarif": sarif,
    "trivy": trivy,
    "k6": k6,
}
METRICS: dict[str, tuple[str, ...]] = {
    "junit": ("tests", "passed", "failed", "failures", "errors", "skipped", "flaky", "pass-rate-percent"),
    "cobertura": (
        "line-percent",
        "branch-percent",
        "lines-covered",
        "lines-valid",
        "branches-covered",
        "branches-valid",
    ),
    "coverage-py": ("line-percent", "branch-percent", "percent", "covered-lines", "statements"),
    "lcov": ("line-percent", "branch-percent", "function-percent", "lines-found", "lines-hit"),
    "sarif": ("total", "error", "warning", "note", "none", "suppressed"),
    "trivy": ("critical", "high", "medium", "low", "unknown", "total", "secrets", "misconfigurations"),
    "k6": (
        "p95-latency-ms",
        "p90-latency-ms",
        "avg-latency-ms",
        "max-latency-ms",
        "request-rate",
        "requests",
        "error-rate-percent",
        "checks-pass-rate-percent",
    ),
}
"""What each format yields (what --from may name)."""


# -- the mapping onto evidence keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceMapping:
    """--from KEY=FORMAT:METRIC:FILE: the checklist's evidence KEY takes METRIC of the FORMAT report FILE."""

    key: str
    format: str
    metric: str
    file: str

    def __str__(self) -> str:
        return f"{self.key}={self.format}:{self.metric}:{self.file}"


def parse_mapping(text: str) -> EvidenceMapping:
    key, sep, rest = text.partition("=")
    parts = rest.split(":", 2)
    example = "e.g. --from coverage-percent=cobertura:line-percent:coverage.xml"
    if not sep or len(parts) != 3 or not all(parts) or not key:
        raise ReportError(f"--from {text!r} is not KEY=FORMAT:METRIC:FILE ({example})")
    fmt, metric, file = parts
    if fmt not in PARSERS:
        raise ReportError(f"--from {text!r}: unknown format {fmt!r}; formats: {', '.join(PARSERS)}")
    if metric not in METRICS[fmt]:
        raise ReportError(f"--from {text!r}: a {fmt} report has no {metric!r}; it has {', '.join(METRICS[fmt])}")
    return EvidenceMapping(key, fmt, metric, file)


@dataclass(frozen=True)
class Report:
    format: str
    file: str
    digest: str
    metrics: Metrics


def read_metrics(fmt: str, data: bytes, file: str) -> Report:
    if len(data) > MAX_REPORT_BYTES:
        raise ReportError(f"{file}: larger than the {MAX_REPORT_BYTES} bytes a report may have")
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Report(fmt, file, digest, PARSERS[fmt](data, file))


def ci_run_url(env: Mapping[str, str]) -> str | None:
    """The CI run's URL from the CI's own variables: GitHub Actions (with the attempt) or GitLab CI (the job)."""
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
        return url + (f"/attempts/{env['GITHUB_RUN_ATTEMPT']}" if env.get("GITHUB_RUN_ATTEMPT") else "")
    if env.get("GITLAB_CI") == "true" and env.get("CI_JOB_URL"):
        return env["CI_JOB_URL"]
    return None


def format_value(value: float) -> str:
    """The exact figure as the signoff's value: integers without a point, others in Python's shortest round-trip
    form (never rounded towards a bound: 79.996 stays 79.996, not 80)."""
    if value.is_integer():
        return str(int(value))
    return repr(value)


def evidence_items(
    checklist: ReadinessChecklist,
    mappings: Sequence[EvidenceMapping],
    reports: Mapping[tuple[str, str], Report],
    run_url: str | None,
) -> list[dict[str, Any]]:
    """One signoff item per checklist item whose evidence key is mapped, with its value and source. Every key
    must name an evidence item of the checklist and each item get one value; a metric the report cannot give
    (no tests ran, nothing to cover) is an error."""
    by_key: dict[str, list[str]] = {}
    for item in checklist.spec.items:
        if item.check.evidence is not None:
            by_key.setdefault(item.check.evidence.key, []).append(item.id)
    items: dict[str, dict[str, Any]] = {}
    for m in mappings:
        ids = by_key.get(m.key)
        if not ids:
            known = ", ".join(sorted(by_key)) or "none"
            raise ReportError(
                f"--from {m}: checklist {checklist.metadata.name} has no evidence item with key {m.key!r} "
                f"(its keys: {known})"
            )
        report = reports[(m.format, m.file)]
        if m.metric not in report.metrics:
            raise ReportError(
                f"--from {m}: {m.file} gives no {m.metric}: the report counts nothing it could be computed from"
            )
        value = format_value(report.metrics[m.metric])
        for item_id in ids:
            if item_id in items:
                raise ReportError(f"--from {m}: item {item_id} (key {m.key}) is mapped twice; map each key once")
            source = {"format": m.format, "file": m.file[-253:], "digest": report.digest, "metric": m.metric}
            items[item_id] = {"id": item_id, "value": value, "source": source | ({"run": run_url} if run_url else {})}
            if run_url:
                items[item_id]["evidence"] = run_url
    if len(items) > LIMITS.ITEMS:
        raise ReportError(f"{len(items)} items in one signoff; at most {LIMITS.ITEMS}: sign in several runs")
    return list(items.values())
