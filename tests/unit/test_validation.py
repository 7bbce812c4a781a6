"""Each semantic rule refuses with a message naming the object, the field and the fix."""

from __future__ import annotations

import datetime as dt
from typing import Any

from release_readiness.api import ReadinessChecklist, ReleaseReadiness, WaiverGrant
from release_readiness.validation import MAX_QUERY_CHARS, validate_checklist, validate_release, validate_release_unique
from release_readiness_dev.builders import CI_ONLY

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


def checklist(items: list[dict[str, Any]], approvals: list[dict[str, Any]] | None = None) -> ReadinessChecklist:
    return ReadinessChecklist.model_validate(
        {
            "metadata": {"name": "demo"},
            "spec": {
                "items": items,
                "approvals": approvals
                if approvals is not None
                else [{"role": "security-lead", "groups": ["security-leads"], "items": []}],
                "rules": {"maxWaiverDays": 14},
            },
        }
    )


def item(item_id: str = "a", **check: Any) -> dict[str, Any]:
    return {"id": item_id, "section": "S", "title": "T", "check": check or {"workload": "replicas"}}


def one(errors: list[str]) -> str:
    assert len(errors) == 1, errors
    return errors[0]


def test_a_valid_checklist_has_no_errors() -> None:
    assert validate_checklist(checklist([item("a"), item("b", attestation={"roles": ["security-lead"]})])) == []


def test_duplicate_item_ids() -> None:
    assert one(validate_checklist(checklist([item("a"), item("b"), item("a")]))) == (
        "ReadinessChecklist demo: spec.items[2].id 'a' duplicates spec.items[0].id; give every item a unique id"
    )


def test_approval_covering_an_unknown_item() -> None:
    approvals = [{"role": "security-lead", "groups": ["g"], "items": ["a", "nope"]}]
    assert one(validate_checklist(checklist([item("a")], approvals))) == (
        "ReadinessChecklist demo: spec.approvals[0].items[1] (security-lead): 'nope' is not an item of this "
        "checklist; add it to spec.items or remove it here"
    )


def test_approval_nobody_may_sign() -> None:
    msg = one(validate_checklist(checklist([item("a")], [{"role": "security-lead"}])))
    assert msg == (
        "ReadinessChecklist demo: spec.approvals[0] (security-lead): nobody may sign; list groups or "
        "users who hold the role"
    )


def test_unknown_workload_check_and_params() -> None:
    bad_params = one(validate_checklist(checklist([item("a", workload="replicas", params={"minimum": 3})])))
    assert bad_params.startswith("ReadinessChecklist demo: spec.items[0].check.params (a): minimum: Extra inputs")
    assert "(params allowed for replicas: min)" in bad_params
    unknown = checklist([item("a")])
    unknown.spec.items[0].check.workload = "fancyCheck"  # type: ignore[assignment]  # as if the schema allowed it
    msg = one(validate_checklist(unknown))
    assert msg.startswith(
        "ReadinessChecklist demo: spec.items[0].check.workload (a): unknown check 'fancyCheck'; use one of"
    )
    assert "resourceLimits" in msg


def test_two_check_kinds_and_stray_params() -> None:
    msg = one(validate_checklist(checklist([item("a", workload="replicas", attestation={"roles": ["security-lead"]})])))
    assert msg == (
        "ReadinessChecklist demo: spec.items[0].check (a) sets workload, attestation; set exactly one of "
        "workload, cel, evidence, prometheus, attestation"
    )
    evidence = {"recordedBy": CI_ONLY, "key": "k", "min": 1}
    stray = one(validate_checklist(checklist([item("a", evidence=evidence, params={"x": 1})])))
    assert "params are only for workload checks; remove them" in stray


def test_prometheus_unknown_placeholder_and_min_greater_than_max() -> None:
    errors = validate_checklist(
        checklist([item("p", prometheus={"query": 'up{job="$job", ns="$namespace"}', "min": 5, "max": 1})])
    )
    assert errors == [
        "ReadinessChecklist demo: spec.items[0].check.prometheus (p): min 5 is greater than max 1; "
        "swap them or fix one",
        "ReadinessChecklist demo: spec.items[0].check.prometheus.query (p): unknown placeholder $job at position 9 "
        'of query \'up{job="$job", ns="$namespace"}\'; use only $application, $candidateNamespace, $namespace, '
        "$productionNamespace, $version",
    ]


