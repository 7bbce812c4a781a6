"""ReleaseSignoff (namespaced, beside its ReleaseReadiness; immutable): an attestation or approval."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from release_readiness.api.common import DNS_LABEL, KubeModel, ListMapKeys, ObjectMeta, ResourceInfo

__all__ = [
    "LIMITS",
    "REPORT_FORMATS",
    "Decision",
    "EvidenceSource",
    "ReleaseSignoff",
    "Signer",
    "SignoffItem",
    "SignoffSpec",
]

Decision = Literal["approve", "reject", "waive"]


class LIMITS:
    """Size limits of a signoff (in the schema, so the API server refuses oversize input before anyone reads it)."""

    COMMENT = 4096
    VALUE = 64
    EVIDENCE_URL = 1024
    ITEMS = 128
    GROUPS = 256
    NAME = 253
    UID = 128
    NOTE = 200
    """How much of a veto's or waiver's comment the operator keeps in memory and shows in status."""


REPORT_FORMATS = ("junit", "cobertura", "coverage-py", "lcov", "sarif", "trivy", "k6")
ReportFormat = Literal["junit", "cobertura", "coverage-py", "lcov", "sarif", "trivy", "k6"]


class EvidenceSource(KubeModel):
    """Where an evidence value was read (`kubectl readiness evidence`): the report, its digest and the CI run."""

    format: Annotated[ReportFormat, Field(description="The report's format, e.g. junit or cobertura.")]
    file: Annotated[str, Field(description="The report's file name as CI gave it.", min_length=1, max_length=253)]
    digest: Annotated[
        str,
        Field(description="sha256 of the report's bytes: sha256:<64 hex>.", pattern=r"^sha256:[0-9a-f]{64}$"),
    ]
    metric: Annotated[
        str, Field(description="The figure read, e.g. pass-rate-percent.", pattern=DNS_LABEL, max_length=63)
    ]
    run: Annotated[
        str | None, Field(description="The CI run that produced the report (URL).", max_length=LIMITS.EVIDENCE_URL)
    ] = None


class SignoffItem(KubeModel):
    id: Annotated[str, Field(description="The checklist item attested.", pattern=DNS_LABEL, max_length=63)]
    value: Annotated[
        str | None, Field(description="The attested value for evidence items, e.g. '84.2'.", max_length=LIMITS.VALUE)
    ] = None
    evidence: Annotated[
        str | None, Field(description="A URL to the evidence (CI run, report).", max_length=LIMITS.EVIDENCE_URL)
    ] = None
    source: Annotated[
        EvidenceSource | None,
        Field(description="The CI report the value was read from (recorded by kubectl readiness evidence)."),
    ] = None


class Signer(KubeModel):
    username: Annotated[str, Field(description="The authenticated Kubernetes user.", max_length=LIMITS.NAME)]
    groups: Annotated[
        list[Annotated[str, Field(max_length=LIMITS.NAME)]],
        Field(description="The user's groups at signing time.", max_length=LIMITS.GROUPS),
    ] = []


class SignoffSpec(KubeModel):
    model_config = KubeModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.role) || (has(self.items) && size(self.items) > 0)",
                    "message": "a signoff needs a role to approve or items to attest",
                },
                {
                    "rule": "!has(self.decision) || self.decision != 'reject' || "
                    "(has(self.comment) && size(self.comment) > 0)",
                    "message": "a reject (veto) needs a comment saying why",
                },
                {
                    "rule": "!has(self.decision) || self.decision != 'waive' || (has(self.role) && has(self.items) "
                    "&& size(self.items) > 0 && has(self.comment) && size(self.comment) > 0 && has(self.expires))",
                    "message": "a waiver needs role (the waiving role), items (what is waived), comment (the reason) "
                    "and expires (when it stops counting)",
                },
                {
                    "rule": "!has(self.expires) || (has(self.decision) && self.decision == 'waive')",
                    "message": "expires is only for decision: waive",
                },
            ]
        }
    }

    release: Annotated[
        str, Field(description="The ReleaseReadiness name in this namespace.", min_length=1, max_length=LIMITS.NAME)
    ]
    role: Annotated[str | None, Field(description="Sign as this approval role.", pattern=DNS_LABEL, max_length=63)] = (
        None
    )
    decision: Annotated[
        Decision,
        Field(
            description="approve; reject (a veto: holds until its signer deletes it or approves the same role "
            "later); or waive (items skipped until expires, allowed to the roles the checklist names)."
        ),
    ] = "approve"
    items: Annotated[
        list[SignoffItem],
        Field(
            description="Items attested (approve) or waived (waive) by this signoff.",
            max_length=LIMITS.ITEMS,
            json_schema_extra=ListMapKeys("id"),
        ),
    ] = []
    comment: Annotated[
        str | None,
        Field(description="Free text; required for a reject and a waive (the reason).", max_length=LIMITS.COMMENT),
    ] = None
    expires: Annotated[
        dt.datetime | None,
        Field(description="decision: waive only: when the waiver stops counting (RFC 3339), within maxWaiverDays."),
    ] = None
    expected_fingerprint: Annotated[
        str | None,
        Field(
            description="Optional: the candidate fingerprint the signer reviewed (status.candidate.fingerprint, as "
            "`kubectl readiness status` shows it). Refused at admission when the release's candidate is not that "
            "one any more; kubectl readiness approve and attest send it.",
            max_length=LIMITS.NAME,
        ),
    ] = None
    signer: Annotated[Signer | None, Field(description="Stamped by the admission webhook from the request's user.")] = (
        None
    )
    signed_at: Annotated[dt.datetime | None, Field(description="Stamped by the admission webhook.")] = None
    release_uid: Annotated[
        str | None,
        Field(
            alias="releaseUID",
            description="The metadata.uid of the ReleaseReadiness signed (stamped; a client-set value that differs "
            "is refused). The signoff counts only for that object, never for a later release of the same name.",
            max_length=LIMITS.UID,
        ),
    ] = None
    candidate_fingerprint: Annotated[
        str | None,
        Field(description="The release's candidate fingerprint when signed (stamped).", max_length=LIMITS.NAME),
    ] = None
    waiver_fingerprint: Annotated[
        str | None,
        Field(
            description="The release's waiver fingerprint when signed (stamped); a later waiver makes it Stale.",
            max_length=LIMITS.NAME,
        ),
    ] = None


class ReleaseSignoff(KubeModel, ResourceInfo):
    """An identity-bound attestation or approval of a release; delete it to revoke."""

    kind: ClassVar[str] = "ReleaseSignoff"
    plural: ClassVar[str] = "releasesignoffs"
    singular: ClassVar[str] = "releasesignoff"
    short_names: ClassVar[list[str]] = ["rso"]
    scope: ClassVar[Literal["Namespaced", "Cluster"]] = "Namespaced"
    printer_columns: ClassVar[list[dict[str, Any]]] = [
        {"name": "Release", "type": "string", "jsonPath": ".spec.release"},
        {"name": "Role", "type": "string", "jsonPath": ".spec.role"},
        {"name": "Decision", "type": "string", "jsonPath": ".spec.decision"},
        {"name": "Signer", "type": "string", "jsonPath": ".spec.signer.username"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]

    metadata: ObjectMeta = ObjectMeta()
    spec: SignoffSpec
