"""The workload check catalog: pure functions over a CandidateSnapshot, each with typed params.

Every result names the workload, the container and the field at fault, e.g.
"deployment payments-staging/payments-api: container 'api' has no memory limit
(spec.template.spec.containers[0].resources.limits.memory)".
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from cryptography import x509
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from release_readiness.checks.model import (
    Body,
    CandidateSnapshot,
    CheckResult,
    Container,
    Workload,
    selector_of,
)
from release_readiness.constants import Annotation
from release_readiness.suites import SUITE_LABEL, creator_of

__all__ = ["CATALOG", "SCAN_ANNOTATION", "WorkloadCheck", "parse_params", "run_workload_check"]

SCAN_ANNOTATION: str = Annotation.SCAN.value
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
    annotation: bool = True
    """Also accept the readiness.dev/scan annotation. Whoever edits the workload can write it, so a checklist
    that must not take a team's word for its scan sets false and reads only trivy-operator's reports."""


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


class ProbeParams(Params):
    require_ready: bool = Field(False, alias="requireReady")
    """Also require every replica Ready: the probe is not only configured but passing."""


class SuiteCreators(Params):
    users: list[Annotated[str, Field(max_length=253)]] = Field([], max_length=32)
    groups: list[Annotated[str, Field(max_length=253)]] = Field([], max_length=32)

    @model_validator(mode="after")
    def _someone(self) -> SuiteCreators:
        if not self.users and not self.groups:
            raise ValueError("createdBy: name at least one user or group")
        return self

    def include(self, username: str, groups: Iterable[str]) -> bool:
        return username in self.users or any(g in self.groups for g in groups)

    def __str__(self) -> str:
        groups = f"groups {', '.join(self.groups)}" if self.groups else ""
        users = f"users {', '.join(self.users)}" if self.users else ""
        return " or ".join(p for p in (groups, users) if p)


CI_GROUP = "system:serviceaccounts:ci"


class SmokeParams(Params):
    suites: list[Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]] = Field(
        ["smoke"], min_length=1
    )
    """Each suite needs a Job labelled readiness.dev/suite=<suite> (and the app and version) that completed."""
    selector: dict[str, str] = {}
    created_by: SuiteCreators = Field(default_factory=lambda: SuiteCreators(groups=[CI_GROUP]), alias="createdBy")
    """Who may run the suites: only Jobs these identities created count (recorded by the stamp-suite-job webhook)."""


class PodSecurityParams(Params):
    level: Literal["restricted", "baseline"] = "restricted"
    candidate: bool = False
    """Also require enforcement in the candidate namespace."""


class HttpsParams(Params):
    redirecting_classes: list[str] = Field(["nginx"], alias="redirectingClasses")
    """Ingress classes whose controller redirects plain HTTP to HTTPS whenever spec.tls covers the host."""
    tls_ports: list[int] = Field([443], alias="tlsPorts")
    """Ports a LoadBalancer or NodePort Service may expose directly (they must serve TLS)."""


class RateLimitParams(Params):
    annotations: list[str] = [
        "nginx.ingress.kubernetes.io/limit-rps",
        "nginx.ingress.kubernetes.io/limit-rpm",
        "nginx.ingress.kubernetes.io/limit-connections",
    ]
    """Ingress annotations that set a rate limit (a positive integer)."""


class PortsParams(Params):
    allow: list[int] = [80, 443]
    """Ports a LoadBalancer Service may expose."""
    allow_node_ports: bool = Field(False, alias="allowNodePorts")


class BackupParams(Params):
    require_retention: bool = Field(False, alias="requireRetention")
    """Also require the schedule to set how long its backups are kept (spec.template.ttl)."""


class AlertRoutingParams(Params):
    receiver_types: list[str] = Field([], alias="receiverTypes")
    """Receiver integrations that count (e.g. pagerdutyConfigs); empty: any integration."""


class DashboardParams(Params):
    metrics: list[str] = []
    """Metric names some panel must query."""
    panel_types: list[str] = Field([], alias="panelTypes")
    """Panel types the dashboard must have (e.g. alertlist)."""


class AlertCoverageParams(Params):
    expr: str | None = None
    """A regex: at least one of the application's alerting rules must have an expr matching it."""
    require_severity: bool = Field(False, alias="requireSeverity")
    severities: list[str] = ["critical", "warning", "info"]
    """With requireSeverity, every alert of the application needs labels.severity among these."""


@dataclass(frozen=True)
class WorkloadCheck:
    name: str
    description: str
    params: type[Params]
    run: Callable[[CandidateSnapshot, Any], CheckResult]
    needs: str = ""
    """What beyond core Kubernetes must run for the check to answer (it is Pending without it)."""


_INGRESS = "an ingress controller (ingress-nginx by default)"
NEEDS = {
    "imageScan": "trivy-operator (or, where params.annotation allows it, CI's readiness.dev/scan annotation)",
    "metricsScraped": "Prometheus (scrape annotation) or the Prometheus Operator (ServiceMonitor/PodMonitor)",
    "alertRules": "Prometheus Operator (PrometheusRule)",
    "alertCoverage": "Prometheus Operator (PrometheusRule)",
    "alertRouting": "Prometheus Operator (AlertmanagerConfig)",
    "secretsFromStore": "external-secrets or sealed-secrets (or the secrets-store CSI driver)",
    "grafanaDashboard": "grafana-operator (GrafanaDashboard)",
    "exposure": "a load-balancer or ingress controller (assigns the address)",
    "httpsEnforced": _INGRESS,
    "ingressRateLimit": _INGRESS,
    "tlsCertificate": _INGRESS,
    "smokeTests": "CI running the suite Jobs in the candidate namespace",
    "backupSchedule": "velero (Schedule, BackupStorageLocation)",
}


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


PROBE_HANDLERS = ("httpGet", "grpc", "tcpSocket", "exec")


def _probe_port_problem(c: Container, probe: Body, at: str) -> str | None:
    """A probe on a named port the container does not declare can never succeed (the kubelet cannot resolve it)."""
    for handler in ("httpGet", "tcpSocket"):
        port = (probe.get(handler) or {}).get("port")
        if isinstance(port, str) and not port.isdigit() and port not in c.port_names:
            named = ", ".join(sorted(c.port_names)) or "none"
            return f"{c.label} {at} probes port {port!r}, which the container does not declare (named ports: {named})"
    return None


