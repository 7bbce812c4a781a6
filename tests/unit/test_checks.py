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
from release_readiness.suites import SUITE_CREATOR, TTL_CONTROLLER, creator_of, suite_change_errors, suite_stamp
from release_readiness_dev import builders
from release_readiness_dev.builders import LABELS, NOW, NS, good_container, obj, snapshot, stored_deployment

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
    result = run("resourceLimits", None, stored_deployment(containers=[good_container(), sidecar]))
    assert result.state == "Failed"
    assert result.message == (
        f"{REF}: container 'log-shipper' has no memory limit (spec.template.spec.containers[1].resources.limits.memory)"
    )


def test_resource_limits_cover_init_containers_and_respect_params() -> None:
    wl = stored_deployment()
    wl["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate", "image": "m:1", "resources": {}}]
    result = run("resourceLimits", {"resources": ["memory"]}, wl)
    assert result.state == "Failed"
    assert "init container 'migrate' has no memory limit (spec.template.spec.initContainers[0]" in result.message
    assert "cpu" not in result.message


def test_resource_requests() -> None:
    assert run("resourceRequests").state == "Passed"
    c = good_container()
    c["resources"] = {}
    result = run("resourceRequests", None, stored_deployment(containers=[c]))
    assert result.state == "Failed"
    assert "container 'api' has no cpu request" in result.message
    assert "has no memory request" in result.message


@pytest.mark.parametrize("probe", ["livenessProbe", "readinessProbe"])
def test_probes(probe: str) -> None:
    assert run(probe).state == "Passed"
    c = good_container()
    del c[probe]
    result = run(probe, None, stored_deployment(containers=[c]))
    assert result.state == "Failed"
    assert result.message == f"{REF}: container 'api' has no {probe} (spec.template.spec.containers[0].{probe})"


def test_rollout_healthy_states() -> None:
    healthy = {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2}
    assert run("rolloutHealthy", None, stored_deployment(status=healthy)).state == "Passed"
    pending = run("rolloutHealthy", None, stored_deployment(status={"observedGeneration": 0}))
    assert pending.state == "Pending"
    assert "rollout of generation 1 not observed yet" in pending.message
    updating = run("rolloutHealthy", None, stored_deployment(status={"observedGeneration": 1, "updatedReplicas": 1}))
    assert updating.state == "Pending"
    assert "1/2 replicas updated" in updating.message
    down = run("rolloutHealthy", None, stored_deployment(status={**healthy, "availableReplicas": 1}))
    assert down.state == "Failed"
    assert "1/2 replicas available (status.availableReplicas)" in down.message


