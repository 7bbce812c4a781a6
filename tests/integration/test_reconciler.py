"""The running operator keeps release status true as the cluster changes (real API server, real operator)."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from tests.integration.conftest import (
    BIN,
    SAMPLE_CRDS,
    Kubectl,
    OperatorProcess,
    apply_as_ci,
    complete_job,
    eventually,
    roll_out,
)

pytestmark = pytest.mark.usefixtures("operator")

LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}


class Release:
    """A candidate namespace, a one-or-more-item checklist and a release watching it."""

    def __init__(self, kubectl: Kubectl, api: client.ApiClient, checks: dict[str, dict[str, Any]]) -> None:
        self.kubectl = kubectl
        self.custom = client.CustomObjectsApi(api)
        suffix = uuid.uuid4().hex[:6]
        self.candidate = f"stg-{suffix}"
        self.prod = f"prod-{suffix}"
        self.checklist = f"cl-{suffix}"
        self.name = "payments-api-3.2.0"
        for ns in (self.candidate, self.prod):
            kubectl.run("create", "namespace", ns)
        self.apply(builders.checklist(self.checklist, checks))

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}))

    def create(self) -> None:
        self.apply(builders.release(self.name, self.prod, "payments-api", "3.2.0", self.checklist, self.candidate))

    def get(self) -> dict[str, Any]:
        body: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", self.prod, "releasereadinesses", self.name
        )
        return body

    def item(self, item_id: str) -> dict[str, Any]:
        for it in (self.get().get("status") or {}).get("items") or []:
            if it["id"] == item_id:
                return dict(it)
        return {}

    def wait_item(self, item_id: str, state: str, timeout: float = 30) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            it = self.item(item_id)
            return it if it.get("state") == state else None

        result: dict[str, Any] = eventually(reached, timeout=timeout, what=f"item {item_id} to be {state}")
        return result

    def condition(self, type_: str) -> dict[str, Any]:
        for c in (self.get().get("status") or {}).get("conditions") or []:
            if c["type"] == type_:
                return dict(c)
        return {}


@pytest.fixture
def make_release(kubectl: Kubectl, api_client: client.ApiClient) -> Any:
    def make(checks: dict[str, dict[str, Any]]) -> Release:
        return Release(kubectl, api_client, checks)

    return make


def test_memory_limit_added_turns_the_item_green(make_release: Any) -> None:
    rel = make_release({"limits": {"workload": "resourceLimits"}})
    no_limit = builders.probed_container(
        resources={"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1"}}
    )
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[no_limit]))
    rel.create()
    failed = rel.wait_item("limits", "Failed")
    assert failed["message"] == (
        f"deployment {rel.candidate}/payments-api: container 'api' has no memory limit "
        "(spec.template.spec.containers[0].resources.limits.memory)"
    )
    started = time.monotonic()
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[builders.probed_container()]))
    rel.wait_item("limits", "Passed")
    print(f"\nchange to status: {time.monotonic() - started:.2f}s")


def test_probes_network_policy_pdb_hpa_service(make_release: Any) -> None:
    rel = make_release(
        {
            "liveness": {"workload": "livenessProbe"},
            "netpol": {"workload": "networkPolicy"},
            "pdb": {"workload": "podDisruptionBudget"},
            "hpa": {"workload": "autoscaling"},
            "svc": {"workload": "service"},
            "replicas": {"workload": "replicas", "params": {"min": 3}},
        }
    )
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[builders.probed_container(livenessProbe=None)]))
    rel.create()
    for item_id in ("liveness", "netpol", "pdb", "hpa", "svc", "replicas"):
        rel.wait_item(item_id, "Failed")
    selector = {"matchLabels": {"app.kubernetes.io/name": "payments-api"}}
    rel.apply(
        builders.deployment(namespace=rel.candidate, containers=[builders.probed_container()], replicas=3),
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "payments-api", "namespace": rel.candidate},
            "spec": {"podSelector": selector, "policyTypes": ["Ingress", "Egress"]},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "payments-api", "namespace": rel.candidate},
            "spec": {"selector": selector, "maxUnavailable": 1},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "payments-api", "namespace": rel.candidate},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "payments-api"},
                "minReplicas": 3,
                "maxReplicas": 6,
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "payments-api", "namespace": rel.candidate},
            "spec": {"selector": {"app.kubernetes.io/name": "payments-api"}, "ports": [{"port": 80}]},
        },
    )
    for item_id in ("liveness", "netpol", "pdb", "hpa", "svc", "replicas"):
        rel.wait_item(item_id, "Passed")


def test_security_context_secrets_and_image_tag(make_release: Any) -> None:
    rel = make_release(
        {
            "secctx": {"workload": "securityContext"},
            "secrets": {"workload": "noHardcodedSecrets"},
            "tag": {"workload": "imageTagPinned"},
        }
    )
    rel.apply(
        builders.deployment(
            namespace=rel.candidate,
            containers=[
                builders.probed_container(
                    image="registry.example.com/payments/api:latest", env=[{"name": "DB_PASSWORD", "value": "hunter2"}]
                )
            ],
        )
    )
    rel.create()
    assert "may run as root" in rel.wait_item("secctx", "Failed")["message"]
    assert "DB_PASSWORD" in rel.wait_item("secrets", "Failed")["message"]
    assert "uses latest" in rel.wait_item("tag", "Failed")["message"]
    restricted = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    rel.apply(
        builders.deployment(
            namespace=rel.candidate,
            containers=[
                builders.probed_container(
                    securityContext=restricted,
                    env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
                )
            ],
        )
    )
    for item_id in ("secctx", "secrets", "tag"):
        rel.wait_item(item_id, "Passed")


def test_rollout_and_smoke_tests_follow_status(make_release: Any, kubectl: Kubectl) -> None:
    rel = make_release({"rollout": {"workload": "rolloutHealthy"}, "smoke": {"workload": "smokeTests"}})
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[builders.probed_container()]))
    rel.create()
    rel.wait_item("rollout", "Pending")
    rel.wait_item("smoke", "Pending")
    roll_out(kubectl, rel.candidate, "payments-api", available=1)
    assert "1/2 replicas available" in rel.wait_item("rollout", "Failed")["message"]
    roll_out(kubectl, rel.candidate, "payments-api")
    rel.wait_item("rollout", "Passed")
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": "smoke-3-2-0",
            "namespace": rel.candidate,
            "labels": {**LABELS, "readiness.dev/suite": "smoke"},
        },
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "smoke", "image": "curl:8"}]}}
        },
    }
    apply_as_ci(kubectl, job)
    complete_job(kubectl, rel.candidate, "smoke-3-2-0")
    rel.wait_item("smoke", "Passed")


def test_tls_certificate_read_only_when_an_ingress_names_it(make_release: Any) -> None:
    rel = make_release({"tls": {"workload": "tlsCertificate", "params": {"minDays": 90}}})
    rel.apply(
        builders.deployment(namespace=rel.candidate, containers=[builders.probed_container()]),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "payments-api", "namespace": rel.candidate},
            "spec": {"selector": {"app.kubernetes.io/name": "payments-api"}, "ports": [{"port": 80}]},
        },
        builders.ingress(rel.candidate, tls=[{"hosts": ["pay.example.com"], "secretName": "pay-tls"}]),
    )
    rel.create()
    assert "pay-tls does not exist" in rel.wait_item("tls", "Failed")["message"]

    rel.apply(builders.tls_secret(rel.candidate, "pay-tls", "pay.example.com", 200)[0])
    # Secrets are not watched: the operator reads the named Secret when it next evaluates (TTL 60s) or
    # when the Ingress changes; touch the Ingress to make it look again now.
    rel.kubectl.run("annotate", "ingress", "payments-api", "-n", rel.candidate, "touched=1")
    rel.wait_item("tls", "Passed", timeout=30)


def test_a_tls_secret_applied_with_kubectl_is_read_without_its_private_key(
    kubectl: Kubectl, api_client: client.ApiClient, namespace: str
) -> None:
    """`kubectl apply` copies a Secret's whole data, the private key too, into its last-applied-configuration
    annotation: the operator's read of it keeps the certificate and only whether a key exists."""
    from release_readiness.kube import KubeClient

    secret, _ = builders.tls_secret(namespace, "pay-tls", "pay.example.com", 200)
    kubectl.apply(json.dumps(secret))
    stored = kubectl.run("get", "secret", "pay-tls", "-n", namespace, "-o", "json").stdout
    key = secret["data"]["tls.key"]
    assert key in stored, "the API server keeps the key in the annotation (what this test guards against)"
    read = KubeClient(api_client).read_secret(namespace, "pay-tls")
    assert read is not None
    assert read["data"] == {"tls.crt": secret["data"]["tls.crt"], "tls.key": "present"}
    assert key not in json.dumps(read)


