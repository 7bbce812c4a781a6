"""`kubectl readiness evidence`: CI reports read into figures and mapped onto a checklist's evidence keys (pure)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from release_readiness.api import ReadinessChecklist
from release_readiness.api.signoff import SignoffItem
from release_readiness.evidence import (
    PARSERS,
    ReportError,
    ci_run_url,
    evidence_items,
    format_value,
    parse_mapping,
    read_metrics,
)

REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "reports"


def metrics(fmt: str, name: str) -> dict[str, float]:
    return read_metrics(fmt, (REPORTS / name).read_bytes(), name).metrics


def test_junit_counts_test_cases_flaky_reruns_and_the_pass_rate_of_those_run() -> None:
    found = metrics("junit", "junit.xml")
    assert found == {
        "tests": 8,
        "failures": 0,
        "errors": 0,
        "skipped": 1,
        "flaky": 1,  # test_expired_session passed on a rerun
        "failed": 0,
        "passed": 7,
        "pass-rate-percent": 100.0,
    }
    failed = metrics("junit", "junit-failed.xml")
    assert (failed["failed"], failed["passed"], failed["pass-rate-percent"]) == (2, 2, 50.0)


def test_coverage_in_three_formats() -> None:
    assert metrics("cobertura", "cobertura.xml")["line-percent"] == 1080 / 1250 * 100
    assert metrics("cobertura", "cobertura.xml")["branch-percent"] == 301 / 380 * 100
    coverage_py = metrics("coverage-py", "coverage.json")
    assert coverage_py["line-percent"] == 1080 / 1250 * 100
    assert coverage_py["percent"] == 85.2  # coverage.py's own figure mixes lines and branches
    lcov = metrics("lcov", "lcov.info")
    assert (lcov["lines-found"], lcov["lines-hit"], lcov["line-percent"]) == (7, 4, 4 / 7 * 100)
    assert lcov["branch-percent"] == 100.0
    assert lcov["function-percent"] == 2 / 3 * 100


def test_sarif_findings_by_level_without_suppressed_ones() -> None:
    found = metrics("sarif", "gitleaks.sarif")
    # The AWS token takes its rule's default level (error); the suppressed placeholder is not a finding.
    assert found == {"error": 1, "warning": 0, "note": 0, "none": 0, "total": 1, "suppressed": 1}
    assert metrics("sarif", "clean.sarif")["total"] == 0


def test_trivy_vulnerabilities_by_severity_counted_once_per_target() -> None:
    found = metrics("trivy", "trivy.json")
    assert found == {
        "critical": 1,
        "high": 1,  # listed twice for the same package and version: one vulnerability
        "medium": 1,
        "low": 1,
        "unknown": 0,
        "total": 4,
        "secrets": 1,
        "misconfigurations": 0,
    }


@pytest.mark.parametrize("name", ["k6-summary.json", "k6-export.json"])
def test_k6_summaries_of_both_shapes(name: str) -> None:
    found = metrics("k6", name)
    want = (
        {"p95-latency-ms": 212.64, "request-rate": 150.03, "error-rate-percent": 0.21}
        if name == "k6-summary.json"
        else {"p95-latency-ms": 240.5, "request-rate": 100.0, "error-rate-percent": 0.04}
    )
    for key, value in want.items():
        assert found[key] == pytest.approx(value)


# -- malformed and hostile reports --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "data", "message"),
    [
        ("junit", b"<testsuite><testcase>", "not well-formed XML"),
        ("junit", b"<coverage/>", "a JUnit report's root is <testsuites> or <testsuite>, not <coverage>"),
        ("cobertura", b'<coverage line-rate="1.7"/>', "<coverage line-rate> is 1.7, a rate is between 0 and 1"),
        ("cobertura", b"<coverage/>", "<coverage> has neither lines-covered/lines-valid nor line-rate"),
        ("cobertura", b'<coverage lines-covered="9" lines-valid="3"/>', "9 of 3 is more than all of them"),
        ("coverage-py", b"[1, 2]", "is a JSON object, this is a list"),
        ("coverage-py", b'{"totals": {"covered_lines": "NaN", "num_statements": 3}}', "not a finite"),
        ("coverage-py", b"{}", "totals.covered_lines and totals.num_statements"),
        ("lcov", b"SF:a.ts\nLF:ten\nend_of_record\n", "r.txt:2: LF:ten is not a count"),
        ("lcov", b"this is not lcov\n", "r.txt:1: 'this is not lcov' is not an lcov line"),
        ("lcov", b"TN:\n", "no SF: ... end_of_record section"),
        ("sarif", b'{"version": "2.0.0", "runs": []}', "a SARIF log has version 2.1.0"),
        ("sarif", b'{"version": "2.1.0", "runs": [{"results": [{"level": "fatal"}]}]}', "'fatal' is not a SARIF"),
        ("trivy", b'{"Results": []}', "a Trivy JSON report has SchemaVersion 2"),
        ("trivy", b'{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{}]}]}', "has no Severity"),
        ("k6", b'{"metrics": {}}', "a k6 summary has metrics.http_req_duration"),
        ("k6", b"\xff\xfe", "not JSON"),
    ],
)
def test_a_malformed_report_is_an_error_naming_the_file(fmt: str, data: bytes, message: str) -> None:
    with pytest.raises(ReportError) as err:
        read_metrics(fmt, data, "r.txt")
    assert str(err.value).startswith("r.txt")
    assert message in str(err.value)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuite name="&lol3;"><testcase name="a"/></testsuite>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE coverage [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<coverage line-rate="0.9">&secret;</coverage>"""
