"""One real control plane (etcd + kube-apiserver) per test run, with the CRDs installed."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from release_readiness_dev import builders
from release_readiness_dev.harness import BIN, REPO, Kubectl, OperatorProcess, eventually
from release_readiness_dev.localcluster import LocalCluster

# The harness (shared with `make bench`), imported by the test modules from here as before.
__all__ = ["BIN", "REPO", "Kubectl", "OperatorProcess", "eventually"]

FIXTURES = REPO / "tests" / "integration" / "fixtures"
SAMPLE_CRDS = REPO / "deploy" / "samples" / "crds"  # trimmed CRDs of the optional operators (make run installs them)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    directory = tmp_path_factory.mktemp("cluster")
    with LocalCluster(directory) as local:
        print(f"\ncontrol plane up in {local.startup_seconds:.1f}s at {local.server}")
        yield local


@pytest.fixture(scope="session")
def kubectl(cluster: LocalCluster) -> Kubectl:
    return Kubectl(cluster.kubeconfig)


@pytest.fixture(scope="session")
def api_client(cluster: LocalCluster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
    # The optional operators' kinds the checks read, served before the operator starts (Kopf may miss several
    # CRDs created at once while it runs). trivy-operator's stays out: a test installs it late on purpose.
    for name in ("prometheusrules-crd.yaml", "operator-crds.yaml"):
        kubectl.run("apply", "-f", str(SAMPLE_CRDS / name))
        kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(SAMPLE_CRDS / name))


@pytest.fixture
def namespace(api_client: client.ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api_client).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


os.environ.setdefault("KUBECONFIG", "/nonexistent")  # never touch a developer's real cluster by accident


@pytest.fixture(scope="session")
def checklist_installed(kubectl: Kubectl, crds: None) -> None:
    kubectl.run("apply", "--server-side", "-f", str(REPO / "deploy" / "checklists"))


@pytest.fixture(scope="session")
def webhook(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A serving certificate for 127.0.0.1 and the webhook configurations registered with the API server."""
    import json

    from release_readiness.admission.configuration import prepare_local_webhook
    from release_readiness_dev.localcluster import free_port

    cert_dir = tmp_path_factory.mktemp("webhook")
    port = free_port()
    configs = prepare_local_webhook(cert_dir, port)
    Kubectl(cluster.kubeconfig).apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
    return cert_dir, port


@pytest.fixture(scope="session")
def operator(
    cluster: LocalCluster, crds: None, webhook: tuple[Path, int], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    cert_dir, port = webhook
    proc = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log", cert_dir, port).start()
    yield proc
    proc.stop()
    print(f"\noperator log: {proc.log_path}")


@pytest.fixture(scope="session")
def signer_rbac(kubectl: Kubectl) -> None:
    """People may create, read and delete signoffs and create and read releases (as a platform team would grant);
    engineering leads may also read every namespace (so they may create releases looking at any of them)."""
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRole",
                        "metadata": {"name": "readiness-signer"},
                        "rules": [
                            {
                                "apiGroups": ["readiness.dev"],
                                "resources": ["releasesignoffs"],
                                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                            },
                            {
                                "apiGroups": ["readiness.dev"],
                                "resources": ["releasereadinesses"],
                                "verbs": ["get", "list", "watch", "create"],
                            },
                        ],
                    },
                    {
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRoleBinding",
                        "metadata": {"name": "readiness-signers"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": "readiness-signer",
                        },
                        "subjects": [
                            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g}
                            for g in ("eng-leads", "devops-leads", "developers", "system:serviceaccounts:ci")
                        ],
                    },
                    {
                        # Release creators must be able to read the candidate namespace (a SubjectAccessReview at
                        # creation). No controller manager fills the aggregated `view` role here, so: our own.
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRole",
                        "metadata": {"name": "deployment-reader"},
                        "rules": [
                            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]}
                        ],
                    },
                    {
                        # Engineering leads may read every namespace here; developers may not.
                        "apiVersion": "rbac.authorization.k8s.io/v1",
                        "kind": "ClusterRoleBinding",
                        "metadata": {"name": "eng-leads-read-deployments"},
                        "roleRef": {
                            "apiGroup": "rbac.authorization.k8s.io",
                            "kind": "ClusterRole",
                            "name": "deployment-reader",
                        },
                        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "eng-leads"}],
                    },
                ],
            }
        )
    )


# -- playing the controllers and the people ------------------------------------------------------------------
# No controller-manager runs on the test control plane: tests write workload status themselves.


def set_status(kubectl: Kubectl, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    kubectl.run(
        "patch",
        kind,
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def roll_out(kubectl: Kubectl, namespace: str, name: str, replicas: int = 2, available: int | None = None) -> None:
    """Play the deployment controller: the current generation fully updated, `available` pods available."""
    generation = int(
        kubectl.run("get", "deployment", name, "-n", namespace, "-o", "jsonpath={.metadata.generation}").stdout
    )
    set_status(
        kubectl,
        "deployment",
        namespace,
        name,
        {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas if available is None else available,
        },
    )


CI_BOT = ("system:serviceaccount:ci:ci-bot", ("system:serviceaccounts", "system:serviceaccounts:ci"))


def apply_as_ci(kubectl: Kubectl, *objects: dict[str, Any]) -> None:
    """CI (the identity the smokeTests check trusts by default) applies the suite Jobs: only its Jobs count."""
    rbac = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "ci-suite-runner"},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "create", "patch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "ci-suite-runners"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "ci-suite-runner"},
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:serviceaccounts:ci"}
            ],
        },
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}))
    body = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    kubectl.apply(body, as_user=CI_BOT[0], as_groups=CI_BOT[1])


def complete_job(kubectl: Kubectl, namespace: str, name: str) -> None:
    """Play the job controller: the Job succeeded."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    set_status(
        kubectl,
        "job",
        namespace,
        name,
        {
            "succeeded": 1,
            "startTime": now,
            "completionTime": now,
            "conditions": [
                {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
                {"type": "Complete", "status": "True", "lastTransitionTime": now},
            ],
        },
    )


Person = tuple[str, tuple[str, ...]]


def sign(
    kubectl: Kubectl,
    who: Person,
    namespace: str,
    release: str,
    name: str | None = None,
    check: bool = True,
    **spec: Any,
) -> subprocess.CompletedProcess[str]:
    """Create a ReleaseSignoff as `who` (impersonated): the webhook stamps them as the signer."""
    body = builders.signoff(namespace, release, name, **spec)
    return kubectl.run("create", "-f", "-", stdin=json.dumps(body), as_user=who[0], as_groups=who[1], check=check)