def test_vulnerability_reports_once_their_crd_is_installed(make_release: Any, kubectl: Kubectl) -> None:
    rel = make_release({"scan": {"workload": "imageScan"}})
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[builders.probed_container()]))
    rel.create()
    assert "trivy-operator not installed" in rel.wait_item("scan", "Pending")["message"]
    kubectl.run("apply", "-f", str(SAMPLE_CRDS / "vulnerabilityreports-crd.yaml"))
    kubectl.run("wait", "--for=condition=Established", "crd/vulnerabilityreports.aquasecurity.github.io")

    def report(critical: int) -> dict[str, Any]:
        return {
            "apiVersion": "aquasecurity.github.io/v1alpha1",
            "kind": "VulnerabilityReport",
            "metadata": {
                "name": "deployment-payments-api-api",
                "namespace": rel.candidate,
                "labels": {
                    "trivy-operator.resource.kind": "Deployment",
                    "trivy-operator.resource.name": "payments-api",
                    "trivy-operator.container.name": "api",
                },
            },
            "report": {"summary": {"criticalCount": critical, "highCount": 0}},
        }

    def apply_report(critical: int) -> bool:
        rel.apply(report(critical))
        return True

    eventually(lambda: apply_report(3), timeout=30, what="VulnerabilityReport accepted")
    # Kopf discovers the new CRD by its periodic API scan and starts watching it.
    assert "3 critical" in rel.wait_item("scan", "Failed", timeout=90)["message"]
    rel.apply(report(0))
    rel.wait_item("scan", "Passed")


