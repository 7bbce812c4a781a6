"""docs/checklist-coverage.md: how each item of a checklist is verified, rendered from the checklist itself.

`python -m release_readiness.coverage deploy/checklists/pre-production.yaml docs/checklist-coverage.md`
(run by `make manifests`); tests/unit/test_coverage.py fails when the committed file drifts.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import yaml

from release_readiness.api import ReadinessChecklist
from release_readiness.api.checklist import ChecklistItem
from release_readiness.checks.workload import CATALOG

__all__ = ["components", "render", "verified_by"]

PROMETHEUS = "Prometheus (the platform's: the operator's RR_PROMETHEUS_URL, or one the operator or checklist allows)"
CI = "CI recording evidence as a ReleaseSignoff"

# Metric-name patterns -> the exporter that produces them.
_EXPORTERS: tuple[tuple[str, str], ...] = (
    (r"\bkube_", "kube-state-metrics (--metric-labels-allowlist for pods and jobs, see below)"),
    (r"\bcontainer_", "cAdvisor (the kubelet's /metrics/cadvisor)"),
    (r"\bprobe_success\b", "blackbox exporter (probes labelled namespace, app, readiness_check)"),
    (r"\bpg_", "postgres_exporter"),
    (r"\bhttp_requests_total\b|\bhttp_request_duration_seconds", "the application's HTTP metrics"),
    (r"\bhttp_client_|\bdb_client_", "OpenTelemetry instrumentation in the application"),
    (r"\bslo:", "Sloth SLO recording rules"),
)


def verified_by(item: ChecklistItem) -> str:
    check = item.check
    if check.workload is not None:
        params = ", ".join(f"{k}={v}" for k, v in (check.params or {}).items())
        return f"workload `{check.workload}`" + (f" ({params})" if params else "")
    if check.cel is not None:
        return "CEL: " + "; ".join(f"`{' '.join(r.expression.split())}`" for r in check.cel.rules)
    if check.prometheus is not None:
        prom = check.prometheus
        bounds = " and ".join(
            b
            for b in (
                f">= {prom.min:g}" if prom.min is not None else "",
                f"<= {prom.max:g}" if prom.max is not None else "",
            )
            if b
        )
        held = f", held for {prom.for_}" if prom.for_ else ""
        return f"PromQL {bounds}{held}: `{' '.join(prom.query.split())}`"
    if check.evidence is not None:
        ev = check.evidence
        if ev.equals is not None:
            bound = f"== {ev.equals}"
        else:
            bound = " and ".join(
                b
                for b in (
                    f">= {ev.min:g}" if ev.min is not None else "",
                    f"<= {ev.max:g}" if ev.max is not None else "",
                )
                if b
            )
        return f"evidence `{ev.key}` {bound}"
    if check.attestation is not None:
        return f"attestation ({', '.join(check.attestation.roles)})"
    return "none"


def components(item: ChecklistItem) -> list[str]:
    """What must run in (or beside) the cluster for the item to be verified; empty for core Kubernetes."""
    check = item.check
    if check.workload is not None:
        needs = CATALOG[check.workload].needs
        return [needs] if needs else []
    if check.prometheus is not None:
        found = [name for pattern, name in _EXPORTERS if re.search(pattern, check.prometheus.query)]
        return [PROMETHEUS, *found]
    if check.evidence is not None:
        return [CI]
    return []


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(checklist: ReadinessChecklist, source: str) -> str:
    items = checklist.spec.items
    kinds = Counter(i.check.kind for i in items)
    machine = [i for i in items if i.check.kind != "attestation"]
    total = len(items)
    lines = [
        f"# Checklist coverage: {checklist.metadata.name}",
        "",
        f"Generated from `{source}` by `python -m release_readiness.coverage` (`make manifests`); do not edit.",
        "",
        "How each item is verified and why that establishes it. A machine verdict is Pending, never Passed, while",
        "what it reads is missing: install the component named below, or waive the item with a reason.",
        "",
        "## Totals",
        "",
        "| kind | items | required |",
        "|---|---|---|",
    ]
    for kind in ("workload", "cel", "prometheus", "evidence", "attestation"):
        required = sum(1 for i in items if i.check.kind == kind and i.required)
        lines.append(f"| {kind} | {kinds[kind]} | {required} |")
    lines += [
        f"| **machine-verified** | **{len(machine)} of {total} ({100 * len(machine) / total:.1f}%)** | "
        f"{sum(1 for i in machine if i.required)} |",
        "",
        "## Optional components",
        "",
        "| component | items |",
        "|---|---|",
    ]
    needed: dict[str, list[str]] = defaultdict(list)
    for item in items:
        for component in components(item):
            needed[component].append(item.id)
    for component, ids in sorted(needed.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"| {_cell(component)} | {len(ids)}: {', '.join(ids)} |")
    lines += [
        "",
        "In queries `$application` and `$version` are the release's, `$namespace` the candidate's namespace (the",
        "release's own, production, namespace for post-deployment items). Conventions the queries rely on: the",
        "application's own series carry `namespace`, `app` and `version`",
        "labels; kube-state-metrics runs with `--metric-labels-allowlist=pods=[app.kubernetes.io/name,"
        "app.kubernetes.io/version],jobs=[app.kubernetes.io/name,app.kubernetes.io/version,readiness.dev/suite]`;",
        "blackbox probes carry `namespace`, `app` and `readiness_check` labels. Load-window queries answer only",
        "for moments when a Job labelled `readiness.dev/suite=load-*` of this version was running.",
        "",
        "## Items",
        "",
    ]
    section = None
    for number, item in enumerate(items, 1):
        if item.section != section:
            section = item.section
            lines += [
                "",
                f"### {section}",
                "",
                "| # | item | verified by | why it establishes the item |",
                "|---|---|---|---|",
            ]
        flag = "" if item.required else " (optional)"
        post = " (post)" if item.phase == "post" else ""
        lines.append(
            f"| {number} | `{item.id}`{flag}{post} | {_cell(verified_by(item))} | {_cell(item.rationale or '')} |"
        )
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checklist", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    checklist = ReadinessChecklist.model_validate(yaml.safe_load(args.checklist.read_text()))
    args.output.write_text(render(checklist, str(args.checklist)))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
