"""The markdown report of the sample release mirrors the seed checklist (golden file)."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import yaml

from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.checks.model import CandidateSnapshot, Workload
from release_readiness.evaluation import EvaluationInput, candidate_status, evaluate_release
from release_readiness.report import render_json, render_markdown
from release_readiness.seed import SEED_PATH, parse_seed

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "sample-report.md"
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def sample() -> tuple[ReleaseReadiness, ReadinessChecklist, list[ReleaseSignoff]]:
    checklist = ReadinessChecklist.model_validate(
        yaml.safe_load((ROOT / "deploy" / "checklists" / "pre-production.yaml").read_text())
    )
    raw_release = load_all(ROOT / "deploy" / "samples" / "release.yaml")[0]
    raw_release["metadata"]["creationTimestamp"] = "2026-11-27T09:00:00Z"
    raw_release["metadata"]["uid"] = "uid-sample"
    release = ReleaseReadiness.model_validate(raw_release)
    objects = load_all(ROOT / "deploy" / "samples" / "candidate.yaml")
    snapshot = CandidateSnapshot(
        application="payments-api",
        version="3.2.0",
        namespace="payments-staging",
        now=NOW,
        workloads=[Workload(o) for o in objects if o["kind"] == "Deployment"],
        services=[o for o in objects if o["kind"] == "Service"],
    )
    fingerprint = candidate_status(snapshot).fingerprint  # stamped at signing: the candidate inspected
    signoffs = [
        ReleaseSignoff.model_validate(
            {
                "metadata": {"name": "ci-evidence", "namespace": "payments-prod"},
                "spec": {
                    "release": "payments-api-3.2.0",
                    "releaseUID": "uid-sample",
                    "candidateFingerprint": fingerprint,
                    "items": [{"id": "unit-test-coverage", "value": "86.4"}],
                    "signer": {
                        "username": "system:serviceaccount:ci:ci-bot",
                        "groups": ["system:serviceaccounts", "system:serviceaccounts:ci"],
                    },
                    "signedAt": "2026-11-27T10:00:00Z",
                },
            }
        ),
        ReleaseSignoff.model_validate(
            {
                "metadata": {"name": "erin-engineering-lead", "namespace": "payments-prod"},
                "spec": {
                    "release": "payments-api-3.2.0",
                    "releaseUID": "uid-sample",
                    "candidateFingerprint": fingerprint,
                    "role": "engineering-lead",
                    "signer": {"username": "erin", "groups": ["eng-leads"]},
                    "signedAt": "2026-11-27T11:30:00Z",
                },
            }
        ),
    ]
    status = evaluate_release(
        EvaluationInput(release=release, checklist=checklist, snapshot=snapshot, signoffs=signoffs, now=NOW)
    )
    release.status = status
    return release, checklist, signoffs


def test_sample_report_matches_the_golden_file() -> None:
    release, checklist, signoffs = sample()
    report = render_markdown(SEED_PATH.read_text(), release, checklist, signoffs)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(report)
    assert report == GOLDEN.read_text(), "report changed: rerun with UPDATE_GOLDEN=1 and review the diff"


def test_every_seed_item_appears_once_in_order() -> None:
    release, checklist, signoffs = sample()
    report = render_markdown(SEED_PATH.read_text(), release, checklist, signoffs)
    titles = [re.sub(r" — \*\*.*$", "", line[6:]) for line in report.splitlines() if re.match(r"^- \[[ x]\] ", line)]
    assert titles == [s.title for s in parse_seed(SEED_PATH.read_text())]


def test_report_fills_signatures_details_and_states() -> None:
    release, checklist, signoffs = sample()
    report = render_markdown(SEED_PATH.read_text(), release, checklist, signoffs)
    assert "# Pre-Production Checklist: payments-api 3.2.0" in report
    assert "**Name**: erin **Signature**: ReleaseSignoff erin-engineering-lead **Date**: 2026-11-27 11:30 UTC" in report
    assert "| Engineering Lead | erin | ReleaseSignoff erin-engineering-lead | 2026-11-27 11:30 UTC |" in report
    assert "| Security Lead | | | |" in report
    assert "**On-Call Team Members**: bob, carol" in report
    assert "**War Room Link**: https://meet.example.com/payments-3-2-0" in report
    assert "- [x] Unit test coverage ≥ 80% — **Passed**: unit-test-coverage: 86.4 >= 80" in report
    assert "- [ ] Network policies in place — **Failed**: deployment payments-staging/payments-api" in report
    assert "- [ ] Monitor error rates (first 1 hour) — **Pending (after deployment)**" in report


def test_json_report_groups_items_by_section() -> None:
    release, checklist, _ = sample()
    data = render_json(release, checklist)
    assert data["ready"] is False
    assert data["sections"][0]["section"] == "Code Quality & Testing / Code Review"
    assert sum(len(s["items"]) for s in data["sections"]) == 231
