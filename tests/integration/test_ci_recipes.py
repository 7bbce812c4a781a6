"""docs/ci.md's GitHub Actions workflow and GitLab CI job, run as written: their readiness commands, with bash, on
sample reports, as CI's identity against the real API server and operator (audit, evidence, then wait for Ready)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import jsonschema
import pytest
import yaml

from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import BIN, Kubectl, eventually
from tests.integration.test_evidence import CI_USER, Setup, evidence_item, release_setup

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "ci.md"
REPORTS = REPO / "tests" / "fixtures" / "reports"
SARIF_SCHEMA = REPO / "tests" / "fixtures" / "sarif-schema-2.1.0.json"
RECIPE_ITEMS = [
    {"id": "limits", "section": "Infra", "title": "Limits", "check": {"workload": "resourceLimits"}},
    evidence_item("unit-test-coverage", "coverage-percent", min=80),
    evidence_item("all-unit-tests-passing", "unit-test-pass-rate-percent", min=100),
    evidence_item("no-flaky-tests", "flaky-tests", max=0),
    evidence_item("no-hardcoded-secrets", "secret-scan-findings", max=0),
]
"""The keys the recipes map, with the default checklist's bounds (and no approvals: evidence alone makes it Ready)."""


def recipe(name: str) -> dict[str, Any]:
    """The YAML block after `<!-- recipe: NAME -->` in docs/ci.md."""
    match = re.search(rf"<!-- recipe: {name} -->\n```yaml\n(.*?)\n```", DOC.read_text(), re.S)
    assert match, f"docs/ci.md has no recipe {name}"
    loaded = yaml.safe_load(match.group(1))
    assert isinstance(loaded, dict)
    return loaded


def workdir(tmp_path: Path, setup: Setup, kubectl: Kubectl, limits: bool = True) -> Path:
    """A checkout as CI sees it after the test and scan jobs: the manifests, and their reports in reports/."""
    reports = tmp_path / "reports"
    reports.mkdir()
    # The tests' and the secret scan's reports, clean: every figure within the checklist's bounds.
    junit = (REPORTS / "junit.xml").read_text()
    junit = re.sub(r"\s*<rerunFailure .*?</rerunFailure>", "", junit, flags=re.S)
    (reports / "junit.xml").write_text(junit)
    shutil.copy(REPORTS / "cobertura.xml", reports / "coverage.xml")
    shutil.copy(REPORTS / "clean.sarif", reports / "gitleaks.sarif")
    manifests = tmp_path / "deploy" / "production"
    manifests.mkdir(parents=True)
    # What was deployed to staging is what will be deployed.
    deployment = json.loads(kubectl.run("get", "deployment", "cart", "-n", setup.stg, "-o", "json").stdout)
    for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "annotations"):
        deployment["metadata"].pop(key, None)
    deployment["metadata"].pop("namespace")
    deployment.pop("status", None)
    if not limits:
        del deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"]
    (manifests / "cart.yaml").write_text(yaml.safe_dump(deployment))
    (manifests / "kustomization.yaml").write_text("resources: [cart.yaml]\n")
    return tmp_path


@pytest.fixture
def ready_setup(kubectl: Kubectl, cluster: LocalCluster) -> Setup:
    setup = release_setup(kubectl, cluster, RECIPE_ITEMS)

    def inspected() -> bool:
        raw = json.loads(kubectl.run("get", "releasereadiness", "cart-0.9.0", "-n", setup.prod, "-o", "json").stdout)
        return bool(((raw.get("status") or {}).get("candidate") or {}).get("fingerprint"))

    # CI records evidence once the candidate it tested runs in staging and the operator inspected it.
    eventually(inspected, timeout=60, interval=0.5, what="the candidate inspected")
    return setup


