"""The offline audit and the operator agree: the same objects, applied to the real API server and judged by the
operator, get the same verdicts (state and message) as `kubectl readiness audit` gives them before any cluster."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from release_readiness.audit import DEFAULT_CHECKLIST_PATH, Outcome, audit, load_checklist, parse_documents
from release_readiness_dev import builders
from tests.integration.conftest import Kubectl, eventually

pytestmark = pytest.mark.usefixtures("operator", "checklist_installed")

BOOKSHOP = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "bookshop"
NOT_SERVED = {"ServiceMonitor"}
"""Kinds whose CRD this control plane does not serve at start (installing one late is another test's subject)."""
LIVE_STATE = {Outcome.PASSED: "Passed", Outcome.FAILED: "Failed", Outcome.NOT_APPLICABLE: "NotApplicable"}


def bookshop_in(namespace: str) -> list[dict[str, Any]]:
    """The bookshop's objects, moved into `namespace` (the Namespace object becomes that namespace)."""
    out = []
    for path in sorted(BOOKSHOP.glob("*.yaml")):
        for m in parse_documents(path.read_text(), str(path)):
            if m.kind in NOT_SERVED or m.body["apiVersion"].startswith("kustomize.config.k8s.io/"):
                continue
            body = json.loads(json.dumps(m.body))
            if m.kind == "Namespace":
                body["metadata"]["name"] = namespace
            else:
                body["metadata"]["namespace"] = namespace
            out.append(body)
    return out


def test_live_and_offline_verdicts_agree_on_the_same_objects(kubectl: Kubectl) -> None:
    namespace = f"shop-{uuid.uuid4().hex[:6]}"
    objects = bookshop_in(namespace)
    kubectl.apply(json.dumps(next(o for o in objects if o["kind"] == "Namespace")))
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    checklist = load_checklist(DEFAULT_CHECKLIST_PATH.read_text(), "the shipped checklist")
    manifests = parse_documents(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}), "input")
    offline = audit(manifests, checklist, dt.datetime.now(dt.UTC), namespace)
    assert {a.application for a in offline.applications} == {"cart", "payments", "redis", "storefront"}

    # One release per application, in the candidates' own namespace (as the audit judges them: production there too).
    releases = [
        builders.release(app.application, namespace, app.application, app.version, "pre-production", namespace)
        for app in offline.applications
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": releases}))

    ran = {
        (app.application, r.item.id): (LIVE_STATE[r.outcome], r.message)
        for app in offline.applications
        for r in app.items
        if r.outcome != Outcome.NOT_RUN
    }
    assert sum(1 for state, _ in ran.values() if state == "Passed") >= 20
    assert sum(1 for state, _ in ran.values() if state == "Failed") >= 20

    def live() -> dict[tuple[str, str], tuple[str, str]]:
        out = {}
        for app in offline.applications:
            raw = kubectl.run("get", "releasereadiness", app.application, "-n", namespace, "-o", "json").stdout
            for item in json.loads(raw).get("status", {}).get("items", []):
                out[(app.application, item["id"])] = (item["state"], item["message"])
        return out

    def agree() -> list[str]:
        seen = live()
        return [f"{key}: offline {want}, live {seen.get(key)}" for key, want in ran.items() if seen.get(key) != want]

    # The operator's watches fill its index object by object: wait until it has judged everything.
    try:
        eventually(lambda: not agree(), timeout=90, interval=1.0, what="the operator's verdicts")
    except AssertionError:
        pytest.fail("live and offline verdicts differ:\n" + "\n".join(agree()[:20]))

    # And nothing the audit left unjudged is claimed by it: every item not run offline is absent from `ran`.
    not_run = sum(1 for app in offline.applications for r in app.items if r.outcome == Outcome.NOT_RUN)
    assert len(ran) + not_run == len(offline.applications) * len(checklist.spec.items)
