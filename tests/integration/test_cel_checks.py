"""CEL checks against the real API server and the running operator: the worked examples of
deploy/samples/cel-checklist.yaml fail naming workload and container and pass once fixed; bad expressions are refused
at `kubectl apply`; Services a developer piles into the candidate namespace hit the cost limit, never a pass."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import REPO, Kubectl, eventually
from tests.integration.test_gate import DEPLOYER, Gate
from tests.integration.test_gate import deployment as gate_deployment
from tests.integration.test_reconciler import Release

pytestmark = pytest.mark.usefixtures("operator")

SAMPLE = yaml.safe_load((REPO / "deploy" / "samples" / "cel-checklist.yaml").read_text())
NESTED = "services.all(a, services.all(b, a.metadata.name != b.metadata.name || a == b))"
CHECKS: dict[str, dict[str, Any]] = {
    **{item["id"]: item["check"] for item in SAMPLE["spec"]["items"]},
    "pairwise": {"cel": {"rules": [{"expression": NESTED, "message": "Services clash"}]}},
}
DEV = "mallory"


def until(rel: Release, item_id: str, state: str, text: str) -> None:
    """Wait (generously: the machine is shared) for the item to reach `state` with `text` in its message."""

    def reached() -> bool:
        it = rel.item(item_id)
        return it.get("state") == state and text in it.get("message", "")

    eventually(reached, timeout=90, what=f"item {item_id} {state} with {text!r} (now {rel.item(item_id)})")


def service(ns: str, name: str, target: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "selector": {"app.kubernetes.io/name": "payments-api"},
            "ports": [{"name": "https", "port": 443, "targetPort": target}],
        },
    }


def app(ns: str, *, tz: bool, team: str | None, named_port: bool) -> dict[str, Any]:
    c = builders.probed_container(env=[{"name": "TZ", "value": "UTC"}] if tz else None)
    if named_port:
        c["ports"] = [{"name": "http", "containerPort": 8080}]
    body = builders.deployment(namespace=ns, containers=[c])
    body["metadata"]["labels"] = {**body["metadata"]["labels"], **({"team": team} if team else {})}
    return body


@pytest.fixture(scope="module")
def rel(kubectl: Kubectl, api_client: client.ApiClient) -> Release:
    """The sample's rules, applied with kubectl by a platform admin, and a release that follows them."""
    release = Release(kubectl, api_client, CHECKS)
    candidate = release.candidate
    release.apply(app(candidate, tz=False, team=None, named_port=False), service(candidate, "api", 8080))
    release.create()
    return release


def test_the_worked_examples_name_workload_and_container_then_pass(rel: Release) -> None:
    wl = f"deployment {rel.candidate}/payments-api"
    no_tz = f"{wl}: container 'api' sets no TZ (spec.template.spec.containers[].env)"
    until(rel, "container-timezone", "Failed", no_tz)
    until(rel, "team-label", "Failed", f"{wl}: label team is missing (metadata.labels.team)")
    until(rel, "service-named-ports", "Failed", f"{wl}: Service api has a port whose targetPort is not the name")
    until(rel, "pairwise", "Passed", "1 CEL rule(s) hold for 1 workload(s)")

    rel.apply(app(rel.candidate, tz=True, team="marketing", named_port=True), service(rel.candidate, "api", "http"))
    until(rel, "team-label", "Failed", f"{wl}: label team is 'marketing' (metadata.labels.team); use one of payments")
    until(rel, "container-timezone", "Passed", "hold for 1 workload(s)")
    until(rel, "service-named-ports", "Passed", "hold for 1 workload(s)")

    rel.apply(app(rel.candidate, tz=True, team="payments", named_port=True))
    until(rel, "team-label", "Passed", "hold for 1 workload(s)")


def test_bad_expressions_are_refused_at_apply_naming_item_expression_and_position(kubectl: Kubectl) -> None:
    name = f"bad-cel-{uuid.uuid4().hex[:6]}"
    checks = {
        "typo": {"cel": {"rules": [{"expression": "contaners.all(c, has(c.env))"}]}},
        "count": {"cel": {"rules": [{"expression": "containers.size()"}]}},
        "broken": {"cel": {"rules": [{"expression": "true", "messageExpression": "'a' + "}]}},
    }
    proc = kubectl.apply(json.dumps(builders.checklist(name, checks)), check=False)
    assert proc.returncode != 0
    assert (
        "spec.items[0].check.cel.rules[0].expression (typo): 'contaners.all(c, has(c.env))': undeclared reference "
        "to 'contaners' at line 1, column 1; use only the variables workload, podSpec, containers" in proc.stderr
    )
    assert "spec.items[1].check.cel.rules[0].expression (count): 'containers.size()': yields an int, not a bool" in (
        proc.stderr
    )
    assert "spec.items[2].check.cel.rules[0].messageExpression (broken): \"'a' +\": Syntax error:" in proc.stderr
    assert kubectl.run("get", "rcl", name, check=False).returncode != 0