def ci_env(setup: Setup, variables: dict[str, Any], **extra: str) -> dict[str, str]:
    """The recipe's variables for this test's release, CI's kubeconfig and PATH (kubectl and the plugin)."""
    mine = {
        "RELEASE": "cart-0.9.0",
        "NAMESPACE": setup.prod,
        "READINESS_CHECKLIST": setup.checklist,
        "MANIFESTS": "deploy/production",
    }
    assert set(variables) == set(mine), "the recipe's variables changed: update this test"
    path = f"{BIN}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return {**os.environ, **mine, "KUBECONFIG": str(setup.ci), "PATH": path, "READINESS_TIMEOUT": "120s", **extra}


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert "${{" not in script, "a readiness command uses a GitHub expression: the test cannot run it as written"
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def check_outputs(setup: Setup, kubectl: Kubectl, cwd: Path, run_url: str) -> None:
    jsonschema.validate(json.loads((cwd / "readiness.sarif").read_text()), json.loads(SARIF_SCHEMA.read_text()))
    (signoff,) = json.loads(kubectl.run("get", "releasesignoffs", "-n", setup.prod, "-o", "json").stdout)["items"]
    assert signoff["spec"]["signer"]["username"] == CI_USER
    assert {i["id"]: i["value"] for i in signoff["spec"]["items"]} == {
        "unit-test-coverage": "86.4",
        "all-unit-tests-passing": "100",
        "no-flaky-tests": "0",
        "no-hardcoded-secrets": "0",
    }
    assert {i["source"]["run"] for i in signoff["spec"]["items"]} == {run_url}


def test_the_github_actions_workflow(ready_setup: Setup, kubectl: Kubectl, tmp_path: Path) -> None:
    workflow = recipe("github")
    steps = workflow["jobs"]["readiness"]["steps"]
    ids = [s.get("id") for s in steps]
    assert ids.index("audit") < ids.index("evidence") < ids.index("gate")
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("github/codeql-action/upload-sarif"))
    assert upload["with"]["sarif_file"] == "readiness.sarif"
    assert "always()" in upload["if"]

    cwd = workdir(tmp_path, ready_setup, kubectl)
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "bookshop/cart",
        "GITHUB_RUN_ID": "1234567",
        "GITHUB_RUN_ATTEMPT": "1",
    }
    env = ci_env(ready_setup, workflow["env"], **github)
    outputs = {}
    for step in steps:
        if step.get("id") in ("audit", "evidence", "gate"):
            proc = bash(step["run"], cwd, env)
            assert proc.returncode == 0, f"step {step['id']} failed:\n{proc.stdout}\n{proc.stderr}"
            outputs[step["id"]] = proc.stdout
    assert "recorded 4 evidence item(s) for candidate sha256:" in outputs["evidence"]
    assert outputs["gate"].rstrip().endswith("cart-0.9.0 is Ready")
    check_outputs(ready_setup, kubectl, cwd, "https://github.com/bookshop/cart/actions/runs/1234567/attempts/1")


def test_the_gitlab_ci_job(ready_setup: Setup, kubectl: Kubectl, tmp_path: Path) -> None:
    job = recipe("gitlab")["readiness"]
    assert job["artifacts"]["reports"]["junit"] == "readiness-junit.xml"
    assert "readiness.sarif" in job["artifacts"]["paths"]

    cwd = workdir(tmp_path, ready_setup, kubectl)
    url = "https://gitlab.example.com/bookshop/cart/-/jobs/991"
    env = ci_env(ready_setup, job["variables"], GITLAB_CI="true", CI_JOB_URL=url)
    proc = bash("\n".join(job["script"]), cwd, env)
    assert proc.returncode == 0, f"the job failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.rstrip().endswith("cart-0.9.0 is Ready")
    suites = SafeET.fromstring((cwd / "readiness-junit.xml").read_bytes())
    assert suites.get("failures") == "0"
    assert [s.get("name") for s in suites.findall("testsuite")] == [f"{ready_setup.prod}/cart 0.9.0"]
    check_outputs(ready_setup, kubectl, cwd, url)


def test_a_finding_fails_the_job_before_anything_is_signed(
    ready_setup: Setup, kubectl: Kubectl, tmp_path: Path
) -> None:
    job = recipe("gitlab")["readiness"]
    cwd = workdir(tmp_path, ready_setup, kubectl, limits=False)
    env = ci_env(ready_setup, job["variables"], GITLAB_CI="true", CI_JOB_URL="https://gitlab.example.com/j/1")
    proc = bash("\n".join(job["script"]), cwd, env)
    assert proc.returncode == 1
    failures = SafeET.fromstring((cwd / "readiness-junit.xml").read_bytes()).findall(".//failure")
    assert len(failures) == 1
    assert "has no cpu limit" in (failures[0].get("message") or "")
    assert json.loads(kubectl.run("get", "releasesignoffs", "-n", ready_setup.prod, "-o", "json").stdout)["items"] == []
