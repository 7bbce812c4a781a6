"""deploy/checklists/pre-production.yaml carries every item of the seed document, once, in order."""

from __future__ import annotations

from pathlib import Path

import yaml

from release_readiness.api import ReadinessChecklist
from release_readiness.seed import SEED_PATH, parse_seed
from release_readiness.validation import validate_checklist

ROOT = Path(__file__).resolve().parents[2]
SEED = SEED_PATH
CHECKLIST = ROOT / "deploy" / "checklists" / "pre-production.yaml"


def load() -> ReadinessChecklist:
    return ReadinessChecklist.model_validate(yaml.safe_load(CHECKLIST.read_text()))


def test_seed_has_231_items() -> None:
    assert len(parse_seed(SEED.read_text())) == 231


def test_every_seed_item_appears_once_in_order() -> None:
    seed = [(s.section, s.title) for s in parse_seed(SEED.read_text())]
    items = [(i.section, i.title) for i in load().spec.items]
    missing = [s for s in seed if s not in items]
    assert not missing, f"missing from the checklist: {missing[:5]}"
    assert len(items) == len(set(items)), "an item appears twice"
    assert items == seed, "items are out of the seed's order"


def test_post_deployment_tasks_are_post_phase() -> None:
    post = [i.title for i in load().spec.items if i.phase == "post"]
    assert post[0] == "Monitor error rates (first 1 hour)"
    assert len(post) == 8


def test_five_final_approval_roles_cover_their_items() -> None:
    checklist = load()
    roles = {a.role: a for a in checklist.spec.approvals}
    assert list(roles) == ["engineering-lead", "devops-lead", "security-lead", "product-lead", "vp-engineering"]
    for approval in roles.values():
        assert len(approval.items) == 5
        for item_id in approval.items:
            item = checklist.item(item_id)
            assert item is not None
            assert item.section.startswith("Final Approvals / ")


def test_measurable_targets_are_automated() -> None:
    checklist = load()
    kinds = {i.id: i.check.kind for i in checklist.spec.items}
    assert kinds["latency-p95"] == "prometheus"
    assert kinds["throughput"] == "prometheus"
    assert kinds["error-rate"] == "prometheus"
    assert kinds["unit-test-coverage"] == "evidence"
    assert kinds["network-policies-in-place"] == "workload"
    assert kinds["ssl-certificate-90-days"] == "workload"


def test_the_default_checklist_is_valid() -> None:
    assert validate_checklist(load()) == []
