"""`kubectl readiness audit`: the checklist's checks over manifests, offline (no API server)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import jsonschema
import pytest
import yaml

from release_readiness.audit import (
    DEFAULT_CHECKLIST_PATH,
    AuditReport,
    InputError,
    Outcome,
    audit,
    load_checklist,
    parse_documents,
)
from release_readiness.audit_output import render
from release_readiness.cli import main
from release_readiness_dev import builders

REPO = Path(__file__).resolve().parents[2]
BOOKSHOP = REPO / "tests" / "fixtures" / "manifests" / "bookshop"
SARIF_SCHEMA = REPO / "tests" / "fixtures" / "sarif-schema-2.1.0.json"
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


def bookshop_manifests() -> list[Any]:
    out = []
    for path in sorted(BOOKSHOP.glob("*.yaml")):
        out += parse_documents(path.read_text(), str(path))
    return out


@pytest.fixture(scope="module")
def report() -> AuditReport:
    checklist = load_checklist(DEFAULT_CHECKLIST_PATH.read_text(), "default")
    return audit(bookshop_manifests(), checklist, NOW, namespace="bookshop")


def outcomes(report: AuditReport, app: str) -> dict[str, tuple[Outcome, str]]:
    found = next(a for a in report.applications if a.application == app)
    return {r.item.id: (r.outcome, r.message) for r in found.items}


def run(capsys: pytest.CaptureFixture[str], *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        import sys

        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
    try:
        with pytest.raises(SystemExit) as exited:
            raise SystemExit(main(list(argv)))
    finally:
        if stdin is not None:
            sys.stdin = old
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out, out.err


# -- what the checks find on the bookshop ------------------------------------------------------------------------


def test_every_application_in_the_input_is_audited_with_its_version(report: AuditReport) -> None:
    found = {(a.namespace, a.application, a.version) for a in report.applications}
    assert found == {
        ("bookshop", "cart", "0.9.0"),
        ("bookshop", "payments", "3.2.0"),
        ("bookshop", "redis", "7.4.2"),
        ("bookshop", "storefront", "2.4.1"),
    }


def test_the_hurried_cart_has_the_findings_a_reviewer_would_raise(report: AuditReport) -> None:
    cart = outcomes(report, "cart")
    assert cart["resource-requests-and-limits-set"][0] == Outcome.FAILED
    assert (
        "container 'cart' has no memory limit (spec.template.spec.containers[0].resources.limits.memory)"
        in (cart["resource-requests-and-limits-set"][1])
    )
    assert cart["no-secrets-in-environment-variables"][0] == Outcome.FAILED
    assert "REDIS_PASSWORD" in cart["no-secrets-in-environment-variables"][1]
    assert cart["deployment-procedure-validated"] == (
        Outcome.FAILED,
        "deployment bookshop/cart: container 'cart' image 'registry.example.com/bookshop/cart:latest' is not pinned "
        "by digest (spec.template.spec.containers[0].image)",
    )
    assert cart["network-policies-in-place"][0] == Outcome.FAILED


def test_cross_resource_checks_use_the_objects_in_the_same_input(report: AuditReport) -> None:
    storefront = outcomes(report, "storefront")
    # NetworkPolicy, Ingress (TLS hosts, redirect, rate limit), namespace labels: all from the input.
    assert storefront["network-policies-in-place"] == (Outcome.PASSED, "pods are isolated by network policies")
    assert storefront["tls-https-enforced"] == (Outcome.PASSED, "every route to the pods is HTTPS-only")
    assert storefront["rate-limiting-implemented"][0] == Outcome.PASSED
    assert storefront["pod-security-policies-in-place"] == (
        Outcome.PASSED,
        "Pod Security Admission enforces 'restricted' on bookshop",
    )
    payments = outcomes(report, "payments")
    assert payments["all-secrets-in-secure-storage"][0] == Outcome.PASSED  # the ExternalSecret in payments.yaml
    assert payments["alert-rules-configured"] == (Outcome.PASSED, "2 alerting rule(s) for payments")
    assert payments["prometheus-scraping-configured"][0] == Outcome.PASSED  # ServiceMonitor -> Service -> pods


def test_what_only_the_cluster_knows_is_not_run_never_passed(report: AuditReport) -> None:
    storefront = outcomes(report, "storefront")
    # Rollouts, the controller's address, cert-manager's Secret, Prometheus, people and CI: not run.
    for item in (
        "readiness-probes-functional",
        "load-balancer-configured",
        "ssl-certificate-90-days",
        "vulnerability-scan-passed",
        "all-smoke-tests-passing",
        "unit-test-coverage",
        "no-code-review-concerns-raised",
    ):
        assert storefront[item][0] == Outcome.NOT_RUN, item
    assert "Secret storefront-tls is not in the input" in storefront["ssl-certificate-90-days"][1]
    assert "known only in the cluster" in storefront["readiness-probes-functional"][1]
    needs = {r.item.id: r.needs for a in report.applications if a.application == "storefront" for r in a.items}
    assert needs["unit-test-coverage"] == "CI evidence 'coverage-percent' (kubectl readiness evidence)"
    prometheus = [i for i in report.checklist.spec.items if i.check.kind == "prometheus"]
    assert prometheus
    assert all(needs[i.id] in ("Prometheus", "the rollout (a post-deployment item)") for i in prometheus)
    counts = {str(o): sum(1 for a in report.applications for r in a.items if r.outcome == o) for o in Outcome}
    assert counts["passed"] > 0
    assert counts["failed"] > 0
    assert report.exit_code == 1


def test_a_finding_points_at_the_manifest_and_line_of_the_workload(report: AuditReport) -> None:
    cart = next(a for a in report.applications if a.application == "cart")
    result = next(r for r in cart.items if r.item.id == "no-secrets-in-environment-variables")
    assert [(Path(m.source).name, m.line, m.ref) for m in result.manifests] == [
        ("cart.yaml", 2, "deployment bookshop/cart")
    ]


def test_a_clean_application_exits_zero_with_no_findings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checklist = builders.checklist(
        "templates",
        [
            {"id": "limits", "section": "Infra", "title": "Limits", "check": {"workload": "resourceLimits"}},
            {"id": "pinned", "section": "Infra", "title": "Pinned", "check": {"workload": "imageTagPinned"}},
            {"id": "rolled-out", "section": "Infra", "title": "Up", "check": {"workload": "rolloutHealthy"}},
        ],
    )
    (tmp_path / "checklist.yaml").write_text(yaml.safe_dump(checklist))
    code, out, err = run(
        capsys, "audit", "-f", str(BOOKSHOP / "payments.yaml"), "--checklist", str(tmp_path / "checklist.yaml")
    )
    assert (code, err) == (0, "")
    assert "PASSED: 0 finding(s), 2 passed, 1 not run" in out
    assert "rolled-out" in out  # not run: a rollout is known only in the cluster


# -- input handling --------------------------------------------------------------------------------------------------


def test_invalid_yaml_is_named_with_file_line_and_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: {a: b\n---\nkind: x\n")
    code, out, err = run(capsys, "audit", "-f", str(bad))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {bad}:6:1: invalid YAML: ")


def test_an_object_without_kind_or_name_is_named_with_its_line() -> None:
    with pytest.raises(InputError, match=r"^m.yaml:5: the object has no kind"):
        parse_documents("apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\n", "m.yaml")
    with pytest.raises(InputError, match=r"^m.yaml:1: Service has no metadata.name"):
        parse_documents("apiVersion: v1\nkind: Service\nmetadata: {generateName: a-}\n", "m.yaml")
    with pytest.raises(InputError, match=r"^m.yaml:1: a list is not a Kubernetes object"):
        parse_documents("- a\n- b\n", "m.yaml")


def test_a_document_that_aliases_expand_without_bound_is_refused() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    bomb = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: laughs}\ndata:\n" + "\n".join(f"  {x}" for x in lines)
    with pytest.raises(InputError, match=r"^bomb.yaml:1: the document expands to more than 1000000 YAML nodes"):
        parse_documents(bomb, "bomb.yaml")


def test_lists_are_expanded_and_unknown_kinds_skipped_with_a_note(capsys: pytest.CaptureFixture[str]) -> None:
    listed = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            yaml.safe_load((BOOKSHOP / "redis.yaml").read_text().split("---")[0]),
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "x"}},
        ],
    }
    code, out, _ = run(capsys, "audit", "-f", "-", "-o", "json", stdin=json.dumps(listed))
    data = json.loads(out)
    assert code == 1
    assert [a["application"] for a in data["applications"]] == ["redis"]
    assert data["notes"] == ["skipped 1 Widget (no check reads it): x/w (stdin:1)"]


def test_no_workload_in_the_input_is_an_error_not_a_pass(capsys: pytest.CaptureFixture[str]) -> None:
    service = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
    code, out, err = run(capsys, "audit", "-f", "-", stdin=service)
    assert (code, out) == (2, "")
    assert "no workload (Deployment, StatefulSet, DaemonSet) in the input: nothing to audit" in err


def test_unreadable_input_and_missing_arguments_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "audit", "-f", str(tmp_path / "missing.yaml"))
    assert (code, err) == (2, f"error: cannot read {tmp_path / 'missing.yaml'}: No such file or directory\n")
    code, _, err = run(capsys, "audit")
    assert (code, err) == (2, "error: audit needs manifests: -f FILE|DIR|- (repeatable) or -k DIR\n")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00")
    code, _, err = run(capsys, "audit", "-f", str(tmp_path / "binary.yaml"))
    assert code == 2
    assert "is not UTF-8 text" in err
    code, _, err = run(capsys, "audit", "-f", str(BOOKSHOP), "--checklist", "nowhere/checklist.yaml")
    assert (code, err) == (2, "error: --checklist nowhere/checklist.yaml: no such file (give a file or a "
                           "ReadinessChecklist's name)\n")  # fmt: skip


def test_a_directory_and_kustomize_give_the_same_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    _, by_dir, _ = run(capsys, "audit", "-f", str(BOOKSHOP), "-n", "bookshop", "-o", "json")
    code, by_kustomize, err = run(capsys, "audit", "-k", str(BOOKSHOP), "-o", "json")
    assert (code, err) == (1, "")

    def verdicts(text: str) -> dict[tuple[str, str], tuple[str, str]]:
        data = json.loads(text)
        apps = data["applications"]
        return {(a["application"], i["id"]): (i["outcome"], i["message"]) for a in apps for i in a["items"]}

    assert verdicts(by_dir) == verdicts(by_kustomize)


def test_a_failing_kustomize_is_an_error_naming_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    code, _, err = run(capsys, "audit", "-k", str(tmp_path))
    assert code == 2
    assert err.startswith(f"error: kubectl kustomize {tmp_path} failed: ")


# -- output formats ---------------------------------------------------------------------------------------------


def test_the_sarif_validates_against_the_sarif_2_1_0_schema(report: AuditReport) -> None:
    log = json.loads(render(report, "sarif"))
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.validate(log, schema)
    run_ = log["runs"][0]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert len(run_["results"]) == sum(1 for _ in report.findings)
    for result in run_["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] == "error"  # every item of the default checklist is required
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"].startswith("tests/fixtures/manifests/bookshop/")
        assert location["region"]["startLine"] >= 1
    # Items not run are no results: code scanning would show them as open alerts.
    assert "unit-test-coverage" not in rules


def test_the_sarif_schema_rejects_a_broken_log() -> None:
    schema = json.loads(SARIF_SCHEMA.read_text())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": "2.1.0", "runs": [{"results": []}]}, schema)  # a run needs its tool


def test_the_junit_parses_and_counts_failures_and_skips(report: AuditReport) -> None:
    root = SafeET.fromstring(render(report, "junit").encode())
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [
        "bookshop/cart 0.9.0",
        "bookshop/payments 3.2.0",
        "bookshop/redis 7.4.2",
        "bookshop/storefront 2.4.1",
    ]
    cases = root.findall("./testsuite/testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert int(root.get("tests") or 0) == len(cases) == 4 * len(report.checklist.spec.items)
    assert int(root.get("failures") or 0) == len(failures) == len(report.findings)
    assert int(root.get("skipped") or 0) == len(skipped)
    cart_secret = next(
        c for c in cases if c.get("classname") == "bookshop.cart" and c.get("name", "").startswith("no-secrets-in")
    )
    failure = cart_secret.find("failure")
    assert failure is not None
    assert "REDIS_PASSWORD" in (failure.get("message") or "")


def test_the_junit_carries_hostile_characters_as_valid_xml() -> None:
    manifest = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: evil, labels: {app.kubernetes.io/name: evil}}\n"
        'spec:\n  template:\n    spec:\n      containers: [{name: "a\\u0001b]]>&<", image: "x:latest"}]\n'
    )
    checklist = load_checklist(DEFAULT_CHECKLIST_PATH.read_text(), "default")
    hostile = audit(parse_documents(manifest, "evil.yaml"), checklist, NOW)
    root = SafeET.fromstring(render(hostile, "junit").encode())
    messages = [f.get("message") or "" for f in root.iter("failure")]
    assert any("a\ufffdb]]>&<" in m for m in messages)


def test_json_and_text_say_the_same(report: AuditReport) -> None:
    data = json.loads(render(report, "json"))
    assert data["summary"]["failed"] == len(report.findings)
    assert data["passed"] is False
    text = render(report, "text")
    assert text.splitlines()[-1].startswith(f"FAILED: {len(report.findings)} finding(s)")


def test_the_shipped_checklist_is_the_deployed_one() -> None:
    deployed = REPO / "deploy" / "checklists" / "pre-production.yaml"
    assert DEFAULT_CHECKLIST_PATH.read_text() == deployed.read_text(), (
        "operator/release_readiness/data/pre-production.yaml drifted from deploy/checklists/: run `make manifests`"
    )


def test_cel_checks_run_offline_through_the_same_dispatch(capsys: pytest.CaptureFixture[str]) -> None:
    """A check kind added to the operator's evaluation (CEL) runs in the audit without audit code of its own."""
    cel = REPO / "deploy" / "samples" / "cel-checklist.yaml"
    code, out, err = run(capsys, "audit", "-k", str(BOOKSHOP), "--checklist", str(cel), "-o", "json")
    assert (code, err) == (1, "")
    verdicts = {
        (a["application"], i["id"]): (i["outcome"], i["message"])
        for a in json.loads(out)["applications"]
        for i in a["items"]
    }
    assert verdicts[("cart", "service-named-ports")] == (
        "failed",
        "deployment bookshop/cart: Service cart has a port whose targetPort is not the name of a port a container "
        "declares (spec.ports[].targetPort, spec.template.spec.containers[].ports[].name)",
    )
    assert verdicts[("payments", "service-named-ports")][0] == "passed"
    assert verdicts[("storefront", "container-timezone")][0] == "failed"


def test_yaml_nested_without_bound_is_an_error_not_a_crash() -> None:
    with pytest.raises(InputError, match=r"^deep.yaml:1:\d+: invalid YAML: .*nesting depth"):
        parse_documents("a: " + "[" * 100_000 + "]" * 100_000, "deep.yaml")
