"""ReadinessChecklist (cluster-scoped): a reusable checklist owned by the platform team."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field

from release_readiness.api.common import DNS_LABEL, KubeModel, ListMapKeys, ObjectMeta, ResourceInfo

__all__ = [
    "WORKLOAD_CHECKS",
    "Approval",
    "AttestationCheck",
    "CelCheck",
    "CelRule",
    "Check",
    "ChecklistItem",
    "ChecklistRules",
    "ChecklistSpec",
    "EvidenceCheck",
    "Identities",
    "PrometheusCheck",
    "ReadinessChecklist",
    "WaiverGrant",
    "WorkloadCheckName",
]

WorkloadCheckName = Literal[
    "resourceRequests",
    "resourceLimits",
    "livenessProbe",
    "readinessProbe",
    "rolloutHealthy",
    "healthEndpoint",
    "networkPolicy",
    "imageScan",
    "imageTagPinned",
    "securityContext",
    "podSecurityAdmission",
    "noHardcodedSecrets",
    "replicas",
    "podDisruptionBudget",
    "autoscaling",
    "service",
    "exposure",
    "httpsEnforced",
    "ingressRateLimit",
    "exposedPorts",
    "tlsCertificate",
    "metricsScraped",
    "alertRules",
    "alertCoverage",
    "alertRouting",
    "secretsFromStore",
    "grafanaDashboard",
    "backupSchedule",
    "smokeTests",
]
WORKLOAD_CHECKS: tuple[str, ...] = get_args(WorkloadCheckName)

CHECK_KINDS = ("workload", "cel", "evidence", "prometheus", "attestation")

Number = float


class Identities(KubeModel):
    """Kubernetes users and groups (as the API server authenticates them)."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "(has(self.users) && size(self.users) > 0) || (has(self.groups) && size(self.groups) > 0)",
                    "message": "name at least one user or group",
                }
            ]
        }
    }

    users: Annotated[
        list[Annotated[str, Field(max_length=253)]], Field(description="Kubernetes user names.", max_length=32)
    ] = []
    groups: Annotated[
        list[Annotated[str, Field(max_length=253)]], Field(description="Kubernetes groups.", max_length=32)
    ] = []

    def include(self, username: str, groups: Sequence[str]) -> bool:
        return username in self.users or any(g in self.groups for g in groups)

    def __str__(self) -> str:
        parts = []
        if self.groups:
            parts.append(f"groups {', '.join(self.groups)}")
        if self.users:
            parts.append(f"users {', '.join(self.users)}")
        return " or ".join(parts) or "nobody"


class EvidenceCheck(KubeModel):
    """A value attested in a ReleaseSignoff item (for example by CI), compared with a threshold."""

    key: Annotated[
        str,
        Field(description="What the value measures, e.g. 'coverage-percent'; shown in messages.", max_length=128),
    ]
    recorded_by: Annotated[
        Identities,
        Field(
            description="Who may record this evidence (e.g. groups: [system:serviceaccounts:ci]); a value signed by "
            "anyone else is refused at admission and ignored in evaluation."
        ),
    ]
    min: Annotated[Number | None, Field(description="The value must be at least this.")] = None
    max: Annotated[Number | None, Field(description="The value must be at most this.")] = None
    equals: Annotated[str | None, Field(description="The value must equal this string.")] = None


class PrometheusCheck(KubeModel):
    """A PromQL query, placeholders filled in (docs/user-guide.md: $namespace, $candidateNamespace,
    $productionNamespace, $application, $version), compared with min/max."""

    query: Annotated[str, Field(description="PromQL returning one series.", min_length=1)]
    min: Annotated[Number | None, Field(description="The result must be at least this.")] = None
    max: Annotated[Number | None, Field(description="The result must be at most this.")] = None
    for_: Annotated[
        str | None,
        Field(
            alias="for",
            description="Duration (e.g. 10m, 1h, 1h30m; more than zero, at most 31d) over which the condition must "
            "hold (query_range).",
            max_length=32,
        ),
    ] = None


class AttestationCheck(KubeModel):
    """A person holding one of `roles` attests the item in a ReleaseSignoff."""

    roles: Annotated[
        list[Annotated[str, Field(pattern=DNS_LABEL)]],
        Field(
            description="Approval roles (spec.approvals[].role) whose holders may attest.", min_length=1, max_length=32
        ),
    ]


MAX_CEL_CHARS = 4096
"""The longest CEL expression a rule or message may have (the default checklist needs none; Kubernetes' own
validation rules are bounded by cost, which this binding cannot estimate before evaluation)."""


