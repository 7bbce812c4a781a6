"""Writes deploy/checklists/pre-production.yaml from the seed document (../shared/pre-production-checklist.md).

Run when the seed changes: copy it to operator/release_readiness/data/, then
`python hack/seed_checklist.py operator/release_readiness/data/pre-production-checklist.md \
    > deploy/checklists/pre-production.yaml`.
Every item keeps the document's order, section and title; CHECKS maps titles to automated checks,
the rest are attested by the role that owns the section.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from release_readiness.seed import parse_seed

# -- PromQL -------------------------------------------------------------------------------------------------
# Series conventions (docs/checklist-coverage.md lists them): the application's own metrics carry
# namespace/app/version labels (as the sample's http_requests_total does); kube-state-metrics runs with
# --metric-labels-allowlist=pods=[app.kubernetes.io/name,app.kubernetes.io/version],
# jobs=[app.kubernetes.io/name,app.kubernetes.io/version,readiness.dev/suite]; blackbox probes carry
# namespace/app and readiness_check=<purpose> labels (static labels of the Probe or scrape config).
# Every windowed query is "and"-ed with the load-test window, so it returns nothing (Pending) when no load test
# ran in the window: never a vacuous pass at idle.

APP = 'namespace="$namespace", app="$application", version="$version"'
POD_OF_RELEASE = (
    'max by (namespace, pod) (kube_pod_labels{namespace="$namespace", label_app_kubernetes_io_name="$application", '
    'label_app_kubernetes_io_version="$version"})'
)


def load_test_running(suite: str = "load.*") -> str:
    """1 while a load-test Job of this version runs (kube-state-metrics), else no series."""
    return (
        f'(sum(kube_job_status_active{{namespace="$namespace"}} * on(namespace, job_name) group_left() '
        f'kube_job_labels{{namespace="$namespace", label_app_kubernetes_io_name="$application", '
        f'label_app_kubernetes_io_version="$version", label_readiness_dev_suite=~"{suite}"}}) > 0)'
    )


def during_load(expr: str, window: str, step: str) -> str:
    """The worst (max) value of `expr` at the moments a load test ran within `window`; empty if none ran."""
    return f"max_over_time(({expr} and on() {load_test_running()})[{window}:{step}])"


def request_rate(rate: str = "5m", errors: bool = False) -> str:
    code = ', code=~"5.."' if errors else ', code!~"5.."'
    return f"sum(rate(http_requests_total{{{APP}{code}}}[{rate}]))"


def p95(rate: str = "5m") -> str:
    return f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{{{APP}}}[{rate}])))"


def error_ratio(rate: str = "5m") -> str:
    errors = f'sum(rate(http_requests_total{{{APP}, code=~"5.."}}[{rate}]))'
    return f"({errors} / sum(rate(http_requests_total{{{APP}}}[{rate}])))"


def throughput(window: str = "24h", step: str = "1m", rate: str = "5m") -> str:
    """The best sustained non-5xx rate the application served while a load test ran (min 500)."""
    return f"max_over_time(({request_rate(rate)} and on() {load_test_running()})[{window}:{step}])"


def sustained(window: str = "24h", hold: str = "1h", step: str = "1m", points: int = 60, rate: str = "5m") -> str:
    """The best rate held for a whole `hold` (every minute of it under a running load test) within `window`."""
    held = f"min_over_time({request_rate(rate)}[{hold}:{step}])"
    loaded = f"(count_over_time({load_test_running()}[{hold}:{step}]) >= {points})"
    return f"max_over_time(({held} and on() {loaded})[{window}:{step}])"


def usage_ratio(window: str = "6h", step: str = "1m", rate: str = "5m") -> str:
    """Peak CPU and memory use / limit of the release's containers while a load test ran (cAdvisor + KSM)."""
    limit = 'kube_pod_container_resource_limits{namespace="$namespace", resource="%s"}'
    memory = (
        f'container_memory_working_set_bytes{{namespace="$namespace", container!=""}} / on(namespace, pod, container) '
        f"max by (namespace, pod, container) ({limit % 'memory'})"
    )
    cpu = (
        f'rate(container_cpu_usage_seconds_total{{namespace="$namespace", container!=""}}[{rate}]) '
        f"/ on(namespace, pod, container) max by (namespace, pod, container) ({limit % 'cpu'})"
    )
    # label_replace keeps the two ratios apart: `or` would drop a container's CPU series behind its memory one.
    memory = f'label_replace({memory}, "resource", "memory", "", "")'
    cpu = f'label_replace({cpu}, "resource", "cpu", "", "")'
    both = f"max(({memory} or {cpu}) * on(namespace, pod) group_left() {POD_OF_RELEASE})"
    return during_load(both, window, step)


