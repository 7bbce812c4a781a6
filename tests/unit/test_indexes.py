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


def named_release(namespace: str, name: str, candidate: str, checklist: str = "c", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {
            "application": name,
            "version": "1",
            "checklist": checklist,
            "candidate": {"namespace": candidate},
            **spec,
        },
    }


def brute_force(index: ClusterIndex) -> dict[str, Any]:
    """What the secondary indexes must answer, computed by scanning everything (as the index once did)."""
    namespaces = {ns for ns, _ in index.releases} | {r.spec.candidate.namespace for r in index.releases.values()}
    return {
        "in": {ns: sorted(k for k in index.releases if k[0] == ns) for ns in namespaces},
        "for": {
            (ns, app, version): sorted(
                k
                for k, r in index.releases.items()
                if k[0] == ns and (r.spec.application, r.spec.version) == (app, version)
            )
            for ns in namespaces
            for app in ("a", "b", "c", "d")
            for version in ("1", "2")
        },
        "watching": {
            ns: sorted(k for k, r in index.releases.items() if k[0] == ns or r.spec.candidate.namespace == ns)
            for ns in namespaces
        },
        "using": {
            c: sorted(k for k, r in index.releases.items() if r.spec.checklist == c)
            for c in {r.spec.checklist for r in index.releases.values()} | {"gone"}
        },
        "naming": {
            key: sorted(k for k, s in index.signoffs.items() if k[0] == key[0] and s.spec.release == key[1])
            for key in {(ns, s.spec.release) for (ns, _), s in index.signoffs.items()}
        },
    }


def answered(index: ClusterIndex, expected: dict[str, Any]) -> dict[str, Any]:
    return {
        "in": {
            ns: sorted((r.metadata.namespace or "", r.metadata.name or "") for r in index.releases_in(ns))
            for ns in expected["in"]
        },
        "for": {
            key: sorted((r.metadata.namespace or "", r.metadata.name or "") for r in index.releases_for(*key))
            for key in expected["for"]
        },
        "watching": {ns: index._watching(ns) for ns in expected["watching"]},
        "using": {c: index.releases_using(c) for c in expected["using"]},
        "naming": {
            key: sorted((s.metadata.namespace or "", s.metadata.name or "") for s in index.signoffs_naming(key))
            for key in expected["naming"]
        },
    }


def test_the_per_namespace_and_per_release_indexes_agree_with_a_full_scan_through_changes_and_deletes() -> None:
    import random

    rng = random.Random(7)
    index = ClusterIndex()
    for step in range(400):
        ns, other = rng.choice(["p1", "p2", "p3"]), rng.choice(["s1", "s2", "p1"])
        name = rng.choice(["a", "b", "c", "d"])
        action = rng.random()
        if action < 0.35:
            version = rng.choice(["1", "2"])
            index.upsert("ReleaseReadiness", named_release(ns, name, other, rng.choice(["c", "e"]), version=version))
        elif action < 0.5:
            index.delete("ReleaseReadiness", named_release(ns, name, other))
        elif action < 0.85:
            body = signoff(f"s{rng.randrange(6)}", rng.choice(["approve", "reject"]), release=name)
            body["metadata"]["namespace"] = ns
            index.upsert("ReleaseSignoff", body)
        else:
            body = signoff(f"s{rng.randrange(6)}", "approve", release=name)
            body["metadata"]["namespace"] = ns
            index.delete("ReleaseSignoff", body)
        expected = brute_force(index)
        assert answered(index, expected) == expected, f"step {step}"


def test_releases_and_signoffs_the_model_refuses_are_recorded_with_why_and_named_where_they_matter() -> None:
    index = ClusterIndex()
    index.upsert("ReleaseReadiness", named_release("prod", "r", "stg"))
    bad = named_release("prod", "old", "stg")
    bad["spec"]["version"] = ""  # stored under an older schema, say
    assert index.upsert("ReleaseReadiness", bad) == [("prod", "old")]
    assert ("prod", "old") not in index.releases
    assert set(index.invalid_releases_in("prod")) == {"old"}
    assert "spec.version" in index.invalid_releases_in("prod")["old"]
    assert index.invalid_releases_in("stg") == {}
    assert ("prod", "old") in index.keys("ReleaseReadiness")

    broken = signoff("broken", "approve")
    broken["spec"]["decision"] = "maybe"
    assert index.upsert("ReleaseSignoff", broken) == [("prod", "r")]
    assert set(index.invalid_signoffs_naming(("prod", "r"))) == {"broken"}
    assert "spec.decision" in index.invalid_signoffs_naming(("prod", "r"))["broken"]
    assert ("prod", "broken") in index.keys("ReleaseSignoff")
    # Fixed in place: it counts again and is no longer listed as unreadable.
    assert index.upsert("ReleaseSignoff", signoff("broken", "approve")) == [("prod", "r")]
    assert index.invalid_signoffs_naming(("prod", "r")) == {}
    assert [s.metadata.name for s in index.signoffs_naming(("prod", "r"))] == ["broken"]
    # Deleting either kind forgets it, and names the release to re-evaluate.
    index.upsert("ReleaseSignoff", broken)
    assert index.delete("ReleaseSignoff", broken) == [("prod", "r")]
    assert index.invalid_signoffs == {}
    index.delete("ReleaseReadiness", bad)
    assert index.invalid_releases == {}