BARE_DTD = b"""<?xml version="1.0"?><!DOCTYPE testsuite SYSTEM "http://example.com/junit.dtd"><testsuite/>"""


@pytest.mark.parametrize(
    ("fmt", "data"), [("junit", BILLION_LAUGHS), ("cobertura", EXTERNAL_ENTITY), ("junit", BARE_DTD)]
)
def test_xml_with_a_dtd_or_entities_is_refused_unexpanded(fmt: str, data: bytes) -> None:
    with pytest.raises(ReportError, match=r"^r.xml: refused: .* with a DTD or entities \(DTDForbidden\)$"):
        read_metrics(fmt, data, "r.xml")


def test_a_report_that_counts_nothing_gives_no_rate() -> None:
    empty = read_metrics("junit", b"<testsuites/>", "empty.xml")
    assert "pass-rate-percent" not in empty.metrics  # never 100% of nothing
    everything_skipped = read_metrics("junit", b"<testsuite><testcase><skipped/></testcase></testsuite>", "s.xml")
    assert "pass-rate-percent" not in everything_skipped.metrics


def test_the_digest_is_the_sha256_of_the_bytes_read() -> None:
    data = (REPORTS / "junit.xml").read_bytes()
    assert read_metrics("junit", data, "junit.xml").digest == "sha256:" + hashlib.sha256(data).hexdigest()


# -- the mapping ----------------------------------------------------------------------------------------------------


def checklist() -> ReadinessChecklist:
    ci = {"groups": ["system:serviceaccounts:ci"]}
    items = [
        ("unit-test-coverage", "coverage-percent", {"min": 80}),
        ("all-unit-tests-passing", "unit-test-pass-rate-percent", {"min": 100}),
        ("no-flaky-tests", "flaky-tests", {"max": 0}),
        ("on-call-rotation", "oncall-members", {"min": 2}),
        ("on-call-rotation-again", "oncall-members", {"min": 2}),
    ]
    return ReadinessChecklist.model_validate(
        {
            "metadata": {"name": "ci"},
            "spec": {
                "items": [
                    {"id": i, "section": "S", "title": i, "check": {"evidence": {"key": k, "recordedBy": ci, **b}}}
                    for i, k, b in items
                ]
            },
        }
    )


def test_every_item_with_a_mapped_key_gets_the_value_and_its_source() -> None:
    junit = read_metrics("junit", (REPORTS / "junit.xml").read_bytes(), "reports/junit.xml")
    cobertura = read_metrics("cobertura", (REPORTS / "cobertura.xml").read_bytes(), "coverage.xml")
    mappings = [
        parse_mapping("coverage-percent=cobertura:line-percent:coverage.xml"),
        parse_mapping("unit-test-pass-rate-percent=junit:pass-rate-percent:reports/junit.xml"),
        parse_mapping("flaky-tests=junit:flaky:reports/junit.xml"),
    ]
    reports = {("junit", "reports/junit.xml"): junit, ("cobertura", "coverage.xml"): cobertura}
    items = evidence_items(checklist(), mappings, reports, "https://ci.example.com/runs/42")
    by_id = {i["id"]: i for i in items}
    assert by_id["unit-test-coverage"]["value"] == "86.4"
    assert by_id["all-unit-tests-passing"]["value"] == "100"
    assert by_id["no-flaky-tests"]["value"] == "1"
    assert by_id["unit-test-coverage"]["source"] == {
        "format": "cobertura",
        "file": "coverage.xml",
        "digest": cobertura.digest,
        "metric": "line-percent",
        "run": "https://ci.example.com/runs/42",
    }
    assert by_id["unit-test-coverage"]["evidence"] == "https://ci.example.com/runs/42"
    for item in items:
        SignoffItem.model_validate(item)  # what the API server's schema (generated from it) accepts