def exhaustion(window: str = "6h", step: str = "1m", rate: str = "5m") -> str:
    """Container restarts and OOM kills of the release's pods while a load test ran (KSM + cAdvisor)."""
    restarts = (
        f'sum(increase(kube_pod_container_status_restarts_total{{namespace="$namespace"}}[{rate}]) '
        f"* on(namespace, pod) group_left() {POD_OF_RELEASE})"
    )
    ooms = (
        f'sum(increase(container_oom_events_total{{namespace="$namespace", container!=""}}[{rate}]) '
        f"* on(namespace, pod) group_left() {POD_OF_RELEASE})"
    )
    # No `or vector(0)`: without either exporter's series the sum is empty and the item Pending, not a silent 0.
    return f"max_over_time((({restarts}) + ({ooms}) and on() {load_test_running()})[{window}:{step}])"


def scaled_out(window: str = "24h", step: str = "1m") -> str:
    """How far the HPA scaled the candidate above minReplicas while a load test ran (KSM)."""
    hpa = 'namespace="$namespace", horizontalpodautoscaler="$application"'
    above = (
        f"(max(kube_horizontalpodautoscaler_status_current_replicas{{{hpa}}}) "
        f"- max(kube_horizontalpodautoscaler_spec_min_replicas{{{hpa}}}))"
    )
    return during_load(above, window, step)


def performance(window: str = "6h", step: str = "1m", rate: str = "5m") -> str:
    """1 when, at the worst moment of a load test, p95 <= 0.5 s, throughput >= 500/s and errors <= 0.1% together."""
    targets = (
        f"((({p95(rate)}) <= bool 0.5) * (({request_rate(rate)}) >= bool 500) * (({error_ratio(rate)}) <= bool 0.001))"
    )
    return f"min_over_time(({targets} and on() {load_test_running()})[{window}:{step}])"


def probes(check: str, window: str = "15m", count: int = 1) -> str:
    """Every blackbox probe labelled readiness_check=~check succeeded throughout `window`; `count` of them exist."""
    sel = f'namespace="$namespace", app="$application", readiness_check=~"{check}"'
    return (
        f"min(min_over_time(probe_success{{{sel}}}[{window}])) "
        f"and on() (count(count by (readiness_check, instance) (probe_success{{{sel}}})) >= {count})"
    )


LATENCY = during_load(p95(), "24h", "1m")
ERROR_RATE = during_load(error_ratio(), "24h", "1m")
POST_LATENCY = p95()
POST_ERROR_RATE = error_ratio()
KEY_METRICS = (
    f'count(count by (__name__) ({{__name__=~"http_requests_total|http_request_duration_seconds_bucket", {APP}}}))'
)


def prometheus(query: str, **bounds: Any) -> dict[str, Any]:
    return {"prometheus": {"query": query, **bounds}}


# Evidence is recorded by CI only (its service accounts), never by a person.
EVIDENCE_RECORDED_BY = {"groups": ["system:serviceaccounts:ci"]}


def evidence(key: str, **bounds: Any) -> dict[str, Any]:
    """An evidence item CI records: only CI's service accounts may record it (check.evidence.recordedBy)."""
    return {"evidence": {"key": key, **bounds, "recordedBy": EVIDENCE_RECORDED_BY}}


def workload(name: str, **params: Any) -> dict[str, Any]:
    return {"workload": name, "params": params} if params else {"workload": name}