class CelRule(KubeModel):
    """One CEL expression that must be true for every selected workload (docs/user-guide.md: CEL checks)."""

    expression: Annotated[
        str,
        Field(
            description="A CEL expression yielding a bool, over workload, podSpec, containers, services, "
            "networkPolicies, pdbs, hpas and ingresses (the workload's related objects); true means the rule holds.",
            min_length=1,
            max_length=MAX_CEL_CHARS,
        ),
    ]
    message: Annotated[
        str | None,
        Field(
            description="What is wrong when the expression is false (the workload is named before it).",
            max_length=1024,
        ),
    ] = None
    message_expression: Annotated[
        str | None,
        Field(
            description="A CEL expression yielding a string, over the same variables: what is wrong, naming the "
            "container at fault (the workload is named before it). Used instead of message when it evaluates.",
            min_length=1,
            max_length=MAX_CEL_CHARS,
        ),
    ] = None


class CelCheck(KubeModel):
    """Organisation-specific rules in CEL, evaluated for each workload the release selects in its candidate
    namespace. The item passes when every rule is true for every workload."""

    rules: Annotated[
        list[CelRule],
        Field(description="The rules; each must hold for every selected workload.", min_length=1, max_length=16),
    ]


class Check(KubeModel):
    """Exactly one of workload, cel, evidence, prometheus or attestation."""

    model_config = KubeModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "[has(self.workload), has(self.cel), has(self.evidence), has(self.prometheus), "
                    "has(self.attestation)].filter(x, x).size() == 1",
                    "message": "set exactly one check kind: workload, cel, evidence, prometheus or attestation",
                },
                {
                    "rule": "!has(self.params) || has(self.workload)",
                    "message": "params are only for workload checks; remove params or set workload",
                },
            ]
        }
    }

    workload: Annotated[
        WorkloadCheckName | None,
        Field(description="An automated check run against the candidate's workloads."),
    ] = None
    params: Annotated[
        dict[str, Any] | None, Field(description="Parameters of the workload check (see the catalog).")
    ] = None
    cel: Annotated[
        CelCheck | None, Field(description="Rules of your own in CEL over each workload and its related objects.")
    ] = None
    evidence: Annotated[EvidenceCheck | None, Field(description="A value attested in a signoff.")] = None
    prometheus: Annotated[PrometheusCheck | None, Field(description="A PromQL metric gate.")] = None
    attestation: Annotated[AttestationCheck | None, Field(description="A person holding a role attests it.")] = None

    @property
    def kind(self) -> str:
        for name in CHECK_KINDS:
            if getattr(self, name) is not None:
                return name
        return "none"


FOR_PATTERN = r"^([0-9]+(ms|s|m|h|d|w|y))+$"
"""A metric gate's `for` window, as Prometheus writes durations. Checked on the item (not as a field pattern)
so that a refusal names the item's id: a field pattern's message names only an index."""
FOR_ZERO = r"^(0+(ms|s|m|h|d|w|y))+$"


class ChecklistItem(KubeModel):
    model_config = KubeModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    # `for` is a CEL keyword: the API server names the field `__for__` in rules.
                    "rule": "!has(self.check.prometheus) || !has(self.check.prometheus.__for__) || "
                    f"(self.check.prometheus.__for__.matches('{FOR_PATTERN}') && "
                    f"!self.check.prometheus.__for__.matches('{FOR_ZERO}'))",
                    "messageExpression": "'item ' + self.id + ': check.prometheus.for ' + "
                    "self.check.prometheus.__for__ + ' is not a duration above zero; write one like 10m, 1h "
                    "or 1h30m'",
                    "fieldPath": ".check.prometheus.for",
                }
            ]
        }
    }

    id: Annotated[
        str,
        Field(description="Unique DNS label, e.g. unit-test-coverage.", pattern=DNS_LABEL, max_length=63),
    ]
    section: Annotated[str, Field(description="Section path, e.g. 'Code Quality & Testing / Testing Coverage'.")]
    title: Annotated[str, Field(description="What must be true.", min_length=1, max_length=512)]
    required: Annotated[bool, Field(description="Required items block readiness until satisfied.")] = True
    phase: Annotated[
        Literal["pre", "post"],
        Field(description="pre: before the rollout; post: watched after the gate admits it."),
    ] = "pre"
    check: Annotated[Check, Field(description="How the item is satisfied.")]
    rationale: Annotated[
        str | None,
        Field(
            description="Why the check establishes the item (shown in docs/checklist-coverage.md and reports).",
            max_length=1024,
        ),
    ] = None


class Approval(KubeModel):
    role: Annotated[str, Field(description="Role name, e.g. security-lead.", pattern=DNS_LABEL, max_length=63)]
    title: Annotated[str, Field(description="Human title, e.g. Security Lead.")] = ""
    groups: Annotated[list[str], Field(description="Kubernetes groups whose members may sign.")] = []
    users: Annotated[list[str], Field(description="Kubernetes users who may sign.")] = []
    items: Annotated[
        list[Annotated[str, Field(pattern=DNS_LABEL)]],
        Field(description="Item ids this role's sign-off covers."),
    ] = []
    required: Annotated[bool, Field(description="The release needs this approval to be Ready.")] = True