def test_services_piled_up_by_a_developer_hit_the_cost_limit_never_a_pass(rel: Release, kubectl: Kubectl) -> None:
    """The rule is the platform team's; the objects are not. A developer who may create Services in the candidate
    namespace makes the pairwise rule cost 130x130 iterations: the item fails saying so, and recovers when they go."""
    grant = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "service-editor", "namespace": rel.candidate},
            "rules": [{"apiGroups": [""], "resources": ["services"], "verbs": ["get", "list", "create", "delete"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "service-editor", "namespace": rel.candidate},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "service-editor"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": DEV}],
        },
    ]
    rel.apply(*grant)
    until(rel, "pairwise", "Passed", "hold for 1 workload(s)")
    piled = [service(rel.candidate, f"pile-{i}", "http") for i in range(130)]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": piled}), as_user=DEV)
    costly = "rules[0] could not be evaluated: it exceeded the cost limit (10,000 comprehension"
    until(rel, "pairwise", "Failed", costly)
    assert rel.item("service-named-ports")["state"] == "Passed"  # a linear rule is unaffected
    kubectl.run("delete", "service", "-n", rel.candidate, *[s["metadata"]["name"] for s in piled], as_user=DEV)
    until(rel, "pairwise", "Passed", "hold for 1 workload(s)")


@pytest.mark.usefixtures("signer_rbac")
def test_a_house_rule_over_the_template_is_judged_again_at_the_gate(
    kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    """Env values may differ per environment (the default environmentFields): a deployer cannot keep TZ=UTC on the
    candidate and ship another TZ to production; the real gate refuses it naming the CEL item."""
    utc = "containers.all(c, has(c.env) && c.env.exists(e, e.name == 'TZ' && e.value == 'UTC'))"
    rule = {"expression": utc, "messageExpression": "'TZ is not UTC in ' + containers.map(c, c.name).join(', ')"}
    gate = Gate(kubectl, api_client, checks={"tz": {"cel": {"rules": [rule]}}}, env=[{"name": "TZ", "value": "UTC"}])
    gate.approve()
    proc = gate.rollout(gate_deployment(gate.prod, env=[{"name": "TZ", "value": "Europe/Paris"}]))
    assert proc.returncode != 0
    assert f"check tz (cel) fails on it: deployment {gate.prod}/payments-api: TZ is not UTC in api" in proc.stderr
    admitted = gate.rollout(gate_deployment(gate.prod, env=[{"name": "TZ", "value": "UTC"}]))
    assert admitted.returncode == 0, admitted.stderr


def test_audit_offline_and_the_operator_agree_on_cel_items(kubectl: Kubectl, tmp_path: Path) -> None:
    """`kubectl readiness audit` on the manifests, before any cluster, and the operator on the same objects applied:
    the same state and message for every CEL item of the sample, for an application that keeps the rules and one
    that breaks each of them."""
    suffix = uuid.uuid4().hex[:6]
    ns, name = f"cel-audit-{suffix}", f"org-rules-{suffix}"
    checklist = json.loads(json.dumps(SAMPLE))
    checklist["metadata"]["name"] = name

    def app(application: str, team: str, tz: bool, target: Any) -> list[dict[str, Any]]:
        labels = {"app.kubernetes.io/name": application, "app.kubernetes.io/version": "1.0.0"}
        env = [{"name": "TZ", "value": "UTC"}] if tz else []
        containers = [
            {"name": "api", "image": "registry.example.com/a:1", "ports": [{"name": "http", "containerPort": 8080}]},
            {"name": "proxy", "image": "registry.example.com/p:1"},
        ]
        for c in containers:
            c["env"] = [*env, {"name": "LOG_LEVEL", "value": "info"}]
        return [
            builders.deployment(
                application, ns, labels={**labels, "team": team}, template_labels=labels, containers=containers
            ),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": application, "namespace": ns},
                "spec": {
                    "selector": {"app.kubernetes.io/name": application},
                    "ports": [{"port": 443, "targetPort": target}],
                },
            },
        ]

    objects = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}]
    objects += app("keeper", "payments", tz=True, target="http") + app("breaker", "marketing", tz=False, target=8080)
    manifest_file, checklist_file = tmp_path / "app.yaml", tmp_path / "checklist.yaml"
    manifest_file.write_text(yaml.safe_dump_all(objects))
    checklist_file.write_text(yaml.safe_dump(checklist))
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "kubectl-readiness"), "audit", "-f", str(manifest_file), "--checklist",
         str(checklist_file), "-o", "json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # findings
    report = json.loads(proc.stdout)
    offline = {
        (a["application"], i["id"]): (i["outcome"], i["message"]) for a in report["applications"] for i in a["items"]
    }
    assert {o for o, _ in offline.values()} == {"passed", "failed"}
    assert offline[("breaker", "container-timezone")] == (
        "failed",
        f"deployment {ns}/breaker: container 'api', container 'proxy' sets no TZ (spec.template.spec.containers[].env)",
    )

    kubectl.apply(json.dumps(checklist))
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    releases = [builders.release(a, ns, a, "1.0.0", name, ns) for a in ("keeper", "breaker")]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": releases}))
    states = {"passed": "Passed", "failed": "Failed"}

    def live() -> dict[tuple[str, str], tuple[str, str]]:
        out = {}
        for a in ("keeper", "breaker"):
            body = json.loads(kubectl.run("get", "rr", a, "-n", ns, "-o", "json").stdout)
            for it in (body.get("status") or {}).get("items") or []:
                out[(a, it["id"])] = (it["state"], it["message"])
        return out

    want = {key: (states[o], m) for key, (o, m) in offline.items()}
    eventually(lambda: live() == want, timeout=90, what=f"live verdicts equal the audit's: {want} (live {live()})")


