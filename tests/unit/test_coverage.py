"""docs/checklist-coverage.md is generated from the default checklist, and says what it verifies."""

from __future__ import annotations

from pathlib import Path

import yaml

from release_readiness.api import ReadinessChecklist
from release_readiness.coverage import components, render, verified_by

ROOT = Path(__file__).resolve().parents[2]
CHECKLIST = ROOT / "deploy" / "checklists" / "pre-production.yaml"
DOC = ROOT / "docs" / "checklist-coverage.md"


def load() -> ReadinessChecklist:
    return ReadinessChecklist.model_validate(yaml.safe_load(CHECKLIST.read_text()))


def test_committed_coverage_doc_matches_the_checklist() -> None:
    assert DOC.read_text() == render(load(), "deploy/checklists/pre-production.yaml"), (
        "docs/checklist-coverage.md drifted from the checklist: run `make coverage` (or `make manifests`)"
    )


def test_totals_and_every_item_are_listed() -> None:
    text = DOC.read_text()
    checklist = load()
    machine = sum(1 for i in checklist.spec.items if i.check.kind != "attestation")
    assert f"**{machine} of 231 (" in text
    for item in checklist.spec.items:
        assert f"`{item.id}`" in text


def test_every_machine_item_says_why_it_establishes_the_item() -> None:
    missing = [i.id for i in load().spec.items if i.check.kind != "attestation" and not i.rationale]
    assert not missing


def test_how_items_are_verified_and_what_they_need() -> None:
    checklist = load()

    def item(item_id: str) -> object:
        found = checklist.item(item_id)
        assert found is not None
        return found

    usage = item("resource-usage-acceptable-cpu-memory")
    how = verified_by(usage)  # type: ignore[arg-type]
    assert how.startswith("PromQL <= 0.8: `max_over_time((max((label_replace(container_memory_working_set_bytes")
    needs = components(usage)  # type: ignore[arg-type]
    assert any(n.startswith("cAdvisor") for n in needs)
    assert any(n.startswith("kube-state-metrics") for n in needs)
    scan = item("docker-image-scanned-for-vulnerabilities")
    assert verified_by(scan) == "workload `imageScan` (maxCritical=0, maxHigh=5, annotation=False)"  # type: ignore[arg-type]
    assert components(item("network-policies-in-place")) == []  # type: ignore[arg-type]
    assert components(item("unit-test-coverage")) == ["CI recording evidence as a ReleaseSignoff"]  # type: ignore[arg-type]
