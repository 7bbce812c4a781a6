"""A kind added by configuration (a small Argo Rollouts `Rollout` CRD): inspected as a candidate, gated in
production, its controller's ReplicaSets admitted; and the chart renders the same webhooks as the operator."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from release_readiness.admission.configuration import Endpoint, gate_webhooks, prepare_local_webhook
from release_readiness.kinds import parse_extra_kinds
from release_readiness_dev import builders
from release_readiness_dev.localcluster import LocalCluster, free_port
from tests.integration.conftest import BIN, REPO, Kubectl, OperatorProcess, eventually, sign

ROLLOUT = {
    "kind": "Rollout",
    "group": "argoproj.io",
    "version": "v1alpha1",
    "plural": "rollouts",
    "template": "spec.template",
    "controller": "system:serviceaccount:argo-rollouts:argo-rollouts",
}
EXTRA = json.dumps([ROLLOUT])
LABELS = {"app.kubernetes.io/name": "checkout", "app.kubernetes.io/version": "1.0.0"}
IMAGE = "registry.example.com/checkout:1.0.0"
ALICE = ("alice", ("deployers",))

ROLLOUT_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "rollouts.argoproj.io"},
    "spec": {
        "group": "argoproj.io",
        "names": {"kind": "Rollout", "plural": "rollouts", "singular": "rollout", "listKind": "RolloutList"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def rollout(namespace: str, image: str = IMAGE, privileged: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "web", "image": image, "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "checkout", "namespace": namespace, "labels": LABELS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}},
            "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [container]}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}]}},
        },
    }


class Setup:
    def __init__(self, cluster: LocalCluster, tmp: Path) -> None:
        self.kubectl = Kubectl(cluster.kubeconfig)
        self.custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cluster.kubeconfig)))
        kubectl = self.kubectl
        kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
        kubectl.apply(json.dumps(ROLLOUT_CRD))
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/rollouts.argoproj.io")
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        port = free_port()
        configs = prepare_local_webhook(tmp / "certs", port, parse_extra_kinds(EXTRA))
        kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
        self.operator = OperatorProcess(
            cluster, tmp / "operator.log", tmp / "certs", port, RR_EXTRA_GATED_KINDS=EXTRA
        ).start()
        kubectl.run("create", "namespace", "checkout-staging")
        kubectl.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": "checkout-prod", "labels": {"readiness.dev/gate": "enforce"}},
                }
            )
        )
        verbs = ["get", "create", "update", "patch"]
        rollouts = {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": verbs}
        replicasets = {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": verbs}
        argo = {"kind": "ServiceAccount", "name": "argo-rollouts", "namespace": "argo-rollouts"}
        people = {"kind": "Group", "name": "deployers", "apiGroup": "rbac.authorization.k8s.io"}
        signoffs = {"apiGroups": ["readiness.dev"], "resources": ["releasesignoffs"], "verbs": verbs}
        erin = {"kind": "User", "name": "erin", "apiGroup": "rbac.authorization.k8s.io"}
        for name, subject, rules in (
            ("deployer", people, [rollouts, replicasets]),
            ("argo", argo, [replicasets]),
            ("signer", erin, [signoffs]),
        ):
            role = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": "checkout-prod"},
                "rules": rules,
            }
            binding = {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": "checkout-prod"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [subject],
            }
            kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}))
        approvals = [{"role": "engineering-lead", "users": ["erin"]}]
        kubectl.apply(json.dumps(builders.checklist("rollouts", {"limits": {"workload": "resourceLimits"}}, approvals)))
        kubectl.apply(json.dumps(rollout("checkout-staging")))
        kubectl.apply(
            json.dumps(
                builders.release("checkout-1-0-0", "checkout-prod", "checkout", "1.0.0", "rollouts", "checkout-staging")
            )
        )

    def release(self) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", "checkout-prod", "releasereadinesses", "checkout-1-0-0"
        )
        return body

    def apply(self, obj: dict[str, Any], who: tuple[str, tuple[str, ...]] = ALICE) -> subprocess.CompletedProcess[str]:
        return self.kubectl.run(
            "apply", "-f", "-", stdin=json.dumps(obj), as_user=who[0], as_groups=who[1], check=False
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("extra-kinds")
    with LocalCluster(tmp / "cluster") as cluster:
        s = Setup(cluster, tmp)
        yield s
        s.operator.stop()


def test_a_configured_kind_is_inspected_as_a_candidate_and_gated_in_production(setup: Setup) -> None:
    def inspected() -> list[dict[str, Any]]:
        return list(((setup.release().get("status") or {}).get("candidate") or {}).get("workloads") or [])

    workloads = eventually(inspected, what="the candidate Rollout inspected")
    assert [(w["kind"], w["name"]) for w in workloads] == [("Rollout", "checkout")]
    assert workloads[0]["templateHash"].startswith("sha256:")

    refused = setup.apply(rollout("checkout-prod"))
    assert refused.returncode != 0
    assert 'admission webhook "gate-rollouts-enforce.readiness.dev" denied the request' in refused.stderr
    assert (
        "rollout checkout-prod/checkout: ReleaseReadiness checkout-prod/checkout-1-0-0 is not Ready" in refused.stderr
    )

    sign(setup.kubectl, ("erin", ()), "checkout-prod", "checkout-1-0-0", role="engineering-lead")

    def ready() -> bool:
        conditions = (setup.release().get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    eventually(ready, what="release Ready")
    privileged = setup.apply(rollout("checkout-prod", privileged=True))
    assert privileged.returncode != 0
    assert (
        "spec.template.spec.containers[0].securityContext.privileged is true, but the candidate inspected "
        "(rollout checkout-staging/checkout) has (not set)" in privileged.stderr
    )
    unreviewed = setup.apply(rollout("checkout-prod", image="registry.example.com/checkout:1.0.1"))
    assert "container 'web' image registry.example.com/checkout:1.0.1 is not the image inspected" in unreviewed.stderr
    admitted = setup.apply(rollout("checkout-prod"))
    assert admitted.returncode == 0, admitted.stderr

    # The configured controller's ReplicaSets for an admitted Rollout pass; the same one made by a person does not.
    uid = setup.kubectl.run("get", "rollout", "checkout", "-n", "checkout-prod", "-o", "jsonpath={.metadata.uid}")
    owner = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "checkout", "uid": uid.stdout.strip()}
    rs = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": "checkout-6b7c",
            "namespace": "checkout-prod",
            "ownerReferences": [{**owner, "controller": True}],
        },
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "checkout"}},
            "template": rollout("x", image="registry.example.com/checkout:canary")["spec"]["template"],
        },
    }
    argo = str(ROLLOUT["controller"])
    made = setup.kubectl.run("create", "-f", "-", stdin=json.dumps(rs), as_user=argo, check=False)
    assert made.returncode == 0, made.stderr
    rs["metadata"]["name"] = "checkout-forged"
    forged = setup.apply(rs)
    assert forged.returncode != 0
    assert 'admission webhook "gate-replicasets-enforce.readiness.dev" denied the request' in forged.stderr


def test_the_chart_renders_the_same_webhooks_and_env_as_the_operator_uses(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"gate": {"extraKinds": [ROLLOUT]}}))
    rendered = subprocess.run(
        [
            str(BIN / "helm"),
            "template",
            "rr",
            str(REPO / "charts" / "release-readiness"),
            "-n",
            "rr",
            "-f",
            str(values),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    validating = next(d for d in docs if d["kind"] == "ValidatingWebhookConfiguration")
    chart = {h["name"]: h for h in validating["webhooks"] if h["name"].startswith("gate-rollouts")}
    expected = gate_webhooks(
        Endpoint(b"", service={"name": "rr", "namespace": "rr", "port": 443}), parse_extra_kinds(EXTRA)
    )
    ours = {h["name"]: h for h in expected if h["name"].startswith("gate-rollouts")}
    assert set(chart) == set(ours) == {"gate-rollouts-enforce.readiness.dev", "gate-rollouts-advisory.readiness.dev"}
    for name, hook in ours.items():
        strip = {k: v for k, v in hook.items() if k != "clientConfig"}
        assert {k: v for k, v in chart[name].items() if k != "clientConfig"} == strip
        path = "/gate-rollouts" if name.endswith("-enforce.readiness.dev") else "/gate-rollouts-advisory"
        assert chart[name]["clientConfig"]["service"]["path"] == hook["clientConfig"]["service"]["path"] == path
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert parse_extra_kinds(env["RR_EXTRA_GATED_KINDS"]) == parse_extra_kinds(EXTRA)
    role = next(d for d in docs if d["kind"] == "ClusterRole")
    assert {"apiGroups": ["argoproj.io"], "resources": ["rollouts"], "verbs": ["get", "list", "watch"]} in role["rules"]