def test_every_unknown_placeholder_is_refused_with_its_position() -> None:
    """A misspelt name, a known name with a suffix, and the braced form are each refused where they stand."""
    query = 'x{a="$aplication", b="$namespaces", c="${stage}", d="${candidateNamespace}", e="$productionNamespace"}'
    errors = validate_checklist(checklist([item("p", prometheus={"query": query, "min": 1})]))
    assert len(errors) == 3, errors
    for error, text in zip(errors, ("$aplication", "$namespaces", "${stage}"), strict=True):
        assert f"(p): unknown placeholder {text} at position {query.index(text) + 1} of query" in error


def test_a_query_that_is_not_promql_is_refused_with_the_parsers_reason_and_where() -> None:
    """The parser gives no offset; the position is the unclosed or stray bracket, or the token it names, counted
    in the query as written (placeholders keep their length); none when the parser names nothing."""
    for query, reason, position in (
        ('sum(rate(x{ns="$namespace"}[5m])', "unclosed left parenthesis", 4),
        ('sum(rate(x{ns="$namespace", p=")"}[5m])', "unclosed left parenthesis", 4),
        ('rate(x{ns="$candidateNamespace"[5m])', "unexpected character inside braces: '['", 32),
        ('up{ns="$namespace"', "unexpected end of input inside braces", 3),
        ("sum by (a) (x) )", "unexpected right parenthesis ')'", 16),
        ("rate(x[5q])", "bad number or duration syntax: 5q", 8),
        ("rate(x)", "expected type matrix in call to function 'rate', got vector", 1),
        ('up{a="$version"} + nosuchfunction(x)', "unknown function with name 'nosuchfunction'", 20),
        ("up and and up", "invalid promql query", None),
    ):
        error = one(validate_checklist(checklist([item("p", prometheus={"query": query, "min": 1})])))
        at = f" at position {position}" if position else ""
        assert error == (
            f"ReadinessChecklist demo: spec.items[0].check.prometheus.query (p): not valid PromQL{at}: {reason} in "
            f"query {query!r}; fix the query"
        )


def test_a_for_window_must_be_a_duration_above_zero_and_at_most_a_month() -> None:
    for window in ("10m", "1h30m", "31d", "500ms"):
        assert validate_checklist(checklist([item("p", prometheus={"query": "up", "min": 1, "for": window})])) == []
    for window, reason in (
        ("0s", "is not a duration above zero; write one like 10m, 1h or 1h30m"),
        ("10x", "is not a duration above zero; write one like 10m, 1h or 1h30m"),
        ("32d", "is longer than 31d; shorten the window"),
        ("1y", "is longer than 31d; shorten the window"),
    ):
        error = one(validate_checklist(checklist([item("p", prometheus={"query": "up", "min": 1, "for": window})])))
        assert error == f"ReadinessChecklist demo: spec.items[0].check.prometheus.for (p): {window!r} {reason}"


def test_a_hostile_query_is_refused_before_the_parser() -> None:
    """Nesting deep enough to overflow the parser's stack (about 20000 parentheses crashes the process) is longer
    than the limit; at the limit the parser answers."""
    deep = "(" * 20000 + "up" + ")" * 20000
    error = one(validate_checklist(checklist([item("p", prometheus={"query": deep, "min": 1})])))
    assert f"(p): the query has {len(deep)} characters, more than {MAX_QUERY_CHARS}; shorten it" in error
    depth = (MAX_QUERY_CHARS - 2) // 2
    at_limit = "(" * depth + "up" + ")" * depth
    assert validate_checklist(checklist([item("p", prometheus={"query": at_limit, "min": 1})])) == []


def test_label_replace_groups_are_not_placeholders() -> None:
    query = 'label_replace(up{ns="$namespace"}, "a", "$1-${2}", "b", "(.*)-(.*)")'
    assert validate_checklist(checklist([item("p", prometheus={"query": query, "min": 1})])) == []


