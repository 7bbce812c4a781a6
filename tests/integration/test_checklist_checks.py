"""The checks added for honest automation, broken and fixed against the real API server and the running operator.

One release watches one candidate namespace with an item per check (to spare the CPU); each test breaks what its
check reads, waits for the verdict, fixes it, and waits for Passed.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from release_readiness_dev import builders
from release_readiness_dev.builders import LABELS
from tests.integration.conftest import Kubectl, apply_as_ci, complete_job, eventually, roll_out, set_status
from tests.integration.test_reconciler import Release

pytestmark = pytest.mark.usefixtures("operator")

CHECKS: dict[str, dict[str, Any]] = {
    "health": {"workload": "healthEndpoint"},
    "ready": {"workload": "readinessProbe", "params": {"requireReady": True}},
    "psa": {"workload": "podSecurityAdmission"},
    "lb": {"workload": "exposure"},
    "https": {"workload": "httpsEnforced"},
    "ratelimit": {"workload": "ingressRateLimit"},
    "ports": {"workload": "exposedPorts"},
    "netpol": {"workload": "networkPolicy"},
    "service": {"workload": "service"},
    "severity": {"workload": "alertCoverage", "params": {"requireSeverity": True}},
    "routing": {"workload": "alertRouting", "params": {"receiverTypes": ["pagerdutyConfigs"]}},
    "store": {"workload": "secretsFromStore"},
    "dashboard": {"workload": "grafanaDashboard", "params": {"panelTypes": ["alertlist"]}},
    "load": {"workload": "smokeTests", "params": {"suites": ["load-light", "load-heavy"]}},
    "backup": {"workload": "backupSchedule", "params": {"requireRetention": True}},
}
HOST = "pay.stg.example.com"


def api_container() -> dict[str, Any]:
    return builders.probed_container(
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"httpGet": {"path": "/ready", "port": "http"}},
        env=[{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "payments-db", "key": "password"}}}],
    )


def service(ns: str, kind: str = "ClusterIP", target: str = "http") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "payments-api", "namespace": ns},
        "spec": {
            "type": kind,
            "selector": {"app.kubernetes.io/name": "payments-api"},
            "ports": [{"name": "https", "port": 443, "targetPort": target}],
        },
    }


def ingress(ns: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "payments-api", "namespace": ns, "annotations": annotations},
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": [HOST], "secretName": "pay-tls"}],
            "rules": [
                {
                    "host": HOST,
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "payments-api", "port": {"number": 443}}},
                            }
                        ]
                    },
                }
            ],
        },
    }


def custom(api_version: str, kind: str, ns: str, name: str, spec: dict[str, Any], **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": spec,
    }


def until(rel: Release, item_id: str, state: str, text: str) -> dict[str, Any]:
    """Wait for the item to reach `state` with `text` in its message (a state alone may be the previous verdict)."""

    def reached() -> dict[str, Any] | None:
        it = rel.item(item_id)
        return it if it.get("state") == state and text in it.get("message", "") else None

    got: dict[str, Any] = eventually(reached, what=f"item {item_id} {state} with {text!r} (now {rel.item(item_id)})")
    return got


@pytest.fixture(scope="module")
def rel(kubectl: Kubectl, api_client: client.ApiClient) -> Release:
    """The optional operators' CRDs are served (the crds fixture installs them before the operator starts)."""
    release = Release(kubectl, api_client, CHECKS)
    release.apply(
        builders.deployment(namespace=release.candidate, containers=[api_container()]), service(release.candidate)
    )
    release.create()
    return release


def test_health_endpoint_and_probe_readiness_follow_the_pods(rel: Release, kubectl: Kubectl) -> None:
    tcp = api_container()
    tcp["readinessProbe"] = {"tcpSocket": {"port": 8080}}
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[tcp]))
    until(rel, "health", "Failed", "tcpSocket readinessProbe, which calls no endpoint")
    rel.apply(builders.deployment(namespace=rel.candidate, containers=[api_container()]))
    rel.wait_item("ready", "Pending")  # generation not observed: nothing says the probe passes yet
    roll_out(kubectl, rel.candidate, "payments-api", available=1)
    until(rel, "health", "Failed", "1/2 replicas available")
    roll_out(kubectl, rel.candidate, "payments-api")
    rel.wait_item("health", "Passed")
    rel.wait_item("ready", "Passed")


