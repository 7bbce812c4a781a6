"""The Argo CD health check on statuses that are hard to reach in a cluster (the integration test,
tests/integration/test_gitops.py, runs it on statuses the operator wrote)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.argocd import argocd_health


def release(generation: int = 1, observed: int | None = 1, **conditions: tuple[str, str, str]) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "readiness.dev/v1alpha1",
        "kind": "ReleaseReadiness",
        "metadata": {"name": "payments-api-3.2.0", "namespace": "payments-prod", "generation": generation},
        "spec": {"application": "payments-api", "version": "3.2.0"},
    }
    if conditions:
        obj["status"] = {
            "observedGeneration": observed,
            "conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, (s, r, m) in conditions.items()],
        }
    return obj


def test_not_evaluated_yet_is_progressing() -> None:
    assert argocd_health(release()) == (
        "Progressing",
        "Waiting for the release-readiness operator to evaluate the release",
    )


@pytest.mark.parametrize("observed", [None, 1])
def test_a_status_for_an_older_generation_is_progressing_even_if_it_says_ready(observed: int | None) -> None:
    obj = release(generation=2, observed=observed, Ready=("True", "ReleaseReady", "every required item"))
    assert argocd_health(obj) == ("Progressing", "Waiting for the operator to evaluate generation 2")


def test_ready_is_healthy() -> None:
    obj = release(
        Ready=("True", "ReleaseReady", "every required item and approval is satisfied"),
        Stalled=("False", "Progressing", ""),
    )
    assert argocd_health(obj) == ("Healthy", "every required item and approval is satisfied")


def test_stalled_is_degraded_even_when_ready_is_stale_true() -> None:
    obj = release(Ready=("True", "ReleaseReady", ""), Stalled=("True", "Vetoed", "security-lead vetoed by mallory"))
    assert argocd_health(obj) == ("Degraded", "Vetoed: security-lead vetoed by mallory")


def test_failing_post_deployment_checks_degrade_a_ready_release() -> None:
    obj = release(
        Ready=("True", "ReleaseReady", ""),
        PostDeploymentHealthy=("False", "PostDeploymentChecksFailing", "error-rate: 0.2 > 0.01"),
    )
    assert argocd_health(obj) == ("Degraded", "PostDeploymentChecksFailing: error-rate: 0.2 > 0.01")


@pytest.mark.parametrize("reason", ["NotDeployed", "PostDeploymentWatching"])
def test_post_deployment_still_watching_does_not_degrade(reason: str) -> None:
    obj = release(Ready=("True", "ReleaseReady", "ok"), PostDeploymentHealthy=("False", reason, ""))
    assert argocd_health(obj)[0] == "Healthy"


def test_outstanding_items_are_progressing_with_the_reason() -> None:
    obj = release(
        Ready=("False", "ItemsOutstanding", "1 required item(s) outstanding: replicas (Failed: 2 < 3)"),
        Reconciling=("True", "ItemsOutstanding", ""),
    )
    assert argocd_health(obj) == (
        "Progressing",
        "ItemsOutstanding: 1 required item(s) outstanding: replicas (Failed: 2 < 3)",
    )


def test_conditions_without_ready_are_progressing() -> None:
    assert argocd_health(release(Reconciling=("True", "ItemsOutstanding", "")))[0] == "Progressing"