def test_rollout_healthy_daemonset() -> None:
    ds = stored_deployment(
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


def hpa(min_replicas: int, name: str = "payments-api", max_replicas: int = 6, **extra: Any) -> dict[str, Any]:
    return obj(
        "HorizontalPodAutoscaler",
        f"hpa-{name}-{min_replicas}",
        {
            "scaleTargetRef": {"kind": "Deployment", "name": name},
            "minReplicas": min_replicas,
            "maxReplicas": max_replicas,
        },
        **extra,
    )


CPU_UTILIZATION = {
    "type": "Resource",
    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
}


def test_autoscaling() -> None:
    assert run("autoscaling", None, autoscalers=[hpa(2)]).state == "Passed"
    assert "no HorizontalPodAutoscaler targets it" in run("autoscaling", None, autoscalers=[hpa(2, "x")]).message
    low = run("autoscaling", {"minReplicas": 3}, autoscalers=[hpa(2)])
    assert low.state == "Failed"
    assert "spec.minReplicas is 2, at least 3 required" in low.message


def test_autoscaling_that_cannot_scale_fails() -> None:
    pinned = run("autoscaling", None, autoscalers=[hpa(2, max_replicas=2)])
    assert "spec.maxReplicas 2 leaves no room to scale" in pinned.message
    two = run("autoscaling", None, autoscalers=[hpa(2), hpa(3)])
    assert "all target it and fight" in two.message
    c = good_container()
    del c["resources"]["requests"]["cpu"]
    scaled_on_cpu = hpa(2)
    scaled_on_cpu["spec"]["metrics"] = [CPU_UTILIZATION]
    no_request = run("autoscaling", None, stored_deployment(containers=[c]), autoscalers=[scaled_on_cpu])
    assert "scales on cpu utilization but container(s) api request no cpu" in no_request.message
    assert run("autoscaling", None, autoscalers=[scaled_on_cpu]).state == "Passed"
    inactive = hpa(
        2, status={"conditions": [{"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric"}]}
    )
    result = run("autoscaling", None, autoscalers=[inactive])
    assert result.state == "Failed"
    assert "reports ScalingActive=False: FailedGetResourceMetric" in result.message


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


def tls_secret(
    days: int, hosts: tuple[str, ...] = ("pay.example.com",), valid_from: dt.datetime = NOW - dt.timedelta(days=1)
) -> dict[str, Any]:
    ca = CertificateAuthority()
    pair = ca.issue(
        "pay", hosts=hosts, validity=dt.timedelta(days=days) + (NOW - dt.datetime.now(dt.UTC)), valid_from=valid_from
    )
    return {
        "metadata": {"name": "pay-tls", "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": base64.b64encode(pair.cert_pem).decode(), "tls.key": "present"},
    }


TLS = [{"hosts": ["pay.example.com"], "secretName": "pay-tls"}]


def test_tls_certificate_valid() -> None:
    result = run(
        "tlsCertificate",
        {"minDays": 30},
        services=[svc()],
        ingresses=[builders.ingress(tls=TLS)],
        tls_secrets={"pay-tls": tls_secret(120)},
    )
    assert result.state == "Passed", result.message
    assert "valid for at least 30 days" in result.message


def test_tls_certificate_failures() -> None:
    no_ingress = run("tlsCertificate", None, services=[svc()])
    assert "no Ingress routes to it" in no_ingress.message
    no_tls = run("tlsCertificate", None, services=[svc()], ingresses=[builders.ingress(tls=None)])
    assert "Ingress payments-api has no spec.tls" in no_tls.message
    missing = run("tlsCertificate", None, services=[svc()], ingresses=[builders.ingress(tls=TLS)])
    assert "Secret payments-staging/pay-tls does not exist" in missing.message
    soon = run(
        "tlsCertificate",
        {"minDays": 90},
        services=[svc()],
        ingresses=[builders.ingress(tls=TLS)],
        tls_secrets={"pay-tls": tls_secret(20)},
    )
    assert soon.state == "Failed"
    assert "fewer than 90" in soon.message
    wrong_host = run(
        "tlsCertificate",
        {"minDays": 1},
        services=[svc()],
        ingresses=[builders.ingress(tls=TLS)],
        tls_secrets={"pay-tls": tls_secret(120, ("other.example.com",))},
    )
    assert "does not cover host pay.example.com" in wrong_host.message
    future = run(
        "tlsCertificate",
        None,
        services=[svc()],
        ingresses=[builders.ingress(tls=TLS)],
        tls_secrets={"pay-tls": tls_secret(120, valid_from=NOW + dt.timedelta(days=2))},
    )
    assert "is not valid before 2026-11-29" in future.message
    keyless = tls_secret(120)
    keyless["data"]["tls.key"] = ""
    no_key = run(
        "tlsCertificate",
        None,
        services=[svc()],
        ingresses=[builders.ingress(tls=TLS)],
        tls_secrets={"pay-tls": keyless},
    )
    assert "has no data['tls.key'], so the controller cannot serve it" in no_key.message
    garbage = {"metadata": {"name": "pay-tls"}, "data": {"tls.crt": base64.b64encode(b"nope").decode()}}
    bad = run(
        "tlsCertificate",
        None,
        services=[svc()],
        ingresses=[builders.ingress(tls=TLS)],
        tls_secrets={"pay-tls": garbage},
    )
    assert "tls.crt is not a PEM certificate" in bad.message


def test_tls_certificate_must_serve_every_routed_host() -> None:
    """A certificate for another host (the TLS entry not listing the routed host) does not protect it."""
    other_host = builders.ingress(tls=[{"hosts": ["other.example.com"], "secretName": "pay-tls"}])
    secret = {"pay-tls": tls_secret(120, ("other.example.com",))}
    result = run("tlsCertificate", None, services=[svc()], ingresses=[other_host], tls_secrets=secret)
    assert result.state == "Failed"
    assert "Ingress payments-api has no spec.tls entry for host pay.example.com" in result.message
    upper = builders.ingress(tls=[{"hosts": ["Pay.Example.com"], "secretName": "pay-tls"}])
    upper["spec"]["rules"][0]["host"] = "Pay.Example.com"
    assert (
        run("tlsCertificate", None, services=[svc()], ingresses=[upper], tls_secrets={"pay-tls": tls_secret(120)}).state
        == "Passed"
    )


# -- images -------------------------------------------------------------------------------------------------------


def test_image_tag_pinned() -> None:
    assert run("imageTagPinned").state == "Passed"
    latest = run("imageTagPinned", None, stored_deployment(containers=[good_container(image="reg/api:latest")]))
    assert (
        latest.message
        == f"{REF}: container 'api' image 'reg/api:latest' uses latest (spec.template.spec.containers[0].image)"
    )
    untagged = run("imageTagPinned", None, stored_deployment(containers=[good_container(image="reg:5000/api")]))
    assert "uses no tag" in untagged.message
    digest = run("imageTagPinned", {"requireDigest": True})
    assert "is not pinned by digest" in digest.message
    pinned = good_container(image="reg/api@sha256:" + "a" * 64)
    assert run("imageTagPinned", {"requireDigest": True}, stored_deployment(containers=[pinned])).state == "Passed"


IMAGE = "registry.example.com/payments/api:3.2.0"


def test_image_scan_from_annotation() -> None:
    ok = stored_deployment(template_annotations={"readiness.dev/scan": json.dumps({IMAGE: {"critical": 0, "high": 1}})})
    assert run("imageScan", {"maxHigh": 1}, ok).state == "Passed"
    failed = run("imageScan", {"maxHigh": 0}, ok)
    assert failed.state == "Failed"
    assert (
        "has 0 critical and 1 high vulnerabilities (allowed 0/0, from annotation readiness.dev/scan)" in failed.message
    )
    broken = stored_deployment(template_annotations={"readiness.dev/scan": "critical=0"})
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
    wl = stored_deployment(annotations={"deployment.kubernetes.io/revision": "2"})
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
    result = run("securityContext", None, stored_deployment(containers=[c]))
    at = "spec.template.spec.containers[0].securityContext"
    for text in (
        f"may run as root (set {at}.runAsNonRoot: true)",
        f"allows privilege escalation (set {at}.allowPrivilegeEscalation: false)",
        f"is privileged ({at}.privileged)",
        f"has a writable root filesystem (set {at}.readOnlyRootFilesystem: true)",
    ):
        assert text in result.message
    everything = run("securityContext", None, stored_deployment(containers=[c]))
    assert "(and 1 more)" in everything.message  # capabilities and seccomp are the 5th and 6th problems


def test_security_context_pod_level_and_params() -> None:
    c = good_container()
    c["securityContext"] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["all"]},
    }
    wl = stored_deployment(containers=[c])
    wl["spec"]["template"]["spec"]["securityContext"] = {
        "runAsUser": 1000,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert run("securityContext", None, wl).state == "Passed"
    c2 = good_container()
    c2["securityContext"]["readOnlyRootFilesystem"] = False
    assert (
        run("securityContext", {"readOnlyRootFilesystem": False}, stored_deployment(containers=[c2])).state == "Passed"
    )


def test_no_hardcoded_secrets() -> None:
    c = good_container()
    c["env"] = [
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
    ]
    assert run("noHardcodedSecrets", None, stored_deployment(containers=[c])).state == "Passed"
    c["env"].append({"name": "STRIPE_API_KEY", "value": "sk_live_123"})
    result = run("noHardcodedSecrets", None, stored_deployment(containers=[c]))
    assert result.state == "Failed"
    assert (
        "sets secret-looking env STRIPE_API_KEY to a literal value (spec.template.spec.containers[0].env[2].value)"
        in result.message
    )
    assert "sk_live_123" not in result.message


# -- observability and tests -------------------------------------------------------------------------------------------


def test_metrics_scraped_three_ways() -> None:
    assert "not scraped" in run("metricsScraped").message
    annotated = stored_deployment(template_annotations={"prometheus.io/scrape": "true"})
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
    assert missing_crd.state == "Pending"  # optional component: never Failed for being absent
    assert "install the Prometheus Operator (its PrometheusRule CRD)" in missing_crd.message
    installed = frozenset({"PrometheusRule"})
    none = run("alertRules", None, prometheus_rules=[rule({})], installed=installed)
    assert none.state == "Failed"
    assert "0 alerting rule(s) for payments-api" in none.message
    assert run("alertRules", None, prometheus_rules=[rule(LABELS)], installed=installed).state == "Passed"
    by_expr = rule({}, 'rate(errors{app="payments-api"}[5m]) > 1')
    assert run("alertRules", None, prometheus_rules=[by_expr], installed=installed).state == "Passed"
    other_app = rule({}, 'rate(errors{app="payments-api-legacy"}[5m]) > 1')
    assert run("alertRules", None, prometheus_rules=[other_app], installed=installed).state == "Failed"


def done(kind: str) -> dict[str, Any]:
    return {"conditions": [{"type": kind, "status": "True"}]}


CI_BOT = ("system:serviceaccount:ci:ci-bot", ("system:serviceaccounts", "system:serviceaccounts:ci"))
DEVELOPER = ("dev-1", ("developers",))


def job(
    status: dict[str, Any],
    version: str = "3.2.0",
    suite: str = "smoke",
    created: str = "2026-11-27T10:00:00Z",
    by: tuple[str, tuple[str, ...]] | None = CI_BOT,
) -> dict[str, Any]:
    body = obj(
        "Job",
        f"{suite}-{version}-{created[11:13]}",
        {},
        labels={**LABELS, "app.kubernetes.io/version": version, "readiness.dev/suite": suite},
        status=status,
    )
    body["metadata"]["creationTimestamp"] = created
    if by is not None:  # what the stamp-suite-job webhook writes at creation
        stamp = suite_stamp("CREATE", body, None, by[0], by[1])
        body["metadata"]["annotations"] = {SUITE_CREATOR: stamp}
    return body


def test_smoke_tests() -> None:
    none = run("smokeTests")
    assert none.state == "Pending"
    assert (
        "no Job labelled app.kubernetes.io/name=payments-api,app.kubernetes.io/version=3.2.0,readiness.dev/suite=smoke"
        in none.message
    )
    assert run("smokeTests", None, jobs=[job(done("Complete"))]).state == "Passed"
    assert run("smokeTests", None, jobs=[job(done("Complete"), version="3.1.0")]).state == "Pending"
    assert run("smokeTests", None, jobs=[job(done("Complete"), suite="load")]).state == "Pending"  # another suite
    assert run("smokeTests", None, jobs=[job({"active": 1})]).state == "Pending"
    # succeeded counts pods, not the Job: with completions 3, one succeeded pod is not a passed suite
    assert run("smokeTests", None, jobs=[job({"succeeded": 1, "active": 2})]).state == "Pending"
    failed = run("smokeTests", None, jobs=[job(done("Failed"))])
    assert failed.state == "Failed"
    assert "Job payments-staging/smoke-3.2.0-10 (smoke) failed" in failed.message


def test_smoke_tests_a_failed_run_fails_until_a_newer_run_succeeds_and_every_suite_is_needed() -> None:
    old_pass, new_fail = job(done("Complete")), job(done("Failed"), created="2026-11-27T11:00:00Z")
    assert run("smokeTests", None, jobs=[old_pass, new_fail]).state == "Failed"
    rerun = job({"active": 1}, created="2026-11-27T12:00:00Z")
    running = run("smokeTests", None, jobs=[old_pass, new_fail, rerun])
    assert running.state == "Failed", "a rerun in progress does not hide the failure"
    assert "smoke-3.2.0-11 (smoke) failed: a newer run must succeed (Job payments-staging/smoke-3.2.0-12 has not" in (
        running.message
    )
    same_second = job(done("Complete"), created="2026-11-27T11:00:00Z")
    same_second["metadata"]["name"] = "smoke-zz"
    assert run("smokeTests", None, jobs=[new_fail, same_second]).state == "Failed", "not newer: the failure holds"
    newer_pass = job(done("Complete"), created="2026-11-27T12:00:00Z")
    assert run("smokeTests", None, jobs=[new_fail, newer_pass]).state == "Passed"
    # A developer's later "success" does not clear CI's failure, and their failures do not fail CI's success.
    dev_pass = job(done("Complete"), created="2026-11-27T12:00:00Z", by=DEVELOPER)
    assert run("smokeTests", None, jobs=[new_fail, dev_pass]).state == "Failed"
    dev_fail = job(done("Failed"), created="2026-11-27T13:00:00Z", by=DEVELOPER)
    assert run("smokeTests", None, jobs=[old_pass, dev_fail]).state == "Passed"
    suites = {"suites": ["load-light", "load-heavy"]}
    light = job(done("Complete"), suite="load-light")
    partial = run("smokeTests", suites, jobs=[light])
    assert partial.state == "Pending"
    assert "readiness.dev/suite=load-heavy" in partial.message
    both = run("smokeTests", suites, jobs=[light, job(done("Complete"), suite="load-heavy")])
    assert both.state == "Passed"


def test_smoke_tests_count_only_jobs_the_checklists_creators_made() -> None:
    unstamped = job(done("Complete"), by=None)
    forged = job(done("Complete"), by=None)
    forged["metadata"]["annotations"] = {SUITE_CREATOR: "not json"}
    by_dev = job(done("Complete"), by=DEVELOPER, created="2026-11-27T11:00:00Z")
    for jobs in ([unstamped], [forged], [by_dev]):
        assert run("smokeTests", None, jobs=jobs).state == "Pending"
    ignored = run("smokeTests", None, jobs=[unstamped, by_dev]).message
    assert ignored.startswith(
        "no smoke Job created by groups system:serviceaccounts:ci in payments-staging; ignored: "
        "Job payments-staging/smoke-3.2.0-11 (created by dev-1), Job payments-staging/smoke-3.2.0-10 (its creator "
        "is unknown (not stamped at creation))"
    )
    # The checklist names who runs the suites: a user, or other groups.
    by_user = {"createdBy": {"users": ["dev-1"]}}
    assert run("smokeTests", by_user, jobs=[by_dev]).state == "Passed"
    assert run("smokeTests", by_user, jobs=[job(done("Complete"))]).state == "Pending"
    with pytest.raises(ValueError, match="name at least one user or group"):
        parse_params("smokeTests", {"createdBy": {}})


def test_suite_stamp_is_the_api_servers_word() -> None:
    body = job({}, by=None)
    body["metadata"]["annotations"] = {SUITE_CREATOR: '{"username":"ci","groups":["system:serviceaccounts:ci"]}'}
    stamp = suite_stamp("CREATE", body, None, "dev-1", ("developers", "system:authenticated"))
    assert stamp == '{"username":"dev-1","groups":["developers"]}', "a client-set value is replaced"
    stamped = job({}, by=DEVELOPER)
    # An update keeps the stamp the Job had (whatever the update claims), and it never changes.
    assert suite_stamp("UPDATE", body, stamped, *CI_BOT) == stamped["metadata"]["annotations"][SUITE_CREATOR]
    # A Job labelled by an update: its creator is unknown (its annotations never reached the webhook).
    unlabelled = job({}, by=None)
    del unlabelled["metadata"]["labels"]["readiness.dev/suite"]
    assert suite_stamp("UPDATE", body, unlabelled, *CI_BOT) is None
    assert suite_stamp("UPDATE", unlabelled, stamped, *CI_BOT) is None  # no longer a suite Job: no stamp
    assert creator_of(stamped) == ("dev-1", ("developers",))
    for bad in ("[]", '{"username": 1, "groups": []}', '{"username": "x", "groups": "ci"}'):
        assert creator_of({"metadata": {"annotations": {SUITE_CREATOR: bad}}}) is None


def test_parse_params_reports_bad_values() -> None:
    with pytest.raises(ValueError, match=r"min: Input should be greater than or equal to 1"):
        parse_params("replicas", {"min": 0})


# -- what the audit found: objects that exist but have no effect --------------------------------------------------

READY = {"observedGeneration": 1, "updatedReplicas": 2, "availableReplicas": 2, "readyReplicas": 2}


def test_probe_on_an_undeclared_named_port_never_succeeds() -> None:
    c = good_container()
    c["ports"] = [{"name": "metrics", "containerPort": 9090}]
    c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": "http"}}
    result = run("readinessProbe", None, stored_deployment(containers=[c]))
    assert result.state == "Failed"
    assert "probes port 'http', which the container does not declare (named ports: metrics)" in result.message
    c["ports"].append({"name": "http", "containerPort": 8080})
    assert run("readinessProbe", None, stored_deployment(containers=[c])).state == "Passed"


def test_probe_functional_needs_ready_replicas() -> None:
    assert run("livenessProbe", {"requireReady": True}, stored_deployment(status=READY)).state == "Passed"
    down = run("livenessProbe", {"requireReady": True}, stored_deployment(status={**READY, "availableReplicas": 0}))
    assert down.state == "Failed"
    assert "0/2 replicas available" in down.message
    rolling = run("readinessProbe", {"requireReady": True}, stored_deployment(status={"observedGeneration": 0}))
    assert rolling.state == "Pending"


def test_rollout_past_its_progress_deadline_fails() -> None:
    stuck = {
        "observedGeneration": 1,
        "updatedReplicas": 1,
        "conditions": [
            {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "RS timed out"}
        ],
    }
    result = run("rolloutHealthy", None, stored_deployment(status=stuck))
    assert result.state == "Failed"
    assert "rollout stuck: RS timed out" in result.message


def test_rollout_of_zero_replicas_is_not_healthy() -> None:
    result = run("rolloutHealthy", None, stored_deployment(replicas=0, status={"observedGeneration": 1}))
    assert result.state == "Failed"
    assert "0 replicas wanted" in result.message


def test_health_endpoint() -> None:
    c = good_container()
    c["ports"] = [{"name": "http", "containerPort": 8080}]
    c["readinessProbe"] = {"httpGet": {"path": "/ready", "port": "http"}}
    sidecar = good_container("log-shipper")
    sidecar["readinessProbe"] = {"exec": {"command": ["/bin/true"]}}
    ok = run("healthEndpoint", None, stored_deployment(containers=[c, sidecar], status=READY))
    assert ok.state == "Passed", ok.message
    assert "every replica is Ready" in ok.message
    not_ready = run(
        "healthEndpoint", None, stored_deployment(containers=[c, sidecar], status={**READY, "availableReplicas": 1})
    )
    assert not_ready.state == "Failed"
    tcp = good_container()
    tcp["ports"] = [{"containerPort": 8080}]
    tcp["readinessProbe"] = {"tcpSocket": {"port": 8080}}
    result = run("healthEndpoint", None, stored_deployment(containers=[tcp], status=READY))
    assert result.state == "Failed"
    assert "serves ports but has a tcpSocket readinessProbe, which calls no endpoint" in result.message
    no_probe = good_container()
    del no_probe["readinessProbe"]
    none = run("healthEndpoint", None, stored_deployment(containers=[no_probe], status=READY))
    assert "no container has an httpGet or grpc readinessProbe" in none.message
    grpc = good_container()
    grpc["readinessProbe"] = {"grpc": {"port": 9000}}
    assert run("healthEndpoint", None, stored_deployment(containers=[grpc], status=READY)).state == "Passed"


def test_network_policy_that_allows_everything_isolates_nothing() -> None:
    open_ingress = netpol(["Ingress", "Egress"])
    open_ingress["spec"]["ingress"] = [{}]
    open_ingress["spec"]["egress"] = [{"ports": [{"port": 5432}]}]
    result = run("networkPolicy", None, network_policies=[open_ingress])
    assert result.state == "Failed"
    assert "has a spec.ingress rule with no peers and no ports, which allows all ingress traffic" in result.message
    internet = netpol(["Ingress", "Egress"])
    internet["spec"]["egress"] = [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]
    assert "allows all egress traffic" in run("networkPolicy", None, network_policies=[internet]).message
    fenced = netpol(["Ingress", "Egress"])
    fenced["spec"]["egress"] = [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]
    assert run("networkPolicy", None, network_policies=[fenced]).state == "Passed"
    # A namespace-wide default deny (empty podSelector) selects every pod, and counts.
    deny_all = obj("NetworkPolicy", "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    assert run("networkPolicy", None, network_policies=[deny_all]).state == "Passed"


def test_pdb_selector_semantics_of_policy_v1() -> None:
    everything = obj("PodDisruptionBudget", "all", {"selector": {}, "maxUnavailable": 1})
    assert run("podDisruptionBudget", None, pod_disruption_budgets=[everything]).state == "Passed"
    nothing = obj("PodDisruptionBudget", "none", {"maxUnavailable": 1})
    assert (
        "no PodDisruptionBudget selects its pods"
        in run("podDisruptionBudget", None, pod_disruption_budgets=[nothing]).message
    )
    two = run("podDisruptionBudget", None, pod_disruption_budgets=[pdb(maxUnavailable=1), everything])
    assert two.state == "Failed"
    assert "PodDisruptionBudgets payments-api, all all select its pods; evictions fail" in two.message
    percent = run("podDisruptionBudget", None, pod_disruption_budgets=[pdb(maxUnavailable="0%")])
    assert "maxUnavailable 0 and blocks every drain" in percent.message


def test_service_on_a_port_no_container_declares_has_no_endpoints() -> None:
    c = good_container()
    c["ports"] = [{"name": "http", "containerPort": 8080}]
    bad = svc()
    bad["spec"]["ports"] = [{"port": 80, "targetPort": "web"}]
    result = run("service", None, stored_deployment(containers=[c]), services=[bad])
    assert result.state == "Failed"
    assert "Service payments-api port 80 targets port 'web', which no container declares" in result.message
    bad["spec"]["ports"] = [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]
    assert run("service", None, stored_deployment(containers=[c]), services=[bad]).state == "Passed"
    external = svc()
    external["spec"]["type"] = "ExternalName"
    assert run("service", None, services=[external]).state == "Failed"


def addressed(body: dict[str, Any], ip: str = "203.0.113.7") -> dict[str, Any]:
    body["status"] = {"loadBalancer": {"ingress": [{"ip": ip}]}}
    return body


def web_service(kind: str = "ClusterIP", ports: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    body = svc()
    body["spec"]["type"] = kind
    body["spec"]["ports"] = ports or [{"name": "http", "port": 80, "targetPort": 8080}]
    return body


def test_exposure_needs_a_load_balancer_with_an_address() -> None:
    cluster_ip = run("exposure", None, services=[web_service()])
    assert cluster_ip.state == "Failed"
    assert "a ClusterIP Service is reachable only inside the cluster" in cluster_ip.message
    waiting = run("exposure", None, services=[web_service("LoadBalancer")])
    assert waiting.state == "Pending"
    assert "Service payments-api (type LoadBalancer) has no address yet" in waiting.message
    lb = run("exposure", None, services=[addressed(web_service("LoadBalancer"))])
    assert lb.state == "Passed"
    assert "at 203.0.113.7" in lb.message
    routed = run(
        "exposure", None, services=[web_service()], ingresses=[addressed(builders.ingress(tls=TLS), "lb.example.net")]
    )
    assert routed.state == "Passed"
    assert "via Ingress payments-api at lb.example.net" in routed.message
    wrong_port = builders.ingress(tls=TLS)
    wrong_port["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"number": 8443}
    broken = run("exposure", None, services=[web_service()], ingresses=[addressed(wrong_port)])
    assert broken.state == "Failed"
    assert "routes to Service payments-api port {'number': 8443}, which the Service does not have" in broken.message


def nginx_ingress(tls: list[dict[str, Any]] | None = TLS, **annotations: str) -> dict[str, Any]:
    body = builders.ingress(tls=tls)
    body["spec"]["ingressClassName"] = "nginx"
    body["metadata"]["annotations"] = dict(annotations)
    return body


def test_https_enforced() -> None:
    ok = run("httpsEnforced", None, services=[web_service()], ingresses=[nginx_ingress()])
    assert ok.state == "Passed", ok.message
    off = run(
        "httpsEnforced",
        None,
        services=[web_service()],
        ingresses=[nginx_ingress(**{"nginx.ingress.kubernetes.io/ssl-redirect": "false"})],
    )
    assert "turns the HTTPS redirect off" in off.message
    plain = run("httpsEnforced", None, services=[web_service()], ingresses=[nginx_ingress(None)])
    assert "serves host pay.example.com without TLS (not in spec.tls[].hosts)" in plain.message
    traefik = nginx_ingress()
    traefik["spec"]["ingressClassName"] = "traefik"
    unknown = run("httpsEnforced", None, services=[web_service()], ingresses=[traefik])
    assert unknown.state == "Pending"
    assert "class 'traefik', which is not known to redirect plain HTTP" in unknown.message
    traefik["metadata"]["annotations"] = {"nginx.ingress.kubernetes.io/force-ssl-redirect": "true"}
    assert run("httpsEnforced", None, services=[web_service()], ingresses=[traefik]).state == "Passed"
    assert (
        run("httpsEnforced", {"redirectingClasses": ["traefik"]}, services=[web_service()], ingresses=[traefik]).state
        == "Passed"
    )
    bypass = web_service("LoadBalancer", [{"port": 80, "targetPort": 8080}])
    side_door = run("httpsEnforced", None, services=[bypass], ingresses=[nginx_ingress()])
    assert "(type LoadBalancer) exposes port 80 directly" in side_door.message
    assert "no Ingress routes to it" in run("httpsEnforced", None, services=[web_service()]).message


def test_ingress_rate_limit() -> None:
    limited = nginx_ingress(**{"nginx.ingress.kubernetes.io/limit-rps": "50"})
    ok = run("ingressRateLimit", None, services=[web_service()], ingresses=[limited])
    assert ok.state == "Passed"
    assert "nginx.ingress.kubernetes.io/limit-rps=50" in ok.message
    none = run("ingressRateLimit", None, services=[web_service()], ingresses=[nginx_ingress()])
    assert none.state == "Failed"
    assert "sets no rate limit" in none.message
    zero = nginx_ingress(**{"nginx.ingress.kubernetes.io/limit-rpm": "0"})
    assert (
        "a limit must be a positive integer"
        in run("ingressRateLimit", None, services=[web_service()], ingresses=[zero]).message
    )
    unexposed = run("ingressRateLimit", None, services=[web_service()])
    assert unexposed.state == "Pending"
    assert "no Ingress routes to it" in unexposed.message


def test_exposed_ports() -> None:
    assert run("exposedPorts", None, services=[web_service()]).state == "Passed"
    c = good_container()
    c["ports"] = [{"containerPort": 8080, "hostPort": 8080}]
    wl = stored_deployment(containers=[c])
    wl["spec"]["template"]["spec"]["hostNetwork"] = True
    result = run("exposedPorts", None, wl)
    assert "uses the node's network" in result.message
    assert "opens host port 8080 on its node (spec.template.spec.containers[0].ports[0].hostPort)" in result.message
    node_port = web_service("NodePort", [{"port": 80, "nodePort": 30080, "targetPort": 8080}])
    assert "(type NodePort) opens port 30080 on every node" in run("exposedPorts", None, services=[node_port]).message
    lb = web_service("LoadBalancer", [{"port": 5432, "targetPort": 5432}])
    assert "exposes port 5432, not in [80, 443]" in run("exposedPorts", None, services=[lb]).message


def test_pod_security_admission_is_read_from_the_production_namespace() -> None:
    def psa(prod: dict[str, str] | None, staging: dict[str, str] | None = None, **params: Any) -> Any:
        labels = {"payments-prod": prod, NS: staging}
        return run(
            "podSecurityAdmission",
            params or None,
            production_namespace="payments-prod",
            namespace_labels={k: v for k, v in labels.items() if v is not None},
        )

    enforce = "pod-security.kubernetes.io/enforce"
    assert psa({enforce: "restricted"}).state == "Passed"
    none = psa({"pod-security.kubernetes.io/warn": "restricted"})
    assert none.state == "Failed"
    assert "Namespace payments-prod has no pod-security.kubernetes.io/enforce label" in none.message
    weak = psa({enforce: "baseline"})
    assert "enforces 'baseline', weaker than 'restricted'" in weak.message
    assert psa({enforce: "baseline"}, level="baseline").state == "Passed"
    assert "is not a Pod Security level" in psa({enforce: "strict"}).message
    assert psa(None).state == "Pending"
    candidate = psa({enforce: "restricted"}, {}, candidate=True)
    assert f"Namespace {NS} has no pod-security.kubernetes.io/enforce label" in candidate.message


RULES = frozenset({"PrometheusRule"})


def alerting(*rules: dict[str, Any]) -> dict[str, Any]:
    return obj("PrometheusRule", "alerts", {"groups": [{"name": "g", "rules": list(rules)}]}, labels=dict(LABELS))


def test_alert_coverage() -> None:
    latency = {
        "alert": "Slow",
        "expr": "histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m])) > 0.5",
        "labels": {"severity": "critical"},
    }
    errors = {
        "alert": "Errors",
        "expr": 'rate(http_requests_total{code=~"5.."}[5m]) > 1',
        "labels": {"severity": "page"},
    }
    rules = [alerting(latency, errors)]
    assert (
        run("alertCoverage", {"expr": "_duration_seconds"}, prometheus_rules=rules, installed=RULES).state == "Passed"
    )
    missing = run("alertCoverage", {"expr": "container_memory"}, prometheus_rules=rules, installed=RULES)
    assert missing.state == "Failed"
    assert (
        "none of the 2 alerting rule(s) for payments-api watches 'container_memory' (Slow, Errors)" in missing.message
    )
    severity = run("alertCoverage", {"requireSeverity": True}, prometheus_rules=rules, installed=RULES)
    assert severity.state == "Failed"
    assert "Errors (alerts) has severity 'page'" in severity.message
    assert run("alertCoverage", {"expr": "x"}, prometheus_rules=[], installed=RULES).state == "Failed"
    assert run("alertCoverage", {"expr": "x"}).state == "Pending"


def amc(receivers: list[dict[str, Any]], route: str = "oncall") -> dict[str, Any]:
    return obj("AlertmanagerConfig", "routing", {"route": {"receiver": route}, "receivers": receivers})


def test_alert_routing() -> None:
    installed = frozenset({"AlertmanagerConfig"})
    pager = [{"name": "oncall", "pagerdutyConfigs": [{"routingKey": {"name": "pd", "key": "key"}}]}]
    ok = run("alertRouting", None, alertmanager_configs=[amc(pager)], installed=installed)
    assert ok.state == "Passed"
    assert "routes alerts to 'oncall' (pagerdutyConfigs)" in ok.message
    slack = [{"name": "oncall", "slackConfigs": [{"channel": "#pay"}]}]
    assert run("alertRouting", None, alertmanager_configs=[amc(slack)], installed=installed).state == "Passed"
    paging = {"receiverTypes": ["pagerdutyConfigs"]}
    not_paging = run("alertRouting", paging, alertmanager_configs=[amc(slack)], installed=installed)
    assert not_paging.state == "Failed"
    assert "receiver 'oncall' has no pagerdutyConfigs" in not_paging.message
    blackhole = run("alertRouting", None, alertmanager_configs=[amc([{"name": "oncall"}])], installed=installed)
    assert blackhole.state == "Failed"
    dangling = run("alertRouting", None, alertmanager_configs=[amc(pager, route="nobody")], installed=installed)
    assert "routes to receiver 'nobody', which spec.receivers lacks" in dangling.message
    assert "no AlertmanagerConfig in payments-staging" in run("alertRouting", None, installed=installed).message
    assert run("alertRouting").state == "Pending"


def test_secrets_from_store() -> None:
    c = good_container()
    c["env"] = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "payments-db", "key": "password"}}}]
    c["envFrom"] = [{"secretRef": {"name": "stripe"}}]
    wl = stored_deployment(containers=[c])
    installed = frozenset({"ExternalSecret"})
    db = obj("ExternalSecret", "payments-db", {"target": {"name": "payments-db"}})
    stripe = obj("SealedSecret", "stripe", {})
    ok = run("secretsFromStore", None, wl, external_secrets=[db], sealed_secrets=[stripe], installed=installed)
    assert ok.state == "Passed", ok.message
    assert "payments-db from ExternalSecret payments-db" in ok.message
    missing = run("secretsFromStore", None, wl, external_secrets=[db], installed=installed)
    assert missing.state == "Failed"
    assert (
        "Secret stripe (spec.template.spec.containers[0].envFrom[0].secretRef) is not produced by an ExternalSecret"
        in missing.message
    )
    renamed = obj("ExternalSecret", "db-from-vault", {"target": {"name": "payments-db"}})
    c["envFrom"] = []
    assert (
        run(
            "secretsFromStore", None, stored_deployment(containers=[c]), external_secrets=[renamed], installed=installed
        ).state
        == "Passed"
    )
    assert run("secretsFromStore", None, installed=installed).state == "NotApplicable"
    assert run("secretsFromStore", None, wl).state == "Pending"