def test_one_key_fills_every_item_that_uses_it() -> None:
    lcov = read_metrics("lcov", (REPORTS / "lcov.info").read_bytes(), "lcov.info")
    items = evidence_items(
        checklist(), [parse_mapping("oncall-members=lcov:lines-found:lcov.info")], {("lcov", "lcov.info"): lcov}, None
    )
    assert [(i["id"], i["value"]) for i in items] == [("on-call-rotation", "7"), ("on-call-rotation-again", "7")]
    assert "evidence" not in items[0]
    assert "run" not in items[0]["source"]


def test_mapping_errors_name_the_flag_and_the_fix() -> None:
    with pytest.raises(ReportError, match=r"is not KEY=FORMAT:METRIC:FILE \(e.g. --from coverage-percent="):
        parse_mapping("coverage-percent=coverage.xml")
    with pytest.raises(ReportError, match=r"unknown format 'jacoco'; formats: junit, cobertura"):
        parse_mapping("coverage-percent=jacoco:line-percent:jacoco.xml")
    with pytest.raises(ReportError, match=r"a junit report has no 'coverage'; it has tests, passed"):
        parse_mapping("coverage-percent=junit:coverage:junit.xml")
    junit = read_metrics("junit", b"<testsuites/>", "junit.xml")
    with pytest.raises(ReportError, match=r"checklist ci has no evidence item with key 'coverage' \(its keys: "):
        evidence_items(
            checklist(), [parse_mapping("coverage=junit:tests:junit.xml")], {("junit", "junit.xml"): junit}, None
        )
    with pytest.raises(ReportError, match=r"junit.xml gives no pass-rate-percent: the report counts nothing"):
        evidence_items(
            checklist(),
            [parse_mapping("unit-test-pass-rate-percent=junit:pass-rate-percent:junit.xml")],
            {("junit", "junit.xml"): junit},
            None,
        )
    twice = [parse_mapping("flaky-tests=junit:flaky:junit.xml"), parse_mapping("flaky-tests=junit:tests:junit.xml")]
    with pytest.raises(ReportError, match=r"item no-flaky-tests \(key flaky-tests\) is mapped twice"):
        evidence_items(checklist(), twice, {("junit", "junit.xml"): junit}, None)


def test_values_are_exact_never_rounded_towards_a_bound() -> None:
    assert format_value(79.996) == "79.996"
    assert format_value(100.0) == "100"
    assert format_value(2 / 3 * 100) == "66.66666666666666"
    assert float(format_value(1080 / 1250 * 100)) == 1080 / 1250 * 100


def test_the_ci_run_url_comes_from_the_ci_variables() -> None:
    github = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "bookshop/cart",
        "GITHUB_RUN_ID": "123",
        "GITHUB_RUN_ATTEMPT": "2",
    }
    assert ci_run_url(github) == "https://github.com/bookshop/cart/actions/runs/123/attempts/2"
    gitlab = {"GITLAB_CI": "true", "CI_JOB_URL": "https://gitlab.example.com/bookshop/cart/-/jobs/9"}
    assert ci_run_url(gitlab) == "https://gitlab.example.com/bookshop/cart/-/jobs/9"
    assert ci_run_url({}) is None


def test_every_format_of_the_api_has_a_parser() -> None:
    from release_readiness.api.signoff import REPORT_FORMATS

    assert tuple(PARSERS) == REPORT_FORMATS


def test_json_nested_without_bound_is_an_error_not_a_crash() -> None:
    with pytest.raises(ReportError, match=r"^deep.sarif: JSON nested too deeply to be a SARIF log$"):
        read_metrics("sarif", b"[" * 100_000 + b"]" * 100_000, "deep.sarif")


def test_a_report_over_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import release_readiness.evidence as evidence

    monkeypatch.setattr(evidence, "MAX_REPORT_BYTES", 1024)
    with pytest.raises(ReportError, match=r"^huge.xml: larger than the 1024 bytes a report may have$"):
        read_metrics("junit", b"<testsuite>" + b" " * 2048 + b"</testsuite>", "huge.xml")


def test_a_dry_run_against_a_checklist_file_needs_no_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from release_readiness.cli import main

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))  # no cluster to be found
    (tmp_path / "checklist.yaml").write_text(
        yaml.safe_dump({"apiVersion": "readiness.dev/v1alpha1", "kind": "ReadinessChecklist", **checklist().to_dict()})
    )
    mapping = f"coverage-percent=cobertura:line-percent:{REPORTS / 'cobertura.xml'}"
    argv = ["evidence", "cart-0.9.0", "--from", mapping, "--checklist", str(tmp_path / "checklist.yaml")]
    assert main([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "  unit-test-coverage = 86.4  (line-percent of cobertura " in out
    assert out.rstrip().endswith("dry run: 1 item(s) not signed")
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "error: --checklist FILE is for --dry-run: signing maps onto the release's own checklist\n"
    )
