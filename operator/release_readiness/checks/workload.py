"""The workload check catalog: pure functions over a CandidateSnapshot, each with typed params.

Every result names the workload, the container and the field at fault, e.g.
"deployment payments-staging/payments-api: container 'api' has no memory limit
(spec.template.spec.containers[0].resources.limits.memory)".
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from release_readiness.checks.model import Body, CandidateSnapshot, CheckResult, Workload, selector_of

__all__ = ["CATALOG", "SCAN_ANNOTATION", "WorkloadCheck", "parse_params", "run_workload_check"]

SCAN_ANNOTATION = "readiness.dev/scan"
"""JSON on the workload or its pod template: {"<image>": {"critical": 0, "high": 2}, ...}."""


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class NoParams(Params):
    pass


class ResourceParams(Params):
    resources: list[Literal["cpu", "memory", "ephemeral-storage"]] = ["cpu", "memory"]


class NetworkPolicyParams(Params):
    require_ingress: bool = Field(True, alias="requireIngress")
    require_egress: bool = Field(True, alias="requireEgress")


class ImageScanParams(Params):
    max_critical: int = Field(0, alias="maxCritical", ge=0)
    max_high: int = Field(0, alias="maxHigh", ge=0)


class ImageTagParams(Params):
    require_digest: bool = Field(False, alias="requireDigest")


class SecurityContextParams(Params):
    run_as_non_root: bool = Field(True, alias="runAsNonRoot")
    no_privilege_escalation: bool = Field(True, alias="noPrivilegeEscalation")
    read_only_root_filesystem: bool = Field(True, alias="readOnlyRootFilesystem")
    drop_all_capabilities: bool = Field(True, alias="dropAllCapabilities")
    seccomp: bool = True


class SecretParams(Params):
    pattern: str = r"(?i)(password|passwd|secret|token|api[_-]?key|private[_-]?key|credential)"


class ReplicasParams(Params):
    min: int = Field(2, ge=1)


class AutoscalingParams(Params):
    min_replicas: int = Field(2, alias="minReplicas", ge=1)


class TlsParams(Params):
    min_days: int = Field(30, alias="minDays", ge=0)


class AlertParams(Params):
    min_rules: int = Field(1, alias="minRules", ge=1)


class SmokeParams(Params):
    selector: dict[str, str] = {}


@dataclass(frozen=True)
class WorkloadCheck:
    name: str
    description: str
    params: type[Params]
    run: Callable[[CandidateSnapshot, Any], CheckResult]


def _field(wl: Workload, container_index: int, init: bool, path: str) -> str:
    kind = "initContainers" if init else "containers"
    return wl.field(f"spec.{kind}[{container_index}].{path}")


def _per_container(
    snap: CandidateSnapshot,
    problem: Callable[[Workload, int, Any], Iterable[str]],
    ok: str,
    include_init: bool = True,
) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        counters = {False: 0, True: 0}
        for container in wl.containers(include_init=include_init):
            index = counters[container.init]
            counters[container.init] += 1
            problems += [f"{wl.ref}: {p}" for p in problem(wl, index, container)]
    return CheckResult.failed(problems) if problems else CheckResult.passed(ok)


# -- resources and probes ------------------------------------------------------------------------------


def resource_requests(snap: CandidateSnapshot, params: ResourceParams) -> CheckResult:
    def problem(wl: Workload, i: int, c: Any) -> Iterable[str]:
        requests = (c.body.get("resources") or {}).get("requests") or {}
        for res in params.resources:
            if res not in requests:
                yield f"{c.label} has no {res} request ({_field(wl, i, c.init, f'resources.requests.{res}')})"

    return _per_container(snap, problem, f"every container requests {', '.join(params.resources)}")


def resource_limits(snap: CandidateSnapshot, params: ResourceParams) -> CheckResult:
    def problem(wl: Workload, i: int, c: Any) -> Iterable[str]:
        limits = (c.body.get("resources") or {}).get("limits") or {}
        for res in params.resources:
            if res not in limits:
                yield f"{c.label} has no {res} limit ({_field(wl, i, c.init, f'resources.limits.{res}')})"

    return _per_container(snap, problem, f"every container has {', '.join(params.resources)} limits")


def _probe_check(probe: str) -> Callable[[CandidateSnapshot, NoParams], CheckResult]:
    def check(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
        def problem(wl: Workload, i: int, c: Any) -> Iterable[str]:
            if not c.body.get(probe):
                yield f"{c.label} has no {probe} ({_field(wl, i, False, probe)})"

        return _per_container(snap, problem, f"every container has a {probe}", include_init=False)

    return check


def rollout_healthy(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    problems: list[str] = []
    pending: list[str] = []
    for wl in snap.workloads:
        st = wl.status
        generation = wl.body["metadata"].get("generation", 0)
        if st.get("observedGeneration", 0) < generation:
            pending.append(f"{wl.ref}: rollout of generation {generation} not observed yet")
            continue
        if wl.kind == "DaemonSet":
            want = int(st.get("desiredNumberScheduled", 0))
            have = int(st.get("numberAvailable", 0))
            updated = int(st.get("updatedNumberScheduled", 0))
        else:
            want = wl.replicas or 0
            have = int(st.get("availableReplicas", 0) if wl.kind == "Deployment" else st.get("readyReplicas", 0))
            updated = int(st.get("updatedReplicas", 0))
        if updated < want:
            pending.append(f"{wl.ref}: {updated}/{want} replicas updated (status.updatedReplicas)")
        elif have < want:
            problems.append(f"{wl.ref}: {have}/{want} replicas available (status.availableReplicas)")
    if problems:
        return CheckResult.failed(problems + pending)
    if pending:
        return CheckResult.pending("; ".join(pending))
    return CheckResult.passed("every workload is fully rolled out and available")


# -- network, availability, scaling, exposure -------------------------------------------------------


def network_policy(snap: CandidateSnapshot, params: NetworkPolicyParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        ingress = egress = False
        names = []
        for pol in snap.network_policies:
            spec = pol.get("spec") or {}
            if not selector_of(spec.get("podSelector")).matches(wl.template_labels):
                continue
            names.append(pol["metadata"]["name"])
            types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
            ingress |= "Ingress" in types
            egress |= "Egress" in types
        if not names:
            problems.append(
                f"{wl.ref}: no NetworkPolicy in {snap.namespace} selects its pods "
                f"(labels {wl.template_labels}); add one whose spec.podSelector matches"
            )
            continue
        if params.require_ingress and not ingress:
            problems.append(f"{wl.ref}: NetworkPolicy {', '.join(names)} has no Ingress in spec.policyTypes")
        if params.require_egress and not egress:
            problems.append(f"{wl.ref}: NetworkPolicy {', '.join(names)} has no Egress in spec.policyTypes")
    return CheckResult.failed(problems) if problems else CheckResult.passed("pods are selected by network policies")


def replicas(snap: CandidateSnapshot, params: ReplicasParams) -> CheckResult:
    problems = [
        f"{wl.ref}: spec.replicas is {wl.replicas}, at least {params.min} required"
        for wl in snap.workloads
        if wl.replicas is not None and wl.replicas < params.min
    ]
    return CheckResult.failed(problems) if problems else CheckResult.passed(f"at least {params.min} replicas")


def _int_or_percent(value: Any, total: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * total // 100)
    return int(value)


def pod_disruption_budget(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        pdbs = [
            p
            for p in snap.pod_disruption_budgets
            if selector_of((p.get("spec") or {}).get("selector")).matches(wl.template_labels)
            and not selector_of((p.get("spec") or {}).get("selector")).is_empty()
        ]
        if not pdbs:
            problems.append(f"{wl.ref}: no PodDisruptionBudget selects its pods (labels {wl.template_labels})")
            continue
        total = wl.replicas or 1
        for pdb in pdbs:
            spec = pdb.get("spec") or {}
            name = pdb["metadata"]["name"]
            if "maxUnavailable" in spec and _int_or_percent(spec["maxUnavailable"], total) == 0:
                problems.append(f"{wl.ref}: PodDisruptionBudget {name} has maxUnavailable 0 and blocks every drain")
            elif "minAvailable" in spec and _int_or_percent(spec["minAvailable"], total) >= total:
                problems.append(
                    f"{wl.ref}: PodDisruptionBudget {name} minAvailable {spec['minAvailable']} "
                    f">= {total} replicas blocks every drain"
                )
    return CheckResult.failed(problems) if problems else CheckResult.passed("pods are covered by a PodDisruptionBudget")


def autoscaling(snap: CandidateSnapshot, params: AutoscalingParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        if wl.kind == "DaemonSet":
            continue
        hpas = [
            h
            for h in snap.autoscalers
            if (h.get("spec") or {}).get("scaleTargetRef", {}).get("kind") == wl.kind
            and (h.get("spec") or {}).get("scaleTargetRef", {}).get("name") == wl.name
        ]
        if not hpas:
            problems.append(f"{wl.ref}: no HorizontalPodAutoscaler targets it (spec.scaleTargetRef)")
            continue
        low = int((hpas[0].get("spec") or {}).get("minReplicas", 1))
        if low < params.min_replicas:
            problems.append(
                f"{wl.ref}: HorizontalPodAutoscaler {hpas[0]['metadata']['name']} spec.minReplicas is {low}, "
                f"at least {params.min_replicas} required"
            )
    return CheckResult.failed(problems) if problems else CheckResult.passed("workloads are autoscaled")


def service(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    problems = [
        f"{wl.ref}: no Service in {snap.namespace} selects its pods (labels {wl.template_labels})"
        for wl in snap.workloads
        if not snap.services_selecting(wl)
    ]
    return CheckResult.failed(problems) if problems else CheckResult.passed("every workload is behind a Service")


def _ingress_backends(ing: Body) -> set[str]:
    spec = ing.get("spec") or {}
    names = set()
    default = (spec.get("defaultBackend") or {}).get("service", {}).get("name")
    if default:
        names.add(default)
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            name = (path.get("backend") or {}).get("service", {}).get("name")
            if name:
                names.add(name)
    return names


def tls_certificate(snap: CandidateSnapshot, params: TlsParams) -> CheckResult:
    problems: list[str] = []
    checked = 0
    for wl in snap.workloads:
        services = {s["metadata"]["name"] for s in snap.services_selecting(wl)}
        ingresses = [i for i in snap.ingresses if _ingress_backends(i) & services]
        if not ingresses:
            problems.append(
                f"{wl.ref}: no Ingress routes to it (via Services {sorted(services) or 'none'}); "
                "expose it through an Ingress with spec.tls, or waive the item"
            )
            continue
        for ing in ingresses:
            iname = ing["metadata"]["name"]
            tls_entries = (ing.get("spec") or {}).get("tls") or []
            if not tls_entries:
                problems.append(f"{wl.ref}: Ingress {iname} has no spec.tls")
            for index, tls in enumerate(tls_entries):
                checked += 1
                problems += _tls_problems(snap, wl, iname, index, tls, params)
    if problems:
        return CheckResult.failed(problems)
    return CheckResult.passed(f"{checked} TLS certificate(s) valid for at least {params.min_days} days")


def _tls_problems(
    snap: CandidateSnapshot, wl: Workload, iname: str, index: int, tls: Body, params: TlsParams
) -> list[str]:
    where = f"{wl.ref}: Ingress {iname} spec.tls[{index}]"
    secret_name = tls.get("secretName")
    if not secret_name:
        return [f"{where} has no secretName"]
    secret = snap.tls_secrets.get(secret_name)
    if secret is None:
        return [f"{where}: Secret {snap.namespace}/{secret_name} does not exist"]
    import base64

    data = (secret.get("data") or {}).get("tls.crt")
    if not data:
        return [f"{where}: Secret {secret_name} has no data['tls.crt']"]
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(data))
    except ValueError as err:
        return [f"{where}: Secret {secret_name} tls.crt is not a PEM certificate ({err})"]
    out = []
    not_after = cert.not_valid_after_utc
    days = (not_after - snap.now).total_seconds() / 86400
    if days < 0:
        out.append(f"{where}: certificate in Secret {secret_name} expired on {not_after:%Y-%m-%d}")
    elif days < params.min_days:
        out.append(
            f"{where}: certificate in Secret {secret_name} expires on {not_after:%Y-%m-%d} "
            f"({int(days)} days), fewer than {params.min_days}"
        )
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = set(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        names = set()
    for host in tls.get("hosts") or []:
        wildcard = "*." + host.split(".", 1)[-1]
        if host not in names and wildcard not in names:
            out.append(f"{where}: certificate in Secret {secret_name} does not cover host {host}")
    return out


# -- images -----------------------------------------------------------------------------------------------


def image_tag_pinned(snap: CandidateSnapshot, params: ImageTagParams) -> CheckResult:
    def problem(wl: Workload, i: int, c: Any) -> Iterable[str]:
        image = c.image
        name, _, digest = image.partition("@")
        tag = name.rsplit("/", 1)[-1].partition(":")[2]
        if params.require_digest and not digest:
            yield f"{c.label} image {image!r} is not pinned by digest ({_field(wl, i, c.init, 'image')})"
        elif not digest and tag in ("", "latest"):
            yield f"{c.label} image {image!r} uses {'latest' if tag else 'no tag'} ({_field(wl, i, c.init, 'image')})"

    return _per_container(snap, problem, "every image is pinned")


def _scan_from_annotation(wl: Workload) -> dict[str, dict[str, int]] | str:
    raw = wl.template_annotations.get(SCAN_ANNOTATION) or wl.annotations.get(SCAN_ANNOTATION)
    if raw is None:
        return {}
    try:
        parsed = json.loads(raw)
        return {
            str(image): {k: int(v) for k, v in counts.items() if k in ("critical", "high", "medium", "low")}
            for image, counts in parsed.items()
        }
    except (ValueError, AttributeError, TypeError) as err:
        return (
            f"{wl.ref}: annotation {SCAN_ANNOTATION} is not valid JSON of the form "
            f'{{"<image>": {{"critical": 0, "high": 0}}}} ({err})'
        )


def _current_owner_names(snap: CandidateSnapshot, wl: Workload) -> set[tuple[str, str]]:
    """(kind, name) of what trivy-operator reports on: the current ReplicaSet of a Deployment, else itself."""
    if wl.kind != "Deployment":
        return {(wl.kind, wl.name)}
    revision = wl.annotations.get("deployment.kubernetes.io/revision")
    owned = [
        rs
        for rs in snap.replicasets
        if any(ref.get("uid") == wl.uid for ref in rs["metadata"].get("ownerReferences") or [])
    ]
    if revision:
        current = [
            rs
            for rs in owned
            if (rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision") == revision
        ]
        owned = current or owned
    return {("ReplicaSet", rs["metadata"]["name"]) for rs in owned} | {(wl.kind, wl.name)}


def image_scan(snap: CandidateSnapshot, params: ImageScanParams) -> CheckResult:
    problems: list[str] = []
    missing: list[str] = []
    for wl in snap.workloads:
        annotated = _scan_from_annotation(wl)
        if isinstance(annotated, str):
            problems.append(annotated)
            continue
        owners = _current_owner_names(snap, wl)
        reports: dict[str | None, Body] = {}
        for rep in snap.vulnerability_reports:
            labels = rep["metadata"].get("labels") or {}
            key = (labels.get("trivy-operator.resource.kind"), labels.get("trivy-operator.resource.name"))
            if key in owners:
                reports[labels.get("trivy-operator.container.name")] = rep
        for c in wl.containers(include_init=True):
            found = reports.get(c.name)
            if found is not None:
                rep = found
                summary = (rep.get("report") or {}).get("summary") or {}
                counts = {"critical": summary.get("criticalCount", 0), "high": summary.get("highCount", 0)}
                source = f"VulnerabilityReport {rep['metadata']['name']}"
            elif c.image in annotated:
                counts = annotated[c.image]
                source = f"annotation {SCAN_ANNOTATION}"
            else:
                hint = (
                    "no VulnerabilityReport"
                    if "VulnerabilityReport" in snap.installed
                    else "trivy-operator not installed"
                )
                missing.append(
                    f"{wl.ref}: {c.label} image {c.image!r} has no scan result ({hint}, no {SCAN_ANNOTATION} entry)"
                )
                continue
            critical, high = int(counts.get("critical", 0)), int(counts.get("high", 0))
            if critical > params.max_critical or high > params.max_high:
                problems.append(
                    f"{wl.ref}: {c.label} image {c.image!r} has {critical} critical and {high} high "
                    f"vulnerabilities (allowed {params.max_critical}/{params.max_high}, from {source})"
                )
    if problems:
        return CheckResult.failed(problems + missing)
    if missing:
        return CheckResult.pending("; ".join(missing))
    return CheckResult.passed(f"every image scanned within {params.max_critical} critical / {params.max_high} high")


# -- pod security ------------------------------------------------------------------------------------------


def security_context(snap: CandidateSnapshot, params: SecurityContextParams) -> CheckResult:
    def problem(wl: Workload, i: int, c: Any) -> Iterable[str]:
        pod_sc = wl.pod_spec.get("securityContext") or {}
        sc = c.body.get("securityContext") or {}
        at = _field(wl, i, c.init, "securityContext")
        if params.run_as_non_root:
            non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            if not non_root and not (uid is not None and int(uid) != 0):
                yield f"{c.label} may run as root (set {at}.runAsNonRoot: true)"
        if params.no_privilege_escalation and sc.get("allowPrivilegeEscalation", True):
            yield f"{c.label} allows privilege escalation (set {at}.allowPrivilegeEscalation: false)"
        if sc.get("privileged"):
            yield f"{c.label} is privileged ({at}.privileged)"
        if params.read_only_root_filesystem and not sc.get("readOnlyRootFilesystem"):
            yield f"{c.label} has a writable root filesystem (set {at}.readOnlyRootFilesystem: true)"
        if params.drop_all_capabilities:
            drop = [str(x).upper() for x in (sc.get("capabilities") or {}).get("drop") or []]
            if "ALL" not in drop:
                yield f"{c.label} does not drop all capabilities (set {at}.capabilities.drop: [ALL])"
        if params.seccomp:
            profile = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if profile not in ("RuntimeDefault", "Localhost"):
                yield f"{c.label} has no seccomp profile (set {at}.seccompProfile.type: RuntimeDefault)"

    return _per_container(snap, problem, "every container runs restricted")


def no_hardcoded_secrets(snap: CandidateSnapshot, params: SecretParams) -> CheckResult:
    pattern = re.compile(params.pattern)

    def problem(wl: Workload, i: int, c: Any) -> Iterable[str]:
        for j, env in enumerate(c.body.get("env") or []):
            name = str(env.get("name", ""))
            if pattern.search(name) and env.get("value"):
                yield (
                    f"{c.label} sets secret-looking env {name} to a literal value "
                    f"({_field(wl, i, c.init, f'env[{j}].value')}); use valueFrom.secretKeyRef"
                )

    return _per_container(snap, problem, "no secret-looking env var has a literal value")


# -- observability and tests --------------------------------------------------------------------------------


def metrics_scraped(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        if wl.template_annotations.get("prometheus.io/scrape") == "true":
            continue
        if any(
            selector_of((m.get("spec") or {}).get("selector")).matches(wl.template_labels) for m in snap.pod_monitors
        ):
            continue
        svc_labels = [s["metadata"].get("labels") or {} for s in snap.services_selecting(wl)]
        if any(
            selector_of((m.get("spec") or {}).get("selector")).matches(labels)
            for m in snap.service_monitors
            for labels in svc_labels
        ):
            continue
        problems.append(
            f"{wl.ref}: not scraped: no ServiceMonitor or PodMonitor selects it and its pod template has no "
            'prometheus.io/scrape: "true" annotation'
        )
    return CheckResult.failed(problems) if problems else CheckResult.passed("every workload is scraped")


def alert_rules(snap: CandidateSnapshot, params: AlertParams) -> CheckResult:
    if "PrometheusRule" not in snap.installed:
        return CheckResult.failed(
            [
                f"no PrometheusRule CRD in the cluster: install the Prometheus operator and add alert rules for "
                f"{snap.application}"
            ]
        )
    count = 0
    for rule in snap.prometheus_rules:
        labels = rule["metadata"].get("labels") or {}
        groups = (rule.get("spec") or {}).get("groups") or []
        alerts = [r for g in groups for r in g.get("rules") or [] if r.get("alert")]
        if labels.get("app.kubernetes.io/name") == snap.application or any(
            snap.application in str(r.get("expr", "")) for r in alerts
        ):
            count += len(alerts)
    if count < params.min_rules:
        return CheckResult.failed(
            [
                f"{count} alerting rule(s) for {snap.application} in {snap.namespace} "
                f"(PrometheusRule labelled app.kubernetes.io/name={snap.application}); "
                f"at least {params.min_rules} required"
            ]
        )
    return CheckResult.passed(f"{count} alerting rule(s) for {snap.application}")


def smoke_tests(snap: CandidateSnapshot, params: SmokeParams) -> CheckResult:
    want = {
        "app.kubernetes.io/name": snap.application,
        "app.kubernetes.io/version": snap.version,
        **params.selector,
    }
    jobs = [j for j in snap.jobs if all((j["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]
    labels = ",".join(f"{k}={v}" for k, v in want.items())
    if not jobs:
        return CheckResult.pending(f"no Job labelled {labels} in {snap.namespace}: run the smoke tests as a Job")
    for job in jobs:
        if int((job.get("status") or {}).get("succeeded", 0)) >= 1:
            return CheckResult.passed(f"Job {snap.namespace}/{job['metadata']['name']} succeeded")
    failed = [
        j
        for j in jobs
        if int((j.get("status") or {}).get("failed", 0)) >= 1 and not (j.get("status") or {}).get("active")
    ]
    if failed:
        return CheckResult.failed([f"Job {snap.namespace}/{j['metadata']['name']} failed" for j in failed])
    return CheckResult.pending(f"Job {snap.namespace}/{jobs[0]['metadata']['name']} has not succeeded yet")


CATALOG: dict[str, WorkloadCheck] = {
    c.name: c
    for c in [
        WorkloadCheck("resourceRequests", "every container requests cpu/memory", ResourceParams, resource_requests),
        WorkloadCheck("resourceLimits", "every container has cpu/memory limits", ResourceParams, resource_limits),
        WorkloadCheck("livenessProbe", "every container has a liveness probe", NoParams, _probe_check("livenessProbe")),
        WorkloadCheck(
            "readinessProbe",
            "every container has a readiness probe",
            NoParams,
            _probe_check("readinessProbe"),
        ),
        WorkloadCheck("rolloutHealthy", "the candidate is fully rolled out and available", NoParams, rollout_healthy),
        WorkloadCheck("networkPolicy", "network policies select the pods", NetworkPolicyParams, network_policy),
        WorkloadCheck("imageScan", "images scanned within thresholds", ImageScanParams, image_scan),
        WorkloadCheck("imageTagPinned", "no latest tags; digests if required", ImageTagParams, image_tag_pinned),
        WorkloadCheck("securityContext", "restricted pod security", SecurityContextParams, security_context),
        WorkloadCheck("noHardcodedSecrets", "no literal secrets in env", SecretParams, no_hardcoded_secrets),
        WorkloadCheck("replicas", "enough replicas", ReplicasParams, replicas),
        WorkloadCheck("podDisruptionBudget", "a PDB that allows drains", NoParams, pod_disruption_budget),
        WorkloadCheck("autoscaling", "an HPA with enough minReplicas", AutoscalingParams, autoscaling),
        WorkloadCheck("service", "a Service selects the pods", NoParams, service),
        WorkloadCheck("tlsCertificate", "Ingress TLS certificates valid long enough", TlsParams, tls_certificate),
        WorkloadCheck("metricsScraped", "Prometheus scrapes the pods", NoParams, metrics_scraped),
        WorkloadCheck("alertRules", "PrometheusRule alerts exist", AlertParams, alert_rules),
        WorkloadCheck("smokeTests", "a smoke-test Job for this version succeeded", SmokeParams, smoke_tests),
    ]
}


def parse_params(name: str, raw: dict[str, Any] | None) -> Params:
    """Validate a check's params; raises ValueError with a readable message."""
    check = CATALOG[name]
    try:
        return check.params.model_validate(raw or {})
    except ValidationError as err:
        allowed = ", ".join(f.alias or n for n, f in check.params.model_fields.items()) or "none"
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}" for e in err.errors())
        raise ValueError(f"{details} (params allowed for {name}: {allowed})") from None


@functools.lru_cache(maxsize=1024)
def _parsed_params(name: str, raw_json: str) -> Params | str:
    """Params validated once per distinct value (the gate runs template checks on every request)."""
    try:
        return parse_params(name, json.loads(raw_json))
    except ValueError as err:
        return str(err)


def run_workload_check(name: str, raw_params: dict[str, Any] | None, snap: CandidateSnapshot) -> CheckResult:
    check = CATALOG[name]
    params = _parsed_params(name, json.dumps(raw_params, sort_keys=True) if raw_params else "{}")
    if isinstance(params, str):
        return CheckResult.failed([f"invalid params: {params}"])
    if not snap.workloads:
        return CheckResult.pending(f"no candidate workloads found in {snap.namespace}")
    return check.run(snap, params)
