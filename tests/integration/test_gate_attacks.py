"""Issue 14's attacks, as a developer with ordinary edit rights would try them on a gated namespace, each
refused by the real API server through the real webhook; and what must keep working (the controllers'
pods, rollout restart, scaling)."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import Kubectl, eventually
from tests.integration.test_gate import DEPLOYER, IMAGE, LABELS, LIMITS, Gate, deployment

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

ROOT_VOLUME = {"name": "root", "hostPath": {"path": "/"}}
UNREVIEWED = "registry.example.com/payments/api:3.2.0-unreviewed"


def controller(name: str) -> tuple[str, tuple[str, ...]]:
    """A built-in controller's identity (its RBAC comes with the API server's bootstrap policy)."""
    return f"system:serviceaccount:kube-system:{name}", ("system:serviceaccounts", "system:serviceaccounts:kube-system")


@pytest.fixture(scope="module")
def ready(kubectl: Kubectl, api_client: client.ApiClient, operator: Any, signer_rbac: None) -> Gate:
    """An enforce namespace whose release payments-api 3.2.0 is Ready, and its production Deployment admitted."""
    gate = Gate(kubectl, api_client)
    gate.approve()
    admitted = gate.rollout(deployment(gate.prod))
    assert admitted.returncode == 0, admitted.stderr
    return gate


def pod_spec(image: str = IMAGE) -> dict[str, Any]:
    spec: dict[str, Any] = deployment("x", image=image)["spec"]["template"]["spec"]
    return spec


def template(image: str = IMAGE) -> dict[str, Any]:
    return {"metadata": {"labels": dict(LABELS)}, "spec": pod_spec(image)}


def of_kind(kind: str, ns: str, name: str, image: str = UNREVIEWED, owner: dict[str, Any] | None = None) -> Any:
    """A minimal object of a pod-making kind, labelled as the release's application and version."""
    return builders.of_kind(kind, name, ns, template(image), owner=owner)


def create(kubectl: Kubectl, obj: Any, who: tuple[str, tuple[str, ...]] = DEPLOYER) -> subprocess.CompletedProcess[str]:
    return kubectl.run("create", "-f", "-", stdin=json.dumps(obj), as_user=who[0], as_groups=who[1], check=False)


def owner_of(kubectl: Kubectl, kind: str, ns: str, name: str) -> dict[str, Any]:
    api = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "CronJob": "batch/v1", "Job": "batch/v1"}[kind]
    uid = kubectl.run("get", kind.lower(), name, "-n", ns, "-o", "jsonpath={.metadata.uid}").stdout.strip()
    return {"apiVersion": api, "kind": kind, "name": name, "uid": uid}


def patch_production(ready: Gate, kind: str, patch: Any) -> subprocess.CompletedProcess[str]:
    """The admitted production Deployment patched by a deployer (kubectl patch --type=<kind>)."""
    return ready.kubectl.run(
        "patch",
        "deployment",
        "payments-api",
        "-n",
        ready.prod,
        f"--type={kind}",
        "-p",
        json.dumps(patch),
        as_user=DEPLOYER[0],
        as_groups=DEPLOYER[1],
        check=False,
    )


# -- 1. every pod-making kind ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "hook"),
    [
        ("Pod", "gate-pods"),
        ("ReplicaSet", "gate-replicasets"),
        ("ReplicationController", "gate-replicationcontrollers"),
        ("Job", "gate-jobs"),
        ("CronJob", "gate-cronjobs"),
    ],
)
def test_an_unreviewed_image_in_any_pod_making_kind_is_refused(ready: Gate, kind: str, hook: str) -> None:
    proc = create(ready.kubectl, of_kind(kind, ready.prod, f"attack-{kind.lower()}"))
    assert proc.returncode != 0, proc.stdout
    assert f'admission webhook "{hook}-enforce.readiness.dev" denied the request' in proc.stderr
    assert f"{kind.lower()} {ready.prod}/attack-{kind.lower()}: its images are not the ones" in proc.stderr
    assert f"container 'api' image {UNREVIEWED} is not the image inspected in {ready.candidate}" in proc.stderr


