"""Two operator replicas: every replica answers the webhook; one reconciles, and hands over when stopped."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from release_readiness.admission.configuration import webhook_configurations
from release_readiness.pki import write_serving_certificate
from release_readiness_dev import builders
from release_readiness_dev.localcluster import LocalCluster, free_port
from tests.integration.balancer import Balancer
from tests.integration.conftest import REPO, Kubectl, OperatorProcess, eventually

LABELS = {"app.kubernetes.io/name": "payments-api", "app.kubernetes.io/version": "3.2.0"}


CONTAINER = {"name": "api", "image": "reg/api:3.2.0"}


class Pair:
    def __init__(self, cluster: LocalCluster, tmp: Path, **env: str) -> None:
        self.kubectl = Kubectl(cluster.kubeconfig)
        certs = tmp / "certs"
        ca = write_serving_certificate(certs, ("127.0.0.1",))
        ports = [free_port(), free_port()]
        self.balancer = Balancer(ports).__enter__()
        configs = webhook_configurations(ca, base_url=f"https://127.0.0.1:{self.balancer.port}")
        self.kubectl.run("apply", "--server-side", "-f", str(REPO / "crds"))
        self.kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "-f", str(REPO / "crds"))
        self.kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": configs}))
        self.replicas = [
            OperatorProcess(cluster, tmp / f"operator-{i}.log", certs, port, RR_IDENTITY=f"replica-{i}", **env)
            for i, port in enumerate(ports)
        ]
        # replica-0 starts first and takes the lease; it is also the balancer's first backend.
        self.replicas[0].start()
        eventually(lambda: self.lease_holder() == "replica-0", what="replica-0 to take the lease")
        self.replicas[1].start()
        self.custom = client.CustomObjectsApi(config.new_client_from_config(config_file=str(cluster.kubeconfig)))

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()
        self.balancer.__exit__()

    def lease_holder(self) -> str | None:
        out = self.kubectl.run(
            "get",
            "lease",
            "release-readiness-reconciler",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.holderIdentity}",
            check=False,
        )
        return out.stdout.strip() or None


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("ha")
    with LocalCluster(tmp / "cluster") as cluster:
        p = Pair(cluster, tmp)
        yield p
        p.close()


def test_the_first_replica_holds_the_lease_and_the_second_stands_by(pair: Pair) -> None:
    assert pair.lease_holder() == "replica-0"
    assert "elected: this replica (replica-1)" not in pair.replicas[1].logs()


def test_the_gate_answers_after_one_replica_stops_and_the_other_reconciles(pair: Pair) -> None:
    kubectl = pair.kubectl
    kubectl.run("create", "namespace", "stg")
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": "prod", "labels": {"readiness.dev/gate": "enforce"}},
            }
        )
    )
    kubectl.apply(json.dumps(builders.checklist("ha", {"replicas": {"workload": "replicas", "params": {"min": 3}}})))
    kubectl.apply(json.dumps(builders.deployment(namespace="stg", labels=LABELS, containers=[CONTAINER], replicas=2)))
    kubectl.apply(json.dumps(builders.release("rel", "prod", "payments-api", "3.2.0", "ha", "stg")))
    rollout = json.dumps(builders.deployment(namespace="prod", labels=LABELS, containers=[CONTAINER]))

    def ready() -> str | None:
        body = pair.custom.get_namespaced_custom_object(
            "readiness.dev", "v1alpha1", "prod", "releasereadinesses", "rel"
        )
        return next(
            (c["status"] for c in (body.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), None
        )

    eventually(lambda: ready() == "False", what="evaluated by the leader")
    refused = kubectl.run(
        "apply",
        "-f",
        "-",
        stdin=rollout,
        check=False,
    )
    assert "is not Ready" in refused.stderr

    assert pair.balancer.connections[pair.replicas[1].webhook_port] == 0
    pair.replicas[0].stop()  # the leader and the balancer's first backend
    # The standby answers from its own warm indexes (it watched all along, without reconciling).
    refused_again = kubectl.run(
        "apply",
        "-f",
        "-",
        stdin=rollout,
        check=False,
    )
    assert "is not Ready" in refused_again.stderr, refused_again.stderr
    assert pair.balancer.connections[pair.replicas[1].webhook_port] > 0

    eventually(lambda: pair.lease_holder() == "replica-1", timeout=30, what="the lease to move to replica-1")
    kubectl.apply(json.dumps(builders.deployment(namespace="stg", labels=LABELS, containers=[CONTAINER], replicas=3)))
    eventually(lambda: ready() == "True", timeout=30, what="the new leader to reconcile")
    admitted = kubectl.run(
        "apply",
        "-f",
        "-",
        stdin=rollout,
        check=False,
    )
    assert admitted.returncode == 0, admitted.stderr