# Item id -> (check, why it establishes the item). Items not listed are attested by the section's role.
CHECKS: dict[str, tuple[dict[str, Any], str]] = {
    # Code quality & testing
    "all-code-merged-to-main-branch-has-been-reviewed": (
        evidence("unreviewed-commits", max=0),
        "CI counts commits since the last release tag that reached main without a pull request approved by "
        "someone other than the author (Git host API, as OpenSSF Scorecard's Code-Review check).",
    ),
    "all-comments-addressed-before-merge": (
        evidence("prs-merged-with-unresolved-threads", max=0),
        "CI counts pull requests of this release merged with unresolved review threads (Git host API).",
    ),
    "code-follows-project-style-guide": (
        evidence("lint-violations", max=0),
        "The linters and formatter that encode the style guide run in check mode over the release's tree.",
    ),
    "no-deprecated-apis-used": (
        evidence("deprecated-api-usages", max=0),
        "Compiler/linter deprecation diagnostics, plus pluto for Kubernetes APIs, over the release's tree.",
    ),
    "unit-test-coverage": (
        evidence("coverage-percent", min=80),
        "The coverage tool's line coverage of the unit-test run of this commit.",
    ),
    "all-unit-tests-passing": (
        evidence("unit-test-pass-rate-percent", min=100),
        "Passed / run unit tests of this commit; a run of zero tests has no pass rate, so it cannot pass vacuously.",
    ),
    "integration-tests-passing": (
        evidence("integration-pass-rate-percent", min=100),
        "Passed / run integration tests of this commit.",
    ),
    "no-flaky-tests": (
        evidence("flaky-tests", max=0),
        "CI reruns the suites N times on one commit; a test with both outcomes is flaky.",
    ),
    "no-hardcoded-secrets-or-credentials": (
        evidence("secret-scan-findings", max=0),
        "A secret scanner (gitleaks/trufflehog) over the repository history and the image layers: the item is about "
        "the code, which the pod template does not show.",
    ),
    "owasp-top-10-vulnerabilities-checked": (
        evidence("owasp-top10-findings", max=0),
        "SAST with an OWASP Top 10 rule set over the release's code, high and critical findings.",
    ),
    "sql-injection-prevention-verified": (
        evidence("sqli-findings", max=0),
        "Taint-tracking SAST rules for CWE-89 (CodeQL/Semgrep) over the release's code.",
    ),
    "xss-prevention-verified": (
        evidence("xss-findings", max=0),
        "Taint-tracking SAST rules for CWE-79 over the release's code.",
    ),
    "all-secrets-use-secure-storage-vault-secrets-manager": (
        workload("secretsFromStore"),
        "Every Secret the pods read (env, envFrom, volumes, image pulls) is the target of an ExternalSecret or a "
        "SealedSecret, or comes through a secrets-store CSI volume.",
    ),
    "rate-limiting-implemented": (
        workload("ingressRateLimit"),
        "Every Ingress that routes to the pods sets a request-rate limit its controller enforces; without an Ingress "
        "it stays Pending (in-app limits are shown by rate-limiting-tested).",
    ),
    "tls-https-enforced": (
        workload("httpsEnforced"),
        "Every host routed to the pods is in the Ingress's spec.tls, the controller redirects plain HTTP, and no "
        "LoadBalancer/NodePort Service bypasses it on another port.",
    ),
    # Performance
    "load-tests-completed": (
        workload("smokeTests", suites=["load-light", "load-medium", "load-heavy"]),
        "The load-test Jobs of this version (readiness.dev/suite=load-*) completed; k6/Locust exit non-zero when a "
        "threshold fails, so the Job's Complete condition is the test's verdict.",
    ),
    "latency-p95": (
        prometheus(LATENCY, max=0.5),
        "The worst p95 latency of this version while a load test ran in the last 24h; no load test, no answer "
        "(Pending), so idle traffic never passes it.",
    ),
    "throughput": (
        prometheus(throughput(), min=500),
        "The highest non-5xx request rate this version served while a load test ran in the last 24h.",
    ),
    "error-rate": (
        prometheus(ERROR_RATE, max=0.001),
        "The worst 5xx ratio of this version while a load test ran in the last 24h.",
    ),
    "resource-usage-acceptable-cpu-memory": (
        prometheus(usage_ratio(), max=0.8),
        "Measured use, not requests: the peak working set and CPU rate (cAdvisor) of each of the release's "
        "containers over its limit (kube-state-metrics) while a load test ran in the last 6h stays below 80%.",
    ),
    "nplus1-query-problems-resolved": (
        evidence("n-plus-one-detections", max=0),
        "An N+1 detector (Bullet, nplusone, ...) in raise mode during the test suite; only for stacks that have one.",
    ),
    # Database
    "all-migrations-tested-on-staging": (
        workload("smokeTests", suites=["migrate"]),
        "The migration Job of this version (readiness.dev/suite=migrate) completed against the staging database.",
    ),
    "rollback-procedure-tested": (
        evidence("migration-rollback-failures", max=0),
        "CI runs upgrade, downgrade and upgrade again on a staging snapshot.",
    ),
    "no-data-loss-in-migrations": (
        evidence("destructive-migration-statements", max=0),
        "Migration linting (atlas migrate lint / squawk) flags dropped tables, columns and narrowing changes.",
    ),
    "backward-compatibility-maintained": (
        evidence("backward-incompatible-schema-changes", max=0),
        "Migration linting flags renames and drops of what the running version still reads.",
    ),
    "migration-time": (
        evidence("migration-seconds", max=300),
        "The migration's duration on a production-sized staging snapshot.",
    ),
    "database-locks-managed": (
        evidence("lock-risk-migration-findings", max=0),
        "squawk's lock rules: non-concurrent indexes, constraints without NOT VALID, table rewrites, no lock_timeout.",
    ),
    "replication-verified-post-migration": (
        prometheus(
            'max(pg_replication_lag_seconds{namespace="$namespace"} and on(instance) '
            '(pg_replication_is_replica{namespace="$namespace"} == 1))',
            max=30,
        ),
        "postgres_exporter on the replicas: replication lag after the migration is under 30 s; no replica, no "
        "series (Pending).",
    ),
    "data-validation-checks-passed": (
        evidence("data-validation-failures", max=0),
        "The data-quality suite (Great Expectations, dbt test, Soda) over the staging data after the migration.",
    ),
    "consistency-checks-passing": (
        evidence("consistency-check-failures", max=0),
        "pg_amcheck and the application's consistency suite over the staging database.",
    ),
    "foreign-key-constraints-valid": (
        evidence("unvalidated-foreign-keys", max=0),
        "Foreign keys left NOT VALID in pg_constraint after the migration.",
    ),
    "unique-constraints-verified": (
        evidence("invalid-unique-indexes", max=0),
        "Unique indexes left invalid (pg_index.indisvalid false) after the migration.",
    ),
    "max-connections-appropriate-for-load": (
        prometheus(
            during_load(
                'max(sum by (instance) (pg_stat_activity_count{namespace="$namespace"}) / on(instance) '
                'max by (instance) (pg_settings_max_connections{namespace="$namespace"}))',
                "24h",
                "1m",
            ),
            max=0.8,
        ),
        "Peak connections over max_connections (postgres_exporter) while a load test ran stays below 80%.",
    ),
    # Infrastructure
    "docker-image-scanned-for-vulnerabilities": (
        workload("imageScan", maxCritical=0, maxHigh=5, annotation=False),
        "trivy-operator's VulnerabilityReport of each image the candidate runs (of the current ReplicaSet, for that "
        "image) within thresholds; the readiness.dev/scan annotation is not taken: whoever edits the workload can "
        "write it.",
    ),
    "kubernetes-manifests-validated": (
        evidence("manifest-validation-errors", max=0),
        "kubeconform -strict against the target Kubernetes version plus kube-linter over the release's manifests.",
    ),
    "resource-requests-and-limits-set": (
        workload("resourceLimits"),
        "Every container sets cpu and memory limits; the API server defaults a missing request to the limit on "
        "every pod, so both are set.",
    ),
    "health-checks-configured": (
        workload("readinessProbe"),
        "Every container declares a readiness probe on a port it has.",
    ),
    "liveness-probes-functional": (
        workload("livenessProbe", requireReady=True),
        "Every container has a liveness probe on a port it declares and every replica is Ready (a failing liveness "
        "probe restarts the container, which leaves it unready).",
    ),
    "readiness-probes-functional": (
        workload("readinessProbe", requireReady=True),
        "Every container has a readiness probe and every replica is Ready, which the kubelet reports only once the "
        "probe succeeds.",
    ),
    "pod-security-policies-in-place": (
        workload("podSecurityAdmission"),
        "The production namespace carries pod-security.kubernetes.io/enforce=restricted: the API server itself "
        "refuses any pod that breaks the policy.",
    ),
    "load-balancer-configured": (
        workload("exposure"),
        "A LoadBalancer Service or an Ingress sends traffic to the pods on a port the Service has, and its "
        "controller assigned it an address.",
    ),
    "ssl-certificate-valid-and-installed": (
        workload("tlsCertificate", minDays=1),
        "The certificate in the Secret named for each routed host parses, covers the host, has its key, and is "
        "inside its validity period.",
    ),
    "ssl-certificate-90-days": (
        workload("tlsCertificate", minDays=90),
        "The same certificates are valid for at least 90 more days.",
    ),
    "tls-version-appropriate-1-2plus": (
        evidence("tls-protocols-below-1-2-accepted", max=0),
        "sslyze/testssl.sh against the public host: protocols below TLS 1.2 it accepts.",
    ),
    "strong-cipher-suites-configured": (
        evidence("weak-cipher-suites-accepted", max=0),
        "The same scan: cipher suites outside Mozilla's intermediate profile it accepts.",
    ),
    "dns-records-updated": (
        prometheus(probes("dns"), min=1),
        "A blackbox dns probe per public host, whose validate_answer_rrs expects the Ingress's address, succeeded "
        "for 15 minutes.",
    ),
    "network-policies-in-place": (
        workload("networkPolicy"),
        "NetworkPolicies select the pods and restrict both directions (a rule allowing everything does not count); "
        "the CNI must enforce NetworkPolicy.",
    ),
    "backup-storage-configured": (
        workload("backupSchedule"),
        "A velero Schedule that velero validated and that is not paused backs up the production namespace to a "
        "BackupStorageLocation velero reports Available.",
    ),
    "backup-retention-policy-set": (
        workload("backupSchedule", requireRetention=True),
        "The same Schedule sets how long its backups are kept (spec.template.ttl).",
    ),
    "restore-procedures-tested": (
        evidence("restore-drill-age-days", max=30),
        "Days since the last automated restore into a scratch namespace that passed its validation.",
    ),
    # Monitoring
    "prometheus-scraping-configured": (
        workload("metricsScraped"),
        "A ServiceMonitor/PodMonitor or the scrape annotation selects the pods.",
    ),
    "all-key-metrics-being-collected": (
        prometheus(KEY_METRICS, min=2),
        "The series every metric gate of this checklist reads (request counter and latency histogram) exist for "
        "this version.",
    ),
    "metric-retention-policy-set": (
        prometheus("min(prometheus_tsdb_retention_limit_seconds)", min=2592000),
        "The Prometheus that holds the metrics keeps them for at least 30 days.",
    ),
    "no-metric-cardinality-explosion": (
        prometheus(
            'max(scrape_samples_post_metric_relabeling{namespace="$namespace"} * on(namespace, pod) group_left() '
            f"{POD_OF_RELEASE})",
            max=5000,
        ),
        "No scrape of this version's pods returns more than 5000 series.",
    ),
    "query-latency-monitored": (
        workload("alertCoverage", expr="_duration_seconds"),
        "An alerting rule of the application reads its latency histogram.",
    ),
    "error-rates-monitored": (
        workload("alertCoverage", expr='code=~\\"5|status=~\\"5|error'),
        "An alerting rule of the application reads its 5xx or error series.",
    ),
    "resource-usage-monitored": (
        workload("alertCoverage", expr="container_cpu|container_memory|kube_pod_container"),
        "An alerting rule of the application reads container CPU or memory.",
    ),
    "centralized-logging-configured-elk-splunk": (
        workload("smokeTests", suites=["logs"]),
        "The log-query Job of this version (readiness.dev/suite=logs) found its log lines in the central store.",
    ),
    "log-aggregation-working": (
        workload("smokeTests", suites=["logs"]),
        "The same Job: lines written by this version's pods arrived in the central store.",
    ),
    "log-retention-policy-set": (
        evidence("log-retention-days", min=30),
        "CI reads the retention of the application's log stream from the log backend's API.",
    ),
    "alert-rules-configured": (workload("alertRules"), "PrometheusRule alerting rules exist for the application."),
    "alert-severity-levels-defined": (
        workload("alertCoverage", requireSeverity=True),
        "Every alerting rule of the application carries labels.severity of critical, warning or info.",
    ),
    "alert-routing-configured": (
        workload("alertRouting"),
        "An AlertmanagerConfig in the namespace routes its alerts to a receiver with at least one integration.",
    ),
    "escalation-procedures-defined": (
        evidence("escalation-policy-levels", min=2),
        "CI reads the escalation policy of the application's paging service: at least two levels.",
    ),
    "alert-testing-completed": (
        evidence("alert-rule-test-pass-rate-percent", min=100),
        "promtool test rules over the application's rules; zero tests has no pass rate.",
    ),
    "on-call-rotation-established": (
        evidence("oncall-schedule-members", min=2),
        "CI reads the on-call schedule of the application's paging service: at least two people rotate.",
    ),
    "grafana-dashboards-created": (
        workload("grafanaDashboard"),
        "A GrafanaDashboard (grafana-operator) labelled with the application has panels.",
    ),
    "key-metrics-visible": (
        workload("grafanaDashboard", metrics=["http_requests_total", "http_request_duration_seconds"]),
        "A panel of the application's dashboard queries each metric the checklist's gates read.",
    ),
    "alert-status-displayed": (
        workload("grafanaDashboard", panelTypes=["alertlist"]),
        "The application's dashboard has an alert list panel.",
    ),
    "slo-metrics-tracked": (
        prometheus('count(slo:sli_error:ratio_rate5m{sloth_service="$application"})', min=1),
        "Sloth's SLI recording rules for the application produce series.",
    ),
    "authentication-system-working": (
        prometheus(probes("auth-anonymous|auth-token", count=2), min=1),
        "Two blackbox probes held for 15 minutes: an anonymous request to a protected URL gets 401, a test account's "
        "token gets 200.",
    ),
    "no-secrets-in-environment-variables": (
        workload("noHardcodedSecrets"),
        "No secret-looking variable has a literal value in the manifest; the item allows secrets injected into the "
        "container's environment from a Secret.",
    ),
    "all-secrets-in-secure-storage": (
        workload("secretsFromStore"),
        "The same as all-secrets-use-secure-storage-vault-secrets-manager: every Secret the pods read comes from "
        "the store.",
    ),
    "secret-access-logged": (
        evidence("secret-store-audit-devices", min=1),
        "CI lists the secret store's enabled audit devices (vault audit list, or the cloud store's data-access "
        "logging): at least one records every read.",
    ),
    "secret-rotation-policy-in-place": (
        evidence("secrets-without-rotation", max=0),
        "CI asks the secret store for a rotation period on every secret the application's ExternalSecrets read.",
    ),
    "no-unnecessary-open-ports": (
        workload("exposedPorts"),
        "No hostNetwork, hostPort or NodePort; LoadBalancer Services expose only 80 and 443.",
    ),
    "api-specification-openapi-available": (
        evidence("openapi-lint-errors", max=0),
        "The OpenAPI document published for this version passes spectral/openapi-spec-validator.",
    ),
    # Team readiness
    "on-call-on-call-rotation-established": (
        evidence("oncall-schedule-members", min=2),
        "CI reads the on-call schedule of the application's paging service: at least two people rotate.",
    ),
    "on-call-contact-information-verified": (
        evidence("oncall-members-without-contact-method", max=0),
        "CI reads every member of the on-call schedule from the paging service: each has a verified contact method "
        "and a notification rule.",
    ),
    "on-call-escalation-paths-defined": (
        evidence("escalation-policy-levels", min=2),
        "CI reads the escalation policy of the application's paging service: at least two levels.",
    ),
    # Staging validation
    "pagerduty-alerting-system-configured": (
        workload("alertRouting", receiverTypes=["pagerdutyConfigs", "opsgenieConfigs", "victoropsConfigs"]),
        "An AlertmanagerConfig routes the namespace's alerts to a PagerDuty, Opsgenie or VictorOps receiver.",
    ),
    "all-smoke-tests-passing": (
        workload("smokeTests", suites=["smoke"]),
        "CI's newest smoke-test Job of this version (readiness.dev/suite=smoke, created by system:serviceaccounts:ci) "
        "completed, and no CI run failed since (Jobs anyone else creates do not count).",
    ),
    "health-check-endpoint-responding": (
        workload("healthEndpoint"),
        "Each serving container's readiness probe calls an HTTP/gRPC endpoint and every replica is Ready, which the "
        "kubelet reports only once that endpoint answered.",
    ),
    "database-connectivity-verified": (
        prometheus(f"sum(db_client_connection_count{{{APP}}})", min=1),
        "The candidate holds open database connections (OpenTelemetry db.client.connection.count).",
    ),
    "authentication-working": (
        prometheus(probes("auth-anonymous|auth-token", count=2), min=1),
        "The anonymous (401) and token (200) blackbox probes of staging held for 15 minutes.",
    ),
    "core-endpoints-functional": (
        workload("smokeTests", suites=["smoke"]),
        "The smoke suite calls every core endpoint; its Job of this version completed.",
    ),
    "error-handling-working": (
        evidence("api-fuzz-server-errors", max=0),
        "schemathesis against staging: no request, valid or not, gets a 5xx.",
    ),
    "logging-working": (
        workload("smokeTests", suites=["logs"]),
        "The log-query Job found this version's log lines in the central store.",
    ),
    "light-load-test-passed": (
        workload("smokeTests", suites=["load-light"]),
        "The light load-test Job of this version completed (its thresholds held).",
    ),
    "medium-load-test-passed": (
        workload("smokeTests", suites=["load-medium"]),
        "The medium load-test Job of this version completed.",
    ),
    "heavy-load-test-passed": (
        workload("smokeTests", suites=["load-heavy"]),
        "The heavy load-test Job of this version completed.",
    ),
    "sustained-load-testing-completed": (
        prometheus(sustained(), min=500),
        "Within the last 24h, a load test ran for an unbroken hour and the application served at least 500 "
        "non-5xx req/s in every minute of it.",
    ),
    "performance-targets-met": (
        prometheus(performance(), min=1),
        "At every moment of the load tests in the last 6h, p95, throughput and error ratio met their targets together.",
    ),
    "no-resource-exhaustion-observed": (
        prometheus(exhaustion(), max=0),
        "No container of this version restarted or was OOM-killed while a load test ran in the last 6h.",
    ),
    "scalability-verified": (
        prometheus(scaled_out(), min=1),
        "The HorizontalPodAutoscaler named like the application scaled the candidate above its minReplicas while a "
        "load test ran in the last 24h (kube-state-metrics): it scaled, not merely exists.",
    ),
    "third-party-services-responding": (
        prometheus(probes("dependency"), min=1),
        "Blackbox probes of each third-party dependency's endpoint succeeded for 15 minutes.",
    ),
    "external-api-calls-working": (
        prometheus(
            f'sum(rate(http_client_request_duration_seconds_count{{{APP}, error_type!=""}}[1h])) '
            f"/ sum(rate(http_client_request_duration_seconds_count{{{APP}}}[1h]))",
            max=0.01,
        ),
        "Outbound calls (OpenTelemetry http.client.request.duration) failed in under 1% over the last hour; no "
        "calls, no ratio (Pending).",
    ),
    "owasp-zap-scan-completed": (
        evidence("zap-high-alerts", max=0),
        "The ZAP baseline/full report for this version against staging: high alerts.",
    ),
    "ssl-configuration-validated": (
        evidence("ssl-config-violations", max=0),
        "sslyze --mozilla_config=intermediate against the staging host.",
    ),
    "security-headers-verified": (
        evidence("missing-security-header-alerts", max=0),
        "ZAP's header rules (HSTS, X-Content-Type-Options, CSP, anti-clickjacking) on staging.",
    ),
    "security-headers-configured": (
        prometheus(probes("security-headers"), min=1),
        "A blackbox http probe with fail_if_header_not_matches for HSTS, X-Content-Type-Options and CSP held for "
        "15 minutes.",
    ),
    "rate-limiting-tested": (
        evidence("rate-limit-test-failures", max=0),
        "A burst test above the limit expects 429 with Retry-After.",
    ),
    "input-validation-tested": (
        evidence("invalid-input-accepted", max=0),
        "schemathesis negative data: every invalid request must get a 4xx.",
    ),
    # Final approvals (the concrete ones)
    "backup-procedures-tested": (
        evidence("restore-drill-age-days", max=30),
        "Days since the last automated restore drill passed.",
    ),
    "deployment-procedure-validated": (
        workload("imageTagPinned", requireDigest=True),
        "Every image the candidate runs is pinned by digest (image@sha256:...), and the gate admits in production "
        "only the image strings inspected, digest included: the bytes inspected, scanned and approved are the bytes "
        "that run, even if someone pushes the tag again after the approvals.",
    ),
    "vulnerability-scan-passed": (
        workload("imageScan", maxCritical=0, maxHigh=5, annotation=False),
        "The same image scan as docker-image-scanned-for-vulnerabilities.",
    ),
    "no-critical-issues-blocking-release": (
        evidence("open-release-blockers", max=0),
        "CI counts open blocker/critical issues on the release's milestone in the tracker.",
    ),
    # Post-deployment
    "monitor-error-rates": (
        prometheus(POST_ERROR_RATE, max=0.001, **{"for": "1h"}),
        "The 5xx ratio of the admitted version held below 0.1% at every step of its first hour.",
    ),
    "archive-deployment-artifacts": (
        evidence("unarchived-artifacts", max=0),
        "After the rollout CI compares the release's artifact list (chart, SBOM, image digests, signoffs) with the "
        "archive bucket: none missing.",
    ),
    "monitor-performance-metrics": (
        prometheus(POST_LATENCY, max=0.5, **{"for": "4h"}),
        "p95 latency of the admitted version held below 0.5 s at every step of its first four hours.",
    ),
}

