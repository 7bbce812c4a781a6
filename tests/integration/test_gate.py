"""The production gate refuses rollouts of unready releases (real API server, real webhook)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import Kubectl, OperatorProcess, eventually, sign

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

IMAGE = "registry.example.com/payments/api:3.2.0"
LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}
DEPLOYER = ("alice", ("deployers",))
SRE = ("sam", ("sre-oncall",))
LIMITS = {"workload": "resourceLimits"}
EDIT_RESOURCES = (
    "deployments.apps",
    "deployments.apps/scale",
    "statefulsets.apps",
    "daemonsets.apps",
    "replicasets.apps",
    "replicationcontrollers",
    "jobs.batch",
    "cronjobs.batch",
    "pods",
    "pods/ephemeralcontainers",
)


def deployment(
    ns: str,
    image: str = IMAGE,
    labels: dict[str, str] | None = None,
    env: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The rollout this module gates: payments-api with limits only (`labels`: its pod template's)."""
    container = builders.container(image=image, resources={"limits": {"cpu": "1", "memory": "1Gi"}}, env=env)
    return builders.deployment(namespace=ns, template_labels=labels, containers=[container], **fields)


class Gate:
    def __init__(
        self,
        kubectl: Kubectl,
        api: client.ApiClient,
        mode: str = "enforce",
        checks: dict[str, dict[str, Any]] | None = None,
        env: list[dict[str, Any]] | None = None,
        environment_fields: list[str] | None = None,
    ) -> None:
        self.kubectl = kubectl
        self.custom = client.CustomObjectsApi(api)
        suffix = uuid.uuid4().hex[:6]
        self.candidate, self.prod, self.checklist = f"stg-{suffix}", f"prod-{suffix}", f"gate-{suffix}"
        kubectl.run("create", "namespace", self.candidate)
        kubectl.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": self.prod, "labels": {"readiness.dev/gate": mode}},
                }
            )
        )
        # No controller-manager aggregates the built-in edit role here: grant what `edit` grants on workloads.
        kubectl.run(
            "create",
            "role",
            "deployer",
            "--verb=get,list,watch,create,update,patch,delete",
            *(f"--resource={r}" for r in EDIT_RESOURCES),
            "-n",
            self.prod,
        )
        kubectl.run(
            "create",
            "rolebinding",
            "deployers",
            "--role=deployer",
            "--group=deployers",
            "--group=sre-oncall",
            "-n",
            self.prod,
        )
        approvals = [{"role": "engineering-lead", "groups": ["eng-leads"]}]
        checklist = builders.checklist(self.checklist, checks or {"limits": LIMITS}, approvals)
        if environment_fields is not None:
            checklist["spec"]["rules"] = {"environmentFields": environment_fields}
        kubectl.apply(json.dumps(checklist))
        kubectl.apply(json.dumps(deployment(self.candidate, env=env)))
        kubectl.apply(
            json.dumps(
                builders.release(
                    "payments-api-3-2-0", self.prod, "payments-api", "3.2.0", self.checklist, self.candidate
                )
            )
        )
        eventually(lambda: self.ready() == "False", what="release evaluated")
        eventually(self.fingerprint, what="the candidate inspected (approvals are bound to it)")

    def fingerprint(self) -> str:
        body = self.custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", self.prod, "releasereadinesses", "payments-api-3-2-0"
        )
        return str(((body.get("status") or {}).get("candidate") or {}).get("fingerprint") or "")

    def ready(self) -> str | None:
        body = self.custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", self.prod, "releasereadinesses", "payments-api-3-2-0"
        )
        return next(
            (c["status"] for c in (body.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), None
        )

    def approve(self) -> None:
        sign(
            self.kubectl,
            ("eng-lead-1", ("eng-leads",)),
            self.prod,
            "payments-api-3-2-0",
            "eng",
            role="engineering-lead",
        )
        eventually(lambda: self.ready() == "True", what="release Ready")

    def rollout(self, obj: dict[str, Any], who: tuple[str, tuple[str, ...]] = DEPLOYER, *args: str) -> Any:
        return self.kubectl.run(
            "apply", *args, "-f", "-", stdin=json.dumps(obj), as_user=who[0], as_groups=who[1], check=False
        )


@pytest.fixture
def gate(kubectl: Kubectl, api_client: client.ApiClient) -> Gate:
    return Gate(kubectl, api_client)


def test_unready_release_is_refused_then_admitted_once_ready(gate: Gate) -> None:
    refused = gate.rollout(deployment(gate.prod))
    assert refused.returncode != 0
    assert 'admission webhook "gate-deployments-enforce.readiness.dev" denied the request' in refused.stderr
    assert f"ReleaseReadiness {gate.prod}/payments-api-3-2-0 is not Ready (ApprovalsMissing)" in refused.stderr
    assert "1 approval(s) missing:\n  - engineering-lead (Missing)" in refused.stderr
    gate.approve()
    admitted = gate.rollout(deployment(gate.prod))
    assert admitted.returncode == 0, admitted.stderr
    assert "deployment.apps/payments-api created" in admitted.stdout


def test_scaling_passes_and_a_changed_image_is_refused(gate: Gate) -> None:
    gate.approve()
    assert gate.rollout(deployment(gate.prod)).returncode == 0
    scaled = gate.rollout(deployment(gate.prod, replicas=5))
    assert scaled.returncode == 0, scaled.stderr
    changed = gate.rollout(deployment(gate.prod, image="registry.example.com/payments/api:3.2.1-hotfix"))
    assert changed.returncode != 0
    assert (
        "container 'api' image registry.example.com/payments/api:3.2.1-hotfix is not the image inspected in "
        f"{gate.candidate} ({IMAGE})"
    ) in changed.stderr


def test_missing_labels_and_missing_release(gate: Gate) -> None:
    unlabelled = gate.rollout(deployment(gate.prod, labels={"app.kubernetes.io/name": "payments-api"}))
    assert "has no app.kubernetes.io/version; add them" in unlabelled.stderr
    other = dict(LABELS, **{"app.kubernetes.io/version": "9.9.9"})
    unknown = gate.rollout(deployment(gate.prod, labels=other))
    assert f"no ReleaseReadiness for payments-api 9.9.9 in namespace {gate.prod}; create one" in unknown.stderr


def test_server_dry_run_gets_the_same_answer_without_side_effects(gate: Gate, kubectl: Kubectl) -> None:
    dry = gate.rollout(deployment(gate.prod), DEPLOYER, "--dry-run=server")
    assert dry.returncode != 0
    assert "is not Ready (ApprovalsMissing)" in dry.stderr
    events = kubectl.run("get", "events", "-n", gate.prod, "--field-selector", "reason=RolloutRefused", "-o", "name")
    assert events.stdout.strip() == ""
    real = gate.rollout(deployment(gate.prod))
    assert real.returncode != 0

    def refusal_events() -> str:
        args = ("get", "events", "-n", gate.prod, "--field-selector", "reason=RolloutRefused", "-o", "name")
        return kubectl.run(*args).stdout.strip()

    eventually(refusal_events, what="a RolloutRefused event")


def test_break_glass_by_an_allowed_user_and_by_anyone_else(gate: Gate, kubectl: Kubectl) -> None:
    glass = deployment(gate.prod, annotations={"readiness.dev/break-glass": "INC-4711 checkout is down"})
    denied = gate.rollout(glass, DEPLOYER)
    assert denied.returncode != 0
    assert (
        "user alice (groups: deployers) may not use the readiness.dev/break-glass annotation; only members of "
        "these groups may: sre-oncall" in denied.stderr
    )
    allowed = gate.rollout(glass, SRE)
    assert allowed.returncode == 0, allowed.stderr
    assert "Warning: readiness gate bypassed by break-glass (INC-4711 checkout is down)" in allowed.stderr
    event = eventually(
        lambda: (
            kubectl.run(
                "get",
                "events",
                "-n",
                gate.prod,
                "--field-selector",
                "reason=BreakGlass",
                "-o",
                "jsonpath={.items[0].message}",
            ).stdout
        ),
        what="a BreakGlass event",
    )
    assert "admitted by break-glass by sam: INC-4711 checkout is down" in event


def test_warn_mode_passes_with_warnings_kubectl_prints(kubectl: Kubectl, api_client: client.ApiClient) -> None:
    gate = Gate(kubectl, api_client, mode="warn")
    proc = gate.rollout(deployment(gate.prod))
    assert proc.returncode == 0, proc.stderr
    assert "Warning: readiness gate (warn mode) would refuse this:" in proc.stderr
    assert "is not Ready (ApprovalsMissing)" in proc.stderr


def test_audit_mode_passes_and_records_the_decision(
    kubectl: Kubectl, api_client: client.ApiClient, operator: OperatorProcess
) -> None:
    gate = Gate(kubectl, api_client, mode="audit")
    proc = gate.rollout(deployment(gate.prod))
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr

    def recorded() -> dict[str, Any] | None:
        for line in operator.logs().splitlines():
            if line.startswith("{") and gate.prod in line and '"decision": "not-ready"' in line:
                return dict(json.loads(line))
        return None

    entry = eventually(recorded, what="the audit decision in the operator's log")
    assert entry["user"] == "alice"
    assert entry["namespace"] == gate.prod


def test_namespaces_without_the_label_never_reach_the_gate(kubectl: Kubectl, namespace: str) -> None:
    proc = kubectl.apply(json.dumps(deployment(namespace)))
    assert proc.returncode == 0


def test_a_bad_release_is_refused_at_apply_with_the_semantic_rule(gate: Gate, kubectl: Kubectl) -> None:
    proc = kubectl.apply(
        json.dumps(
            builders.release(
                "bad-window",
                gate.prod,
                "payments-api",
                "3.2.1",
                gate.checklist,
                gate.candidate,
                window={"start": "2026-12-02T00:00:00Z", "end": "2026-12-01T00:00:00Z"},
            )
        ),
        check=False,
    )
    assert proc.returncode != 0
    assert "window.end must be after window.start" in proc.stderr
    bad_checklist = kubectl.apply(
        json.dumps(
            builders.checklist(
                "dup-ids",
                [
                    {
                        "id": "a",
                        "section": "S",
                        "title": "T",
                        "check": {"workload": "replicas", "params": {"minimum": 2}},
                    }
                ],
            )
        ),
        check=False,
    )
    assert bad_checklist.returncode != 0
    assert (
        "ReadinessChecklist dup-ids: spec.items[0].check.params (a): minimum: Extra inputs are not permitted"
        in bad_checklist.stderr
    )


def test_admission_is_recorded_on_the_release(gate: Gate) -> None:
    gate.approve()
    assert gate.rollout(deployment(gate.prod)).returncode == 0

    def admitted_at() -> str | None:
        body = gate.custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", gate.prod, "releasereadinesses", "payments-api-3-2-0"
        )
        value = (body.get("status") or {}).get("admittedAt")
        return str(value) if value else None

    assert eventually(admitted_at, what="status.admittedAt").endswith("Z")
