"""Shared building blocks of the API: the base model, conditions, label selectors, object metadata."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "DNS_LABEL",
    "Condition",
    "ConditionStatus",
    "KubeModel",
    "LabelSelector",
    "LabelSelectorRequirement",
    "ListMapKeys",
    "ObjectMeta",
    "ResourceInfo",
]

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""RFC 1123 label: what Kubernetes names and checklist ids look like."""


def ListMapKeys(*keys: str) -> dict[str, Any]:  # noqa: N802 - reads like a marker at the use site
    """Schema extra for a list keyed by `keys` (server-side apply merges its entries by key)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


class KubeModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields are ignored when reading."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def to_dict(self) -> dict[str, Any]:
        """The object as the API server stores it: aliases, no unset optional fields."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(KubeModel):
    """The standard metav1.Condition shape."""

    type: Annotated[str, Field(description="Type of condition in CamelCase, e.g. Ready.", max_length=316)]
    status: Annotated[ConditionStatus, Field(description="True, False or Unknown.")]
    observed_generation: Annotated[
        int | None, Field(description="The .metadata.generation the condition was set for.", ge=0)
    ] = None
    last_transition_time: Annotated[
        dt.datetime, Field(description="When the condition last changed from one status to another.")
    ]
    reason: Annotated[
        str,
        Field(
            description="A CamelCase reason for the last transition.",
            max_length=1024,
            pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        ),
    ]
    message: Annotated[str, Field(description="A human-readable explanation.", max_length=32768)] = ""


class LabelSelectorRequirement(KubeModel):
    key: Annotated[str, Field(description="The label key the selector applies to.", max_length=317)]
    operator: Annotated[
        Literal["In", "NotIn", "Exists", "DoesNotExist"], Field(description="How the key relates to values.")
    ]
    values: Annotated[
        list[Annotated[str, Field(max_length=63)]], Field(description="Values for In and NotIn.", max_length=64)
    ] = []


class LabelSelector(KubeModel):
    """A metav1.LabelSelector (bounded, so rules comparing it stay cheap)."""

    match_labels: Annotated[
        dict[str, Annotated[str, Field(max_length=63)]],
        Field(description="Labels that must all match.", max_length=32),
    ] = {}
    match_expressions: Annotated[
        list[LabelSelectorRequirement], Field(description="Requirements that must all hold.", max_length=16)
    ] = []

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and (not present or labels[req.key] not in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True

    def is_empty(self) -> bool:
        return not self.match_labels and not self.match_expressions


class ObjectMeta(KubeModel):
    """The parts of metav1.ObjectMeta the operator reads."""

    name: str = ""
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    creation_timestamp: dt.datetime | None = None
    deletion_timestamp: dt.datetime | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class ResourceInfo:
    """Class-level CRD facts of a kind (names, scope, printer columns)."""

    kind: ClassVar[str]
    plural: ClassVar[str]
    singular: ClassVar[str]
    short_names: ClassVar[list[str]]
    scope: ClassVar[Literal["Namespaced", "Cluster"]]
    printer_columns: ClassVar[list[dict[str, Any]]]
    categories: ClassVar[list[str]] = ["readiness"]