# Which role attests the items of a section that no automated check covers.
SECTION_ROLES = {
    "Code Quality & Testing": "engineering-lead",
    "Code Quality & Testing / Code Security": "security-lead",
    "Database & Migrations": "devops-lead",
    "Infrastructure & Deployment": "devops-lead",
    "Monitoring & Observability": "devops-lead",
    "Security & Compliance": "security-lead",
    "Documentation": "engineering-lead",
    "Documentation / User Documentation": "product-lead",
    "Team Readiness": "devops-lead",
    "Team Readiness / Communication": "product-lead",
    "Staging Validation": "engineering-lead",
    "Staging Validation / Load Testing": "devops-lead",
    "Staging Validation / Security Testing": "security-lead",
    "Final Approvals / Engineering Lead": "engineering-lead",
    "Final Approvals / DevOps Lead": "devops-lead",
    "Final Approvals / Security Lead": "security-lead",
    "Final Approvals / Product Lead": "product-lead",
    "Final Approvals / VP of Engineering / Director": "vp-engineering",
    "Post-Deployment Tasks": "devops-lead",
}

# Short, stable ids where the title makes a long one.
IDS = {
    "Unit test coverage ≥ 80%": "unit-test-coverage",
    "Integration tests passing (100% pass rate)": "integration-tests-passing",
    "Latency targets met (P95 < 500ms)": "latency-p95",
    "Throughput targets met (> 500 req/sec)": "throughput",
    "Error rate < 0.1%": "error-rate",
    "Migration time acceptable (< 5 minutes)": "migration-time",
    "SSL certificate doesn't expire in next 90 days": "ssl-certificate-90-days",
    "No secrets in environment variables (except in containers)": "no-secrets-in-environment-variables",
    "Monitor error rates (first 1 hour)": "monitor-error-rates",
    "Monitor performance metrics (first 4 hours)": "monitor-performance-metrics",
}