class WaiverGrant(KubeModel):
    """Holders of `roles` may waive `items` (every item when empty) with a signed ReleaseSignoff."""

    roles: Annotated[
        list[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]],
        Field(
            description="Approval roles (spec.approvals[].role) whose holders may waive.", min_length=1, max_length=32
        ),
    ]
    items: Annotated[
        list[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]],
        Field(description="Item ids they may waive; empty: every item.", max_length=1000),
    ] = []

    def covers(self, item_id: str) -> bool:
        return not self.items or item_id in self.items


class ChecklistRules(KubeModel):
    distinct_approvers: Annotated[
        bool, Field(description="One person may hold only one approval role per release.")
    ] = True
    prevent_self_approval: Annotated[bool, Field(description="The creator of a release cannot approve it.")] = True
    max_waiver_days: Annotated[int, Field(description="The longest a waiver may last, in days.", ge=1, le=365)] = 30
    environment_fields: Annotated[
        list[Annotated[str, Field(max_length=256)]] | None,
        Field(
            description=(
                "Pod-template fields that may differ between the inspected candidate and production, as dotted "
                "paths inside the pod template ([*]: every list element; ['key']: one map key, ['prefix*']: keys "
                "with that prefix), e.g. spec.containers[*].resources, metadata.annotations['checksum/*']. "
                "Unset: container resources, literal env values (spec.containers[*].env[*].value) and "
                "topologySpreadConstraints. Everything else must be identical: annotations (but "
                "kubectl.kubernetes.io/restartedAt), env valueFrom, nodeSelector, affinity, tolerations, "
                "priorityClassName."
            ),
            max_length=64,
        ),
    ] = None
    waivers: Annotated[
        list[WaiverGrant],
        Field(
            description="Who may waive which items (a ReleaseSignoff with decision: waive). Empty: nobody may waive.",
            max_length=32,
        ),
    ] = []
    candidate_namespaces: Annotated[
        list[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]],
        Field(
            description="Candidate namespaces any release creator may point at, even without the right to list "
            "Deployments there (otherwise the creator must be able to).",
            max_length=256,
        ),
    ] = []

    prometheus_urls: Annotated[
        list[Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s/@?#]+(/[^\s?#]*)?$")]],
        Field(
            description="Prometheus servers that may judge the metric items of releases following this checklist "
            "(besides the operator's RR_PROMETHEUS_URL and RR_PROMETHEUS_URLS); the first is their default. A "
            "release may pick one of these with spec.prometheusUrl, never another server.",
            max_length=16,
        ),
    ] = []

    def waiver_roles(self, item_id: str) -> list[str]:
        """The roles whose holders may waive `item_id`, in checklist order."""
        roles: list[str] = []
        for grant in self.waivers:
            if grant.covers(item_id):
                roles += [r for r in grant.roles if r not in roles]
        return roles


class ChecklistSpec(KubeModel):
    description: Annotated[str, Field(description="What this checklist is for.")] = ""
    items: Annotated[
        list[ChecklistItem],
        Field(description="The checklist items, in order.", max_length=1000, json_schema_extra=ListMapKeys("id")),
    ] = []
    approvals: Annotated[
        list[Approval],
        Field(description="Role sign-offs the release needs.", max_length=32, json_schema_extra=ListMapKeys("role")),
    ] = []
    rules: Annotated[ChecklistRules, Field(description="Approval and waiver rules.")] = ChecklistRules()


class ReadinessChecklist(KubeModel, ResourceInfo):
    """A reusable checklist: items, role approvals and rules."""

    kind: ClassVar[str] = "ReadinessChecklist"
    plural: ClassVar[str] = "readinesschecklists"
    singular: ClassVar[str] = "readinesschecklist"
    short_names: ClassVar[list[str]] = ["rcl"]
    scope: ClassVar[Literal["Namespaced", "Cluster"]] = "Cluster"
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Items", "type": "integer", "jsonPath": ".status.itemCount"},
        {"name": "Approvals", "type": "integer", "jsonPath": ".status.approvalCount"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]

    metadata: ObjectMeta = ObjectMeta()
    spec: ChecklistSpec
    status: ChecklistStatus | None = None

    def item(self, item_id: str) -> ChecklistItem | None:
        return next((i for i in self.spec.items if i.id == item_id), None)

    def approval(self, role: str) -> Approval | None:
        return next((a for a in self.spec.approvals if a.role == role), None)

    def named_groups(self) -> set[str]:
        """Every group this checklist gives a right to (approval roles, evidence recorders)."""
        groups = {g for a in self.spec.approvals for g in a.groups}
        for item in self.spec.items:
            if item.check.evidence is not None:
                groups.update(item.check.evidence.recorded_by.groups)
        return groups


class ChecklistStatus(KubeModel):
    item_count: Annotated[int | None, Field(description="Number of items.")] = None
    approval_count: Annotated[int | None, Field(description="Number of approval roles.")] = None
    observed_generation: Annotated[int | None, Field(description="Generation these counts are for.")] = None


ReadinessChecklist.model_rebuild()