def dashboard(
    panels: list[dict[str, Any]] | None, labels: dict[str, str] | None = None, raw: str | None = None
) -> dict[str, Any]:
    spec = {"json": raw if raw is not None else json.dumps({"panels": panels})}
    return obj("GrafanaDashboard", "payments", spec, labels=labels if labels is not None else dict(LABELS))


def test_grafana_dashboard() -> None:
    installed = frozenset({"GrafanaDashboard"})
    row = {"type": "row", "panels": [{"type": "timeseries", "targets": [{"expr": "rate(http_requests_total[5m])"}]}]}
    board = dashboard([row, {"type": "alertlist"}])
    assert run("grafanaDashboard", None, grafana_dashboards=[board], installed=installed).state == "Passed"
    metrics = {"metrics": ["http_requests_total", "http_request_duration_seconds"]}
    partial = run("grafanaDashboard", metrics, grafana_dashboards=[board], installed=installed)
    assert partial.state == "Failed"
    assert "has no panel for http_request_duration_seconds" in partial.message
    assert (
        run("grafanaDashboard", {"panelTypes": ["alertlist"]}, grafana_dashboards=[board], installed=installed).state
        == "Passed"
    )
    assert run("grafanaDashboard", None, grafana_dashboards=[dashboard([])], installed=installed).state == "Failed"
    other = run("grafanaDashboard", None, grafana_dashboards=[dashboard([row], labels={})], installed=installed)
    assert "no GrafanaDashboard labelled app.kubernetes.io/name=payments-api" in other.message
    garbage = run("grafanaDashboard", None, grafana_dashboards=[dashboard(None, raw="{")], installed=installed)
    assert "spec.json is not a dashboard" in garbage.message
    remote = obj("GrafanaDashboard", "payments", {"url": "https://grafana.com/api/dashboards/1"}, labels=dict(LABELS))
    assert run("grafanaDashboard", None, grafana_dashboards=[remote], installed=installed).state == "Pending"
    assert run("grafanaDashboard").state == "Pending"