APPROVALS = [
    ("engineering-lead", "Engineering Lead", "eng-leads"),
    ("devops-lead", "DevOps Lead", "devops-leads"),
    ("security-lead", "Security Lead", "security-leads"),
    ("product-lead", "Product Lead", "product-leads"),
    ("vp-engineering", "VP of Engineering / Director", "vp-engineering"),
]


def slug(text: str) -> str:
    text = text.replace("≥", "ge").replace("<", "lt").replace(">", "gt").replace("%", "pct").replace("+", "plus")
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:63].rstrip("-")


def role_for(section: str) -> str:
    while section:
        if section in SECTION_ROLES:
            return SECTION_ROLES[section]
        section = section.rpartition(" / ")[0]
    raise KeyError(section)


def build(seed_text: str) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    approval_items: dict[str, list[str]] = {role: [] for role, _, _ in APPROVALS}
    for entry in parse_seed(seed_text):
        item_id = IDS.get(entry.title) or slug(entry.title)
        if item_id in seen:
            item_id = slug(entry.section.split(" / ")[-1] + " " + entry.title)
        seen.add(item_id)
        role = role_for(entry.section)
        check, rationale = CHECKS.get(item_id) or (
            {"attestation": {"roles": [role]}},
            f"Attested by the {role} role: a judgment, document or process no tool output or cluster object shows.",
        )
        item: dict[str, Any] = {"id": item_id, "section": entry.section, "title": entry.title}
        if "(if applicable)" in entry.title or "(if needed)" in entry.title or "(if used)" in entry.title:
            item["required"] = False
        if entry.post:
            item["phase"] = "post"
        item["check"] = check
        item["rationale"] = rationale
        items.append(item)
        if entry.section.startswith("Final Approvals / "):
            approval_items[role].append(item_id)
    return {
        "apiVersion": "readiness.dev/v1alpha1",
        "kind": "ReadinessChecklist",
        "metadata": {"name": "pre-production", "labels": {"app.kubernetes.io/part-of": "release-readiness"}},
        "spec": {
            "description": "The pre-production checklist (version 1.0): 231 items and five role sign-offs.",
            "items": items,
            "approvals": [
                {"role": role, "title": title, "groups": [group], "items": approval_items[role]}
                for role, title, group in APPROVALS
            ],
            "rules": {
                "distinctApprovers": True,
                "preventSelfApproval": True,
                "maxWaiverDays": 30,
                # The VP of Engineering may waive any item (a signed waiver makes earlier approvals Stale).
                "waivers": [{"roles": ["vp-engineering"]}],
            },
        },
    }


def main() -> int:
    seed = Path(sys.argv[1]).read_text()
    header = (
        "# The default ReadinessChecklist: every item of the seed pre-production checklist, in order.\n"
        "# Generated by hack/seed_checklist.py; tests/unit/test_seed_checklist.py keeps it in step with the seed.\n"
    )
    sys.stdout.write(header + yaml.safe_dump(build(seed), sort_keys=False, width=120, allow_unicode=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