def test_a_bare_pod_of_the_inspected_template_is_judged_like_a_workload(ready: Gate) -> None:
    admitted = create(ready.kubectl, of_kind("Pod", ready.prod, "bare-reviewed", image=IMAGE))
    assert admitted.returncode == 0, admitted.stderr
    privileged = of_kind("Pod", ready.prod, "bare-privileged", image=IMAGE)
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    refused = create(ready.kubectl, privileged)
    assert refused.returncode != 0
    assert "spec.containers[0].securityContext.privileged is true, but the candidate inspected" in refused.stderr


def test_an_ephemeral_container_with_an_unreviewed_image_is_refused(ready: Gate) -> None:
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "payments-api-5d4f", "uid": "0000-rs"}
    pod = of_kind("Pod", ready.prod, "payments-api-5d4f-abcde", image=IMAGE, owner=owner)
    made = create(ready.kubectl, pod, controller("replicaset-controller"))
    assert made.returncode == 0, made.stderr
    debug = ready.kubectl.run(
        "debug",
        "payments-api-5d4f-abcde",
        "-n",
        ready.prod,
        "--image=busybox:1.36",
        "--container=debugger",
        as_user=DEPLOYER[0],
        as_groups=DEPLOYER[1],
        check=False,
    )
    assert debug.returncode != 0, debug.stdout
    assert 'admission webhook "gate-pods-enforce.readiness.dev" denied the request' in debug.stderr
    assert "ephemeral container 'debugger' (busybox:1.36) was never inspected" in debug.stderr
    spec = ready.kubectl.run("get", "pod", "payments-api-5d4f-abcde", "-n", ready.prod, "-o", "json").stdout
    assert "ephemeralContainers" not in json.loads(spec)["spec"]


def test_what_the_controllers_make_for_an_admitted_owner_is_admitted(ready: Gate) -> None:
    kubectl = ready.kubectl
    deploy = owner_of(kubectl, "Deployment", ready.prod, "payments-api")
    rs = of_kind("ReplicaSet", ready.prod, "payments-api-7c9d", image=IMAGE, owner=deploy)
    rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] = "7c9d"
    made = create(kubectl, rs, controller("deployment-controller"))
    assert made.returncode == 0, made.stderr
    rs_owner = owner_of(kubectl, "ReplicaSet", ready.prod, "payments-api-7c9d")
    pod = create(
        kubectl, of_kind("Pod", ready.prod, "payments-api-7c9d-x1", owner=rs_owner), controller("replicaset-controller")
    )
    assert pod.returncode == 0, pod.stderr
    # The same Pod with the same ownerReference, created by a person: judged, and refused.
    forged = create(kubectl, of_kind("Pod", ready.prod, "payments-api-7c9d-x2", owner=rs_owner))
    assert forged.returncode != 0
    assert f"container 'api' image {UNREVIEWED} is not the image inspected" in forged.stderr
    # A controller identity creating for an owner kind it does not manage: judged, and refused.
    wrong = create(
        kubectl, of_kind("Pod", ready.prod, "payments-api-7c9d-x3", owner=rs_owner), controller("job-controller")
    )
    assert wrong.returncode != 0
    cron = of_kind("CronJob", ready.prod, "nightly", image=IMAGE)
    assert create(kubectl, cron).returncode == 0
    job = of_kind("Job", ready.prod, "nightly-29000000", owner=owner_of(kubectl, "CronJob", ready.prod, "nightly"))
    made_job = create(kubectl, job, controller("cronjob-controller"))
    assert made_job.returncode == 0, made_job.stderr


# -- 2. what was inspected is what runs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "field", "value"),
    [
        (
            [{"op": "add", "path": "/spec/template/spec/containers/0/securityContext", "value": {"privileged": True}}],
            "spec.template.spec.containers[0].securityContext.privileged",
            "true",
        ),
        ([{"op": "add", "path": "/spec/template/spec/hostPID", "value": True}], "spec.template.spec.hostPID", "true"),
        (
            [
                {"op": "add", "path": "/spec/template/spec/volumes", "value": [ROOT_VOLUME]},
                {
                    "op": "add",
                    "path": "/spec/template/spec/containers/0/volumeMounts",
                    "value": [{"name": "root", "mountPath": "/host"}],
                },
            ],
            "spec.template.spec.volumes[0].hostPath.path",
            '"/"',
        ),
        (
            [{"op": "add", "path": "/spec/template/spec/containers/0/command", "value": ["/bin/sh", "-c", "x"]}],
            "spec.template.spec.containers[0].command[0]",
            '"/bin/sh"',
        ),
    ],
)
def test_patching_a_ready_releases_deployment_keeping_the_image_is_refused_naming_the_field(
    ready: Gate, patch: list[dict[str, Any]], field: str, value: str
) -> None:
    proc = patch_production(ready, "json", patch)
    assert proc.returncode != 0, proc.stdout
    assert f"its pod template is not the one ReleaseReadiness {ready.prod}/payments-api-3-2-0 inspected" in proc.stderr
    assert f"{field} is {value}, but the candidate inspected (deployment {ready.candidate}/payments-api)" in proc.stderr


