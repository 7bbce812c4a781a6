"""Every workload check of the catalog: its pass and each failure mode, with the message it gives."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest

from release_readiness.api import WORKLOAD_CHECKS
from release_readiness.checks import CATALOG, parse_params, run_workload_check
from release_readiness.pki import CertificateAuthority
from tests.unit.builders import LABELS, NOW, NS, deployment, good_container, obj, snapshot

REF = f"deployment {NS}/payments-api"


def run(name: str, params: dict[str, Any] | None = None, *workloads: dict[str, Any], **related: Any) -> Any:
    return run_workload_check(name, params, snapshot(*workloads, **related))


def test_catalog_matches_the_api_enum() -> None:
    assert set(CATALOG) == set(WORKLOAD_CHECKS)


def test_no_candidate_workloads_is_pending() -> None:
    snap = snapshot()
    snap.workloads = []
    result = run_workload_check("resourceLimits", None, snap)
    assert result.state == "Pending"
    assert f"no candidate workloads found in {NS}" in result.message


def test_invalid_params_fail_with_the_allowed_names() -> None:
    result = run("replicas", {"minimum": 3})
    assert result.state == "Failed"
    assert "minimum: Extra inputs are not permitted" in result.message
    assert "params allowed for replicas: min" in result.message


# -- resources and probes -----------------------------------------------------------------------------


def test_resource_limits_pass_and_name_the_missing_limit() -> None:
    assert run("resourceLimits").state == "Passed"
    sidecar = good_container("log-shipper")
    del sidecar["resources"]["limits"]["memory"]
    result = run("resourceLimits", None, deployment(containers=[good_container(), sidecar]))
    assert result.state == "Failed"
    assert result.message == (
        f"{REF}: container 'log-shipper' has no memory limit (spec.template.spec.containers[1].resources.limits.memory)"
    )


def test_resource_limits_cover_init_containers_and_respect_params() -> None:
    wl = deployment()
    wl["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate", "image": "m:1", "resources": {}}]
    result = run("resourceLimits", {"resources": ["memory"]}, wl)
    assert result.state == "Failed"
    assert "init container 'migrate' has no memory limit (spec.template.spec.initContainers[0]" in result.message
    assert "cpu" not in result.message


def test_resource_requests() -> None:
    assert run("resourceRequests").state == "Passed"
    c = good_container()
    c["resources"] = {}
    result = run("resourceRequests", None, deployment(containers=[c]))
    assert result.state == "Failed"
    assert "container 'api' has no cpu request" in result.message
    assert "has no memory request" in result.message


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_probes(probe: str) -> None:
    assert run(probe).state == "Passed"
    c = good_container()
    del c[probe]
    result = run(probe, None, deployment(containers=[c]))
    assert result.state == "Failed"
    assert result.message == f"{REF}: container 'api' has no {probe} (spec.template.spec.containers[0].{probe})"


def test_rollout_healthy_states() -> None:
    healthy = {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2}
    assert run("rolloutHealthy", None, deployment(status=healthy)).state == "Passed"
    pending = run("rolloutHealthy", None, deployment(status={"observedGeneration": 0}))
    assert pending.state == "Pending"
    assert "rollout of generation 1 not observed yet" in pending.message
    updating = run("rolloutHealthy", None, deployment(status={"observedGeneration": 1, "updatedReplicas": 1}))
    assert updating.state == "Pending"
    assert "1/2 replicas updated" in updating.message
    down = run("rolloutHealthy", None, deployment(status={**healthy, "availableReplicas": 1}))
    assert down.state == "Failed"
    assert "1/2 replicas available (status.availableReplicas)" in down.message


def test_rollout_healthy_daemonset() -> None:
    ds = deployment(
        kind="DaemonSet",
        status={
            "observedGeneration": 1,
            "desiredNumberScheduled": 3,
            "updatedNumberScheduled": 3,
            "numberAvailable": 2,
        },
    )
    result = run("rolloutHealthy", None, ds)
    assert result.state == "Failed"
    assert "daemonset payments-staging/payments-api: 2/3 replicas available" in result.message


# -- network, availability, scaling ---------------------------------------------------------------------


def netpol(types: list[str] | None, selector: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": selector or {"app.kubernetes.io/name": "payments-api"}}}
    if types is not None:
        spec["policyTypes"] = types
    return obj("NetworkPolicy", "payments-api", spec)


def test_network_policy() -> None:
    assert run("networkPolicy", None, network_policies=[netpol(["Ingress", "Egress"])]).state == "Passed"
    none = run("networkPolicy", None, network_policies=[netpol(["Ingress"], {"app": "other"})])
    assert none.state == "Failed"
    assert "no NetworkPolicy in payments-staging selects its pods" in none.message
    ingress_only = run("networkPolicy", None, network_policies=[netpol(["Ingress"])])
    assert ingress_only.state == "Failed"
    assert ingress_only.message == f"{REF}: NetworkPolicy payments-api has no Egress in spec.policyTypes"
    assert run("networkPolicy", {"requireEgress": False}, network_policies=[netpol(None)]).state == "Passed"


def test_replicas() -> None:
    assert run("replicas").state == "Passed"
    result = run("replicas", {"min": 3})
    assert result.state == "Failed"
    assert result.message == f"{REF}: spec.replicas is 2, at least 3 required"


def pdb(**spec: Any) -> dict[str, Any]:
    return obj(
        "PodDisruptionBudget",
        "payments-api",
        {"selector": {"matchLabels": {"app.kubernetes.io/name": "payments-api"}}, **spec},
    )


def test_pod_disruption_budget() -> None:
    assert run("podDisruptionBudget", None, pod_disruption_budgets=[pdb(maxUnavailable=1)]).state == "Passed"
    missing = run("podDisruptionBudget")
    assert missing.state == "Failed"
    assert "no PodDisruptionBudget selects its pods" in missing.message
    blocking = run("podDisruptionBudget", None, pod_disruption_budgets=[pdb(maxUnavailable=0)])
    assert "maxUnavailable 0 and blocks every drain" in blocking.message
    too_high = run("podDisruptionBudget", None, pod_disruption_budgets=[pdb(minAvailable="100%")])
    assert too_high.state == "Failed"
    assert "minAvailable 100% >= 2 replicas blocks every drain" in too_high.message


def hpa(min_replicas: int, name: str = "payments-api") -> dict[str, Any]:
    return obj(
        "HorizontalPodAutoscaler",
        "payments-api",
        {"scaleTargetRef": {"kind": "Deployment", "name": name}, "minReplicas": min_replicas},
    )


def test_autoscaling() -> None:
    assert run("autoscaling", None, autoscalers=[hpa(2)]).state == "Passed"
    assert "no HorizontalPodAutoscaler targets it" in run("autoscaling", None, autoscalers=[hpa(2, "x")]).message
    low = run("autoscaling", {"minReplicas": 3}, autoscalers=[hpa(2)])
    assert low.state == "Failed"
    assert "spec.minReplicas is 2, at least 3 required" in low.message


def svc(selector: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return obj(
        "Service",
        "payments-api",
        {"selector": selector or {"app.kubernetes.io/name": "payments-api"}},
        labels=labels or {"app.kubernetes.io/name": "payments-api"},
    )


def test_service() -> None:
    assert run("service", None, services=[svc()]).state == "Passed"
    result = run("service", None, services=[svc({"app": "other"})])
    assert result.state == "Failed"
    assert "no Service in payments-staging selects its pods" in result.message


# -- TLS ------------------------------------------------------------------------------------------------------


def tls_secret(days: int, hosts: tuple[str, ...] = ("pay.example.com",)) -> dict[str, Any]:
    ca = CertificateAuthority()
    pair = ca.issue("pay", hosts=hosts, validity=dt.timedelta(days=days) + (NOW - dt.datetime.now(dt.UTC)))
    return {
        "metadata": {"name": "pay-tls", "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(pair.cert_pem).decode()},
    }


def ingress(tls: list[dict[str, Any]] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "rules": [
            {
                "host": "pay.example.com",
                "http": {
                    "paths": [
                        {
                            "path": "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": "payments-api", "port": {"number": 80}}},
                        }
                    ]
                },
            }
        ]
    }
    if tls is not None:
        spec["tls"] = tls
    return obj("Ingress", "payments-api", spec)


TLS = [{"hosts": ["pay.example.com"], "secretName": "pay-tls"}]


def test_tls_certificate_valid() -> None:
    result = run(
        "tlsCertificate",
        {"minDays": 30},
        services=[svc()],
        ingresses=[ingress(TLS)],
        tls_secrets={"pay-tls": tls_secret(120)},
    )
    assert result.state == "Passed", result.message
    assert "valid for at least 30 days" in result.message


def test_tls_certificate_failures() -> None:
    no_ingress = run("tlsCertificate", None, services=[svc()])
    assert "no Ingress routes to it" in no_ingress.message
    no_tls = run("tlsCertificate", None, services=[svc()], ingresses=[ingress(None)])
    assert "Ingress payments-api has no spec.tls" in no_tls.message
    missing = run("tlsCertificate", None, services=[svc()], ingresses=[ingress(TLS)])
    assert "Secret payments-staging/pay-tls does not exist" in missing.message
    soon = run(
        "tlsCertificate",
        {"minDays": 90},
        services=[svc()],
        ingresses=[ingress(TLS)],
        tls_secrets={"pay-tls": tls_secret(20)},
    )
    assert soon.state == "Failed"
    assert "fewer than 90" in soon.message
    wrong_host = run(
        "tlsCertificate",
        {"minDays": 1},
        services=[svc()],
        ingresses=[ingress(TLS)],
        tls_secrets={"pay-tls": tls_secret(120, ("other.example.com",))},
    )
    assert "does not cover host pay.example.com" in wrong_host.message
    garbage = {"metadata": {"name": "pay-tls"}, "data": {"tls.crt": base64.b64encode(b"nope").decode()}}
    bad = run("tlsCertificate", None, services=[svc()], ingresses=[ingress(TLS)], tls_secrets={"pay-tls": garbage})
    assert "tls.crt is not a PEM certificate" in bad.message


# -- images -------------------------------------------------------------------------------------------------------


def test_image_tag_pinned() -> None:
    assert run("imageTagPinned").state == "Passed"
    latest = run("imageTagPinned", None, deployment(containers=[good_container(image="reg/api:latest")]))
    assert (
        latest.message
        == f"{REF}: container 'api' image 'reg/api:latest' uses latest (spec.template.spec.containers[0].image)"
    )
    untagged = run("imageTagPinned", None, deployment(containers=[good_container(image="reg:5000/api")]))
    assert "uses no tag" in untagged.message
    digest = run("imageTagPinned", {"requireDigest": True})
    assert "is not pinned by digest" in digest.message
    pinned = good_container(image="reg/api@sha256:" + "a" * 64)
    assert run("imageTagPinned", {"requireDigest": True}, deployment(containers=[pinned])).state == "Passed"


IMAGE = "registry.example.com/payments/api:3.2.0"


def test_image_scan_from_annotation() -> None:
    ok = deployment(template_annotations={"readiness.dev/scan": json.dumps({IMAGE: {"critical": 0, "high": 1}})})
    assert run("imageScan", {"maxHigh": 1}, ok).state == "Passed"
    failed = run("imageScan", {"maxHigh": 0}, ok)
    assert failed.state == "Failed"
    assert (
        "has 0 critical and 1 high vulnerabilities (allowed 0/0, from annotation readiness.dev/scan)" in failed.message
    )
    broken = deployment(template_annotations={"readiness.dev/scan": "critical=0"})
    assert "annotation readiness.dev/scan is not valid JSON" in run("imageScan", None, broken).message


def test_image_scan_missing_is_pending() -> None:
    result = run("imageScan")
    assert result.state == "Pending"
    assert "has no scan result (trivy-operator not installed" in result.message


def vuln_report(owner_kind: str, owner: str, critical: int, high: int) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{owner_kind.lower()}-{owner}-api",
            "namespace": NS,
            "labels": {
                "trivy-operator.resource.kind": owner_kind,
                "trivy-operator.resource.name": owner,
                "trivy-operator.container.name": "api",
            },
        },
        "report": {"summary": {"criticalCount": critical, "highCount": high}},
    }


def test_image_scan_reads_the_current_replicasets_vulnerability_report() -> None:
    wl = deployment(annotations={"deployment.kubernetes.io/revision": "2"})
    rs = [
        {
            "metadata": {
                "name": "payments-api-old",
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "ownerReferences": [{"uid": "uid-payments-api"}],
            }
        },
        {
            "metadata": {
                "name": "payments-api-new",
                "annotations": {"deployment.kubernetes.io/revision": "2"},
                "ownerReferences": [{"uid": "uid-payments-api"}],
            }
        },
    ]
    reports = [vuln_report("ReplicaSet", "payments-api-old", 0, 0), vuln_report("ReplicaSet", "payments-api-new", 2, 0)]
    result = run(
        "imageScan",
        None,
        wl,
        replicasets=rs,
        vulnerability_reports=reports,
        installed=frozenset({"VulnerabilityReport"}),
    )
    assert result.state == "Failed"
    assert "2 critical and 0 high" in result.message
    assert "VulnerabilityReport replicaset-payments-api-new-api" in result.message
    reports[1] = vuln_report("ReplicaSet", "payments-api-new", 0, 0)
    assert run("imageScan", None, wl, replicasets=rs, vulnerability_reports=reports).state == "Passed"


# -- pod security ---------------------------------------------------------------------------------------------------


def test_security_context_pass_and_each_failure() -> None:
    assert run("securityContext").state == "Passed"
    c = good_container()
    c["securityContext"] = {"privileged": True}
    result = run("securityContext", None, deployment(containers=[c]))
    at = "spec.template.spec.containers[0].securityContext"
    for text in (
        f"may run as root (set {at}.runAsNonRoot: true)",
        f"allows privilege escalation (set {at}.allowPrivilegeEscalation: false)",
        f"is privileged ({at}.privileged)",
        f"has a writable root filesystem (set {at}.readOnlyRootFilesystem: true)",
    ):
        assert text in result.message
    everything = run("securityContext", None, deployment(containers=[c]))
    assert "(and 1 more)" in everything.message  # capabilities and seccomp are the 5th and 6th problems


def test_security_context_pod_level_and_params() -> None:
    c = good_container()
    c["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["all"]},
    }
    wl = deployment(containers=[c])
    wl["spec"]["template"]["spec"]["securityContext"] = {
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert run("securityContext", None, wl).state == "Passed"
    c2 = good_container()
    c2["securityContext"]["readOnlyRootFilesystem"] = False
    assert run("securityContext", {"readOnlyRootFilesystem": False}, deployment(containers=[c2])).state == "Passed"


def test_no_hardcoded_secrets() -> None:
    c = good_container()
    c["env"] = [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ]
    assert run("noHardcodedSecrets", None, deployment(containers=[c])).state == "Passed"
    c["env"].append({"name": "STRIPE_API_KEY", "value": "sk_live_123"})
    result = run("noHardcodedSecrets", None, deployment(containers=[c]))
    assert result.state == "Failed"
    assert (
        "sets secret-looking env STRIPE_API_KEY to a literal value (spec.template.spec.containers[0].env[2].value)"
        in result.message
    )
    assert "sk_live_123" not in result.message


# -- observability and tests -------------------------------------------------------------------------------------------


def test_metrics_scraped_three_ways() -> None:
    assert "not scraped" in run("metricsScraped").message
    annotated = deployment(template_annotations={"prometheus.io/scrape": "true"})
    assert run("metricsScraped", None, annotated).state == "Passed"
    pod_monitor = obj("PodMonitor", "pm", {"selector": {"matchLabels": {"app.kubernetes.io/name": "payments-api"}}})
    assert run("metricsScraped", None, pod_monitors=[pod_monitor]).state == "Passed"
    svc_monitor = obj("ServiceMonitor", "sm", {"selector": {"matchLabels": {"app.kubernetes.io/name": "payments-api"}}})
    assert run("metricsScraped", None, services=[svc()], service_monitors=[svc_monitor]).state == "Passed"


def rule(labels: dict[str, str], expr: str = "up == 0") -> dict[str, Any]:
    return obj(
        "PrometheusRule",
        "alerts",
        {"groups": [{"name": "g", "rules": [{"alert": "Down", "expr": expr}]}]},
        labels=labels,
    )


def test_alert_rules() -> None:
    missing_crd = run("alertRules")
    assert "no PrometheusRule CRD in the cluster" in missing_crd.message
    installed = frozenset({"PrometheusRule"})
    none = run("alertRules", None, prometheus_rules=[rule({})], installed=installed)
    assert none.state == "Failed"
    assert "0 alerting rule(s) for payments-api" in none.message
    assert run("alertRules", None, prometheus_rules=[rule(LABELS)], installed=installed).state == "Passed"
    by_expr = rule({}, 'rate(errors{app="payments-api"}[5m]) > 1')
    assert run("alertRules", None, prometheus_rules=[by_expr], installed=installed).state == "Passed"


def job(status: dict[str, Any], version: str = "3.2.0") -> dict[str, Any]:
    return obj("Job", f"smoke-{version}", {}, labels={**LABELS, "app.kubernetes.io/version": version}, status=status)


def test_smoke_tests() -> None:
    none = run("smokeTests")
    assert none.state == "Pending"
    assert "no Job labelled app.kubernetes.io/name=payments-api,app.kubernetes.io/version=3.2.0" in none.message
    assert run("smokeTests", None, jobs=[job({"succeeded": 1})]).state == "Passed"
    assert run("smokeTests", None, jobs=[job({"succeeded": 1}, version="3.1.0")]).state == "Pending"
    assert run("smokeTests", None, jobs=[job({"active": 1})]).state == "Pending"
    failed = run("smokeTests", None, jobs=[job({"failed": 1})])
    assert failed.state == "Failed"
    assert "Job payments-staging/smoke-3.2.0 failed" in failed.message


def test_parse_params_reports_bad_values() -> None:
    with pytest.raises(ValueError, match=r"min: Input should be greater than or equal to 1"):
        parse_params("replicas", {"min": 0})
