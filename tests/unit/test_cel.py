"""CEL checks: the worked examples of deploy/samples/cel-checklist.yaml pass and fail naming workload and container;
bad expressions are refused with their position; errors, the cost limit and the time limit never pass an item."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from release_readiness.api import ReadinessChecklist
from release_readiness.api.checklist import CelCheck
from release_readiness.checks.cel import (
    EVALUATION_SECONDS,
    ITEM_SECONDS,
    MAX_ITERATIONS,
    compiled,
    expression_errors,
    run_cel_check,
)
from release_readiness.validation import MAX_CEL_EXPRESSIONS, validate_checklist
from release_readiness_dev.builders import good_container, obj, snapshot, stored_deployment

SAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "samples" / "cel-checklist.yaml"


def sample() -> ReadinessChecklist:
    return ReadinessChecklist.model_validate(yaml.safe_load(SAMPLE.read_text()))


def rules_of(item_id: str) -> CelCheck:
    found = sample().item(item_id)
    assert found is not None
    assert found.check.cel is not None
    return found.check.cel


def cel(*rules: dict[str, Any]) -> CelCheck:
    return CelCheck.model_validate({"rules": list(rules)})


def with_env(name: str, *env: str, ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    c = good_container(name)
    c["env"] = [{"name": e, "value": "x"} for e in env]
    if ports is not None:
        c["ports"] = ports
    return c


def service(target: Any, name: str = "payments-api") -> dict[str, Any]:
    spec = {"selector": {"app.kubernetes.io/name": "payments-api"}, "ports": [{"port": 443, "targetPort": target}]}
    return obj("Service", name, spec)


def test_the_sample_checklist_is_valid() -> None:
    checklist = sample()
    assert validate_checklist(checklist) == []
    assert [i.check.kind for i in checklist.spec.items] == ["cel", "cel", "cel"]


def test_every_container_sets_tz() -> None:
    rules = rules_of("container-timezone")
    ok = stored_deployment(containers=[with_env("api", "TZ"), with_env("proxy", "TZ", "X")])
    assert run_cel_check(rules, snapshot(ok)).state == "Passed"
    bad = stored_deployment(containers=[with_env("api", "TZ"), with_env("proxy", "X"), good_container("log")])
    result = run_cel_check(rules, snapshot(bad))
    assert result.state == "Failed"
    assert result.message == (
        "deployment payments-staging/payments-api: container 'proxy', container 'log' sets no TZ "
        "(spec.template.spec.containers[].env)"
    )


def test_the_team_label_names_a_known_team() -> None:
    rules = rules_of("team-label")
    labelled = stored_deployment()
    labelled["metadata"]["labels"]["team"] = "payments"
    assert run_cel_check(rules, snapshot(labelled)).state == "Passed"
    labelled["metadata"]["labels"]["team"] = "marketing"
    unlabelled = stored_deployment("worker")
    result = run_cel_check(rules, snapshot(labelled, unlabelled))
    assert result.state == "Failed"
    assert result.message == (
        "deployment payments-staging/payments-api: label team is 'marketing' (metadata.labels.team); use one of "
        "payments, search, platform; deployment payments-staging/worker: label team is missing "
        "(metadata.labels.team); use one of payments, search, platform"
    )


def test_every_service_port_targets_a_named_container_port() -> None:
    """Cross-object: the Services selecting the pods, against the ports the containers declare."""
    rules = rules_of("service-named-ports")
    named = stored_deployment(containers=[with_env("api", ports=[{"name": "https", "containerPort": 8443}])])
    assert run_cel_check(rules, snapshot(named, services=[service("https")])).state == "Passed"
    other = obj("Service", "elsewhere", {"selector": {"app": "other"}, "ports": [{"port": 1, "targetPort": 1}]})
    assert run_cel_check(rules, snapshot(named, services=[service("https"), other])).state == "Passed"
    result = run_cel_check(rules, snapshot(named, services=[service(8443), service("http", "legacy")]))
    assert result.state == "Failed"
    assert result.message == (
        "deployment payments-staging/payments-api: Service payments-api, Service legacy has a port whose targetPort "
        "is not the name of a port a container declares (spec.ports[].targetPort, "
        "spec.template.spec.containers[].ports[].name)"
    )


def test_the_related_objects_are_the_workloads_own() -> None:
    """services, networkPolicies, pdbs, hpas and ingresses hold what selects, targets or routes to the workload."""
    selects = {"app.kubernetes.io/name": "payments-api"}
    related = {
        "services": [service("http"), obj("Service", "other", {"selector": {"app": "x"}})],
        "network_policies": [obj("NetworkPolicy", "np", {"podSelector": {"matchLabels": selects}})],
        "pod_disruption_budgets": [obj("PodDisruptionBudget", "pdb", {"selector": {"matchLabels": selects}})],
        "autoscalers": [obj("HorizontalPodAutoscaler", "hpa", {"scaleTargetRef": {"kind": "Deployment", "name": "x"}})],
        "ingresses": [
            obj("Ingress", "ing", {"defaultBackend": {"service": {"name": "payments-api", "port": {"number": 443}}}})
        ],
    }
    rule = {
        "expression": "services.size() == 1 && networkPolicies.size() == 1 && pdbs.size() == 1 && hpas.size() == 0 "
        "&& ingresses.size() == 1 && podSpec.containers == containers && workload.kind == 'Deployment'"
    }
    assert run_cel_check(cel(rule), snapshot(**related)).state == "Passed"


def test_no_workloads_is_pending() -> None:
    snap = snapshot()
    snap.workloads = []
    assert run_cel_check(cel({"expression": "true"}), snap).state == "Pending"


def test_an_evaluation_error_fails_with_the_reason() -> None:
    result = run_cel_check(cel({"expression": "containers.all(c, c.env.size() > 0)"}), snapshot())
    assert result.state == "Failed"
    assert result.message.startswith("deployment payments-staging/payments-api: rules[0] could not be evaluated: ")
    assert "guard optional fields with has()" in result.message


def test_a_rule_yielding_a_non_bool_at_run_time_fails() -> None:
    result = run_cel_check(cel({"expression": "workload.metadata.name"}), snapshot())
    assert result.state == "Failed"
    assert "rules[0] yields str 'payments-api', not a bool" in result.message


def test_the_cost_limit_fails_naming_it() -> None:
    """Hostile objects cannot make a rule cost without bound: cel-cpp stops at MAX_ITERATIONS iterations."""
    many = [obj("Service", f"s{i}", {"selector": {"app.kubernetes.io/name": "payments-api"}}) for i in range(120)]
    nested = cel({"expression": "services.all(a, services.all(b, a != b || a == b))"})
    result = run_cel_check(nested, snapshot(services=many))
    assert result.state == "Failed"
    assert f"exceeded the cost limit ({MAX_ITERATIONS:,} comprehension iterations" in result.message
    # Under the limit the same rule holds.
    assert run_cel_check(nested, snapshot(services=many[:90])).state == "Passed"


def test_the_time_limit_leaves_the_item_pending_never_passed() -> None:
    ticks = itertools.count(step=ITEM_SECONDS)
    result = run_cel_check(
        cel({"expression": "true"}),
        snapshot(stored_deployment("a"), stored_deployment("b")),
        clock=lambda: float(next(ticks)),
    )
    assert result.state == "Pending"
    assert "evaluation stopped after 2s (the time limit of a CEL item) with 1 of 2 workload(s) not judged" in (
        result.message
    )


def test_a_message_expression_that_fails_falls_back_to_the_message() -> None:
    rule = {"expression": "false", "message": "no good", "messageExpression": "containers[7].name"}
    result = run_cel_check(cel(rule), snapshot())
    assert result.message.startswith("deployment payments-staging/payments-api: no good (messageExpression failed: ")
    assert run_cel_check(cel({"expression": "1 == 2"}), snapshot()).message == (
        "deployment payments-staging/payments-api: rule 1 == 2 is false"
    )


def test_an_expression_that_does_not_compile_fails_at_run_time_too() -> None:
    """A checklist stored before the webhook ran (or without it) never passes by default."""
    result = run_cel_check(cel({"expression": "containers.all(c,"}), snapshot())
    assert result.state == "Failed"
    assert result.message.startswith("rules[0].expression does not compile: Syntax error: ")
    assert "at line 1, column 18" in result.message


def test_each_expression_is_compiled_once() -> None:
    rule = {"expression": "containers.size() > 0 && 'compiled-once' != ''"}
    before = compiled.cache_info()
    for _ in range(3):
        assert run_cel_check(cel(rule), snapshot(stored_deployment("a"), stored_deployment("b"))).state == "Passed"
    after = compiled.cache_info()
    assert after.misses - before.misses == 1
    assert after.hits - before.hits == 2


@pytest.mark.parametrize(
    ("expression", "purpose", "error"),
    [
        ("foo > 1", "rule", "undeclared reference to 'foo' at line 1, column 1"),
        ("containers.all(c,\n  c.nme == 'x') && bar", "rule", "undeclared reference to 'bar' at line 2, column 20"),
        ("containers.size()", "rule", "yields an int, not a bool"),
        ("workload.spec.replicas", "rule", "yields an int (on a sample Deployment and its objects), not a bool"),
        ("true", "message", "yields a bool, not a string"),
        ("containers.all(c, ", "rule", "Syntax error: mismatched input '<EOF>'"),
    ],
)
def test_bad_expressions_are_refused_with_the_position(expression: str, purpose: Any, error: str) -> None:
    errors = expression_errors(expression, purpose)
    assert len(errors) == 1, errors
    assert errors[0].startswith(error)


def test_good_expressions_pass() -> None:
    assert expression_errors("workload.spec.replicas >= 2", "rule") == []
    assert expression_errors("workload.metadata.name", "message") == []
    assert expression_errors("containers.map(c, c.name).join(', ')", "message") == []
    # An error on the sample (this field is not in it) says nothing about the type: accepted.
    assert expression_errors("workload.spec.paused", "rule") == []


def test_the_checklist_webhook_names_item_field_expression_and_position() -> None:
    checklist = ReadinessChecklist.model_validate(
        {
            "metadata": {"name": "house"},
            "spec": {
                "items": [
                    {
                        "id": "tz",
                        "section": "S",
                        "title": "T",
                        "check": {
                            "cel": {
                                "rules": [
                                    {"expression": "true"},
                                    {"expression": "containrs.all(c, true)", "messageExpression": "1"},
                                ]
                            }
                        },
                    }
                ]
            },
        }
    )
    assert validate_checklist(checklist) == [
        "ReadinessChecklist house: spec.items[0].check.cel.rules[1].expression (tz): 'containrs.all(c, true)': "
        "undeclared reference to 'containrs' at line 1, column 1; use only the variables workload, podSpec, "
        "containers, services, networkPolicies, pdbs, hpas, ingresses",
        "ReadinessChecklist house: spec.items[0].check.cel.rules[1].messageExpression (tz): '1': yields an int, not "
        "a string; make it a string",
    ]


def test_a_checklist_with_too_many_expressions_is_refused_before_compiling_them() -> None:
    rules = [{"expression": f"containers.size() > {i}", "messageExpression": "'x'"} for i in range(10)]
    items = [
        {"id": f"i{n}", "section": "S", "title": "T", "check": {"cel": {"rules": rules}}} for n in range(6)
    ]  # 6 x 10 x 2 = 120
    checklist = ReadinessChecklist.model_validate({"metadata": {"name": "big"}, "spec": {"items": items}})
    before = compiled.cache_info().misses
    assert validate_checklist(checklist) == [
        f"ReadinessChecklist big: spec.items hold 120 CEL expressions (check.cel rules and messageExpressions), more "
        f"than {MAX_CEL_EXPRESSIONS}; merge rules (a rule may && several conditions) or split the checklist"
    ]
    assert compiled.cache_info().misses == before


def test_nesting_past_the_parser_limit_is_refused_not_crashed() -> None:
    assert expression_errors("(" * 2000 + "true" + ")" * 2000, "rule") == [
        "Expression recursion limit exceeded. limit: 32"
    ]


def test_all_cel_items_of_one_evaluation_share_a_time_budget() -> None:
    """Each item stays under its own limit, but together they would hold the event loop: once EVALUATION_SECONDS
    are spent, the items after are Pending, saying why."""
    now = [0.0]

    def clock() -> float:
        now[0] += 0.2  # every look at the clock: 0.2 s later
        return now[0]

    snap = snapshot(stored_deployment("a"))
    states = [run_cel_check(cel({"expression": "true"}), snap, clock=clock) for _ in range(12)]
    assert [s.state for s in states[:5]] == ["Passed"] * 5
    assert states[-1].state == "Pending"
    assert f"evaluation stopped after the {EVALUATION_SECONDS:g}s all CEL items of one evaluation may take" in (
        states[-1].message
    )
    # A new evaluation (a new snapshot) has its own budget.
    assert run_cel_check(cel({"expression": "true"}), snapshot(), clock=clock).state == "Passed"


def test_a_message_from_the_candidates_objects_cannot_drive_the_terminal() -> None:
    """Red-team 3 finding 5: a messageExpression quoting an annotation put the developer's bytes into the status
    that `kubectl readiness status` prints: an ANSI clear-screen and a fake verdict, or a bidi override."""
    owner = "\x1b[2J\x1b[32mReady: all items passed\x1b[0m \u202etxet\n"
    wl = stored_deployment("a", annotations={"owner": owner})
    rule = {"expression": "false", "messageExpression": "'owner ' + workload.metadata.annotations['owner']"}
    message = run_cel_check(cel(rule), snapshot(wl)).message
    assert message == (
        "deployment payments-staging/a: owner \\x1b[2J\\x1b[32mReady: all items passed\\x1b[0m \\u202etxet\\n"
    )
    assert message.isprintable()
