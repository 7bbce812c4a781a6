"""The kinds that make pods: one table, read by the gate, its webhook configurations and the indexes.

Each row says where the kind keeps its pod template (a Pod is its own template) and which built-in
controller creates it for which owner kind. The webhook configurations (test harness, `make run`,
the chart's files/webhooks.json) and the gate's handlers are generated from this table; kinds such
as Argo Rollouts' `Rollout` are added by configuration (RR_EXTRA_GATED_KINDS, the chart's
`gate.extraKinds`).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from release_readiness.checks.model import Workload

__all__ = [
    "BUILTIN_GATED_KINDS",
    "GatedKind",
    "controller_username",
    "gated_kinds",
    "parse_extra_kinds",
]


def controller_username(name: str) -> str:
    """The identity kube-controller-manager uses for one of its controllers (--use-service-account-credentials)."""
    return f"system:serviceaccount:kube-system:{name}"


@dataclass(frozen=True)
class GatedKind:
    kind: str
    group: str
    version: str
    plural: str
    template_path: tuple[str, ...]
    """Keys from the object to its pod template; () for a Pod, which is its own template."""
    made_by: Mapping[str, str] = field(default_factory=dict)
    """Owner kind -> the controller identity that creates objects of this kind for such an owner."""
    subresources: tuple[str, ...] = ()
    """Subresources that change what runs (pods/ephemeralcontainers)."""
    candidate: bool = False
    """Inspected in a candidate namespace (Deployments, StatefulSets, DaemonSets, extra kinds)."""
    controller: str | None = None
    """An extra kind's controller identity: it creates ReplicaSets and Pods owned by objects of this kind."""

    @property
    def webhook(self) -> str:
        """The webhook's path and the prefix of its name, e.g. gate-deployments."""
        return f"gate-{self.plural}"

    @property
    def advisory_webhook(self) -> str:
        """The path of the webhook the API server calls for warn and audit namespaces only (its namespaceSelector):
        the gate knows such a namespace is advisory before it has listed namespaces (see starting_decision)."""
        return f"{self.webhook}-advisory"

    @property
    def template_field(self) -> str:
        """The template's path as a person writes it, e.g. spec.jobTemplate.spec.template."""
        return ".".join(self.template_path)

    def template(self, obj: Mapping[str, Any] | None) -> dict[str, Any]:
        """The pod template ({metadata, spec}) of `obj`; for a Pod, its labels, annotations and spec."""
        return Workload(dict(obj or {}), self.template_path).template

    def to_dict(self) -> dict[str, Any]:
        """The RR_EXTRA_GATED_KINDS form of this kind."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "group": self.group,
            "version": self.version,
            "plural": self.plural,
            "template": self.template_field,
        }
        if self.controller:
            out["controller"] = self.controller
        return out


_TEMPLATE = ("spec", "template")

BUILTIN_GATED_KINDS: tuple[GatedKind, ...] = (
    GatedKind("Deployment", "apps", "v1", "deployments", _TEMPLATE, candidate=True),
    GatedKind("StatefulSet", "apps", "v1", "statefulsets", _TEMPLATE, candidate=True),
    GatedKind("DaemonSet", "apps", "v1", "daemonsets", _TEMPLATE, candidate=True),
    GatedKind(
        "ReplicaSet",
        "apps",
        "v1",
        "replicasets",
        _TEMPLATE,
        made_by={"Deployment": controller_username("deployment-controller")},
    ),
    GatedKind("ReplicationController", "", "v1", "replicationcontrollers", _TEMPLATE),
    GatedKind("Job", "batch", "v1", "jobs", _TEMPLATE, made_by={"CronJob": controller_username("cronjob-controller")}),
    GatedKind("CronJob", "batch", "v1", "cronjobs", ("spec", "jobTemplate", "spec", "template")),
    GatedKind(
        "Pod",
        "",
        "v1",
        "pods",
        (),
        made_by={
            "ReplicaSet": controller_username("replicaset-controller"),
            "ReplicationController": controller_username("replication-controller"),
            "StatefulSet": controller_username("statefulset-controller"),
            "DaemonSet": controller_username("daemon-set-controller"),
            "Job": controller_username("job-controller"),
        },
        subresources=("ephemeralcontainers",),
    ),
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_PATH = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)*$")
_USERNAME = re.compile(r"^system:serviceaccount:[a-z0-9-]+:[a-z0-9.-]+$")


def parse_extra_kinds(raw: str) -> tuple[GatedKind, ...]:
    """RR_EXTRA_GATED_KINDS: a JSON list of {kind, group, version, plural, template[, controller]}.

    `template` is the dotted path of the pod template (e.g. spec.template); `controller` is the
    identity that creates ReplicaSets and Pods for this kind (e.g. Argo Rollouts' service account),
    so what it makes for an admitted owner passes. Raises ValueError naming the entry and the field.
    """
    if not raw.strip():
        return ()
    try:
        entries = json.loads(raw)
    except ValueError as err:
        raise ValueError(f"RR_EXTRA_GATED_KINDS is not JSON: {err}") from None
    if not isinstance(entries, list):
        raise ValueError('RR_EXTRA_GATED_KINDS must be a JSON list of {"kind", "group", "version", "plural", ...}')
    builtin = {k.plural for k in BUILTIN_GATED_KINDS} | {k.kind for k in BUILTIN_GATED_KINDS}
    out: list[GatedKind] = []
    for index, entry in enumerate(entries):
        at = f"RR_EXTRA_GATED_KINDS[{index}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{at} must be an object")
        unknown = set(entry) - {"kind", "group", "version", "plural", "template", "controller"}
        if unknown:
            raise ValueError(f"{at}: unknown field(s) {', '.join(sorted(unknown))}")
        checks = (
            ("kind", _KIND, "a CamelCase kind, e.g. Rollout"),
            ("group", _DNS_SUBDOMAIN, "an API group, e.g. argoproj.io"),
            ("version", _DNS_LABEL, "an API version, e.g. v1alpha1"),
            ("plural", _DNS_LABEL, "a resource name, e.g. rollouts"),
            ("template", _PATH, "the dotted path of the pod template, e.g. spec.template"),
        )
        for name, pattern, what in checks:
            value = entry.get(name)
            if not isinstance(value, str) or not pattern.match(value):
                raise ValueError(f"{at}.{name} must be {what} (got {value!r})")
        controller = entry.get("controller")
        if controller is not None and (not isinstance(controller, str) or not _USERNAME.match(controller)):
            raise ValueError(
                f"{at}.controller must be a service account username, e.g. "
                f"system:serviceaccount:argo-rollouts:argo-rollouts (got {controller!r})"
            )
        if entry["plural"] in builtin or entry["kind"] in builtin or any(k.plural == entry["plural"] for k in out):
            raise ValueError(f"{at}: {entry['kind']} ({entry['plural']}) is already gated")
        out.append(
            GatedKind(
                entry["kind"],
                entry["group"],
                entry["version"],
                entry["plural"],
                tuple(entry["template"].split(".")),
                candidate=True,
                controller=controller,
            )
        )
    return tuple(out)


def gated_kinds(extra: Sequence[GatedKind] = ()) -> tuple[GatedKind, ...]:
    """The built-in kinds, plus the configured ones; an extra kind's controller may create ReplicaSets
    and Pods for it (Argo Rollouts creates ReplicaSets owned by the Rollout)."""
    owners = {k.kind: k.controller for k in extra if k.controller}
    if not owners:
        return BUILTIN_GATED_KINDS + tuple(extra)
    builtin = tuple(
        dataclasses.replace(k, made_by={**k.made_by, **owners}) if k.kind in ("ReplicaSet", "Pod") else k
        for k in BUILTIN_GATED_KINDS
    )
    return builtin + tuple(extra)