# Red-team finding 8: what the former default allow-list admitted, each changing what runs.
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


@pytest.mark.parametrize(
    ("patch", "differences"),
    [
        (
            {"metadata": {"annotations": {"vault.hashicorp.com/agent-inject": "true"}}},
            ['spec.template.metadata.annotations.vault.hashicorp.com/agent-inject is "true"'],
        ),
        (
            {"metadata": {"annotations": {"sidecar.istio.io/inject": "false"}}},
            ['spec.template.metadata.annotations.sidecar.istio.io/inject is "false"'],
        ),
        (
            {"metadata": {"annotations": {"k8s.v1.cni.cncf.io/networks": "host-macvlan"}}},
            ['spec.template.metadata.annotations.k8s.v1.cni.cncf.io/networks is "host-macvlan"'],
        ),
        (
            {
                "spec": {
                    "tolerations": [{"operator": "Exists"}],
                    "nodeSelector": {CONTROL_PLANE: ""},
                    "priorityClassName": "system-node-critical",
                }
            },
            [
                f'spec.template.spec.nodeSelector.{CONTROL_PLANE} is ""',
                'spec.template.spec.priorityClassName is "system-node-critical"',
                'spec.template.spec.tolerations[0].operator is "Exists"',
            ],
        ),
        (
            {"metadata": {"labels": {"statefulset.kubernetes.io/pod-name": "payments-db-0"}}},
            ['spec.template.metadata.labels.statefulset.kubernetes.io/pod-name is "payments-db-0"'],
        ),
    ],
)
def test_annotations_scheduling_and_controller_labels_are_compared_by_default(
    ready: Gate, patch: dict[str, Any], differences: list[str]
) -> None:
    proc = patch_production(ready, "strategic", {"spec": {"template": patch}})
    assert proc.returncode != 0, proc.stdout
    assert f"its pod template is not the one ReleaseReadiness {ready.prod}/payments-api-3-2-0 inspected" in proc.stderr
    for difference in differences:
        assert (
            f"{difference}, but the candidate inspected (deployment {ready.candidate}/payments-api) has (not set)"
            in proc.stderr
        )


def test_rollout_restart_and_scaling_of_an_admitted_release_keep_working(ready: Gate) -> None:
    who = {"as_user": DEPLOYER[0], "as_groups": DEPLOYER[1]}
    restart = ready.kubectl.run("rollout", "restart", "deployment/payments-api", "-n", ready.prod, check=False, **who)
    assert restart.returncode == 0, restart.stderr
    scale = ready.kubectl.run("scale", "deployment/payments-api", "--replicas=5", "-n", ready.prod, check=False, **who)
    assert scale.returncode == 0, scale.stderr
    scaled = copy.deepcopy(deployment(ready.prod, replicas=7))
    restarted_at = ready.kubectl.run(
        "get",
        "deployment",
        "payments-api",
        "-n",
        ready.prod,
        "-o",
        "jsonpath={.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}",
    ).stdout
    assert restarted_at
    applied = ready.rollout(scaled)
    assert applied.returncode == 0, applied.stderr


