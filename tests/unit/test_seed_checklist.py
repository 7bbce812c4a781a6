"""deploy/checklists/pre-production.yaml carries every item of the seed document, once, in order."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from release_readiness import placeholders
from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.evaluation import EvaluationInput, evaluate_item
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


def generator() -> Any:
    spec = importlib.util.spec_from_file_location("seed_checklist", ROOT / "hack" / "seed_checklist.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_checklist_is_the_generators_output() -> None:
    assert yaml.safe_load(CHECKLIST.read_text()) == generator().build(SEED.read_text()), (
        "deploy/checklists/pre-production.yaml drifted from hack/seed_checklist.py: run `make manifests`"
    )


def test_at_least_45_percent_is_verified_by_machine_and_no_proxy_remains() -> None:
    checklist = load()
    machine = [i for i in checklist.spec.items if i.check.kind != "attestation"]
    assert len(machine) >= 104
    kinds = {i.id: i.check for i in checklist.spec.items}
    # The proxies issue 16 named: each item now reads what it claims.
    assert kinds["sustained-load-testing-completed"].prometheus is not None
    assert kinds["no-resource-exhaustion-observed"].prometheus is not None
    assert kinds["scalability-verified"].prometheus is not None
    assert kinds["resource-usage-acceptable-cpu-memory"].prometheus is not None
    assert kinds["pod-security-policies-in-place"].workload == "podSecurityAdmission"
    assert kinds["load-balancer-configured"].workload == "exposure"
    assert kinds["health-check-endpoint-responding"].workload == "healthEndpoint"
    assert kinds["kubernetes-manifests-validated"].evidence is not None
    assert kinds["tls-https-enforced"].workload == "httpsEnforced"
    for item_id in ("throughput", "latency-p95", "error-rate"):
        query = kinds[item_id].prometheus
        assert query is not None
        assert "kube_job_status_active" in query.query, f"{item_id} is not load-windowed"
    for proxy in ("replicas", "podDisruptionBudget", "autoscaling", "service", "rolloutHealthy"):
        assert all(c.workload != proxy for c in kinds.values()), f"{proxy} still verifies an item it does not establish"


def test_every_promql_query_parses(tmp_path: Path) -> None:
    """promtool parses every query (placeholders filled) as a recording rule: a typo is caught here."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is not installed: run `make prometheus`")
    rules = []
    for item in load().spec.items:
        if item.check.prometheus is not None:
            expr = placeholders.fill(item.check.prometheus.query, dict.fromkeys(placeholders.PLACEHOLDERS, "x"))
            rules.append({"record": f"readiness:{item.id.replace('-', '_')}", "expr": expr})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "checklist", "rules": rules}]}))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_the_samples_ci_evidence_satisfies_every_evidence_item() -> None:
    """deploy/samples/ci-evidence.yaml is what a newcomer's CI records: every evidence item, every value in bounds."""
    checklist = load()
    raw = yaml.safe_load((ROOT / "deploy" / "samples" / "ci-evidence.yaml").read_text())
    raw["spec"]["signer"] = {"username": "system:serviceaccount:ci:ci-bot", "groups": ["system:serviceaccounts:ci"]}
    raw["spec"]["releaseUID"] = "uid-sample"  # stamped by the webhook, with the candidate inspected
    raw["spec"]["candidateFingerprint"] = "sha256:candidate"
    signoff = ReleaseSignoff.model_validate(raw)
    raw_release = yaml.safe_load((ROOT / "deploy" / "samples" / "release.yaml").read_text())
    raw_release["metadata"]["uid"] = "uid-sample"
    release = ReleaseReadiness.model_validate(raw_release)
    inp = EvaluationInput(release=release, checklist=checklist, snapshot=None, signoffs=[signoff])
    evidence = [i for i in checklist.spec.items if i.check.evidence is not None and i.phase == "pre"]
    results = {i.id: evaluate_item(i, inp, {}, fingerprint="sha256:candidate") for i in evidence}
    assert {k: r.message for k, r in results.items() if r.state != "Passed"} == {}
    assert {e.id for e in signoff.spec.items} == set(results), "the sample records exactly the pre-deployment evidence"


def test_the_samples_signoffs_attest_exactly_each_roles_items() -> None:
    """deploy/samples/signoffs/<role>.yaml, which README's walk applies as each lead: the role's approval and every
    pre-deployment item the default checklist asks that role to attest, nothing else (they stay in step with it)."""
    checklist = load()
    directory = ROOT / "deploy" / "samples" / "signoffs"
    roles = [a.role for a in checklist.spec.approvals]
    assert sorted(p.stem for p in directory.glob("*.yaml")) == sorted(roles)
    for role in roles:
        signoff = ReleaseSignoff.model_validate(yaml.safe_load((directory / f"{role}.yaml").read_text()))
        assert (signoff.spec.role, signoff.spec.decision, signoff.spec.release) == (
            role,
            "approve",
            "payments-api-3.2.0",
        )
        expected = [
            i.id
            for i in checklist.spec.items
            if i.phase == "pre" and i.check.attestation is not None and role in i.check.attestation.roles
        ]
        assert [e.id for e in signoff.spec.items] == expected, f"regenerate deploy/samples/signoffs/{role}.yaml"