def test_kubectl_wait_returns_once_a_workload_only_release_is_ready(make_release: Any, kubectl: Kubectl) -> None:
    rel = make_release({"limits": {"workload": "resourceLimits"}, "readiness": {"workload": "readinessProbe"}})
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[builders.probed_container(readinessProbe=None)]))
    rel.create()
    assert rel.wait_item("readiness", "Failed")
    assert rel.condition("Ready")["status"] == "False"
    assert rel.condition("Reconciling")["status"] == "True"
    waiter = subprocess.Popen(
        [
            str(BIN / "kubectl"),
            f"--kubeconfig={kubectl.kubeconfig}",
            "wait",
            "--for=condition=Ready",
            f"rr/{rel.name}",
            "-n",
            rel.prod,
            "--timeout=60s",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)
    assert waiter.poll() is None, "kubectl wait returned before the release was Ready"
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[builders.probed_container()]))
    out, err = waiter.communicate(timeout=70)
    assert waiter.returncode == 0, err
    assert "condition met" in out
    assert rel.condition("Stalled")["status"] == "False"


def test_status_is_not_rewritten_when_nothing_changes(make_release: Any) -> None:
    rel = make_release({"limits": {"workload": "resourceLimits"}})
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[builders.probed_container()]))
    rel.create()
    rel.wait_item("limits", "Passed")
    time.sleep(2)
    versions = set()
    for _ in range(12):
        versions.add(rel.get()["metadata"]["resourceVersion"])
        time.sleep(0.5)
    assert len(versions) == 1, f"status churned: {len(versions)} resourceVersions in 6s"


def test_missing_checklist_and_candidate_namespace_stall_with_a_fix(
    kubectl: Kubectl, namespace: str, api_client: client.ApiClient
) -> None:
    custom = client.CustomObjectsApi(api_client)
    kubectl.apply(
        json.dumps(builders.release("orphan", namespace, "payments-api", "1.0.0", f"missing-{namespace}", "nowhere"))
    )

    def stalled() -> dict[str, Any] | None:
        body = custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", namespace, "releasereadinesses", "orphan"
        )
        conds = {c["type"]: c for c in (body.get("status") or {}).get("conditions") or []}
        return conds.get("Stalled") if conds.get("Stalled", {}).get("status") == "True" else None

    cond = eventually(stalled, what="Stalled condition")
    assert cond["reason"] == "ChecklistNotFound"
    assert f"ReadinessChecklist 'missing-{namespace}' (spec.checklist) not found" in cond["message"]
    # spec.checklist is fixed at creation: the fix is to create the checklist it names.
    kubectl.apply(json.dumps(builders.checklist(f"missing-{namespace}", {"limits": {"workload": "resourceLimits"}})))
    cond = eventually(
        lambda: (c := stalled()) and c["reason"] == "CandidateNamespaceNotFound" and c,
        what="CandidateNamespaceNotFound",
    )
    assert "candidate namespace 'nowhere' (spec.candidate.namespace) does not exist" in cond["message"]


def test_operator_logs_have_no_tracebacks(operator: OperatorProcess) -> None:
    assert "Traceback" not in operator.logs()
