"""ReleaseSignoff (namespaced, beside its ReleaseReadiness; immutable): an attestation or approval."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from release_readiness.api.common import DNS_LABEL, KubeModel, ListMapKeys, ObjectMeta, ResourceInfo

__all__ = ["ReleaseSignoff", "Signer", "SignoffItem", "SignoffSpec"]


class SignoffItem(KubeModel):
    id: Annotated[str, Field(description="The checklist item attested.", pattern=DNS_LABEL)]
    value: Annotated[str | None, Field(description="The attested value for evidence items, e.g. '84.2'.")] = None
    evidence: Annotated[str | None, Field(description="A URL to the evidence (CI run, report).")] = None


class Signer(KubeModel):
    username: Annotated[str, Field(description="The authenticated Kubernetes user.")]
    groups: Annotated[list[str], Field(description="The user's groups at signing time.")] = []


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
            ]
        }
    }

    release: Annotated[str, Field(description="The ReleaseReadiness name in this namespace.", min_length=1)]
    role: Annotated[str | None, Field(description="Sign as this approval role.", pattern=DNS_LABEL, max_length=63)] = (
        None
    )
    decision: Annotated[Literal["approve", "reject"], Field(description="approve, or reject (a veto).")] = "approve"
    items: Annotated[
        list[SignoffItem],
        Field(description="Items attested by this signoff.", json_schema_extra=ListMapKeys("id")),
    ] = []
    comment: Annotated[str | None, Field(description="Free text; required for a reject.")] = None
    signer: Annotated[Signer | None, Field(description="Stamped by the admission webhook from the request's user.")] = (
        None
    )
    signed_at: Annotated[dt.datetime | None, Field(description="Stamped by the admission webhook.")] = None
    candidate_fingerprint: Annotated[
        str | None, Field(description="The release's candidate fingerprint when signed (stamped).")
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
