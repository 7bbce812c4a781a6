"""The dashboard and the alert rules use only metrics the operator exports; promtool accepts the rules."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from release_readiness.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "charts" / "release-readiness" / "files"
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "irate",
    "increase",
    "histogram_quantile",
    "time",
    "absent",
    "sort_desc",
    "topk",
    "by",
    "without",
    "and",
    "or",
    "unless",
    "on",
    "ignoring",
    "bool",
    "offset",
    "vector",
    "clamp_min",
    "humanizeDuration",
}


def metric_names(expr: str) -> set[str]:
    expr = re.sub(r'"[^"]*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without)\s*\([^)]*\)", "", expr)
    return {w for w in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr) if w not in PROMQL_WORDS} - {"e"}


def test_metric_name_extraction_sees_typos() -> None:
    assert metric_names('sum by (le) (rate(release_readines_typo_bucket{job="x"}[5m]))') == {
        "release_readines_typo_bucket"
    }


def test_every_dashboard_query_uses_exported_metrics() -> None:
    dashboard = json.loads((FILES / "dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        assert metric_names(expr) <= METRIC_NAMES, f"unknown metric in {expr!r}: {metric_names(expr) - METRIC_NAMES}"


def test_every_alert_uses_exported_metrics() -> None:
    rules = yaml.safe_load((FILES / "alerts.yaml").read_text())["groups"][0]["rules"]
    assert {r["alert"] for r in rules} >= {
        "ReleaseReadinessOperatorDown",
        "ReleaseReadinessWebhookErrors",
        "ReleaseReadinessAdmissionLatencyHigh",
        "ReleaseReadinessReleaseBlocked",
        "ReleaseReadinessBreakGlassUsed",
    }
    for rule in rules:
        assert metric_names(rule["expr"]) <= METRIC_NAMES, rule["expr"]


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is missing: run `make prometheus` (Debian's prometheus package ships it)"
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=ROOT)


def test_promtool_checks_the_rules() -> None:
    out = promtool("check", "rules", str(FILES / "alerts.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 7 rules found" in out.stdout


def test_promtool_unit_tests_the_alerts() -> None:
    out = promtool("test", "rules", "tests/promtool/alerts_test.yaml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_committed_dashboard_matches_its_generator() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboard", ROOT / "hack" / "dashboard.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads((FILES / "dashboard.json").read_text()) == module.dashboard(), "run `make manifests`"