def test_image_scan_can_refuse_the_self_written_annotation() -> None:
    annotated = stored_deployment(
        template_annotations={"readiness.dev/scan": json.dumps({IMAGE: {"critical": 0, "high": 0}})}
    )
    assert run("imageScan", None, annotated).state == "Passed"
    strict = run("imageScan", {"annotation": False}, annotated)
    assert strict.state == "Pending"
    assert "has no scan result (trivy-operator not installed)" in strict.message


def test_image_scan_ignores_a_report_of_an_earlier_image() -> None:
    report = vuln_report("Deployment", "payments-api", 0, 0)
    report["report"]["artifact"] = {"repository": "payments/api", "tag": "3.1.0"}
    installed = frozenset({"VulnerabilityReport"})
    stale = run("imageScan", {"annotation": False}, vulnerability_reports=[report], installed=installed)
    assert stale.state == "Pending"
    assert "has no scan result (no VulnerabilityReport)" in stale.message
    report["report"]["artifact"]["tag"] = "3.2.0"
    fresh = run("imageScan", {"annotation": False}, vulnerability_reports=[report], installed=installed)
    assert fresh.state == "Passed"


def test_image_scan_of_a_pinned_image_takes_only_a_report_of_that_digest() -> None:
    """Red-team finding 3: a report matched by tag passed after the tag was pushed again with other bytes."""
    digest = "sha256:" + "a" * 64
    container = {**stored_deployment()["spec"]["template"]["spec"]["containers"][0], "image": f"{IMAGE}@{digest}"}
    pinned = stored_deployment(containers=[container])
    report = vuln_report("Deployment", "payments-api", 0, 0)
    report["report"]["artifact"] = {"repository": "payments/api", "tag": "3.2.0", "digest": "sha256:" + "b" * 64}
    installed = frozenset({"VulnerabilityReport"})
    other_bytes = run("imageScan", {"annotation": False}, pinned, vulnerability_reports=[report], installed=installed)
    assert other_bytes.state == "Pending"
    assert "has no scan result (no VulnerabilityReport)" in other_bytes.message
    report["report"]["artifact"]["digest"] = digest
    same = run("imageScan", {"annotation": False}, pinned, vulnerability_reports=[report], installed=installed)
    assert same.state == "Passed"