@pytest.mark.usefixtures("signer_rbac")
def test_a_dry_run_that_passed_does_not_admit_another_workload_with_the_same_template(
    kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    """Red-team 3 finding 1: a CEL item over the workload object (its replicas) is judged at the gate; a server
    dry-run with 2 replicas passed and was remembered by pod template, and the real create with 1 replica (the same
    template) was admitted from that memory without judging the item."""
    ha = {"expression": "workload.spec.replicas >= 2", "message": "runs fewer than 2 replicas (spec.replicas)"}
    gate = Gate(kubectl, api_client, checks={"ha": {"cel": {"rules": [ha]}}})
    gate.approve()
    dry = gate.rollout(gate_deployment(gate.prod, replicas=2), DEPLOYER, "--dry-run=server")
    assert dry.returncode == 0, dry.stderr
    proc = gate.rollout(gate_deployment(gate.prod, replicas=1))
    assert proc.returncode != 0
    assert f"check ha (cel) fails on it: deployment {gate.prod}/payments-api: runs fewer than 2 replicas" in proc.stderr


def test_a_candidate_too_large_to_record_stalls_the_release(kubectl: Kubectl, api_client: client.ApiClient) -> None:
    """Red-team 3 finding 4: whoever writes the candidate namespace chose the status's size. Three Deployments with
    a 700 KB image string each made every status write fail (larger than the API server stores), so the last status
    written stayed, Ready included, and a veto signed afterwards never reached the gate. The release is Stalled
    saying why, and the candidate is not recorded (the gate has no template to admit)."""
    release = Release(kubectl, api_client, {"tz": CHECKS["container-timezone"]})
    release.apply(app(release.candidate, tz=True, team="payments", named_port=True))
    release.create()
    until(release, "tz", "Passed", "hold for 1 workload(s)")
    huge = "registry.example.com/payments/api:" + "x" * 700_000
    for i in range(3):
        body = app(release.candidate, tz=True, team="payments", named_port=True)
        body["metadata"]["name"] = f"payments-api-{i}"
        body["spec"]["template"]["spec"]["containers"][0]["image"] = huge
        kubectl.run("create", "-f", "-", stdin=json.dumps(body))  # `edit` in the candidate namespace allows it

    def stalled() -> bool:
        c = release.condition("Stalled")
        return c.get("status") == "True" and c.get("reason") == "CandidateTooLarge"

    eventually(stalled, timeout=90, what=f"Stalled=CandidateTooLarge (now {release.condition('Stalled')})")
    assert "select fewer workloads" in release.condition("Stalled")["message"]
    assert release.condition("Ready")["status"] == "False"
    assert not (release.get().get("status") or {}).get("candidate", {}).get("workloads")
