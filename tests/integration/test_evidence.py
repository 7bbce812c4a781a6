"""`kubectl readiness evidence` against the real API server: CI's identity records evidence from its reports, with
each report's digest and the run; a malformed report signs nothing; anyone else's evidence is refused."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from release_readiness_dev import builders
from release_readiness_dev.builders import CI_ONLY
from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import Kubectl, eventually
from tests.integration.test_cli import plugin

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
LABELS = {"app.kubernetes.io/name": "cart", "app.kubernetes.io/version": "0.9.0"}
RUN = "https://ci.example.com/bookshop/cart/pipelines/4711"
CI_USER = "system:serviceaccount:ci:ci-bot"


def evidence_item(item_id: str, key: str, **bounds: float) -> dict[str, Any]:
    return {
        "id": item_id,
        "section": "CI",
        "title": item_id,
        "check": {"evidence": {"key": key, "recordedBy": CI_ONLY, **bounds}},
    }


CHECKLIST_ITEMS = [
    {"id": "limits", "section": "Infra", "title": "Limits", "check": {"workload": "resourceLimits"}},
    evidence_item("unit-test-coverage", "coverage-percent", min=80),
    evidence_item("all-unit-tests-passing", "unit-test-pass-rate-percent", min=100),
    evidence_item("integration-tests-passing", "integration-pass-rate-percent", min=100),
    evidence_item("no-hardcoded-secrets", "secret-scan-findings", max=0),
    evidence_item("image-critical-vulnerabilities", "critical-vulnerabilities", max=0),
    evidence_item("p95-latency", "p95-latency-ms", max=300),
]


@dataclass(frozen=True)
class Setup:
    stg: str
    prod: str
    checklist: str
    ci: Path
    erin: Path


def release_setup(kubectl: Kubectl, cluster: LocalCluster, items: list[dict[str, Any]]) -> Setup:
    """A candidate in staging, a checklist of `items` (no approvals) and a release in production; CI may read it."""
    suffix = uuid.uuid4().hex[:6]
    stg, prod, checklist = f"stg-{suffix}", f"prod-{suffix}", f"ci-{suffix}"
    kubectl.run("create", "namespace", stg)
    kubectl.run("create", "namespace", prod)
    objects = [
        builders.checklist(checklist, items),
        builders.deployment(
            "cart",
            stg,
            labels=LABELS,
            containers=[
                builders.container(
                    "cart",
                    "registry.example.com/bookshop/cart:0.9.0",
                    resources={"limits": {"cpu": "1", "memory": "256Mi"}},
                )
            ],
            replicas=None,
        ),
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    kubectl.apply(json.dumps(builders.release("cart-0.9.0", prod, "cart", "0.9.0", checklist, stg)))
    kubectl.run(
        "create", "clusterrole", f"read-{checklist}", "--verb=get", "--resource=readinesschecklists.readiness.dev"
    )
    kubectl.run(
        "create", "clusterrolebinding", f"read-{checklist}", f"--clusterrole=read-{checklist}",
        "--group=system:serviceaccounts:ci", "--group=eng-leads",
    )  # fmt: skip
    return Setup(
        stg=stg,
        prod=prod,
        checklist=checklist,
        ci=cluster.kubeconfig_for(CI_USER, ("system:serviceaccounts", "system:serviceaccounts:ci")),
        erin=cluster.kubeconfig_for("erin", ("eng-leads",)),
    )


@pytest.fixture(scope="module")
def setup(kubectl: Kubectl, cluster: LocalCluster) -> Setup:
    return release_setup(kubectl, cluster, CHECKLIST_ITEMS)


def signoffs(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return list(json.loads(kubectl.run("get", "releasesignoffs", "-n", namespace, "-o", "json").stdout)["items"])


def items_of(kubectl: Kubectl, namespace: str) -> dict[str, tuple[str, str]]:
    raw = json.loads(kubectl.run("get", "releasereadiness", "cart-0.9.0", "-n", namespace, "-o", "json").stdout)
    return {i["id"]: (i["state"], i["message"]) for i in raw.get("status", {}).get("items", [])}


FROM = [
    "--from", f"coverage-percent=cobertura:line-percent:{REPORTS / 'cobertura.xml'}",
    "--from", f"unit-test-pass-rate-percent=junit:pass-rate-percent:{REPORTS / 'junit.xml'}",
    "--from", f"integration-pass-rate-percent=junit:pass-rate-percent:{REPORTS / 'junit-failed.xml'}",
    "--from", f"secret-scan-findings=sarif:total:{REPORTS / 'gitleaks.sarif'}",
    "--from", f"critical-vulnerabilities=trivy:critical:{REPORTS / 'trivy.json'}",
    "--from", f"p95-latency-ms=k6:p95-latency-ms:{REPORTS / 'k6-summary.json'}",
]  # fmt: skip


def test_a_malformed_report_signs_nothing(setup: Setup, kubectl: Kubectl, tmp_path: Path) -> None:
    eventually(lambda: items_of(kubectl, setup.prod), timeout=60, what="the release evaluated")
    before = signoffs(kubectl, setup.prod)
    broken = tmp_path / "coverage.xml"
    broken.write_text('<coverage line-rate="0.9"><packages>')  # cut off mid-write
    out = plugin(
        setup.ci, "-n", setup.prod, "evidence", "cart-0.9.0", *FROM,
        "--from", f"coverage-percent=cobertura:line-percent:{broken}", "--run-url", RUN,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {broken}: not well-formed XML (")
    assert out.stderr.rstrip().endswith("; nothing signed")
    assert signoffs(kubectl, setup.prod) == before


def test_evidence_from_someone_else_is_refused_and_nothing_counts(setup: Setup, kubectl: Kubectl) -> None:
    before = signoffs(kubectl, setup.prod)
    out = plugin(setup.erin, "-n", setup.prod, "evidence", "cart-0.9.0", *FROM[:2], "--run-url", RUN)
    assert out.returncode == 2
    assert out.stderr.startswith("error: refused by validate-signoff.readiness.dev: ")
    assert "system:serviceaccounts:ci" in out.stderr
    assert signoffs(kubectl, setup.prod) == before


def test_ci_records_every_mapped_key_with_the_reports_digest_and_run(setup: Setup, kubectl: Kubectl) -> None:
    out = plugin(setup.ci, "-n", setup.prod, "evidence", "cart-0.9.0", *FROM, "--run-url", RUN)
    assert out.returncode == 0, out.stderr
    assert f"{CI_USER} recorded 6 evidence item(s) for candidate sha256:" in out.stdout

    (signoff,) = [s for s in signoffs(kubectl, setup.prod) if s["spec"]["signer"]["username"] == CI_USER]
    assert signoff["spec"]["signer"]["username"] == CI_USER
    by_id = {i["id"]: i for i in signoff["spec"]["items"]}
    assert {i: by_id[i]["value"] for i in by_id} == {
        "unit-test-coverage": "86.4",
        "all-unit-tests-passing": "100",
        "integration-tests-passing": "50",
        "no-hardcoded-secrets": "1",
        "image-critical-vulnerabilities": "1",
        "p95-latency": "212.64",
    }
    digest = "sha256:" + hashlib.sha256((REPORTS / "cobertura.xml").read_bytes()).hexdigest()
    assert by_id["unit-test-coverage"]["source"] == {
        "format": "cobertura",
        "file": str(REPORTS / "cobertura.xml"),
        "digest": digest,
        "metric": "line-percent",
        "run": RUN,
    }
    assert by_id["unit-test-coverage"]["evidence"] == RUN

    want = {
        "unit-test-coverage": ("Passed", f"unit-test-coverage: 86.4 >= 80 (attested by {CI_USER})"),
        "all-unit-tests-passing": ("Passed", f"all-unit-tests-passing: 100 >= 100 (attested by {CI_USER})"),
        "integration-tests-passing": ("Failed", f"integration-tests-passing: 50 < 100 (attested by {CI_USER})"),
        "no-hardcoded-secrets": ("Failed", f"no-hardcoded-secrets: 1 > 0 (attested by {CI_USER})"),
        "image-critical-vulnerabilities": ("Failed", f"image-critical-vulnerabilities: 1 > 0 (attested by {CI_USER})"),
        "p95-latency": ("Passed", f"p95-latency: 212.64 <= 300 (attested by {CI_USER})"),
    }

    def judged() -> bool:
        found = items_of(kubectl, setup.prod)
        return all(found.get(k) == v for k, v in want.items())

    eventually(judged, timeout=90, interval=0.5, what=f"the evidence judged: {want}")


def test_a_dry_run_prints_the_values_and_signs_nothing(setup: Setup, kubectl: Kubectl) -> None:
    before = len(signoffs(kubectl, setup.prod))
    out = plugin(setup.ci, "-n", setup.prod, "evidence", "cart-0.9.0", *FROM[:2], "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "  unit-test-coverage = 86.4  (line-percent of cobertura " in out.stdout
    assert "dry run: 1 item(s) not signed" in out.stdout
    assert len(signoffs(kubectl, setup.prod)) == before