def _rollout(wl: Workload) -> tuple[str, str]:
    """('Passed'|'Pending'|'Failed', message) for whether every replica of the current generation is Ready."""
    st = wl.status
    generation = wl.body["metadata"].get("generation", 0)
    if st.get("observedGeneration", 0) < generation:
        return "Pending", f"{wl.ref}: rollout of generation {generation} not observed yet"
    if wl.kind == "DaemonSet":
        want = int(st.get("desiredNumberScheduled", 0))
        have = int(st.get("numberAvailable", 0))
        updated = int(st.get("updatedNumberScheduled", 0))
        field_name = "status.numberAvailable"
    else:
        want = wl.replicas or 0
        have = int(st.get("availableReplicas", 0) if wl.kind == "Deployment" else st.get("readyReplicas", 0))
        updated = int(st.get("updatedReplicas", 0))
        field_name = "status.availableReplicas" if wl.kind == "Deployment" else "status.readyReplicas"
    if want == 0:
        return "Failed", f"{wl.ref}: 0 replicas wanted, so nothing runs to answer"
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return "Failed", f"{wl.ref}: rollout stuck: {cond.get('message', 'ProgressDeadlineExceeded')}"
    if updated < want:
        return "Pending", f"{wl.ref}: {updated}/{want} replicas updated (status.updatedReplicas)"
    if have < want:
        return "Failed", f"{wl.ref}: {have}/{want} replicas available ({field_name})"
    return "Passed", f"{wl.ref}: {have}/{want} replicas available"


def _with_rollout(snap: CandidateSnapshot, problems: list[str], ok: str) -> CheckResult:
    """Failed on `problems`; otherwise the rollout decides (Pending while rolling out, Failed if replicas are down)."""
    if problems:
        return CheckResult.failed(problems)
    if snap.template_only:
        return CheckResult.passed(ok)
    if snap.offline:
        return CheckResult.pending(f"{ok}; whether every replica becomes Ready is known only in the cluster")
    states = [_rollout(wl) for wl in snap.workloads]
    failed = [m for s, m in states if s == "Failed"]
    pending = [m for s, m in states if s == "Pending"]
    if failed:
        return CheckResult.failed(failed + pending)
    if pending:
        return CheckResult.pending("; ".join(pending))
    return CheckResult.passed(ok + " and every replica is Ready")


def _probe_check(probe: str) -> Callable[[CandidateSnapshot, ProbeParams], CheckResult]:
    def check(snap: CandidateSnapshot, params: ProbeParams) -> CheckResult:
        problems: list[str] = []
        for wl in snap.workloads:
            for i, c in enumerate(wl.containers()):
                body = c.body.get(probe)
                if not body or not any(h in body for h in PROBE_HANDLERS):
                    problems.append(f"{wl.ref}: {c.label} has no {probe} ({_field(wl, i, False, probe)})")
                    continue
                port = _probe_port_problem(c, body, probe)
                if port:
                    problems.append(f"{wl.ref}: {port} ({_field(wl, i, False, probe)})")
        ok = f"every container has a {probe}"
        if not params.require_ready:
            return CheckResult.failed(problems) if problems else CheckResult.passed(ok)
        return _with_rollout(snap, problems, ok)

    return check


