"""Plain Kubernetes objects for unit tests of pure logic (no cluster, no mocks of the API)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from release_readiness.checks.model import CandidateSnapshot, Workload

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
NS = "payments-staging"
LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}
CI_ONLY = {"groups": ["system:serviceaccounts:ci"]}
"""check.evidence.recordedBy: evidence from CI's service accounts only."""


def good_container(name: str = "api", image: str = "registry.example.com/payments/api:3.2.0") -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def deployment(
    name: str = "payments-api",
    *,
    replicas: int = 2,
    containers: list[dict[str, Any]] | None = None,
    kind: str = "Deployment",
    annotations: dict[str, str] | None = None,
    template_annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "payments-api"}},
        "template": {
            "metadata": {"labels": dict(LABELS), "annotations": dict(template_annotations or {})},
            "spec": {"containers": containers if containers is not None else [good_container()]},
        },
    }
    if kind != "DaemonSet":
        spec["replicas"] = replicas
    return {
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": f"uid-{name}",
            "generation": 1,
            "labels": dict(LABELS),
            "annotations": dict(annotations or {}),
        },
        "spec": spec,
        "status": status if status is not None else {},
    }


def obj(kind: str, name: str, spec: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": NS}, "spec": spec or {}}
    for key, value in extra.items():
        if key == "labels":
            body["metadata"]["labels"] = value
        else:
            body[key] = value
    return body


def snapshot(*workloads: dict[str, Any], **related: Any) -> CandidateSnapshot:
    return CandidateSnapshot(
        application="payments-api",
        version="3.2.0",
        namespace=NS,
        workloads=[Workload(copy.deepcopy(w)) for w in (workloads or (deployment(),))],
        now=NOW,
        **related,
    )
