"""The gated kinds: one table, extra kinds from configuration, and the webhook configurations made from it."""

from __future__ import annotations

import json

import pytest

from release_readiness.admission.configuration import webhook_configurations
from release_readiness.config import Settings
from release_readiness.kinds import BUILTIN_GATED_KINDS, gated_kinds, parse_extra_kinds

ROLLOUT = {
    "kind": "Rollout",
    "group": "argoproj.io",
    "version": "v1alpha1",
    "plural": "rollouts",
    "template": "spec.template",
    "controller": "system:serviceaccount:argo-rollouts:argo-rollouts",
}


def test_every_pod_making_kind_is_gated_with_its_template() -> None:
    table = {k.kind: (k.group, k.version, k.plural, k.template_field) for k in BUILTIN_GATED_KINDS}
    assert table == {
        "Deployment": ("apps", "v1", "deployments", "spec.template"),
        "StatefulSet": ("apps", "v1", "statefulsets", "spec.template"),
        "DaemonSet": ("apps", "v1", "daemonsets", "spec.template"),
        "ReplicaSet": ("apps", "v1", "replicasets", "spec.template"),
        "ReplicationController": ("", "v1", "replicationcontrollers", "spec.template"),
        "Job": ("batch", "v1", "jobs", "spec.template"),
        "CronJob": ("batch", "v1", "cronjobs", "spec.jobTemplate.spec.template"),
        "Pod": ("", "v1", "pods", ""),
    }


def test_the_webhook_configurations_come_from_the_table() -> None:
    extra = parse_extra_kinds(json.dumps([ROLLOUT]))
    _, validating = webhook_configurations(b"ca", base_url="https://127.0.0.1:1", extra_kinds=extra)
    gates = {h["name"]: h for h in validating["webhooks"] if h["name"].startswith("gate-")}
    for kind in gated_kinds(extra):
        for suffix, policy, path in (("enforce", "Fail", kind.webhook), ("advisory", "Ignore", kind.advisory_webhook)):
            hook = gates.pop(f"{kind.webhook}-{suffix}.readiness.dev")
            assert hook["failurePolicy"] == policy
            assert hook["clientConfig"]["url"] == f"https://127.0.0.1:1/{path}"
            assert hook["rules"][0]["apiGroups"] == [kind.group]
    assert gates == {}
    pods = next(h for h in validating["webhooks"] if h["name"] == "gate-pods-enforce.readiness.dev")
    assert pods["rules"][0]["resources"] == ["pods", "pods/ephemeralcontainers"]


def test_an_extra_kinds_controller_may_make_replicasets_and_pods_for_it() -> None:
    kinds = {k.kind: k for k in gated_kinds(parse_extra_kinds(json.dumps([ROLLOUT])))}
    assert kinds["ReplicaSet"].made_by["Rollout"] == ROLLOUT["controller"]
    assert kinds["Pod"].made_by["Rollout"] == ROLLOUT["controller"]
    assert kinds["Rollout"].template_path == ("spec", "template")
    assert "Rollout" not in {k.kind for k in BUILTIN_GATED_KINDS}


def test_settings_read_extra_kinds() -> None:
    settings = Settings.from_env({"RR_EXTRA_GATED_KINDS": json.dumps([ROLLOUT])})
    assert [k.kind for k in settings.gated_kinds][-1] == "Rollout"
    assert settings.extra_gated_kinds[0].to_dict() == ROLLOUT


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("{", "RR_EXTRA_GATED_KINDS is not JSON"),
        ("{}", "must be a JSON list"),
        (json.dumps([{**ROLLOUT, "template": "spec..template"}]), r"RR_EXTRA_GATED_KINDS\[0\]\.template must be"),
        (json.dumps([{**ROLLOUT, "plural": "Rollouts"}]), r"\[0\]\.plural must be a resource name"),
        (json.dumps([{**ROLLOUT, "controller": "alice"}]), r"\[0\]\.controller must be a service account"),
        (json.dumps([{**ROLLOUT, "plural": "deployments"}]), "is already gated"),
        (json.dumps([{**ROLLOUT, "selector": {}}]), "unknown field"),
    ],
)
def test_bad_extra_kinds_are_refused_naming_the_field(raw: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_extra_kinds(raw)