def rollout_healthy(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    return _with_rollout(snap, [], "every workload is fully rolled out")


def health_endpoint(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    """Each serving container's readiness probe calls an HTTP or gRPC endpoint, and every replica is Ready,
    which the kubelet only reports once that endpoint answered."""
    problems: list[str] = []
    for wl in snap.workloads:
        probed = 0
        for i, c in enumerate(wl.containers()):
            probe = c.body.get("readinessProbe") or {}
            at = _field(wl, i, False, "readinessProbe")
            if "httpGet" in probe or "grpc" in probe:
                port = _probe_port_problem(c, probe, "readinessProbe")
                if port:
                    problems.append(f"{wl.ref}: {port} ({at})")
                else:
                    probed += 1
            elif c.body.get("ports"):
                kind = next((h for h in PROBE_HANDLERS if h in probe), None)
                what = f"a {kind} readinessProbe, which calls no endpoint" if kind else "no readinessProbe"
                problems.append(f"{wl.ref}: {c.label} serves ports but has {what} (set {at}.httpGet or .grpc)")
        if probed == 0 and not problems:
            problems.append(
                f"{wl.ref}: no container has an httpGet or grpc readinessProbe: no health endpoint is called"
            )
    return _with_rollout(snap, problems, "every serving container's health endpoint is probed (httpGet/grpc)")


# -- network, availability, scaling, exposure -------------------------------------------------------

_EVERYWHERE = ("0.0.0.0/0", "::/0")


def _allows_everything(rule: Body, peers_key: str) -> bool:
    """A rule with no ports and no peers (or a peer that is the whole internet) admits all traffic: a policy
    made only of such rules isolates nothing in that direction."""
    if rule.get("ports"):
        return False
    peers = rule.get(peers_key) or []
    if not peers:
        return True
    return any(
        (p.get("ipBlock") or {}).get("cidr") in _EVERYWHERE and not (p.get("ipBlock") or {}).get("except")
        for p in peers
    )


def policies_selecting(snap: CandidateSnapshot, wl: Workload) -> list[Body]:
    """NetworkPolicies whose podSelector picks the workload's pods (an empty one selects every pod of the
    namespace: a namespace-wide policy)."""
    return [
        p
        for p in snap.network_policies
        if selector_of((p.get("spec") or {}).get("podSelector")).matches(wl.template_labels)
    ]


def network_policy(snap: CandidateSnapshot, params: NetworkPolicyParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        names = []
        # Policies are additive: one rule allowing everything in a direction opens that direction for good.
        restricted = {"Ingress": True, "Egress": True}
        isolated = {"Ingress": False, "Egress": False}
        open_by: dict[str, str] = {}
        for pol in policies_selecting(snap, wl):
            spec = pol.get("spec") or {}
            name = pol["metadata"]["name"]
            names.append(name)
            types = spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"])
            for direction, key, peers in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
                if direction not in types:
                    continue
                isolated[direction] = True
                if any(_allows_everything(r, peers) for r in spec.get(key) or []):
                    restricted[direction] = False
                    open_by[direction] = name
        if not names:
            problems.append(
                f"{wl.ref}: no NetworkPolicy in {snap.namespace} selects its pods "
                f"(labels {wl.template_labels}); add one whose spec.podSelector matches"
            )
            continue
        for direction, wanted in (("Ingress", params.require_ingress), ("Egress", params.require_egress)):
            if not wanted:
                continue
            if not isolated[direction]:
                problems.append(f"{wl.ref}: NetworkPolicy {', '.join(names)} has no {direction} in spec.policyTypes")
            elif not restricted[direction]:
                problems.append(
                    f"{wl.ref}: NetworkPolicy {open_by[direction]} has a spec.{direction.lower()} rule with no "
                    f"peers and no ports, which allows all {direction.lower()} traffic"
                )
    return CheckResult.failed(problems) if problems else CheckResult.passed("pods are isolated by network policies")


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


def _pdb_selects(pdb: Body, labels: dict[str, str]) -> bool:
    """policy/v1: a null selector selects no pods, an empty one ({}) every pod of the namespace."""
    raw = (pdb.get("spec") or {}).get("selector")
    return raw is not None and selector_of(raw).matches(labels)


def pdbs_selecting(snap: CandidateSnapshot, wl: Workload) -> list[Body]:
    return [p for p in snap.pod_disruption_budgets if _pdb_selects(p, wl.template_labels)]


def autoscalers_of(snap: CandidateSnapshot, wl: Workload) -> list[Body]:
    """HorizontalPodAutoscalers whose spec.scaleTargetRef names the workload."""
    return [
        h
        for h in snap.autoscalers
        if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("kind") == wl.kind
        and ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name") == wl.name
    ]


def pod_disruption_budget(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        pdbs = pdbs_selecting(snap, wl)
        if not pdbs:
            problems.append(f"{wl.ref}: no PodDisruptionBudget selects its pods (labels {wl.template_labels})")
            continue
        if len(pdbs) > 1:
            # The eviction API refuses to evict a pod that more than one budget selects.
            names = ", ".join(p["metadata"]["name"] for p in pdbs)
            problems.append(f"{wl.ref}: PodDisruptionBudgets {names} all select its pods; evictions fail, keep one")
            continue
        total = wl.replicas or 1
        spec = pdbs[0].get("spec") or {}
        name = pdbs[0]["metadata"]["name"]
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
        hpas = autoscalers_of(snap, wl)
        if not hpas:
            problems.append(f"{wl.ref}: no HorizontalPodAutoscaler targets it (spec.scaleTargetRef)")
            continue
        if len(hpas) > 1:
            names = ", ".join(h["metadata"]["name"] for h in hpas)
            problems.append(f"{wl.ref}: HorizontalPodAutoscalers {names} all target it and fight; keep one")
            continue
        hpa = hpas[0]
        spec, name = hpa.get("spec") or {}, hpa["metadata"]["name"]
        low, high = int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 0))
        if low < params.min_replicas:
            problems.append(
                f"{wl.ref}: HorizontalPodAutoscaler {name} spec.minReplicas is {low}, "
                f"at least {params.min_replicas} required"
            )
        if high <= low:
            problems.append(f"{wl.ref}: HorizontalPodAutoscaler {name} spec.maxReplicas {high} leaves no room to scale")
        for metric in spec.get("metrics") or []:
            resource = (metric.get("resource") or {}) if metric.get("type") == "Resource" else {}
            if (resource.get("target") or {}).get("type") != "Utilization":
                continue
            # Utilization is a share of the request: a container without one leaves the HPA unable to compute it.
            res = resource.get("name")
            bare = [
                c.name for c in wl.containers() if res not in ((c.body.get("resources") or {}).get("requests") or {})
            ]
            if bare:
                problems.append(
                    f"{wl.ref}: HorizontalPodAutoscaler {name} scales on {res} utilization but container(s) "
                    f"{', '.join(bare)} request no {res}"
                )
        for cond in (hpa.get("status") or {}).get("conditions") or []:
            if cond.get("type") in ("AbleToScale", "ScalingActive") and cond.get("status") == "False":
                problems.append(
                    f"{wl.ref}: HorizontalPodAutoscaler {name} reports {cond['type']}=False: "
                    f"{cond.get('reason', '')} {cond.get('message', '')}".rstrip()
                )
    return CheckResult.failed(problems) if problems else CheckResult.passed("workloads are autoscaled")


def _service_port_problems(svc: Body, wl: Workload) -> list[str]:
    """A Service port whose named targetPort no container declares has no endpoints for that port."""
    names = {n for c in wl.containers() for n in c.port_names}
    out = []
    for port in (svc.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, str) and not target.isdigit() and target not in names:
            out.append(
                f"{wl.ref}: Service {svc['metadata']['name']} port {port.get('port')} targets port {target!r}, "
                f"which no container declares ({wl.field('spec.containers[].ports[].name')})"
            )
    return out


def service(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        selecting = snap.services_selecting(wl)
        if not selecting:
            problems.append(f"{wl.ref}: no Service in {snap.namespace} selects its pods (labels {wl.template_labels})")
        for svc in selecting:
            problems += _service_port_problems(svc, wl)
    return CheckResult.failed(problems) if problems else CheckResult.passed("every workload is behind a Service")


def _address(body: Body) -> str | None:
    for entry in ((body.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if entry.get("ip") or entry.get("hostname"):
            return str(entry.get("ip") or entry.get("hostname"))
    return None


def _backend_port_ok(svc: Body, port: Body) -> bool:
    ports = (svc.get("spec") or {}).get("ports") or []
    if "number" in port:
        return any(p.get("port") == port["number"] for p in ports)
    if "name" in port:
        return any(p.get("name") == port["name"] for p in ports)
    return False


def exposure(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    """A load balancer sends traffic to the pods: a LoadBalancer Service or an Ingress (to a Service that selects
    them, on a port the Service has) with an address assigned by its controller."""
    problems: list[str] = []
    waiting: list[str] = []
    exposed: list[str] = []
    for wl in snap.workloads:
        services = snap.services_selecting(wl)
        by_name = {s["metadata"]["name"]: s for s in services}
        candidates: list[tuple[str, Body]] = []
        for svc in services:
            if (svc.get("spec") or {}).get("type") == "LoadBalancer":
                broken = _service_port_problems(svc, wl)
                problems += broken
                if not broken:
                    candidates.append((f"Service {svc['metadata']['name']} (type LoadBalancer)", svc))
        for ing, routes in snap.ingresses_routing_to(wl):
            iname = ing["metadata"]["name"]
            bad = [r for r in routes if not _backend_port_ok(by_name[r["service"]], r["port"])]
            for r in bad:
                problems.append(
                    f"{wl.ref}: Ingress {iname} routes to Service {r['service']} port {r['port'] or 'none'}, "
                    "which the Service does not have"
                )
            if len(bad) < len(routes):
                candidates.append((f"Ingress {iname}", ing))
        if not candidates:
            if not problems:
                problems.append(
                    f"{wl.ref}: no LoadBalancer Service or Ingress sends traffic to it (a ClusterIP Service is "
                    "reachable only inside the cluster); expose it through an Ingress or a type LoadBalancer Service"
                )
            continue
        addressed = [(what, _address(body)) for what, body in candidates if _address(body)]
        if addressed:
            exposed.append(f"{wl.ref} via {addressed[0][0]} at {addressed[0][1]}")
        else:
            waiting.append(
                f"{wl.ref}: {', '.join(w for w, _ in candidates)} has no address yet (status.loadBalancer.ingress); "
                "is a load-balancer or ingress controller running for it?"
            )
    if problems:
        return CheckResult.failed(problems + waiting)
    if waiting:
        return CheckResult.pending("; ".join(waiting))
    return CheckResult.passed("; ".join(exposed))


def _ingress_class(ing: Body) -> str:
    return str(
        (ing.get("spec") or {}).get("ingressClassName")
        or (ing["metadata"].get("annotations") or {}).get("kubernetes.io/ingress.class")
        or ""
    )


def _tls_hosts(ing: Body) -> set[str]:
    return {str(h) for t in (ing.get("spec") or {}).get("tls") or [] for h in t.get("hosts") or []}


def https_enforced(snap: CandidateSnapshot, params: HttpsParams) -> CheckResult:
    """Clients reach the pods only over HTTPS: every host an Ingress routes to them is in its spec.tls, its
    controller redirects plain HTTP, and no LoadBalancer/NodePort Service exposes them on another port."""
    problems: list[str] = []
    unknown: list[str] = []
    for wl in snap.workloads:
        for svc in snap.services_selecting(wl):
            kind = (svc.get("spec") or {}).get("type")
            if kind in ("LoadBalancer", "NodePort"):
                for port in (svc.get("spec") or {}).get("ports") or []:
                    if port.get("port") not in params.tls_ports:
                        problems.append(
                            f"{wl.ref}: Service {svc['metadata']['name']} (type {kind}) exposes port "
                            f"{port.get('port')} directly, outside any HTTPS termination (allowed: {params.tls_ports})"
                        )
        routed = snap.ingresses_routing_to(wl)
        if not routed:
            problems.append(
                f"{wl.ref}: no Ingress routes to it, so nothing terminates HTTPS for it; add one with spec.tls"
            )
        for ing, routes in routed:
            iname = ing["metadata"]["name"]
            notes = ing["metadata"].get("annotations") or {}
            covered = _tls_hosts(ing)
            for host in sorted({str(r["host"]) for r in routes if r["host"]} - covered):
                problems.append(f"{wl.ref}: Ingress {iname} serves host {host} without TLS (not in spec.tls[].hosts)")
            if any(r["host"] is None for r in routes):
                problems.append(
                    f"{wl.ref}: Ingress {iname} has a rule or default backend without a host, served over HTTP"
                )
            if notes.get("nginx.ingress.kubernetes.io/ssl-redirect") == "false":
                problems.append(
                    f"{wl.ref}: Ingress {iname} turns the HTTPS redirect off (nginx.ingress.kubernetes.io/ssl-redirect)"
                )
            elif notes.get("nginx.ingress.kubernetes.io/force-ssl-redirect") == "true":
                continue
            elif (cls := _ingress_class(ing)) not in params.redirecting_classes:
                unknown.append(
                    f"{wl.ref}: Ingress {iname} has class {cls or '(default)'!r}, which is not known to "
                    f"redirect plain HTTP (params.redirectingClasses: {params.redirecting_classes}); set "
                    'nginx.ingress.kubernetes.io/force-ssl-redirect: "true" or list the class'
                )
    if problems:
        return CheckResult.failed(problems + unknown)
    if unknown:
        return CheckResult.pending("; ".join(unknown))
    return CheckResult.passed("every route to the pods is HTTPS-only")


def ingress_rate_limit(snap: CandidateSnapshot, params: RateLimitParams) -> CheckResult:
    problems: list[str] = []
    unknown: list[str] = []
    limited: list[str] = []
    for wl in snap.workloads:
        routed = snap.ingresses_routing_to(wl)
        if not routed:
            unknown.append(
                f"{wl.ref}: no Ingress routes to it, so no edge rate limit can be read; if the application limits "
                "requests itself, waive the item with the test that shows it"
            )
        for ing, _ in routed:
            iname = ing["metadata"]["name"]
            notes = ing["metadata"].get("annotations") or {}
            found = {k: notes[k] for k in params.annotations if k in notes}
            valid = {k: v for k, v in found.items() if str(v).isdigit() and int(v) > 0}
            if valid:
                limited.append(f"Ingress {iname} ({', '.join(f'{k}={v}' for k, v in valid.items())})")
            elif found:
                problems.append(f"{wl.ref}: Ingress {iname} sets {found} but a limit must be a positive integer")
            else:
                problems.append(
                    f"{wl.ref}: Ingress {iname} sets no rate limit (annotations: {', '.join(params.annotations)})"
                )
    if problems:
        return CheckResult.failed(problems + unknown)
    if unknown:
        return CheckResult.pending("; ".join(unknown))
    return CheckResult.passed("rate limited at " + "; ".join(limited))


def exposed_ports(snap: CandidateSnapshot, params: PortsParams) -> CheckResult:
    problems: list[str] = []
    for wl in snap.workloads:
        if wl.pod_spec.get("hostNetwork"):
            problems.append(
                f"{wl.ref}: uses the node's network ({wl.field('spec.hostNetwork')}), exposing every port it opens"
            )
        counters = {False: 0, True: 0}
        for c in wl.containers(include_init=True):
            index = counters[c.init]
            counters[c.init] += 1
            for j, port in enumerate(c.body.get("ports") or []):
                if port.get("hostPort"):
                    problems.append(
                        f"{wl.ref}: {c.label} opens host port {port['hostPort']} on its node "
                        f"({_field(wl, index, c.init, f'ports[{j}].hostPort')})"
                    )
        for svc in snap.services_selecting(wl):
            spec, name = svc.get("spec") or {}, svc["metadata"]["name"]
            kind = spec.get("type", "ClusterIP")
            for port in spec.get("ports") or []:
                if kind == "NodePort" and not params.allow_node_ports:
                    opened = port.get("nodePort") or port.get("port")
                    problems.append(f"{wl.ref}: Service {name} (type NodePort) opens port {opened} on every node")
                elif kind == "LoadBalancer" and port.get("port") not in params.allow:
                    problems.append(
                        f"{wl.ref}: Service {name} (type LoadBalancer) exposes port {port.get('port')}, "
                        f"not in {params.allow}"
                    )
    return CheckResult.failed(problems) if problems else CheckResult.passed(f"only ports {params.allow} are exposed")


def tls_certificate(snap: CandidateSnapshot, params: TlsParams) -> CheckResult:
    """Every host an Ingress routes to the pods is served with a certificate (from the spec.tls entry listing
    that host) that covers the host and is valid for at least minDays."""
    problems: list[str] = []
    unseen: list[str] = []
    checked = 0
    for wl in snap.workloads:
        routed = snap.ingresses_routing_to(wl)
        if not routed:
            services = sorted(s["metadata"]["name"] for s in snap.services_selecting(wl))
            problems.append(
                f"{wl.ref}: no Ingress routes to it (via Services {services or 'none'}); "
                "expose it through an Ingress with spec.tls, or waive the item"
            )
            continue
        for ing, routes in routed:
            iname = ing["metadata"]["name"]
            tls_entries = (ing.get("spec") or {}).get("tls") or []
            if not tls_entries:
                problems.append(f"{wl.ref}: Ingress {iname} has no spec.tls")
                continue
            hosts = {str(r["host"]) for r in routes if r["host"]}
            for host in sorted(hosts - _tls_hosts(ing)):
                problems.append(f"{wl.ref}: Ingress {iname} has no spec.tls entry for host {host}")
            for index, tls in enumerate(tls_entries):
                mine = [h for h in tls.get("hosts") or [] if h in hosts]
                if hosts and not mine:
                    continue  # this entry serves hosts routed elsewhere
                secret = tls.get("secretName")
                if snap.offline and secret and secret not in snap.tls_secrets:
                    # Usually made in the cluster (cert-manager): only the cluster can tell.
                    unseen.append(f"{wl.ref}: Ingress {iname} spec.tls[{index}]: Secret {secret} is not in the input")
                    continue
                checked += 1
                problems += _tls_problems(snap, wl, iname, index, tls, params)
    if problems:
        return CheckResult.failed(problems + unseen)
    if unseen:
        return CheckResult.pending("; ".join(unseen))
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
    data = (secret.get("data") or {}).get("tls.crt")
    if not data:
        return [f"{where}: Secret {secret_name} has no data['tls.crt']"]
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(data))
    except ValueError as err:
        return [f"{where}: Secret {secret_name} tls.crt is not a PEM certificate ({err})"]
    out = []
    if not (secret.get("data") or {}).get("tls.key"):
        out.append(f"{where}: Secret {secret_name} has no data['tls.key'], so the controller cannot serve it")
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    days = (not_after - snap.now).total_seconds() / 86400
    if not_before > snap.now:
        out.append(f"{where}: certificate in Secret {secret_name} is not valid before {not_before:%Y-%m-%d %H:%M} UTC")
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
    names = {n.lower() for n in names}
    for host in (str(h).lower() for h in tls.get("hosts") or []):
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


def _report_is_for(rep: Body, image: str) -> bool:
    """A report scanned this image: its artifact's repository, and tag or digest, are the container's."""
    artifact = (rep.get("report") or {}).get("artifact") or {}
    repository = str(artifact.get("repository") or "")
    if not repository:
        return True  # older reports name no artifact; the owner's pod template names the image
    name, _, digest = image.partition("@")
    tag = name.rsplit("/", 1)[-1].partition(":")[2]
    path = name.rsplit(":", 1)[0] if tag else name
    if not path.endswith(repository):
        return False
    if digest:
        # Pinned: only a scan of these bytes counts (the tag may have been pushed again since it was scanned).
        return artifact.get("digest") == digest
    return bool(tag) and artifact.get("tag") == tag


def image_scan(snap: CandidateSnapshot, params: ImageScanParams) -> CheckResult:
    problems: list[str] = []
    missing: list[str] = []
    for wl in snap.workloads:
        annotated = _scan_from_annotation(wl) if params.annotation else {}
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
            if found is not None and not _report_is_for(found, c.image):
                found = None  # a report of an earlier image
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
                also = f", no {SCAN_ANNOTATION} entry" if params.annotation else ""
                missing.append(f"{wl.ref}: {c.label} image {c.image!r} has no scan result ({hint}{also})")
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


PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
_PSA_RANK = {"privileged": 0, "baseline": 1, "restricted": 2}


def pod_security_admission(snap: CandidateSnapshot, params: PodSecurityParams) -> CheckResult:
    """Pod Security Admission enforces the level on the production namespace (and the candidate's if asked):
    the API server itself refuses pods that break it, whatever today's pods look like."""
    wanted = [snap.production_namespace] + ([snap.namespace] if params.candidate else [])
    problems: list[str] = []
    unknown: list[str] = []
    for ns in wanted:
        labels = snap.namespace_labels.get(ns)
        if labels is None:
            unknown.append(f"Namespace {ns} has not been seen yet")
            continue
        level = labels.get(PSA_ENFORCE)
        fix = f"label it {PSA_ENFORCE}={params.level}"
        if level is None:
            problems.append(f"Namespace {ns} has no {PSA_ENFORCE} label, so nothing enforces pod security there; {fix}")
        elif level not in _PSA_RANK:
            problems.append(f"Namespace {ns} label {PSA_ENFORCE}={level!r} is not a Pod Security level; {fix}")
        elif _PSA_RANK[level] < _PSA_RANK[params.level]:
            problems.append(f"Namespace {ns} enforces {level!r}, weaker than {params.level!r}; {fix}")
    if problems:
        return CheckResult.failed(problems + unknown)
    if unknown:
        return CheckResult.pending("; ".join(unknown))
    return CheckResult.passed(f"Pod Security Admission enforces {params.level!r} on {', '.join(wanted)}")


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


_NO_RULES_CRD = (
    "no PrometheusRule seen in the cluster: install the Prometheus Operator (its PrometheusRule CRD) and add "
    "alerting rules labelled app.kubernetes.io/name={app} in {ns}"
)


def _app_alerts(snap: CandidateSnapshot) -> list[tuple[str, Body]]:
    """(PrometheusRule name, alerting rule) of the application: rules labelled with its name, or naming it in expr."""
    out = []
    for rule in snap.prometheus_rules:
        labels = rule["metadata"].get("labels") or {}
        groups = (rule.get("spec") or {}).get("groups") or []
        alerts = [r for g in groups for r in g.get("rules") or [] if r.get("alert")]
        mine = labels.get("app.kubernetes.io/name") == snap.application
        # An expr names the application as a quoted label value ("payments-api"), not as a substring of another.
        quoted = re.compile(r"[\"'`]" + re.escape(snap.application) + r"[\"'`]")
        out += [(rule["metadata"]["name"], r) for r in alerts if mine or quoted.search(str(r.get("expr", "")))]
    return out


def alert_rules(snap: CandidateSnapshot, params: AlertParams) -> CheckResult:
    if "PrometheusRule" not in snap.installed:
        return CheckResult.pending(_NO_RULES_CRD.format(app=snap.application, ns=snap.namespace))
    count = len(_app_alerts(snap))
    if count < params.min_rules:
        return CheckResult.failed(
            [
                f"{count} alerting rule(s) for {snap.application} in {snap.namespace} "
                f"(PrometheusRule labelled app.kubernetes.io/name={snap.application}); "
                f"at least {params.min_rules} required"
            ]
        )
    return CheckResult.passed(f"{count} alerting rule(s) for {snap.application}")


def alert_coverage(snap: CandidateSnapshot, params: AlertCoverageParams) -> CheckResult:
    """The application's alerting rules watch a given signal (expr matches a regex), and/or carry a severity."""
    if "PrometheusRule" not in snap.installed:
        return CheckResult.pending(_NO_RULES_CRD.format(app=snap.application, ns=snap.namespace))
    alerts = _app_alerts(snap)
    if not alerts:
        return CheckResult.failed(
            [
                f"no alerting rule for {snap.application} in {snap.namespace} (PrometheusRule labelled "
                f"app.kubernetes.io/name={snap.application})"
            ]
        )
    problems: list[str] = []
    done: list[str] = []
    if params.expr is not None:
        pattern = re.compile(params.expr)
        matching = [f"{r['alert']} ({name})" for name, r in alerts if pattern.search(str(r.get("expr", "")))]
        if not matching:
            problems.append(
                f"none of the {len(alerts)} alerting rule(s) for {snap.application} watches {params.expr!r} "
                f"({', '.join(r['alert'] for _, r in alerts[:5])})"
            )
        done.append(f"{', '.join(matching[:3])} watch(es) {params.expr!r}")
    if params.require_severity:
        bad = [
            f"{r['alert']} ({name}) has severity {(r.get('labels') or {}).get('severity')!r}"
            for name, r in alerts
            if (r.get("labels") or {}).get("severity") not in params.severities
        ]
        if bad:
            problems.append("; ".join(bad) + f": set labels.severity to one of {params.severities}")
        done.append(f"every alert has a severity in {params.severities}")
    return (
        CheckResult.failed(problems) if problems else CheckResult.passed("; ".join(done) or f"{len(alerts)} alert(s)")
    )


RECEIVER_CONFIGS = (
    "pagerdutyConfigs",
    "opsgenieConfigs",
    "victoropsConfigs",
    "slackConfigs",
    "emailConfigs",
    "webhookConfigs",
    "msteamsConfigs",
    "msteamsv2Configs",
    "telegramConfigs",
    "pushoverConfigs",
    "wechatConfigs",
    "snsConfigs",
    "discordConfigs",
    "webexConfigs",
)


def alert_routing(snap: CandidateSnapshot, params: AlertRoutingParams) -> CheckResult:
    """An AlertmanagerConfig in the namespace (the Prometheus Operator scopes it to alerts from that namespace)
    routes to a receiver that has an integration of the wanted kind; a receiver with none drops the alerts."""
    if "AlertmanagerConfig" not in snap.installed:
        return CheckResult.pending(
            f"no AlertmanagerConfig seen in the cluster: install the Prometheus Operator's AlertmanagerConfig CRD "
            f"and route {snap.application}'s alerts from {snap.namespace} to a receiver"
        )
    wanted = params.receiver_types or list(RECEIVER_CONFIGS)
    problems: list[str] = []
    for amc in snap.alertmanager_configs:
        name = amc["metadata"]["name"]
        spec = amc.get("spec") or {}
        receivers = {str(r.get("name")): r for r in spec.get("receivers") or []}
        route = spec.get("route") or {}
        targets = [str(route.get("receiver") or "")] + [str(r.get("receiver") or "") for r in route.get("routes") or []]
        for target in [t for t in targets if t]:
            receiver = receivers.get(target)
            if receiver is None:
                problems.append(f"AlertmanagerConfig {name} routes to receiver {target!r}, which spec.receivers lacks")
                continue
            kinds = [k for k in wanted if receiver.get(k)]
            if kinds:
                return CheckResult.passed(f"AlertmanagerConfig {name} routes alerts to {target!r} ({', '.join(kinds)})")
            problems.append(f"AlertmanagerConfig {name} receiver {target!r} has no {' or '.join(wanted)}")
    if not snap.alertmanager_configs:
        problems.append(f"no AlertmanagerConfig in {snap.namespace} routes {snap.application}'s alerts")
    return CheckResult.failed(problems)


STORE_BACKED = ("ExternalSecret", "SealedSecret")
SECRETS_STORE_CSI = "secrets-store.csi.k8s.io"


def _secret_refs(wl: Workload) -> dict[str, str]:
    """Secret name -> where the pod template reads it."""
    refs: dict[str, str] = {}
    spec = wl.pod_spec
    for i, ref in enumerate(spec.get("imagePullSecrets") or []):
        refs.setdefault(str(ref.get("name")), wl.field(f"spec.imagePullSecrets[{i}]"))
    for i, vol in enumerate(spec.get("volumes") or []):
        if (vol.get("secret") or {}).get("secretName"):
            refs.setdefault(str(vol["secret"]["secretName"]), wl.field(f"spec.volumes[{i}].secret"))
        for j, src in enumerate((vol.get("projected") or {}).get("sources") or []):
            if (src.get("secret") or {}).get("name"):
                refs.setdefault(str(src["secret"]["name"]), wl.field(f"spec.volumes[{i}].projected.sources[{j}]"))
    counters = {False: 0, True: 0}
    for c in wl.containers(include_init=True):
        index = counters[c.init]
        counters[c.init] += 1
        for j, env in enumerate(c.body.get("env") or []):
            ref = (env.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name"):
                refs.setdefault(str(ref["name"]), _field(wl, index, c.init, f"env[{j}].valueFrom.secretKeyRef"))
        for j, src in enumerate(c.body.get("envFrom") or []):
            if (src.get("secretRef") or {}).get("name"):
                refs.setdefault(str(src["secretRef"]["name"]), _field(wl, index, c.init, f"envFrom[{j}].secretRef"))
    return refs


def secrets_from_store(snap: CandidateSnapshot, _: NoParams) -> CheckResult:
    """Every Secret the pods read is produced from a secret store: the target of an ExternalSecret, or a
    SealedSecret (only ciphertext in Git); secrets-store CSI volumes read the store directly."""
    if not (set(STORE_BACKED) & snap.installed):
        return CheckResult.pending(
            "neither ExternalSecret nor SealedSecret seen in the cluster: install external-secrets or "
            "sealed-secrets and produce the application's Secrets from the store"
        )
    produced: dict[str, str] = {}
    for es in snap.external_secrets:
        target = ((es.get("spec") or {}).get("target") or {}).get("name") or es["metadata"]["name"]
        produced[str(target)] = f"ExternalSecret {es['metadata']['name']}"
    for ss in snap.sealed_secrets:
        produced[ss["metadata"]["name"]] = f"SealedSecret {ss['metadata']['name']}"
    problems: list[str] = []
    sources: list[str] = []
    for wl in snap.workloads:
        for name, where in sorted(_secret_refs(wl).items()):
            if name in produced:
                sources.append(f"{name} from {produced[name]}")
            else:
                problems.append(
                    f"{wl.ref}: Secret {name} ({where}) is not produced by an ExternalSecret or SealedSecret "
                    f"in {snap.namespace}"
                )
        csi = [
            v["name"]
            for v in wl.pod_spec.get("volumes") or []
            if (v.get("csi") or {}).get("driver") == SECRETS_STORE_CSI
        ]
        sources += [f"CSI volume {v}" for v in csi]
    if problems:
        return CheckResult.failed(problems)
    if not sources:
        return CheckResult("NotApplicable", "the pods read no Secret")
    return CheckResult.passed("secrets come from the store: " + "; ".join(sources))


def _panels(dashboard: Body) -> list[Body]:
    out: list[Body] = []
    for panel in dashboard.get("panels") or []:
        out.append(panel)
        out += _panels(panel)  # rows nest their panels
    return out


def grafana_dashboard(snap: CandidateSnapshot, params: DashboardParams) -> CheckResult:
    """A GrafanaDashboard (grafana-operator) labelled with the application, whose panels query the given metrics
    and include the given panel types."""
    if "GrafanaDashboard" not in snap.installed:
        return CheckResult.pending(
            "no GrafanaDashboard seen in the cluster: install grafana-operator and add a GrafanaDashboard labelled "
            f"app.kubernetes.io/name={snap.application} in {snap.namespace}"
        )
    mine = [
        d
        for d in snap.grafana_dashboards
        if (d["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == snap.application
    ]
    if not mine:
        return CheckResult.failed(
            [f"no GrafanaDashboard labelled app.kubernetes.io/name={snap.application} in {snap.namespace}"]
        )
    problems: list[str] = []
    unreadable: list[str] = []
    for board in mine:
        name = board["metadata"]["name"]
        raw = (board.get("spec") or {}).get("json")
        if not raw:
            unreadable.append(f"GrafanaDashboard {name} has no inline spec.json to read (url, configMapRef, ...)")
            continue
        try:
            panels = _panels(json.loads(raw))
        except (ValueError, AttributeError, TypeError) as err:
            problems.append(f"GrafanaDashboard {name} spec.json is not a dashboard ({err})")
            continue
        exprs = " ".join(str(t.get("expr", "")) for p in panels for t in p.get("targets") or [])
        types = {str(p.get("type")) for p in panels}
        missing = [m for m in params.metrics if m not in exprs] + [t for t in params.panel_types if t not in types]
        if not panels:
            problems.append(f"GrafanaDashboard {name} has no panels")
        elif missing:
            problems.append(f"GrafanaDashboard {name} has no panel for {', '.join(missing)}")
        else:
            return CheckResult.passed(f"GrafanaDashboard {name}: {len(panels)} panel(s)")
    if problems:
        return CheckResult.failed(problems + unreadable)
    return CheckResult.pending("; ".join(unreadable))


def _covers(schedule: Body, namespace: str) -> bool:
    """Velero backs up includedNamespaces (none or '*': all) minus excludedNamespaces."""
    template = (schedule.get("spec") or {}).get("template") or {}
    included = template.get("includedNamespaces") or ["*"]
    return ("*" in included or namespace in included) and namespace not in (template.get("excludedNamespaces") or [])


def backup_schedule(snap: CandidateSnapshot, params: BackupParams) -> CheckResult:
    """A velero Schedule that velero validated (phase Enabled), not paused, backs up the production namespace to
    a BackupStorageLocation that velero reports Available; with requireRetention, its backups have a ttl."""
    if "Schedule" not in snap.installed:
        return CheckResult.pending("velero's Schedule CRD is not installed: install velero and schedule backups")
    ns = snap.production_namespace
    covering = [s for s in snap.backup_schedules if _covers(s, ns)]
    if not covering:
        return CheckResult.failed([f"no velero Schedule backs up namespace {ns} (spec.template.includedNamespaces)"])
    problems: list[str] = []
    waiting: list[str] = []
    for sched in covering:
        meta, spec = sched["metadata"], sched.get("spec") or {}
        name = f"Schedule {meta.get('namespace', '')}/{meta['name']}"
        phase = (sched.get("status") or {}).get("phase")
        template = spec.get("template") or {}
        if spec.get("paused"):
            problems.append(f"{name} is paused (spec.paused)")
            continue
        if phase != "Enabled":
            (waiting if phase in (None, "", "New") else problems).append(
                f"{name} is {phase or 'not validated yet'} (status.phase), not Enabled"
            )
            continue
        wanted = template.get("storageLocation")
        locations = [
            b
            for b in snap.backup_locations
            if b["metadata"].get("namespace") == meta.get("namespace")
            and (b["metadata"]["name"] == wanted if wanted else (b.get("spec") or {}).get("default"))
        ]
        if not locations:
            problems.append(f"{name} stores to BackupStorageLocation {wanted or '(the default)'}, which does not exist")
            continue
        bsl = locations[0]
        bsl_phase = (bsl.get("status") or {}).get("phase")
        if bsl_phase != "Available":
            (waiting if bsl_phase is None else problems).append(
                f"{name} stores to BackupStorageLocation {bsl['metadata']['name']}, which is "
                f"{bsl_phase or 'not checked by velero yet'} (status.phase)"
            )
            continue
        ttl = template.get("ttl")
        if params.require_retention and (not ttl or ttl in ("0", "0s")):
            problems.append(f"{name} sets no retention (spec.template.ttl)")
            continue
        kept = f", kept {ttl}" if ttl else ""
        return CheckResult.passed(
            f"{name} ({spec.get('schedule', '?')}) backs up {ns} to BackupStorageLocation "
            f"{bsl['metadata']['name']} (Available){kept}"
        )
    if problems:
        return CheckResult.failed(problems + waiting)
    return CheckResult.pending("; ".join(waiting))


def _job_finished(job: Body) -> str | None:
    """'Complete' or 'Failed' from the Job's conditions (the Job controller's verdict), else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    return None


def _created(job: Body) -> str:
    return str(job["metadata"].get("creationTimestamp", ""))


def _untrusted(jobs: list[Body], namespace: str) -> str:
    shown = []
    for job in jobs[:3]:
        who = creator_of(job)
        by = f"created by {who[0]}" if who else "its creator is unknown (not stamped at creation)"
        shown.append(f"Job {namespace}/{job['metadata']['name']} ({by})")
    more = f" and {len(jobs) - 3} more" if len(jobs) > 3 else ""
    return ", ".join(shown) + more


def smoke_tests(snap: CandidateSnapshot, params: SmokeParams) -> CheckResult:
    """For each suite, the Jobs of this application and version labelled with it that an identity the checklist
    names (createdBy) created: the newest completed, and no run failed since the last success.

    Jobs anyone else created are ignored (anyone who may create Jobs could otherwise pass the item with a Job
    that does nothing); a failed run fails the item until a newer run succeeds (a later success by itself does
    not hide an earlier failure unless it is newer)."""
    passed: list[str] = []
    failed: list[str] = []
    waiting: list[str] = []
    for suite in params.suites:
        want = {
            "app.kubernetes.io/name": snap.application,
            "app.kubernetes.io/version": snap.version,
            SUITE_LABEL: suite,
            **params.selector,
        }
        jobs = [j for j in snap.jobs if all((j["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]
        labels = ",".join(f"{k}={v}" for k, v in want.items())
        if not jobs:
            waiting.append(
                f"no Job labelled {labels} in {snap.namespace}: {params.created_by} must run the {suite} suite as a Job"
            )
            continue
        trusted = [j for j in jobs if (who := creator_of(j)) is not None and params.created_by.include(*who)]
        if not trusted:
            ignored = sorted(jobs, key=lambda j: (_created(j), j["metadata"]["name"]), reverse=True)
            waiting.append(
                f"no {suite} Job created by {params.created_by} in {snap.namespace}; ignored: "
                f"{_untrusted(ignored, snap.namespace)}"
            )
            continue
        order = sorted(trusted, key=lambda j: (_created(j), j["metadata"]["name"]))
        runs = [(j, _job_finished(j)) for j in order]
        last_failure = next((j for j, v in reversed(runs) if v == "Failed"), None)
        last_success = next((j for j, v in reversed(runs) if v == "Complete"), None)
        newest = order[-1]
        name = f"Job {snap.namespace}/{newest['metadata']['name']}"
        if last_failure is not None and (last_success is None or _created(last_success) <= _created(last_failure)):
            failed.append(
                f"Job {snap.namespace}/{last_failure['metadata']['name']} ({suite}) failed: a newer run must succeed"
                + (f" ({name} has not completed yet)" if newest is not last_failure else "")
            )
        elif _job_finished(newest) == "Complete":
            passed.append(f"{name} ({suite}) completed")
        else:
            waiting.append(f"{name} ({suite}) has not completed yet")
    if failed:
        return CheckResult.failed(failed + waiting)
    if waiting:
        return CheckResult.pending("; ".join(waiting))
    return CheckResult.passed("; ".join(passed))


CATALOG: dict[str, WorkloadCheck] = {
    c.name: replace(c, needs=NEEDS.get(c.name, ""))
    for c in [
        WorkloadCheck("resourceRequests", "every container requests cpu/memory", ResourceParams, resource_requests),
        WorkloadCheck("resourceLimits", "every container has cpu/memory limits", ResourceParams, resource_limits),
        WorkloadCheck(
            "livenessProbe",
            "every container has a liveness probe on a port it declares (and, with requireReady, is Ready)",
            ProbeParams,
            _probe_check("livenessProbe"),
        ),
        WorkloadCheck(
            "readinessProbe",
            "every container has a readiness probe on a port it declares (and, with requireReady, is Ready)",
            ProbeParams,
            _probe_check("readinessProbe"),
        ),
        WorkloadCheck("rolloutHealthy", "the candidate is fully rolled out and available", NoParams, rollout_healthy),
        WorkloadCheck(
            "healthEndpoint",
            "serving containers have an httpGet/grpc readiness probe and every replica is Ready",
            NoParams,
            health_endpoint,
        ),
        WorkloadCheck("networkPolicy", "network policies isolate the pods", NetworkPolicyParams, network_policy),
        WorkloadCheck("imageScan", "images scanned within thresholds", ImageScanParams, image_scan),
        WorkloadCheck("imageTagPinned", "no latest tags; digests if required", ImageTagParams, image_tag_pinned),
        WorkloadCheck("securityContext", "restricted pod security", SecurityContextParams, security_context),
        WorkloadCheck(
            "podSecurityAdmission",
            "Pod Security Admission enforces a level on the production namespace",
            PodSecurityParams,
            pod_security_admission,
        ),
        WorkloadCheck("noHardcodedSecrets", "no literal secrets in env", SecretParams, no_hardcoded_secrets),
        WorkloadCheck("replicas", "enough replicas", ReplicasParams, replicas),
        WorkloadCheck("podDisruptionBudget", "one PDB that allows drains", NoParams, pod_disruption_budget),
        WorkloadCheck("autoscaling", "an HPA that can scale the workload", AutoscalingParams, autoscaling),
        WorkloadCheck("service", "a Service selects the pods, on ports they declare", NoParams, service),
        WorkloadCheck(
            "exposure", "a LoadBalancer Service or Ingress with an address routes to the pods", NoParams, exposure
        ),
        WorkloadCheck("httpsEnforced", "every route to the pods is HTTPS-only", HttpsParams, https_enforced),
        WorkloadCheck(
            "ingressRateLimit", "Ingresses to the pods set a rate limit", RateLimitParams, ingress_rate_limit
        ),
        WorkloadCheck(
            "exposedPorts", "no host ports, node ports or unexpected LoadBalancer ports", PortsParams, exposed_ports
        ),
        WorkloadCheck("tlsCertificate", "Ingress TLS certificates valid long enough", TlsParams, tls_certificate),
        WorkloadCheck("metricsScraped", "Prometheus scrapes the pods", NoParams, metrics_scraped),
        WorkloadCheck("alertRules", "PrometheusRule alerts exist", AlertParams, alert_rules),
        WorkloadCheck(
            "alertCoverage",
            "the application's alerts watch a signal and carry severities",
            AlertCoverageParams,
            alert_coverage,
        ),
        WorkloadCheck(
            "alertRouting", "an AlertmanagerConfig routes the alerts to a receiver", AlertRoutingParams, alert_routing
        ),
        WorkloadCheck("secretsFromStore", "the pods' Secrets come from a secret store", NoParams, secrets_from_store),
        WorkloadCheck(
            "grafanaDashboard",
            "a GrafanaDashboard for the application with the panels",
            DashboardParams,
            grafana_dashboard,
        ),
        WorkloadCheck(
            "backupSchedule", "a velero Schedule backs up the production namespace", BackupParams, backup_schedule
        ),
        WorkloadCheck("smokeTests", "a test Job per suite for this version completed", SmokeParams, smoke_tests),
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
