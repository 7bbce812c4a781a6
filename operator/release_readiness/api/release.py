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
    "RefusedSignoff",
    "ReleaseReadiness",
    "ReleaseSpec",
    "ReleaseStatus",
    "Summary",
]

ItemState = Literal["Passed", "Failed", "Pending", "Waived", "NotApplicable"]


def _fixed(field: str, what: str) -> dict[str, Any]:
    """A CEL transition rule: the field keeps the value it was created with."""
    return {
        "x-kubernetes-validations": [
            {
                "rule": "self == oldSelf",
                "message": f"spec.{field} is fixed at creation ({what}); create a new ReleaseReadiness instead",
            }
        ]
    }


ApprovalState = Literal["Approved", "Missing", "Stale", "Rejected"]


class Candidate(KubeModel):
    namespace: Annotated[
        str,
        Field(description="Where the release candidate runs (usually staging).", pattern=DNS_LABEL, max_length=63),
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

    estimated_duration: Annotated[str | None, Field(description="e.g. 30m.", max_length=64)] = None
    rollback_duration: Annotated[str | None, Field(description="e.g. 10m.", max_length=64)] = None
    expected_downtime: Annotated[str | None, Field(description="e.g. none.", max_length=64)] = None
    on_call_lead: Annotated[str | None, Field(description="The on-call team lead.", max_length=253)] = None
    on_call_members: Annotated[
        list[Annotated[str, Field(max_length=253)]], Field(description="The on-call team members.", max_length=32)
    ] = []
    war_room: Annotated[str | None, Field(description="War-room link.", max_length=2048)] = None


class ReleaseSpec(KubeModel):
    """What is released and how it is judged. application, version, checklist and candidate are fixed at creation:
    approvals and evidence were given for them, so another release needs a new ReleaseReadiness.
    Waivers are ReleaseSignoffs with decision: waive (signed, by the roles the checklist names)."""

    application: Annotated[
        str,
        Field(
            description="Matches the workload label app.kubernetes.io/name. Fixed at creation.",
            min_length=1,
            max_length=63,
            json_schema_extra=_fixed("application", "signoffs were given for it"),
        ),
    ]
    version: Annotated[
        str,
        Field(
            description="Matches app.kubernetes.io/version on the pod template. Fixed at creation.",
            min_length=1,
            max_length=63,
            json_schema_extra=_fixed("version", "signoffs were given for it"),
        ),
    ]
    checklist: Annotated[
        str,
        Field(
            description="The ReadinessChecklist to follow. Fixed at creation.",
            max_length=253,
            json_schema_extra=_fixed("checklist", "signoffs were given against it"),
        ),
    ] = "pre-production"
    candidate: Annotated[
        Candidate,
        Field(
            description="Where the release candidate runs. Fixed at creation.",
            json_schema_extra=_fixed("candidate", "its creator was checked against it and it was inspected"),
        ),
    ]
    window: Annotated[DeploymentWindow | None, Field(description="Optional deployment window.")] = None
    deployment: Annotated[DeploymentDetails | None, Field(description="Deployment details for the report.")] = None
    prometheus_url: Annotated[
        str | None,
        Field(
            description="The Prometheus that judges this release's metric items, one of the servers the platform "
            "allows (the operator's RR_PROMETHEUS_URL and RR_PROMETHEUS_URLS, the checklist's "
            "spec.rules.prometheusUrls); any other is refused. Unset: the checklist's first server, else the "
            "operator's. Fixed at creation: the metric gates must not be re-pointed at another server after creation.",
            max_length=2048,
            json_schema_extra=_fixed("prometheusUrl", "metric gates were evaluated against it"),
        ),
    ] = None


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


class RefusedSignoff(KubeModel):
    """A stored signoff that evaluation does not count, and why (rules hold in evaluation as at admission)."""

    name: Annotated[str, Field(description="The ReleaseSignoff's name.")]
    signer: Annotated[str, Field(description="Who signed it.")] = ""
    reason: Annotated[str, Field(description="Why it does not count.")]


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
    refused_signoffs: Annotated[
        list[RefusedSignoff],
        Field(description="Signoffs that do not count, with the reason (at most 50 shown).", max_length=50),
    ] = []
    waiver_fingerprint: Annotated[
        str,
        Field(description="sha256 over the counted waiver signoffs (empty: none); approvals are bound to it."),
    ] = ""
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
