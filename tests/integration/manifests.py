"""Manifests the integration tests (and the benchmarks) build again and again."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from release_readiness.pki import CertificateAuthority, KeyPair

CI_ONLY = {"groups": ["system:serviceaccounts:ci"]}
"""check.evidence.recordedBy: evidence from CI's service accounts only."""


def checklist(
    name: str, checks: dict[str, dict[str, Any]], approvals: list[dict[str, Any]] | None = None, section: str = "Infra"
) -> dict[str, Any]:
    """A ReadinessChecklist with one item per id -> check."""
    spec: dict[str, Any] = {
        "items": [
            {"id": item_id, "section": section, "title": item_id, "check": check} for item_id, check in checks.items()
        ]
    }
    if approvals is not None:
        spec["approvals"] = approvals
    return {
        "apiVersion": "readiness.dev/v1alpha1",
        "kind": "ReadinessChecklist",
        "metadata": {"name": name},
        "spec": spec,
    }


def release(
    name: str, namespace: str, application: str, version: str, checklist: str, candidate: str, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "readiness.dev/v1alpha1",
        "kind": "ReleaseReadiness",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "application": application,
            "version": version,
            "checklist": checklist,
            "candidate": {"namespace": candidate},
            **spec,
        },
    }


def deployment(
    namespace: str,
    name: str,
    labels: dict[str, str],
    containers: list[dict[str, Any]],
    replicas: int = 2,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Deployment selecting on app.kubernetes.io/name, with `labels` on it and its pod template."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app.kubernetes.io/name": labels["app.kubernetes.io/name"]}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": containers}},
        },
    }


def tls_secret(namespace: str, name: str, host: str, days: int) -> tuple[dict[str, Any], KeyPair]:
    """A kubernetes.io/tls Secret for `host`, valid `days`, from a fresh CA; and its key pair."""
    pair = CertificateAuthority().issue(host.split(".", maxsplit=1)[0], hosts=(host,), validity=dt.timedelta(days=days))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "tls.crt": base64.b64encode(pair.cert_pem).decode(),
            "tls.key": base64.b64encode(pair.key_pem).decode(),
        },
    }
    return secret, pair


def cluster_role(
    name: str, rules: list[dict[str, Any]], users: tuple[str, ...] = (), groups: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A List of a ClusterRole with `rules` and a ClusterRoleBinding of it to `users` and `groups`."""
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users]
    subjects += [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": subjects,
            },
        ],
    }