def test_a_check_that_passed_on_the_candidate_runs_on_the_production_template(
    kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    from_secret = [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]
    checks = {"limits": LIMITS, "secrets": {"workload": "noHardcodedSecrets"}}
    # A checklist that lets env values and their sources differ per environment (the default compares valueFrom).
    lenient = ["spec.containers[*].env[*].value", "spec.containers[*].env[*].valueFrom"]
    gate = Gate(kubectl, api_client, checks=checks, env=from_secret, environment_fields=lenient)
    gate.approve()
    # A literal secret in production still fails noHardcodedSecrets, which passed on the candidate.
    proc = gate.rollout(deployment(gate.prod, env=[{"name": "API_TOKEN", "value": "s3cr3t"}]))
    assert proc.returncode != 0
    assert "the production pod template fails checks that passed on the candidate" in proc.stderr
    assert (
        f"check secrets (noHardcodedSecrets) fails on it: deployment {gate.prod}/payments-api: container 'api' sets "
        "secret-looking env API_TOKEN to a literal value (spec.template.spec.containers[0].env[0].value)"
    ) in proc.stderr
    other_secret = [{"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "api-prod", "key": "token"}}}]
    admitted = gate.rollout(deployment(gate.prod, env=other_secret))
    assert admitted.returncode == 0, admitted.stderr


def test_env_value_from_another_secret_is_refused_by_default(kubectl: Kubectl, api_client: client.ApiClient) -> None:
    """Red-team finding 8: DB_PASSWORD taken from another Secret (another application's) was admitted."""
    from_secret = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "payments-db", "key": "password"}}}]
    gate = Gate(kubectl, api_client, env=from_secret)
    gate.approve()
    other = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "billing-db", "key": "password"}}}]
    refused = gate.rollout(deployment(gate.prod, env=other))
    assert refused.returncode != 0, refused.stdout
    assert (
        'spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.name is "billing-db", but the candidate '
        f'inspected (deployment {gate.candidate}/payments-api) has "payments-db"'
    ) in refused.stderr
    # The Secret of the same name holds production's value in production's namespace: the inspected template.
    admitted = gate.rollout(deployment(gate.prod, env=from_secret))
    assert admitted.returncode == 0, admitted.stderr


# -- 3. one release decides ---------------------------------------------------------------------------------------


def test_a_second_release_for_the_same_application_and_version_is_refused_naming_the_first(ready: Gate) -> None:
    second = builders.release("easier", ready.prod, "payments-api", "3.2.0", ready.checklist, ready.candidate)
    proc = ready.kubectl.run("create", "-f", "-", stdin=json.dumps(second), check=False)
    assert proc.returncode != 0
    assert 'admission webhook "validate-release.readiness.dev" denied the request' in proc.stderr
    assert (
        f"ReleaseReadiness {ready.prod}/easier: payments-api 3.2.0 is already covered in {ready.prod} by "
        "ReleaseReadiness payments-api-3-2-0" in proc.stderr
    )
    other_version = builders.release("next", ready.prod, "payments-api", "3.3.0", ready.checklist, ready.candidate)
    assert ready.kubectl.run("create", "-f", "-", stdin=json.dumps(other_version), check=False).returncode == 0


def test_a_deleted_ready_release_stops_admitting_and_one_recreated_under_another_name_starts_unready(
    kubectl: Kubectl, api_client: client.ApiClient
) -> None:
    """The gate finds releases by (namespace, application, version) in the index: a Ready release deleted (its
    application and version are fixed, so re-pointing is delete and create) leaves that entry, and one created
    for the same application and version under another name inherits nothing (its signoffs were bound to the
    old release's uid)."""
    gate = Gate(kubectl, api_client)
    gate.approve()
    rollout = deployment(gate.prod)

    def answer() -> str:
        proc = gate.rollout(rollout, DEPLOYER, "--dry-run=server")
        return "admitted" if proc.returncode == 0 else proc.stderr

    assert answer() == "admitted"
    kubectl.run("delete", "releasereadiness", "payments-api-3-2-0", "-n", gate.prod)
    eventually(
        lambda: "no ReleaseReadiness for payments-api 3.2.0" in answer(), timeout=90, what="the deleted release gone"
    )
    again = builders.release("payments-api-again", gate.prod, "payments-api", "3.2.0", gate.checklist, gate.candidate)
    kubectl.apply(json.dumps(again))

    def judged_by_the_new_release() -> str:
        said = answer()
        return said if "payments-api-again" in said else ""

    refused = eventually(judged_by_the_new_release, timeout=90, what="the new release judged")
    assert f"ReleaseReadiness {gate.prod}/payments-api-again is not Ready" in refused, refused
    assert answer() != "admitted"
