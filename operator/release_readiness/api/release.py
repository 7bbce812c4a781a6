"""ReleaseReadiness (namespaced; lives in the production namespace it gates): one release's checklist state."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from release_readiness.api.common import (
    DNS_LABEL,
    Condition,
    KubeModel,
    LabelSelector,
    ListMapKeys,
    ObjectMeta,
    ResourceInfo,
)

__all__ = [
    "ApprovalState",
    "ApprovalStatus",
    "Candidate",
    "CandidateImage",
    "CandidateStatus",
    "CandidateWorkload",
    "DeploymentDetails",
    "DeploymentWindow",
    "ItemState",
    "ItemStatus",
    "ReleaseReadiness",
    "ReleaseSpec",
    "ReleaseStatus",
    "Summary",
    "Waiver",
]

ItemState = Literal["Passed", "Failed", "Pending", "Waived", "NotApplicable"]
ApprovalState = Literal["Approved", "Missing", "Stale", "Rejected"]


class Candidate(KubeModel):
    namespace: Annotated[
        str,
        Field(description="Where the release candidate runs (usually staging).", pattern=DNS_LABEL),
    ]
    selector: Annotated[
        LabelSelector | None,
        Field(
            description="Selects the candidate's workloads; default: "
            "app.kubernetes.io/name=<application> and app.kubernetes.io/version=<version>."
        ),
    ] = None


class DeploymentWindow(KubeModel):
    model_config = KubeModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {"rule": "self.end > self.start", "message": "window.end must be after window.start"}
            ]
        }
    }
    start: Annotated[dt.datetime, Field(description="The window opens (RFC 3339).")]
    end: Annotated[dt.datetime, Field(description="The window closes (RFC 3339).")]


class DeploymentDetails(KubeModel):
    """The seed checklist's Deployment Details."""

    estimated_duration: Annotated[str | None, Field(description="e.g. 30m.")] = None
    rollback_duration: Annotated[str | None, Field(description="e.g. 10m.")] = None
    expected_downtime: Annotated[str | None, Field(description="e.g. none.")] = None
    on_call_lead: Annotated[str | None, Field(description="The on-call team lead.")] = None
    on_call_members: Annotated[list[str], Field(description="The on-call team members.")] = []
    war_room: Annotated[str | None, Field(description="War-room link.")] = None


class Waiver(KubeModel):
    item: Annotated[str, Field(description="The item id waived.", pattern=DNS_LABEL)]
    reason: Annotated[str, Field(description="Why the item may be skipped.", min_length=1)]
    expires: Annotated[dt.datetime, Field(description="When the waiver stops counting (RFC 3339).")]
    approved_by: Annotated[str | None, Field(description="Who agreed to the waiver.")] = None


class ReleaseSpec(KubeModel):
    application: Annotated[
        str,
        Field(description="Matches the workload label app.kubernetes.io/name.", min_length=1, max_length=63),
    ]
    version: Annotated[
        str,
        Field(description="Matches app.kubernetes.io/version on the pod template.", min_length=1, max_length=63),
    ]
    checklist: Annotated[str, Field(description="The ReadinessChecklist to follow.")] = "pre-production"
    candidate: Annotated[Candidate, Field(description="Where the release candidate runs.")]
    window: Annotated[DeploymentWindow | None, Field(description="Optional deployment window.")] = None
    deployment: Annotated[DeploymentDetails | None, Field(description="Deployment details for the report.")] = None
    waivers: Annotated[
        list[Waiver],
        Field(description="Items that may be skipped until expiry.", json_schema_extra=ListMapKeys("item")),
    ] = []
    prometheus_url: Annotated[
        str | None, Field(description="Prometheus URL for this release (overrides the operator's).")
    ] = None

    def waiver(self, item_id: str) -> Waiver | None:
        return next((w for w in self.waivers if w.item == item_id), None)


class ItemStatus(KubeModel):
    id: str
    state: ItemState
    message: str = ""
    checked_at: dt.datetime | None = None


class ApprovalStatus(KubeModel):
    role: str
    state: ApprovalState
    by: str | None = None
    at: dt.datetime | None = None
    message: str = ""


class Summary(KubeModel):
    total: int = 0
    passed: int = 0
    failed: int = 0
    pending: int = 0
    waived: int = 0
    not_applicable: int = 0
    required_outstanding: int = 0
    approvals_approved: int = 0
    approvals_required: int = 0
    progress: Annotated[str, Field(description="passed/total, for printing.")] = "0/0"
    approvals: Annotated[str, Field(description="approved/required, for printing.")] = "0/0"


class CandidateImage(KubeModel):
    container: str
    image: str
    digest: str | None = None


class CandidateWorkload(KubeModel):
    kind: str
    name: str
    images: list[CandidateImage] = []
    template_hash: Annotated[
        str,
        Field(description="sha256 over the pod template without the checklist's per-environment fields."),
    ] = ""


class CandidateStatus(KubeModel):
    namespace: str = ""
    workloads: list[CandidateWorkload] = []
    fingerprint: Annotated[
        str, Field(description="sha256 over the inspected images and pod templates; approvals are bound to it.")
    ] = ""


class ReleaseStatus(KubeModel):
    observed_generation: int | None = None
    conditions: Annotated[list[Condition], Field(json_schema_extra=ListMapKeys("type"))] = []
    summary: Summary | None = None
    items: Annotated[list[ItemStatus], Field(json_schema_extra=ListMapKeys("id"))] = []
    approvals: Annotated[list[ApprovalStatus], Field(json_schema_extra=ListMapKeys("role"))] = []
    candidate: CandidateStatus | None = None
    admitted_at: Annotated[
        dt.datetime | None, Field(description="When the gate first admitted the release into production.")
    ] = None

    def condition(self, type_: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == type_), None)


class ReleaseReadiness(KubeModel, ResourceInfo):
    """One release's checklist state: what is checked, signed, waived and outstanding."""

    kind: ClassVar[str] = "ReleaseReadiness"
    plural: ClassVar[str] = "releasereadinesses"
    singular: ClassVar[str] = "releasereadiness"
    short_names: ClassVar[list[str]] = ["rr"]
    scope: ClassVar[Literal["Namespaced", "Cluster"]] = "Namespaced"
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Application", "type": "string", "jsonPath": ".spec.application"},
        {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Passed", "type": "string", "jsonPath": ".status.summary.progress"},
        {"name": "Approvals", "type": "string", "jsonPath": ".status.summary.approvals"},
        {
            "name": "Reason",
            "type": "string",
            "priority": 1,
            "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]

    metadata: ObjectMeta = ObjectMeta()
    spec: ReleaseSpec
    status: ReleaseStatus | None = None
