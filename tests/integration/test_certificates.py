"""Certificate rotation through the real API server, under load: a CA near its end is replaced (added to the
caBundle first), the serving certificate is then issued by the new CA and loaded by the running replica in
place, and not one admission request fails meanwhile."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
import ssl
import threading
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from release_readiness.certificates import CertificateMaterial, Lifetimes, plan, service_hosts
from release_readiness_dev import builders
from release_readiness_dev.localcluster import LocalCluster
from tests.integration.conftest import REPO, Kubectl, eventually
from tests.integration.install import get, helm, run_as_deployed

CHART = REPO / "charts" / "release-readiness"
NS = "release-readiness"
NAME = "release-readiness"
SECRET = f"{NAME}-webhook-tls"


def served_certificate(cluster: LocalCluster, address: str, port: int, ca_bundle: Path) -> bytes:
    """The certificate the replica presents now, asked as the API server asks (its client certificate, the
    Service's name)."""
    context = cluster.webhook_client_context(ca_bundle)
    with (
        socket.create_connection((address, port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=f"{NAME}.{NS}.svc") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def secret_material(kubectl: Kubectl) -> CertificateMaterial:
    material = CertificateMaterial.from_secret_data(get(kubectl, "secret", SECRET, "-n", NS)["data"])
    assert material is not None
    return material


def test_a_rotated_ca_and_certificate_are_served_without_a_restart_or_a_refusal(tmp_path: Path) -> None:
    with LocalCluster(tmp_path / "cluster") as cluster:
        kubectl = Kubectl(cluster.kubeconfig)
        helm("install", NAME, str(CHART), "-n", NS, "--create-namespace", f"--kubeconfig={cluster.kubeconfig}")
        # A CA that becomes due 90 s from now (it is replaced a year before it expires), while the replica serves
        # under load, and a serving certificate due soon after (90 days before it expires).
        due = Lifetimes()
        short = Lifetimes(
            ca_validity=due.ca_renew_before + dt.timedelta(seconds=90),
            serving_validity=due.serving_renew_before + dt.timedelta(seconds=100),
        )
        decided = plan(
            None,
            service_hosts(NAME, NS),
            dt.datetime.now(dt.UTC),
            configurations_trust_current_ca=False,
            lifetimes=short,
        )
        assert decided is not None
        old = decided[0]
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/tls",
            "metadata": {"name": SECRET, "namespace": NS},
            "data": old.secret_data(),
        }
        kubectl.apply(json.dumps(secret))
        # Until the operator's first pass, the configurations trust the old CA only (as after an earlier install).
        bundle = base64.b64encode(old.ca_bundle).decode()
        for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
            hooks = get(kubectl, kind, NAME)["webhooks"]
            patch = [
                {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": bundle}
                for i in range(len(hooks))
            ]
            kubectl.run("patch", kind, NAME, "--type=json", "-p", json.dumps(patch))

        operator = run_as_deployed(cluster, NS, NAME, tmp_path / "op")
        operator.env["RR_WEBHOOK_CERT_CHECK_SECONDS"] = "3"
        # Load: valid checklists created with dryRun through the API server, which calls the checklist webhook
        # (failurePolicy Fail): any TLS failure is an error here.
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        objects = client.CustomObjectsApi(api)
        body = builders.checklist(
            "load",
            [{"id": "a", "section": "S", "title": "A", "check": {"attestation": {"roles": ["x"]}}}],
            [{"role": "x", "title": "X", "groups": ["g"], "items": ["a"]}],
        )
        answered: list[int] = []
        failures: list[str] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                try:
                    objects.create_cluster_custom_object(
                        "readiness.dev", "v1alpha1", "readinesschecklists", body, dry_run="All"
                    )
                    answered.append(1)
                except ApiException as err:
                    failures.append(f"{err.status}: {err.body}")

        operator.start()
        try:
            eventually(
                lambda: objects.create_cluster_custom_object(
                    "readiness.dev", "v1alpha1", "readinesschecklists", body, dry_run="All"
                ),
                timeout=60,
                what="the webhook answering",
            )
            thread = threading.Thread(target=load, daemon=True)
            thread.start()
            eventually(lambda: "new CA" in operator.logs(), timeout=150, interval=1, what="the CA replaced")
            assert answered, "the load ran before the new CA was added to the caBundle"
            ca_file = tmp_path / "bundle.pem"

            def rotated() -> bool:
                material = secret_material(kubectl)
                ca_file.write_bytes(material.ca_bundle)
                return material.tls_crt != old.tls_crt and served_certificate(
                    cluster, operator.env["RR_WEBHOOK_HOST"], operator.webhook_port, ca_file
                ) == ssl.PEM_cert_to_DER_cert(material.tls_crt.decode())

            eventually(rotated, timeout=120, interval=1, what="the new serving certificate served")
            served_at = len(answered)
            eventually(lambda: len(answered) > served_at + 20, timeout=60, what="requests after the rotation")
            stop.set()
            thread.join(timeout=30)
        finally:
            stop.set()
            operator.stop()
        new = secret_material(kubectl)
        assert failures == [], failures[:3]
        bundle_certs = new.ca_bundle.count(b"BEGIN CERTIFICATE")
        assert bundle_certs == 2, "the old CA stays trusted until it expires"
        assert operator.proc is not None
        logs = operator.logs()
        assert "reloaded the webhook serving certificate without a restart" in logs
        assert "Restarting with the renewed SSL certificate files" not in logs
        print(f"\n{len(answered)} admission requests through the API server during the rotation, 0 failed")
