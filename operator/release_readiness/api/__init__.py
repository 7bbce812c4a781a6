"""The readiness.dev/v1alpha1 API: pydantic models that are the single source of the CRD schemas."""

from release_readiness.api.checklist import (
    WORKLOAD_CHECKS,
    Approval,
    AttestationCheck,
    Check,
    ChecklistItem,
    ChecklistRules,
    ChecklistSpec,
    EvidenceCheck,
    Identities,
    PrometheusCheck,
    ReadinessChecklist,
    WaiverGrant,
)
from release_readiness.api.common import Condition, LabelSelector, ObjectMeta
from release_readiness.api.release import (
    ApprovalStatus,
    Candidate,
    CandidateStatus,
    ItemState,
    ItemStatus,
    RefusedSignoff,
    ReleaseReadiness,
    ReleaseSpec,
    ReleaseStatus,
    Summary,
)
from release_readiness.api.signoff import ReleaseSignoff, Signer, SignoffItem, SignoffSpec

KINDS = (ReadinessChecklist, ReleaseReadiness, ReleaseSignoff)

__all__ = [
    "KINDS",
    "WORKLOAD_CHECKS",
    "Approval",
    "ApprovalStatus",
    "AttestationCheck",
    "Candidate",
    "CandidateStatus",
    "Check",
    "ChecklistItem",
    "ChecklistRules",
    "ChecklistSpec",
    "Condition",
    "EvidenceCheck",
    "Identities",
    "ItemState",
    "ItemStatus",
    "LabelSelector",
    "ObjectMeta",
    "PrometheusCheck",
    "ReadinessChecklist",
    "RefusedSignoff",
    "ReleaseReadiness",
    "ReleaseSignoff",
    "ReleaseSpec",
    "ReleaseStatus",
    "Signer",
    "SignoffItem",
    "SignoffSpec",
    "Summary",
    "WaiverGrant",
]
