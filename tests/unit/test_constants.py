"""The API models' Literal types (their CRD schemas) and the shared StrEnums list the same values."""

from __future__ import annotations

from typing import get_args

from release_readiness.api.release import ApprovalState as ApprovalLiteral
from release_readiness.api.release import ItemState as ItemLiteral
from release_readiness.constants import SATISFIED, ApprovalState, ItemState, Reason


def test_the_schemas_states_are_the_enums() -> None:
    assert set(get_args(ItemLiteral)) == {s.value for s in ItemState}
    assert set(get_args(ApprovalLiteral)) == {s.value for s in ApprovalState}
    assert set(ItemState) >= SATISFIED
    assert ItemState.FAILED not in SATISFIED
    assert ItemState.PENDING not in SATISFIED


def test_reasons_are_camel_case_and_distinct() -> None:
    values = [r.value for r in Reason]
    assert len(values) == len(set(values))
    assert all(v[0].isupper() and v.isalnum() for v in values)