def test_the_operators_own_status_write_coming_back_is_not_evaluated_again() -> None:
    index = ClusterIndex()
    body = named_release("prod", "r", "stg")
    body["metadata"] |= {"generation": 1, "resourceVersion": "10"}
    assert index.upsert("ReleaseReadiness", body) == [("prod", "r")]
    written = {**body, "metadata": {**body["metadata"], "resourceVersion": "11"}, "status": {"observedGeneration": 1}}
    assert index.upsert("ReleaseReadiness", written) == []
    r = index.releases[("prod", "r")]
    assert r.status is not None
    assert r.status.observed_generation == 1, "the gate still reads the new status"
    labelled = {**written, "metadata": {**written["metadata"], "labels": {"team": "payments"}}}
    assert index.upsert("ReleaseReadiness", labelled) == [("prod", "r")], "anything but status is evaluated"
    deleting = {**labelled, "metadata": {**labelled["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert index.upsert("ReleaseReadiness", deleting) == [("prod", "r")]


def replicaset(name: str, labels: dict[str, str], owner_uid: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "stg", "labels": labels, "uid": f"uid-{name}"}
    if owner_uid:
        meta["ownerReferences"] = [{"kind": "Deployment", "name": "x", "uid": owner_uid, "controller": True}]
    return {"metadata": meta, "spec": {}, "status": {"replicas": 1}}


def test_replicaset_and_job_changes_reach_only_the_releases_they_belong_to() -> None:
    index = ClusterIndex()
    index.upsert("ReleaseReadiness", named_release("prod", "payments", "stg"))
    index.upsert("ReleaseReadiness", named_release("prod", "billing", "stg"))
    index.upsert("ReleaseReadiness", named_release("stg", "other", "elsewhere"))  # gates stg: watches it too
    assert index.upsert("ReplicaSet", replicaset("payments-5d8", {"app.kubernetes.io/name": "payments"})) == [
        ("prod", "payments")
    ]
    # Owned by a candidate Deployment selected by its metadata labels, the ReplicaSet's own labels say nothing.
    deployment = {
        "metadata": {
            "name": "bill",
            "namespace": "stg",
            "uid": "uid-bill",
            "labels": {"app.kubernetes.io/name": "billing"},
        },
        "spec": {"template": {"metadata": {"labels": {"tier": "api"}}, "spec": {"containers": []}}},
    }
    index.upsert("Deployment", deployment)
    assert index.upsert("ReplicaSet", replicaset("bill-1", {"tier": "api"}, owner_uid="uid-bill")) == [
        ("prod", "billing")
    ]
    # Relabelled from one application to another: both hear of it.
    index.upsert("ReplicaSet", replicaset("moving", {"app.kubernetes.io/name": "payments"}))
    assert index.upsert("ReplicaSet", replicaset("moving", {"app.kubernetes.io/name": "billing"})) == [
        ("prod", "billing"),
        ("prod", "payments"),
    ]
    assert index.delete("ReplicaSet", replicaset("moving", {"app.kubernetes.io/name": "billing"})) == [
        ("prod", "billing")
    ]
    job = {"metadata": {"name": "suite", "namespace": "stg", "labels": {"app.kubernetes.io/name": "billing"}}}
    assert index.upsert("Job", job) == [("prod", "billing")]
    # Other kinds still reach every release watching the namespace.
    service = {"metadata": {"name": "svc", "namespace": "stg"}, "spec": {}}
    assert index.upsert("Service", service) == [("prod", "billing"), ("prod", "payments"), ("stg", "other")]