def test_pod_security_admission_is_read_from_the_production_namespace(rel: Release, kubectl: Kubectl) -> None:
    enforce = "pod-security.kubernetes.io/enforce"
    kubectl.run("label", "namespace", rel.prod, f"{enforce}-", "pod-security.kubernetes.io/warn=restricted")
    until(rel, "psa", "Failed", f"Namespace {rel.prod} has no {enforce} label")
    kubectl.run("label", "namespace", rel.prod, f"{enforce}=baseline", "--overwrite")
    until(rel, "psa", "Failed", "enforces 'baseline', weaker than 'restricted'")
    kubectl.run("label", "namespace", rel.prod, f"{enforce}=restricted", "--overwrite")
    rel.wait_item("psa", "Passed")
    # The API server enforces it: a privileged pod is refused in the production namespace.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root", "namespace": rel.prod},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36", "securityContext": {"privileged": True}}]},
    }
    refused = kubectl.run("create", "-f", "-", stdin=json.dumps(pod), check=False)
    assert refused.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in refused.stderr


def test_exposure_https_and_rate_limit_read_services_and_ingresses(rel: Release, kubectl: Kubectl) -> None:
    until(rel, "lb", "Failed", "a ClusterIP Service is reachable only inside the cluster")
    rel.apply(service(rel.candidate, target="web"))  # a port no container declares: no endpoints
    until(rel, "service", "Failed", "targets port 'web', which no container declares")
    rel.apply(service(rel.candidate))
    rel.wait_item("service", "Passed")
    rel.apply(ingress(rel.candidate, **{"nginx.ingress.kubernetes.io/ssl-redirect": "false"}))
    until(rel, "lb", "Pending", "has no address yet")
    until(rel, "https", "Failed", "turns the HTTPS redirect off")
    until(rel, "ratelimit", "Failed", "sets no rate limit")
    rel.apply(ingress(rel.candidate, **{"nginx.ingress.kubernetes.io/limit-rps": "20"}))
    set_status(
        kubectl, "ingress", rel.candidate, "payments-api", {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}
    )
    until(rel, "lb", "Passed", "at 203.0.113.9")
    rel.wait_item("https", "Passed")
    rel.wait_item("ratelimit", "Passed")
    rel.wait_item("ports", "Passed")
    rel.apply(service(rel.candidate, kind="NodePort"))
    until(rel, "ports", "Failed", "(type NodePort) opens port")
    assert "(type NodePort) exposes port 443 directly" not in rel.item("https")["message"]
    rel.apply(service(rel.candidate))
    rel.wait_item("ports", "Passed")


def test_network_policy_allowing_everything_does_not_pass(rel: Release) -> None:
    policy: dict[str, Any] = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "payments-api", "namespace": rel.candidate},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{}],
            "egress": [{"ports": [{"port": 5432}]}],
        },
    }
    rel.apply(policy)
    until(rel, "netpol", "Failed", "which allows all ingress traffic")
    policy["spec"]["ingress"] = [{"ports": [{"port": 8080}]}]
    rel.apply(policy)
    rel.wait_item("netpol", "Passed")


def test_alert_severity_and_routing(rel: Release, kubectl: Kubectl) -> None:
    rules = {
        "groups": [
            {"name": "g", "rules": [{"alert": "PaymentsDown", "expr": "up == 0", "labels": {"severity": "page"}}]}
        ]
    }
    rel.apply(custom("monitoring.coreos.com/v1", "PrometheusRule", rel.candidate, "alerts", rules, **LABELS))
    until(rel, "severity", "Failed", "has severity 'page'")
    rules["groups"][0]["rules"][0]["labels"]["severity"] = "critical"
    rel.apply(custom("monitoring.coreos.com/v1", "PrometheusRule", rel.candidate, "alerts", rules, **LABELS))
    rel.wait_item("severity", "Passed")
    slack = {"route": {"receiver": "team"}, "receivers": [{"name": "team", "slackConfigs": [{"channel": "#pay"}]}]}
    amc = "monitoring.coreos.com/v1alpha1"
    rel.apply(custom(amc, "AlertmanagerConfig", rel.candidate, "routing", slack))
    until(rel, "routing", "Failed", "receiver 'team' has no pagerdutyConfigs")
    pager = {
        "route": {"receiver": "team"},
        "receivers": [{"name": "team", "pagerdutyConfigs": [{"routingKey": {"name": "pd", "key": "k"}}]}],
    }
    rel.apply(custom(amc, "AlertmanagerConfig", rel.candidate, "routing", pager))
    rel.wait_item("routing", "Passed")


