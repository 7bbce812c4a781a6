"""gate_decision: every branch, from a plain admission request and indexed release state."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from release_readiness.admission.gate import GateRequest, gate_decision
from release_readiness.admission.signoffs import Caller
from release_readiness.api import ReadinessChecklist, ReleaseReadiness
from tests.unit.builders import NOW

IMAGE = "registry.example.com/payments/api:3.2.0"
PROD = "payments-prod"


def workload(
    image: str = IMAGE,
    labels: dict[str, str] | None = None,
    replicas: int = 3,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "metadata": {"name": "payments-api", "namespace": PROD, "annotations": annotations or {}},
        "spec": {
            "replicas": replicas,
            "template": {
                "metadata": {
                    "labels": labels
                    if labels is not None
                    else {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}
                },
                "spec": {"containers": [{"name": "api", "image": image}]},
            },
        },
    }


def release(ready: bool = True, window: tuple[str, str] | None = None, items: int = 0) -> ReleaseReadiness:
    status: dict[str, Any] = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True" if ready else "False",
                "reason": "ReleaseReady" if ready else "ItemsOutstanding",
                "message": "m",
                "lastTransitionTime": "2026-11-27T00:00:00Z",
            }
        ],
        "items": [{"id": f"item-{i}", "state": "Failed", "message": f"problem {i}"} for i in range(items)],
        "approvals": [] if ready else [{"role": "security-lead", "state": "Missing"}],
        "candidate": {
            "namespace": "payments-staging",
            "fingerprint": "sha256:x",
            "workloads": [
                {"kind": "Deployment", "name": "payments-api", "images": [{"container": "api", "image": IMAGE}]}
            ],
        },
    }
    spec: dict[str, Any] = {
        "application": "payments-api",
        "version": "3.2.0",
        "checklist": "demo",
        "candidate": {"namespace": "payments-staging"},
    }
    if window:
        spec["window"] = {"start": window[0], "end": window[1]}
    return ReleaseReadiness.model_validate(
        {"metadata": {"name": "payments-api-3.2.0", "namespace": PROD}, "spec": spec, "status": status}
    )


CHECKLIST = ReadinessChecklist.model_validate(
    {
        "metadata": {"name": "demo"},
        "spec": {
            "items": [
                {"id": f"item-{i}", "section": "S", "title": "T", "check": {"workload": "replicas"}} for i in range(15)
            ],
            "approvals": [{"role": "security-lead", "groups": ["security-leads"]}],
        },
    }
)


def decide(
    obj: dict[str, Any],
    *,
    old: dict[str, Any] | None = None,
    mode: str = "enforce",
    releases: list[ReleaseReadiness] | None = None,
    groups: tuple[str, ...] = ("deployers",),
    now: dt.datetime = NOW,
) -> Any:
    req = GateRequest(
        operation="UPDATE" if old else "CREATE",
        kind="Deployment",
        namespace=PROD,
        name="payments-api",
        obj=obj,
        old=old,
        caller=Caller("alice", groups),
    )
    return gate_decision(
        req, mode, [release()] if releases is None else releases, {"demo": CHECKLIST}, ["sre-oncall"], now
    )


def test_ready_release_with_the_inspected_images_passes() -> None:
    d = decide(workload())
    assert (d.allowed, d.verdict) == (True, "passed")
    assert (
        d.message == "deployment payments-prod/payments-api: ReleaseReadiness payments-prod/payments-api-3.2.0 is Ready"
    )


def test_an_update_that_leaves_the_pod_template_unchanged_passes() -> None:
    old = workload()
    scaled = copy.deepcopy(old)
    scaled["spec"]["replicas"] = 10
    scaled["metadata"]["labels"] = {"team": "payments"}
    d = decide(scaled, old=old, releases=[])
    assert (d.allowed, d.verdict) == (True, "unchanged")


def test_missing_labels_are_named() -> None:
    d = decide(workload(labels={"app.kubernetes.io/name": "payments-api"}))
    assert (d.allowed, d.verdict) == (False, "missing-labels")
    assert "the pod template (spec.template.metadata.labels) has no app.kubernetes.io/version; add them" in d.message
    both = decide(workload(labels={}))
    assert "has no app.kubernetes.io/name or app.kubernetes.io/version" in both.message


def test_no_release_says_how_to_create_one() -> None:
    d = decide(workload(), releases=[])
    assert (d.allowed, d.verdict) == (False, "no-release")
    assert (
        "no ReleaseReadiness for payments-api 3.2.0 in namespace payments-prod; create one: kubectl readiness "
        "init payments-api 3.2.0 --candidate-namespace <staging-namespace> -n payments-prod" in d.message
    )


def test_not_ready_lists_the_first_ten_items_and_a_count() -> None:
    d = decide(workload(), releases=[release(ready=False, items=12)])
    assert (d.allowed, d.verdict) == (False, "not-ready")
    assert "is not Ready (ItemsOutstanding)." in d.message
    assert "12 required item(s) outstanding:" in d.message
    assert "item-9 (Failed: problem 9)" in d.message
    assert "item-10" not in d.message
    assert "... and 2 more" in d.message
    assert "1 approval(s) missing:\n  - security-lead (Missing)" in d.message


def test_outside_the_window_names_it() -> None:
    d = decide(workload(), releases=[release(window=("2026-12-01T20:00:00Z", "2026-12-01T22:00:00Z"))])
    assert (d.allowed, d.verdict) == (False, "outside-window")
    assert (
        "outside the deployment window of ReleaseReadiness payments-prod/payments-api-3.2.0: "
        "2026-12-01T20:00:00Z to 2026-12-01T22:00:00Z (now 2026-11-27T12:00:00Z)" in d.message
    )
    inside = decide(workload(), releases=[release(window=("2026-11-27T11:00:00Z", "2026-11-27T13:00:00Z"))])
    assert inside.allowed


def test_images_not_inspected_name_both() -> None:
    d = decide(workload(image="registry.example.com/payments/api:3.2.1"))
    assert (d.allowed, d.verdict) == (False, "image-mismatch")
    assert (
        "container 'api' image registry.example.com/payments/api:3.2.1 is not the image inspected in "
        f"payments-staging ({IMAGE})" in d.message
    )


def test_break_glass_by_an_allowed_user_passes_with_a_warning() -> None:
    obj = workload(annotations={"readiness.dev/break-glass": "INC-4711 payments down"})
    d = decide(obj, releases=[release(ready=False)], groups=("sre-oncall",))
    assert (d.allowed, d.verdict) == (True, "break-glass")
    assert d.break_glass_reason == "INC-4711 payments down"
    assert d.warnings == [
        "readiness gate bypassed by break-glass (INC-4711 payments down); this is recorded on "
        "ReleaseReadiness payments-prod/payments-api-3.2.0"
    ]


def test_break_glass_by_anyone_else_is_refused() -> None:
    obj = workload(annotations={"readiness.dev/break-glass": "trust me"})
    d = decide(obj, releases=[release(ready=True)])
    assert (d.allowed, d.verdict) == (False, "break-glass-denied")
    assert (
        "user alice (groups: deployers) may not use the readiness.dev/break-glass annotation; only members of "
        "these groups may: sre-oncall" in d.message
    )


@pytest.mark.parametrize("mode", ["warn", "audit"])
def test_advisory_modes_pass_and_keep_the_verdict(mode: str) -> None:
    d = decide(workload(), mode=mode, releases=[])
    assert d.allowed
    assert d.verdict == "no-release"
    assert d.refused
    if mode == "warn":
        assert d.warnings[0].startswith("readiness gate (warn mode) would refuse this: deployment payments-prod/")
    else:
        assert d.warnings == []


def test_ungated_namespace_passes() -> None:
    d = decide(workload(), mode="off", releases=[])
    assert (d.allowed, d.verdict) == (True, "not-gated")


def test_dry_run_gets_the_same_answer() -> None:
    req = GateRequest(
        operation="CREATE",
        kind="Deployment",
        namespace=PROD,
        name="payments-api",
        obj=workload(),
        old=None,
        caller=Caller("alice"),
        dry_run=True,
    )
    wet = decide(workload(), releases=[release(ready=False)])
    dry = gate_decision(req, "enforce", [release(ready=False)], {"demo": CHECKLIST}, [], NOW)
    assert (dry.allowed, dry.verdict, dry.message) == (wet.allowed, wet.verdict, wet.message)
