"""Writes deploy/checklists/pre-production.yaml from the seed document (../shared/pre-production-checklist.md).

Run when the seed changes: copy it to operator/release_readiness/data/, then
`python hack/seed_checklist.py operator/release_readiness/data/pre-production-checklist.md \
    > deploy/checklists/pre-production.yaml`.
Every item keeps the document's order, section and title; CHECKS maps titles to automated checks,
the rest are attested by the role that owns the section.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from release_readiness.seed import parse_seed

LATENCY = (
    "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket"
    '{namespace="$namespace", app="$application", version="$version"}[5m])))'
)
THROUGHPUT = 'sum(rate(http_requests_total{namespace="$namespace", app="$application", version="$version"}[5m]))'
ERROR_RATE = (
    'sum(rate(http_requests_total{namespace="$namespace", app="$application", version="$version", code=~"5.."}[5m]))'
    ' / sum(rate(http_requests_total{namespace="$namespace", app="$application", version="$version"}[5m]))'
)

CHECKS: dict[str, dict[str, Any]] = {
    "No hardcoded secrets or credentials": {"workload": "noHardcodedSecrets"},
    "Unit test coverage ≥ 80%": {"evidence": {"key": "coverage-percent", "min": 80}},
    "All unit tests passing": {"evidence": {"key": "failed-unit-tests", "max": 0}},
    "Integration tests passing (100% pass rate)": {"evidence": {"key": "integration-pass-rate-percent", "min": 100}},
    "TLS/HTTPS enforced": {"workload": "tlsCertificate", "params": {"minDays": 1}},
    "Latency targets met (P95 < 500ms)": {"prometheus": {"query": LATENCY, "max": 0.5}},
    "Throughput targets met (> 500 req/sec)": {"prometheus": {"query": THROUGHPUT, "min": 500}},
    "Error rate < 0.1%": {"prometheus": {"query": ERROR_RATE, "max": 0.001}},
    "Migration time acceptable (< 5 minutes)": {"evidence": {"key": "migration-seconds", "max": 300}},
    "Docker image scanned for vulnerabilities": {"workload": "imageScan", "params": {"maxCritical": 0, "maxHigh": 5}},
    "Kubernetes manifests validated": {"workload": "imageTagPinned"},
    "Resource requests and limits set": {"workload": "resourceLimits"},
    "Health checks configured": {"workload": "readinessProbe"},
    "Liveness probes functional": {"workload": "livenessProbe"},
    "Readiness probes functional": {"workload": "readinessProbe"},
    "Pod security policies in place": {"workload": "securityContext"},
    "Load balancer configured": {"workload": "service"},
    "SSL certificate valid and installed": {"workload": "tlsCertificate", "params": {"minDays": 1}},
    "SSL certificate doesn't expire in next 90 days": {"workload": "tlsCertificate", "params": {"minDays": 90}},
    "Network policies in place": {"workload": "networkPolicy"},
    "Prometheus scraping configured": {"workload": "metricsScraped"},
    "Alert rules configured": {"workload": "alertRules"},
    "Network segmentation in place": {"workload": "networkPolicy"},
    "No secrets in environment variables (except in containers)": {"workload": "noHardcodedSecrets"},
    "All smoke tests passing": {"workload": "smokeTests"},
    "Health check endpoint responding": {"workload": "rolloutHealthy"},
    "Scalability verified": {"workload": "autoscaling"},
    "Resource usage acceptable (CPU/Memory)": {"workload": "resourceRequests"},
    "Sustained load testing completed": {"workload": "replicas", "params": {"min": 2}},
    "No resource exhaustion observed": {"workload": "podDisruptionBudget"},
    "Monitor error rates (first 1 hour)": {"prometheus": {"query": ERROR_RATE, "max": 0.001, "for": "1h"}},
    "Monitor performance metrics (first 4 hours)": {"prometheus": {"query": LATENCY, "max": 0.5, "for": "4h"}},
}

# Which role attests the items of a section that no automated check covers.
SECTION_ROLES = {
    "Code Quality & Testing": "engineering-lead",
    "Code Quality & Testing / Code Security": "security-lead",
    "Database & Migrations": "devops-lead",
    "Infrastructure & Deployment": "devops-lead",
    "Monitoring & Observability": "devops-lead",
    "Security & Compliance": "security-lead",
    "Documentation": "engineering-lead",
    "Documentation / User Documentation": "product-lead",
    "Team Readiness": "devops-lead",
    "Team Readiness / Communication": "product-lead",
    "Staging Validation": "engineering-lead",
    "Staging Validation / Load Testing": "devops-lead",
    "Staging Validation / Security Testing": "security-lead",
    "Final Approvals / Engineering Lead": "engineering-lead",
    "Final Approvals / DevOps Lead": "devops-lead",
    "Final Approvals / Security Lead": "security-lead",
    "Final Approvals / Product Lead": "product-lead",
    "Final Approvals / VP of Engineering / Director": "vp-engineering",
    "Post-Deployment Tasks": "devops-lead",
}

# Short, stable ids where the title makes a long one.
IDS = {
    "Unit test coverage ≥ 80%": "unit-test-coverage",
    "Integration tests passing (100% pass rate)": "integration-tests-passing",
    "Latency targets met (P95 < 500ms)": "latency-p95",
    "Throughput targets met (> 500 req/sec)": "throughput",
    "Error rate < 0.1%": "error-rate",
    "Migration time acceptable (< 5 minutes)": "migration-time",
    "SSL certificate doesn't expire in next 90 days": "ssl-certificate-90-days",
    "No secrets in environment variables (except in containers)": "no-secrets-in-environment-variables",
    "Monitor error rates (first 1 hour)": "monitor-error-rates",
    "Monitor performance metrics (first 4 hours)": "monitor-performance-metrics",
}

APPROVALS = [
    ("engineering-lead", "Engineering Lead", "eng-leads"),
    ("devops-lead", "DevOps Lead", "devops-leads"),
    ("security-lead", "Security Lead", "security-leads"),
    ("product-lead", "Product Lead", "product-leads"),
    ("vp-engineering", "VP of Engineering / Director", "vp-engineering"),
]


def slug(text: str) -> str:
    text = text.replace("≥", "ge").replace("<", "lt").replace(">", "gt").replace("%", "pct").replace("+", "plus")
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:63].rstrip("-")


def role_for(section: str) -> str:
    while section:
        if section in SECTION_ROLES:
            return SECTION_ROLES[section]
        section = section.rpartition(" / ")[0]
    raise KeyError(section)


def build(seed_text: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    approval_items: dict[str, list[str]] = {role: [] for role, _, _ in APPROVALS}
    for entry in parse_seed(seed_text):
        item_id = IDS.get(entry.title) or slug(entry.title)
        if item_id in seen:
            item_id = slug(entry.section.split(" / ")[-1] + " " + entry.title)
        seen.add(item_id)
        role = role_for(entry.section)
        check = CHECKS.get(entry.title) or {"attestation": {"roles": [role]}}
        item: dict[str, Any] = {"id": item_id, "section": entry.section, "title": entry.title}
        if "(if applicable)" in entry.title or "(if needed)" in entry.title or "(if used)" in entry.title:
            item["required"] = False
        if entry.post:
            item["phase"] = "post"
        item["check"] = check
        items.append(item)
        if entry.section.startswith("Final Approvals / "):
            approval_items[role].append(item_id)
    return {
        "apiVersion": "readiness.dev/v1alpha1",
        "kind": "ReadinessChecklist",
        "metadata": {"name": "pre-production", "labels": {"app.kubernetes.io/part-of": "release-readiness"}},
        "spec": {
            "description": "The pre-production checklist (version 1.0): 231 items and five role sign-offs.",
            "items": items,
            "approvals": [
                {"role": role, "title": title, "groups": [group], "items": approval_items[role]}
                for role, title, group in APPROVALS
            ],
            "rules": {"distinctApprovers": True, "preventSelfApproval": True, "maxWaiverDays": 30},
        },
    }


def main() -> int:
    seed = Path(sys.argv[1]).read_text()
    header = (
        "# The default ReadinessChecklist: every item of the seed pre-production checklist, in order.\n"
        "# Generated by hack/seed_checklist.py; tests/unit/test_seed_checklist.py keeps it in step with the seed.\n"
    )
    sys.stdout.write(header + yaml.safe_dump(build(seed), sort_keys=False, width=120, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
