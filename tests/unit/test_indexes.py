"""The index keeps only what evaluation and admission need of a signoff."""

from __future__ import annotations

from typing import Any

from release_readiness.indexes import ClusterIndex


def signoff(name: str, decision: str, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "prod", "uid": f"uid-{name}", "labels": {"x": "y" * 60}},
        "spec": {
            "release": "r",
            "role": "security-lead",
            "decision": decision,
            "comment": "c" * 4096,
            "items": [{"id": "scan", "value": "1", "evidence": "https://ci.example.com/" + "e" * 1000}],
            "signer": {"username": "sasha", "groups": ["security-leads"]},
            **spec,
        },
    }


def test_a_signoff_is_kept_without_evidence_urls_and_with_at_most_a_short_note() -> None:
    index = ClusterIndex()
    assert index.upsert("ReleaseSignoff", signoff("ok", "approve")) == [("prod", "r")]
    assert index.upsert("ReleaseSignoff", signoff("veto", "reject")) == [("prod", "r")]
    approval, veto = index.signoffs[("prod", "ok")], index.signoffs[("prod", "veto")]
    assert approval.spec.comment is None
    assert approval.spec.items[0].evidence is None
    assert approval.spec.items[0].value == "1"
    assert approval.metadata.labels == {}
    assert approval.metadata.uid == "uid-ok"
    assert veto.spec.comment is not None
    assert len(veto.spec.comment) == 200
    assert veto.spec.comment.endswith("…")
    # Item ids and group names are shared between signoffs, not copied.
    assert approval.spec.items[0].id is veto.spec.items[0].id
    assert approval.spec.signer is not None
    assert veto.spec.signer is not None
    assert approval.spec.signer.groups[0] is veto.spec.signer.groups[0]


def release(uid: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "r", "namespace": "prod", "uid": uid},
        "spec": {"application": "a", "version": "1", "checklist": "c", "candidate": {"namespace": "stg"}},
    }


def test_a_release_counts_only_the_signoffs_of_its_own_object() -> None:
    index = ClusterIndex()
    assert index.signoffs_for(("prod", "r")) == []  # unknown release: nothing is its
    index.upsert("ReleaseSignoff", signoff("old", "approve", releaseUID="uid-1"))
    index.upsert("ReleaseSignoff", signoff("unstamped", "approve"))
    index.upsert("ReleaseReadiness", release("uid-1"))
    assert [s.metadata.name for s in index.signoffs_for(("prod", "r"))] == ["old"]
    index.delete("ReleaseReadiness", release("uid-1"))
    index.upsert("ReleaseReadiness", release("uid-2"))  # re-created with the same name
    assert index.signoffs_for(("prod", "r")) == []
    index.upsert("ReleaseSignoff", signoff("new", "approve", releaseUID="uid-2"))
    assert [s.metadata.name for s in index.signoffs_for(("prod", "r"))] == ["new"]
    assert {s.metadata.name for s in index.signoffs_naming(("prod", "r"))} == {"old", "unstamped", "new"}