def velero(kind: str, name: str, spec: dict[str, Any], phase: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "namespace": "velero"}, "spec": spec}
    if phase is not None:
        body["status"] = {"phase": phase}
    return body


def test_backup_schedule() -> None:
    installed = frozenset({"Schedule", "BackupStorageLocation"})

    def backup(schedule: dict[str, Any], bsl_phase: str | None = "Available", **params: Any) -> Any:
        location = velero("BackupStorageLocation", "default", {"default": True}, bsl_phase)
        return run(
            "backupSchedule",
            params or None,
            production_namespace="payments-prod",
            backup_schedules=[schedule],
            backup_locations=[location],
            installed=installed,
        )

    def schedule(phase: str | None = "Enabled", **template: Any) -> dict[str, Any]:
        return velero("Schedule", "nightly", {"schedule": "0 2 * * *", "template": template}, phase)

    ok = backup(schedule(includedNamespaces=["payments-prod"], ttl="720h0m0s"), requireRetention=True)
    assert ok.state == "Passed", ok.message
    assert "Schedule velero/nightly (0 2 * * *) backs up payments-prod to BackupStorageLocation default" in ok.message
    assert backup(schedule()).state == "Passed"  # no includedNamespaces: every namespace
    other = backup(schedule(includedNamespaces=["billing"]))
    assert other.state == "Failed"
    assert "no velero Schedule backs up namespace payments-prod" in other.message
    excluded = backup(schedule(excludedNamespaces=["payments-prod"]))
    assert excluded.state == "Failed"
    paused = schedule()
    paused["spec"]["paused"] = True
    assert "is paused (spec.paused)" in backup(paused).message
    assert "FailedValidation (status.phase), not Enabled" in backup(schedule("FailedValidation")).message
    assert backup(schedule(None)).state == "Pending"
    unavailable = backup(schedule(), "Unavailable")
    assert unavailable.state == "Failed"
    assert "BackupStorageLocation default, which is Unavailable" in unavailable.message
    assert backup(schedule(), None).state == "Pending"
    missing = backup(schedule(storageLocation="offsite"))
    assert "BackupStorageLocation offsite, which does not exist" in missing.message
    no_ttl = backup(schedule(), requireRetention=True)
    assert no_ttl.state == "Failed"
    assert "sets no retention (spec.template.ttl)" in no_ttl.message
    assert run("backupSchedule", None, production_namespace="payments-prod").state == "Pending"