def test_prometheus_needs_a_threshold() -> None:
    msg = one(validate_checklist(checklist([item("p", prometheus={"query": "up"})])))
    assert (
        msg == "ReadinessChecklist demo: spec.items[0].check.prometheus (p): set min or max to compare the result with"
    )


def test_evidence_min_greater_than_max_and_equals_with_range() -> None:
    assert "min 90 is greater than max 80" in one(
        validate_checklist(checklist([item("e", evidence={"recordedBy": CI_ONLY, "key": "cov", "min": 90, "max": 80})]))
    )
    assert "use either equals or min/max, not both" in one(
        validate_checklist(
            checklist([item("e", evidence={"recordedBy": CI_ONLY, "key": "cov", "min": 1, "equals": "yes"})])
        )
    )


def test_attestation_by_an_unknown_role() -> None:
    msg = one(validate_checklist(checklist([item("a", attestation={"roles": ["ceo"]})])))
    assert msg == (
        "ReadinessChecklist demo: spec.items[0].check.attestation.roles[0] (a): role 'ceo' is not in "
        "spec.approvals; add it there or use one of security-lead"
    )


def release(window: dict[str, str] | None = None) -> ReleaseReadiness:
    spec: dict[str, Any] = {
        "application": "payments-api",
        "version": "3.2.0",
        "candidate": {"namespace": "payments-staging"},
        "checklist": "demo",
    }
    if window:
        spec["window"] = window
    return ReleaseReadiness.model_validate({"metadata": {"name": "r", "namespace": "payments-prod"}, "spec": spec})


def test_waiver_grants_name_known_roles_and_items() -> None:
    bad = checklist([item("a")])
    bad.spec.rules.waivers = [WaiverGrant(roles=["nope"], items=["a", "zzz"])]
    assert validate_checklist(bad) == [
        "ReadinessChecklist demo: spec.rules.waivers[0].roles[0]: role 'nope' is not in spec.approvals; add it there "
        "or use one of security-lead",
        "ReadinessChecklist demo: spec.rules.waivers[0].items[1]: 'zzz' is not an item of this checklist; fix or "
        "remove it",
    ]
    bad.spec.rules.waivers = [WaiverGrant(roles=["security-lead"])]
    assert validate_checklist(bad) == []


def test_window_end_before_start() -> None:
    bad = release({"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"})
    assert validate_release(bad, None, NOW) == [
        "ReleaseReadiness payments-prod/r: spec.window.end must be after spec.window.start"
    ]


def test_environment_fields_must_be_paths_inside_the_pod_template() -> None:
    bad = checklist([item("a")])
    bad.spec.rules.environment_fields = ["spec.containers[*].resources", "containers[0].image"]
    assert one(validate_checklist(bad)) == (
        "ReadinessChecklist demo: spec.rules.environmentFields[1]: 'containers[0].image': segment 'containers[0]' is "
        "not a field name optionally followed by [*] or ['key'] (e.g. spec.containers[*].env[*].value, "
        "metadata.annotations['example.com/key'])"
    )


def test_a_second_release_for_one_version_is_refused_naming_the_first() -> None:
    def rel(name: str, version: str = "3.2.0", namespace: str = "payments-prod") -> ReleaseReadiness:
        return ReleaseReadiness.model_validate(
            {
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"application": "payments-api", "version": version, "candidate": {"namespace": "stg"}},
            }
        )

    first = rel("payments-api-3-2-0")
    assert one(validate_release_unique(rel("easy"), [first])) == (
        "ReleaseReadiness payments-prod/easy: payments-api 3.2.0 is already covered in payments-prod by "
        "ReleaseReadiness payments-api-3-2-0; one release decides a version: use payments-api-3-2-0 (or delete it "
        "first)"
    )
    assert validate_release_unique(rel("next", version="3.3.0"), [first]) == []
    assert validate_release_unique(rel("other-ns", namespace="payments-eu"), [first]) == []
    assert validate_release_unique(first, [first]) == []