def test_secrets_from_the_store_and_dashboards(rel: Release) -> None:
    rel.apply(custom("external-secrets.io/v1", "ExternalSecret", rel.candidate, "other", {"target": {"name": "other"}}))
    until(rel, "store", "Failed", "Secret payments-db")
    es = {"target": {"name": "payments-db"}, "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"}}
    rel.apply(custom("external-secrets.io/v1", "ExternalSecret", rel.candidate, "db", es))
    until(rel, "store", "Passed", "payments-db from ExternalSecret db")
    gd = "grafana.integreatly.org/v1beta1"
    graphs = {"json": json.dumps({"panels": [{"type": "timeseries", "targets": [{"expr": "up"}]}]})}
    rel.apply(custom(gd, "GrafanaDashboard", rel.candidate, "pay", graphs, **LABELS))
    until(rel, "dashboard", "Failed", "has no panel for alertlist")
    alerts = {"json": json.dumps({"panels": [{"type": "alertlist"}]})}
    rel.apply(custom(gd, "GrafanaDashboard", rel.candidate, "pay", alerts, **LABELS))
    rel.wait_item("dashboard", "Passed")


def test_every_load_suite_must_complete(rel: Release, kubectl: Kubectl) -> None:
    def job(suite: str) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": suite, "namespace": rel.candidate, "labels": {**LABELS, "readiness.dev/suite": suite}},
            "spec": {"template": {"spec": {"containers": [builders.probed_container()], "restartPolicy": "Never"}}},
        }

    apply_as_ci(kubectl, job("load-light"))
    complete_job(kubectl, rel.candidate, "load-light")
    until(rel, "load", "Pending", "readiness.dev/suite=load-heavy")
    apply_as_ci(kubectl, job("load-heavy"))
    until(rel, "load", "Pending", "(load-heavy) has not completed yet")
    complete_job(kubectl, rel.candidate, "load-heavy")
    rel.wait_item("load", "Passed")


def test_backup_schedule_of_the_production_namespace(rel: Release, kubectl: Kubectl) -> None:
    """velero's objects live in its own namespace and name the namespaces they back up."""
    velero = f"velero-{rel.prod}"
    kubectl.run("create", "namespace", velero)
    assert "no velero Schedule backs up namespace" in until(rel, "backup", "Failed", rel.prod)["message"]
    location = custom("velero.io/v1", "BackupStorageLocation", velero, "default", {"default": True, "provider": "aws"})
    template: dict[str, Any] = {"includedNamespaces": [rel.prod]}
    schedule = custom("velero.io/v1", "Schedule", velero, "nightly", {"schedule": "0 2 * * *", "template": template})
    rel.apply(location, schedule)
    until(rel, "backup", "Pending", "not validated yet")
    set_status(kubectl, "schedules.velero.io", velero, "nightly", {"phase": "Enabled"})
    set_status(kubectl, "backupstoragelocations.velero.io", velero, "default", {"phase": "Unavailable"})
    until(rel, "backup", "Failed", "BackupStorageLocation default, which is Unavailable")
    set_status(kubectl, "backupstoragelocations.velero.io", velero, "default", {"phase": "Available"})
    until(rel, "backup", "Failed", "sets no retention (spec.template.ttl)")
    template["ttl"] = "720h0m0s"
    rel.apply(schedule)
    until(rel, "backup", "Passed", f"backs up {rel.prod} to BackupStorageLocation default (Available), kept 720h0m0s")
