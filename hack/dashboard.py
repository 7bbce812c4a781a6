"""Writes charts/release-readiness/files/dashboard.json (run when panels change; a test checks its queries)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "charts" / "release-readiness" / "files" / "dashboard.json"
GATE_REFUSED = 'webhook=~"gate-.*", decision!~"passed|unchanged|break-glass|not-gated|allowed"'

PANELS: list[tuple[str, str, str, str]] = [
    # (title, type, expr, legend)
    ("Releases not Ready", "table", "release_readiness_release_ready == 0", "{{namespace}}/{{release}}"),
    (
        "Required items outstanding",
        "bargauge",
        "sort_desc(release_readiness_release_required_items_outstanding > 0)",
        "{{namespace}}/{{release}}",
    ),
    (
        "Approvals outstanding",
        "bargauge",
        "sort_desc(release_readiness_release_approvals_outstanding > 0)",
        "{{namespace}}/{{release}}",
    ),
    (
        "Blocked for (hours)",
        "bargauge",
        "(time() - release_readiness_release_not_ready_since_timestamp_seconds) / 3600",
        "{{namespace}}/{{release}}",
    ),
    ("Items by state", "piechart", "sum by (state) (release_readiness_release_items)", "{{state}}"),
    (
        "Gate refusals by reason",
        "timeseries",
        f"sum by (decision) (rate(release_readiness_admission_requests_total{{{GATE_REFUSED}}}[5m]))",
        "{{decision}}",
    ),
    (
        "Admission requests by decision",
        "timeseries",
        "sum by (webhook, mode, decision) (rate(release_readiness_admission_requests_total[5m]))",
        "{{webhook}} {{mode}} {{decision}}",
    ),
    (
        "Admission latency p50 / p99",
        "timeseries",
        "histogram_quantile(0.99, sum by (le) (rate(release_readiness_admission_duration_seconds_bucket[5m])))",
        "p99",
    ),
    (
        "Admission errors",
        "timeseries",
        "sum by (webhook) (rate(release_readiness_admission_errors_total[5m]))",
        "{{webhook}}",
    ),
    ("Break-glass uses (24h)", "stat", "sum(increase(release_readiness_break_glass_total[24h]))", "uses"),
    (
        "Reconcile p95 duration",
        "timeseries",
        "histogram_quantile(0.95, sum by (le) (rate(release_readiness_reconcile_duration_seconds_bucket[5m])))",
        "p95",
    ),
    (
        "Reconcile errors and status writes",
        "timeseries",
        "sum(rate(release_readiness_reconcile_errors_total[5m]))",
        "errors",
    ),
    ("Reconciler leader", "stat", "max(release_readiness_leader)", "leader"),
    ("Operator memory", "timeseries", 'process_resident_memory_bytes{job="release-readiness"}', "{{pod}}"),
    ("Replicas up", "stat", 'sum(up{job="release-readiness"})', "up"),
]


def panel(index: int, title: str, kind: str, expr: str, legend: str) -> dict[str, Any]:
    return {
        "id": index + 1,
        "title": title,
        "type": kind,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 8, "x": (index % 3) * 8, "y": (index // 3) * 8},
        "targets": [{"refId": "A", "expr": expr, "legendFormat": legend, "instant": kind in ("table", "bargauge")}],
    }


def dashboard() -> dict[str, Any]:
    return {
        "title": "Release readiness",
        "uid": "release-readiness",
        "tags": ["release-readiness", "kubernetes"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
        "panels": [panel(i, *p) for i, p in enumerate(PANELS)],
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {OUT}")
