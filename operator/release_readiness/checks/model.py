"""Plain data the workload checks read: the candidate's workloads and the objects related to them."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any, Literal

from release_readiness.api.common import LabelSelector

__all__ = ["CandidateSnapshot", "CheckResult", "Container", "Workload", "ingress_routes", "selector_of"]

State = Literal["Passed", "Failed", "Pending", "NotApplicable"]
Body = dict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    state: State
    message: str

    @staticmethod
    def passed(message: str) -> CheckResult:
        return CheckResult("Passed", message)

    @staticmethod
    def failed(problems: list[str], limit: int = 5) -> CheckResult:
        shown = problems[:limit]
        more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
        return CheckResult("Failed", "; ".join(shown) + more)

    @staticmethod
    def pending(message: str) -> CheckResult:
        return CheckResult("Pending", message)


def selector_of(raw: Body | None) -> LabelSelector:
    return LabelSelector.model_validate(raw or {})


@dataclass(frozen=True)
class Container:
    name: str
    body: Body
    init: bool = False
    ephemeral: bool = False

    @property
    def image(self) -> str:
        return str(self.body.get("image", ""))

    @property
    def label(self) -> str:
        what = "init container" if self.init else "ephemeral container" if self.ephemeral else "container"
        return f"{what} '{self.name}'"

    @property
    def port_names(self) -> set[str]:
        return {str(p["name"]) for p in self.body.get("ports") or [] if p.get("name")}

    @property
    def port_numbers(self) -> set[int]:
        return {int(p["containerPort"]) for p in self.body.get("ports") or [] if p.get("containerPort")}


@dataclass(frozen=True)
class Workload:
    """A Deployment, StatefulSet or DaemonSet (or any kind with a pod template), as the API server returns it."""

    body: Body
    template_path: tuple[str, ...] = ("spec", "template")
    """Where the pod template is (see release_readiness.kinds); () for a Pod, its own template."""

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "Deployment"))

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"].get("namespace", ""))

    @property
    def uid(self) -> str:
        return str(self.body["metadata"].get("uid", ""))

    @property
    def ref(self) -> str:
        """e.g. 'deployment payments-staging/payments-api', the prefix of every message."""
        return f"{self.kind.lower()} {self.namespace}/{self.name}"

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.body["metadata"].get("annotations") or {})

    @property
    def spec(self) -> Body:
        return dict(self.body.get("spec") or {})

    @property
    def status(self) -> Body:
        return dict(self.body.get("status") or {})

    @functools.cached_property
    def template(self) -> Body:
        if not self.template_path:
            meta = self.body.get("metadata") or {}
            return {"metadata": {k: meta[k] for k in ("labels", "annotations") if k in meta}, "spec": self.spec}
        node: Any = self.body
        for key in self.template_path:
            node = node.get(key) if isinstance(node, dict) else None
        return dict(node) if isinstance(node, dict) else {}

    def field(self, path: str) -> str:
        """A path inside the pod template as a person writes it, e.g. spec.template.spec.containers[0].image."""
        return ".".join([*self.template_path, path])

    @property
    def template_labels(self) -> dict[str, str]:
        return dict((self.template.get("metadata") or {}).get("labels") or {})

    @property
    def template_annotations(self) -> dict[str, str]:
        return dict((self.template.get("metadata") or {}).get("annotations") or {})

    @property
    def pod_spec(self) -> Body:
        return dict(self.template.get("spec") or {})

    @property
    def replicas(self) -> int | None:
        if self.kind == "DaemonSet":
            return None
        value = self.spec.get("replicas", 1)
        return int(value) if value is not None else 1

    def containers(self, include_init: bool = False, include_ephemeral: bool = False) -> list[Container]:
        out = [Container(str(c.get("name", "")), c) for c in self.pod_spec.get("containers") or []]
        if include_init:
            out += [Container(str(c.get("name", "")), c, init=True) for c in self.pod_spec.get("initContainers") or []]
        if include_ephemeral:
            out += [
                Container(str(c.get("name", "")), c, ephemeral=True)
                for c in self.pod_spec.get("ephemeralContainers") or []
            ]
        return out


@dataclass
class CandidateSnapshot:
    """Everything the checks read about one release candidate, taken from the operator's indexes."""

    application: str
    version: str
    namespace: str
    workloads: list[Workload]
    now: dt.datetime
    replicasets: list[Body] = field(default_factory=list)
    network_policies: list[Body] = field(default_factory=list)
    pod_disruption_budgets: list[Body] = field(default_factory=list)
    autoscalers: list[Body] = field(default_factory=list)
    services: list[Body] = field(default_factory=list)
    ingresses: list[Body] = field(default_factory=list)
    tls_secrets: dict[str, Body] = field(default_factory=dict)
    jobs: list[Body] = field(default_factory=list)
    vulnerability_reports: list[Body] = field(default_factory=list)
    service_monitors: list[Body] = field(default_factory=list)
    pod_monitors: list[Body] = field(default_factory=list)
    prometheus_rules: list[Body] = field(default_factory=list)
    alertmanager_configs: list[Body] = field(default_factory=list)
    external_secrets: list[Body] = field(default_factory=list)
    sealed_secrets: list[Body] = field(default_factory=list)
    grafana_dashboards: list[Body] = field(default_factory=list)
    backup_schedules: list[Body] = field(default_factory=list)
    """velero Schedules of every namespace (they name the namespaces they back up)."""
    backup_locations: list[Body] = field(default_factory=list)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    """Values derived from the snapshot once per evaluation and shared by its checks (the CEL variables of each
    workload); a snapshot is built anew for every evaluation, so nothing here outlives the objects it came from."""
    installed: frozenset[str] = frozenset()
    """Optional kinds seen in the cluster (their CRDs are installed): VulnerabilityReport, PrometheusRule, ..."""
    template_only: bool = False
    """Judge pod templates alone (the gate, on a production object): checks skip what the workload's status says."""
    production_namespace: str = ""
    """The release's own namespace: where the gate admits the rollout."""
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    """Labels of the candidate and production namespaces, for those the operator has seen."""
    offline: bool = False
    """The objects are manifests (`kubectl readiness audit`), not cluster state: they have no status and lack what
    controllers and other tools make (e.g. cert-manager's Secrets); what only the cluster can tell stays Pending."""

    def services_selecting(self, workload: Workload) -> list[Body]:
        """Services whose selector picks the workload's pods (a Service without a selector gets no endpoints
        from Kubernetes, and an ExternalName Service none at all)."""
        labels = workload.template_labels
        out = []
        for svc in self.services:
            spec = svc.get("spec") or {}
            selector = spec.get("selector") or {}
            if spec.get("type") == "ExternalName":
                continue
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                out.append(svc)
        return out

    def ingresses_routing_to(self, workload: Workload) -> list[tuple[Body, list[Body]]]:
        """(Ingress, its rules and default backend that route to a Service selecting the workload)."""
        services = {s["metadata"]["name"]: s for s in self.services_selecting(workload)}
        out = []
        for ing in self.ingresses:
            routes = [r for r in ingress_routes(ing) if r["service"] in services]
            if routes:
                out.append((ing, routes))
        return out


def ingress_routes(ing: Body) -> list[Body]:
    """Every backend of an Ingress as {host, service, port} (host None for rules without one and the default)."""
    spec = ing.get("spec") or {}
    out: list[Body] = []
    default = (spec.get("defaultBackend") or {}).get("service") or {}
    if default.get("name"):
        out.append({"host": None, "service": default["name"], "port": default.get("port") or {}})
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            backend = (path.get("backend") or {}).get("service") or {}
            if backend.get("name"):
                out.append({"host": rule.get("host"), "service": backend["name"], "port": backend.get("port") or {}})
    return out