def test_only_a_suite_runs_creator_or_an_admin_deletes_or_relabels_it() -> None:
    ci_run = job(done("Failed"))
    relabelled = job(done("Failed"))
    relabelled["metadata"]["labels"]["app.kubernetes.io/version"] = "0.0.0"
    admins = ("platform-admins",)
    (refused,) = suite_change_errors("DELETE", None, ci_run, *DEVELOPER, admins)
    assert refused == (
        "Job payments-staging/smoke-3.2.0-10 is a smoke suite run by system:serviceaccount:ci:ci-bot: only its "
        "creator or a platform admin may delete it (a deleted failed run would no longer hold the release back)"
    )
    (changed,) = suite_change_errors("UPDATE", relabelled, ci_run, *DEVELOPER, admins)
    assert "may change its labels (metadata.labels say which application, version and suite it tested)" in changed
    assert suite_change_errors("UPDATE", ci_run, ci_run, *DEVELOPER, admins) == []  # labels unchanged
    assert suite_change_errors("DELETE", None, ci_run, *CI_BOT, admins) == []
    assert suite_change_errors("UPDATE", relabelled, ci_run, *CI_BOT, admins) == []
    assert suite_change_errors("DELETE", None, ci_run, "pat", ("platform-admins",), admins) == []
    assert suite_change_errors("DELETE", None, ci_run, TTL_CONTROLLER, ("system:serviceaccounts",), admins) == []
    assert suite_change_errors("UPDATE", relabelled, ci_run, TTL_CONTROLLER, (), admins) != []
    assert suite_change_errors("DELETE", None, job(done("Failed"), by=None), *DEVELOPER, admins) == []  # counts not
