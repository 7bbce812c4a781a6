"""The names the parts share, in one place: item and approval states, condition reasons, and the labels and
annotations the operator, the gate, the CLI and the notifier read or write.

StrEnums, so a value is its string (what the API server stores and kubectl shows) and a misspelt member is an
error at import, not a silent mismatch. The API models keep `Literal` types for their schemas; a unit test
checks they list the same values.
"""

from __future__ import annotations

from enum import StrEnum

from release_readiness import API_VERSION, CREATED_BY, GROUP, VERSION

__all__ = [
    "API_VERSION",
    "GROUP",
    "SATISFIED",
    "VERSION",
    "Annotation",
    "ApprovalState",
    "ItemState",
    "Label",
    "Reason",
]


class ItemState(StrEnum):
    PASSED = "Passed"
    FAILED = "Failed"
    PENDING = "Pending"
    WAIVED = "Waived"
    NOT_APPLICABLE = "NotApplicable"


SATISFIED: frozenset[str] = frozenset(s.value for s in (ItemState.PASSED, ItemState.WAIVED, ItemState.NOT_APPLICABLE))
"""Item states that count as done for readiness."""


class ApprovalState(StrEnum):
    APPROVED = "Approved"
    MISSING = "Missing"
    STALE = "Stale"
    REJECTED = "Rejected"


class Reason(StrEnum):
    """Condition reasons (CamelCase, never literals at the use site)."""

    READY = "ReleaseReady"
    ITEMS_OUTSTANDING = "ItemsOutstanding"
    ALL_ITEMS_PASSED = "AllItemsPassed"
    APPROVALS_MISSING = "ApprovalsMissing"
    APPROVALS_STALE = "ApprovalsStale"
    APPROVED = "AllApprovalsGranted"
    VETOED = "Vetoed"
    CHECKLIST_NOT_FOUND = "ChecklistNotFound"
    CANDIDATE_NAMESPACE_NOT_FOUND = "CandidateNamespaceNotFound"
    NO_CANDIDATE_WORKLOADS = "NoCandidateWorkloads"
    NOT_STALLED = "Progressing"
    RECONCILED = "Reconciled"
    POST_PENDING = "NotDeployed"
    POST_HEALTHY = "PostDeploymentChecksPassed"
    POST_FAILING = "PostDeploymentChecksFailing"
    POST_WATCHING = "PostDeploymentWatching"
    INVALID_SPEC = "InvalidSpec"
    CANDIDATE_TOO_LARGE = "CandidateTooLarge"


class Label(StrEnum):
    APP_NAME = "app.kubernetes.io/name"
    """The application a workload belongs to: how the gate and the candidate selector find a release."""
    APP_VERSION = "app.kubernetes.io/version"
    GATE = f"{GROUP}/gate"
    """On a Namespace: enforce, warn or audit."""
    SUITE = f"{GROUP}/suite"
    """On a Job: the test suite it runs (checks of kind testSuites)."""
    NOTIFICATION_SINK = f"{GROUP}/notification-sink"
    NOTIFICATION_LEDGER = f"{GROUP}/notification-ledger"


class Annotation(StrEnum):
    CREATED_BY = CREATED_BY
    """On a ReleaseReadiness: who created it (for preventSelfApproval)."""
    BREAK_GLASS = f"{GROUP}/break-glass"
    """On a workload: the reason for an emergency rollout past the gate."""
    SUITE_CREATOR = f"{GROUP}/suite-creator"
    """On a suite Job: who created it, stamped by the webhook."""
    SCAN = f"{GROUP}/scan"
    """On a workload: image-scan results recorded by CI."""
