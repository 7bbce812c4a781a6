"""Metrics scraped from the running operator, events, and logs that never carry secrets."""

from __future__ import annotations

import base64
import json
import re
import uuid

import pytest

from release_readiness_dev import builders
from tests.integration.conftest import Kubectl, OperatorProcess, eventually, sign

pytestmark = pytest.mark.usefixtures("operator", "signer_rbac")

LABELS = {"app.kubernetes.io/name": "billing-api", "app.kubernetes.io/version": "2.0.0"}
SECRET_VALUE = "s3cr3t-" + uuid.uuid4().hex
TOKEN = "tok-" + uuid.uuid4().hex
ENV = [{"name": "DB_PASSWORD", "value": SECRET_VALUE}, {"name": "API_TOKEN", "value": TOKEN}]
CONTAINER = {"name": "api", "image": "reg/billing:2.0.0", "env": ENV}


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in a /metrics text, or None when absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_events_and_logs_after_a_release_flow(kubectl: Kubectl, operator: OperatorProcess) -> None:
    suffix = uuid.uuid4().hex[:6]
    stg, prod, checklist = f"stg-{suffix}", f"prod-{suffix}", f"obs-{suffix}"
    kubectl.run("create", "namespace", stg)
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": prod, "labels": {"readiness.dev/gate": "enforce"}},
            }
        )
    )
    kubectl.run(
        "create", "role", "deployer", "--verb=get,create,update,patch", "--resource=deployments.apps", "-n", prod
    )
    kubectl.run("create", "rolebinding", "deployers", "--role=deployer", "--group=sre-oncall", "-n", prod)
    checks = {"secrets": {"workload": "noHardcodedSecrets"}, "tls": {"workload": "tlsCertificate"}}
    approvals = [{"role": "engineering-lead", "groups": ["eng-leads"]}]
    kubectl.apply(json.dumps(builders.checklist(checklist, checks, approvals, section="S")))
    # A TLS Secret whose private key must never reach the logs, named by an Ingress so the operator reads it.
    secret, pair = builders.tls_secret(stg, "billing-tls", "billing.example.com", 90)
    key_line = pair.key_pem.decode().splitlines()[1]
    kubectl.apply(json.dumps(secret))
    kubectl.apply(
        json.dumps(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "Ingress",
                "metadata": {"name": "billing", "namespace": stg},
                "spec": {
                    "tls": [{"hosts": ["billing.example.com"], "secretName": "billing-tls"}],
                    "defaultBackend": {"service": {"name": "billing", "port": {"number": 80}}},
                },
            }
        )
    )
    kubectl.apply(json.dumps(builders.deployment("billing-api", stg, labels=LABELS, containers=[CONTAINER])))
    kubectl.apply(json.dumps(builders.release("billing-api-2.0.0", prod, "billing-api", "2.0.0", checklist, stg)))
    eventually(
        lambda: sample(operator.metrics(), "release_readiness_release_ready", namespace=prod) == 0,
        what="release_readiness_release_ready 0",
    )
    text = operator.metrics()
    assert sample(text, "release_readiness_release_items", namespace=prod, state="Failed") == 2
    assert sample(text, "release_readiness_release_approvals_outstanding", namespace=prod) == 1
    assert sample(text, "release_readiness_release_required_items_outstanding", namespace=prod) == 2
    assert sample(text, "release_readiness_release_not_ready_since_timestamp_seconds", namespace=prod)
    assert sample(text, "release_readiness_build_info") == 1

    refused = kubectl.run(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(builders.deployment("billing-api", prod, labels=LABELS, containers=[CONTAINER])),
        check=False,
    )
    assert refused.returncode != 0
    glass = json.dumps(
        builders.deployment(
            "billing-api",
            prod,
            labels=LABELS,
            containers=[CONTAINER],
            annotations={"readiness.dev/break-glass": "INC-9 billing outage"},
        )
    )
    assert kubectl.run("apply", "-f", "-", stdin=glass, as_user="sam", as_groups=("sre-oncall",)).returncode == 0
    text = operator.metrics()
    assert (
        sample(
            text,
            "release_readiness_admission_requests_total",
            webhook="gate-deployments",
            mode="enforce",
            decision="not-ready",
        )
        >= 1
    )  # type: ignore[operator]
    assert sample(text, "release_readiness_break_glass_total", namespace=prod, release="billing-api-2.0.0") == 1
    assert sample(text, "release_readiness_admission_duration_seconds_count", webhook="gate-deployments") >= 2  # type: ignore[operator]
    assert (sample(text, "release_readiness_reconcile_duration_seconds_count") or 0) > 0

    # An approval shows up in the metrics; deleting the release removes its series. (Approvals are bound to the
    # inspected candidate: wait for it.)
    eventually(
        lambda: (
            kubectl.run(
                "get", "rr", "billing-api-2.0.0", "-n", prod, "-o", "jsonpath={.status.candidate.fingerprint}"
            ).stdout
        ),
        what="the candidate inspected",
    )
    sign(kubectl, ("erin", ("eng-leads",)), prod, "billing-api-2.0.0", role="engineering-lead")
    eventually(
        lambda: sample(operator.metrics(), "release_readiness_release_approvals_outstanding", namespace=prod) == 0,
        what="approvals outstanding 0",
    )
    kubectl.run("delete", "rr", "billing-api-2.0.0", "-n", prod)
    eventually(
        lambda: sample(operator.metrics(), "release_readiness_release_ready", namespace=prod) is None,
        what="the deleted release's series to go away",
    )
    assert sample(operator.metrics(), "release_readiness_release_items", namespace=prod, state="Failed") is None

    # Logs: JSON lines with the admission request uid; no Secret data, key or token anywhere.
    logs = operator.logs()
    gate_lines = [
        json.loads(line)
        for line in logs.splitlines()
        if line.startswith("{") and f'"namespace": "{prod}"' in line and '"decision"' in line
    ]
    assert gate_lines
    assert all(re.fullmatch(r"[0-9a-f-]{36}", entry["admissionUid"]) for entry in gate_lines)
    for secret in (SECRET_VALUE, TOKEN, key_line, "PRIVATE KEY", base64.b64encode(pair.key_pem).decode()[:40]):
        assert secret not in logs, f"a secret reached the operator's log: {secret[:12]}..."
