"""Offline audit: a checklist's checks over manifests, before anything reaches a cluster (`kubectl readiness audit`).

The manifests feed the operator's own ClusterIndex (as its watches feed it), every application found in them
becomes a ReleaseReadiness of its own, and `evaluate_release` judges it: the same snapshot, the same dispatch
over check kinds, the same check functions and messages as in the cluster. The snapshot is marked offline, so
what only the cluster can tell (rollouts, Secrets that controllers make) stays Pending; whatever stays Pending
(a signoff, Prometheus, the cluster) is reported as not run, never as passed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from release_readiness import GROUP, VERSION
from release_readiness.api import ChecklistItem, ReadinessChecklist, ReleaseReadiness
from release_readiness.checks.model import Body, Workload
from release_readiness.constants import Label
from release_readiness.evaluation import EvaluationInput, evaluate_release
from release_readiness.indexes import CANDIDATE_KINDS, WATCHED, ClusterIndex

__all__ = [
    "DEFAULT_CHECKLIST_PATH",
    "AuditReport",
    "InputError",
    "ItemResult",
    "Manifest",
    "Outcome",
    "audit",
    "load_checklist",
    "parse_documents",
]

DEFAULT_CHECKLIST_PATH = Path(__file__).parent / "data" / "pre-production.yaml"
"""The default checklist as shipped with the package (a copy of deploy/checklists/pre-production.yaml)."""
NAME_LABEL: str = Label.APP_NAME.value
VERSION_LABEL: str = Label.APP_VERSION.value
MAX_NODES = 1_000_000
"""YAML nodes one document may expand to: aliases can make a small file expand without bound."""
READ_KINDS = frozenset({w.kind for w in WATCHED} | {"Namespace", "Secret"})
"""Kinds some check reads; the operator watches the same (Secrets: only those of type kubernetes.io/tls)."""
OFFLINE_UID = "offline-audit"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML has it (several times faster on a 231-item checklist), else the pure one."""
KUSTOMIZE_GROUP = "kustomize.config.k8s.io/"


class InputError(Exception):
    """Input that cannot be audited, as one sentence naming the file (and line) and the fix."""


@dataclass(frozen=True)
class Manifest:
    body: Body
    source: str
    """The file as given, 'stdin', or the kustomization directory."""
    line: int | None = None
    """1-based line of the document in `source` (None for rendered kustomize output)."""

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"].get("namespace") or "")

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    @property
    def ref(self) -> str:
        """As the checks name workloads: 'deployment shop/cart'."""
        return f"{self.kind.lower()} {self.namespace}/{self.name}"


def _expanded_nodes(node: yaml.Node, source: str) -> None:
    """Refuse a document whose aliases expand it past MAX_NODES (a 'billion laughs' document)."""
    stack: list[yaml.Node] = [node]
    count = 0
    while stack:
        current = stack.pop()
        count += 1
        if count > MAX_NODES:
            line = node.start_mark.line + 1
            raise InputError(
                f"{source}:{line}: the document expands to more than {MAX_NODES} YAML nodes (through aliases); "
                "render it without anchors and aliases"
            )
        if isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack += [key, value]


def _objects(data: Any, source: str, line: int) -> list[Manifest]:
    where = f"{source}:{line}"
    if data is None:
        return []
    if not isinstance(data, dict):
        raise InputError(
            f"{where}: a {type(data).__name__} is not a Kubernetes object (expected a mapping with apiVersion, kind "
            "and metadata.name)"
        )
    kind = data.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(data.get("items"), list):
        out: list[Manifest] = []
        for entry in data["items"]:
            out += _objects(entry, source, line)
        return out
    for name in ("apiVersion", "kind"):
        if not isinstance(data.get(name), str) or not data[name]:
            raise InputError(f"{where}: the object has no {name}; every document must be a Kubernetes object")
    meta = data.get("metadata")
    if str(data["apiVersion"]).startswith(KUSTOMIZE_GROUP) and not isinstance(meta, dict):
        # A kustomization.yaml beside the manifests (-f DIR): skipped with a note; -k DIR renders it.
        return [Manifest({**data, "metadata": {"name": Path(source).name}}, source, line)]
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise InputError(f"{where}: {data['kind']} has no metadata.name (generateName cannot be audited)")
    if meta.get("namespace") is not None and not isinstance(meta["namespace"], str):
        raise InputError(f"{where}: {data['kind']} {meta['name']} metadata.namespace is not a string")
    return [Manifest(data, source, line)]


def parse_documents(text: str, source: str, lines: bool = True) -> list[Manifest]:
    """The Kubernetes objects in a multi-document YAML (or JSON) text; Lists are expanded. Invalid YAML is an
    InputError naming the file, line and column. `lines`: record each object's line (not for rendered output,
    whose lines are in no file)."""
    loader = _Loader(text)
    out: list[Manifest] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                break
            _expanded_nodes(node, source)
            found = _objects(loader.construct_document(node), source, node.start_mark.line + 1)
            out += found if lines else [dataclasses.replace(m, line=None) for m in found]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise InputError(f"{where}: invalid YAML: {err.problem or err.context}") from None
    except yaml.YAMLError as err:
        raise InputError(f"{source}: invalid YAML: {err}") from None
    except RecursionError:
        raise InputError(f"{source}: a document is nested too deeply to be a Kubernetes object") from None
    finally:
        loader.dispose()
    return out


class Outcome(enum.StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not-run"
    NOT_APPLICABLE = "not-applicable"


_OUTCOMES = {"Passed": Outcome.PASSED, "Failed": Outcome.FAILED, "NotApplicable": Outcome.NOT_APPLICABLE}


@dataclass(frozen=True)
class ItemResult:
    item: ChecklistItem
    outcome: Outcome
    message: str
    needs: str = ""
    """For an item not run: what it needs (the cluster, Prometheus, a signoff, the rollout)."""
    manifests: tuple[Manifest, ...] = ()
    """The workloads a finding is about (those its message names, else every workload of the application)."""


@dataclass(frozen=True)
class ApplicationResult:
    application: str
    version: str
    namespace: str
    workloads: tuple[Manifest, ...]
    items: tuple[ItemResult, ...]

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.items if r.outcome == outcome)


@dataclass
class AuditReport:
    checklist: ReadinessChecklist
    applications: list[ApplicationResult]
    objects: int
    notes: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[tuple[ApplicationResult, ItemResult]]:
        return [(a, r) for a in self.applications for r in a.items if r.outcome == Outcome.FAILED]

    @property
    def exit_code(self) -> int:
        """0 when everything that ran passed, 1 on findings."""
        return 1 if self.findings else 0


def needs(item: ChecklistItem) -> str:
    """What an item not run offline waits for, by the kind of its check."""
    if item.phase == "post":
        return "the rollout (a post-deployment item)"
    kind = item.check.kind
    if kind == "evidence" and item.check.evidence is not None:
        return f"CI evidence '{item.check.evidence.key}' (kubectl readiness evidence)"
    if kind == "attestation" and item.check.attestation is not None:
        return f"an attestation by {' or '.join(item.check.attestation.roles)}"
    if kind == "prometheus":
        return "Prometheus"
    return "the cluster"


def _tls_secrets(manifests: Sequence[Manifest]) -> dict[tuple[str, str], Body]:
    return {
        (m.namespace, m.name): m.body
        for m in manifests
        if m.kind == "Secret" and m.body.get("type") == "kubernetes.io/tls"
    }


def _release(application: str, version: str, namespace: str, checklist: str, where: str) -> ReleaseReadiness:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ReleaseReadiness",
        "metadata": {"name": application, "namespace": namespace, "uid": OFFLINE_UID, "generation": 1},
        "spec": {
            "application": application,
            "version": version,
            "checklist": checklist,
            "candidate": {"namespace": namespace},
        },
    }
    try:
        return ReleaseReadiness.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        at = ".".join(str(p) for p in first["loc"])
        raise InputError(
            f"{where}: cannot audit application {application!r} in {namespace!r}: {at}: {first['msg']}"
        ) from None


def _locations(message: str, workloads: Sequence[Manifest]) -> tuple[Manifest, ...]:
    named = tuple(w for w in workloads if f"{w.ref}:" in message or f"{w.ref} " in message)
    return named or tuple(workloads)


def _key(m: Manifest) -> tuple[str, str, str]:
    return m.kind, m.namespace, m.name


def _workloads(index: ClusterIndex) -> list[Workload]:
    """Every candidate-kind object in the index, as the operator reads it."""
    return [
        Workload({**body, "kind": kind.kind}, kind.template_path)
        for kind in CANDIDATE_KINDS
        for _, names in sorted(index.objects[kind.kind].items())
        for _, body in sorted(names.items())
    ]


def _applications(
    index: ClusterIndex, placed: Sequence[Manifest]
) -> tuple[dict[tuple[str, str], tuple[str, list[Manifest]]], list[Manifest]]:
    """(namespace, application) -> (version, its workloads' manifests), by the app.kubernetes.io/name label a
    release's default selector matches; and the workloads without that label (each becomes its own application)."""
    by_key = {_key(m): m for m in placed}
    groups: dict[tuple[str, str], tuple[str, list[Manifest]]] = {}
    unlabelled: list[Manifest] = []
    for wl in _workloads(index):
        manifest = by_key[(wl.kind, wl.namespace, wl.name)]
        app = wl.labels.get(NAME_LABEL) or wl.template_labels.get(NAME_LABEL)
        if not app:
            unlabelled.append(manifest)
            groups.setdefault((wl.namespace, wl.name), (wl.template_labels.get(VERSION_LABEL, ""), []))[1].append(
                manifest
            )
            continue
        groups.setdefault((wl.namespace, app), (wl.template_labels.get(VERSION_LABEL, ""), []))[1].append(manifest)
    return groups, unlabelled


def audit(
    manifests: Sequence[Manifest], checklist: ReadinessChecklist, now: dt.datetime, namespace: str = "default"
) -> AuditReport:
    """Judge every application in `manifests` by `checklist`. Objects without a namespace go to `namespace`
    (as `kubectl apply -f` puts them in the context's). Raises InputError when no workload is found."""
    placed = [
        m
        if m.namespace
        else dataclasses.replace(m, body={**m.body, "metadata": {**m.body["metadata"], "namespace": namespace}})
        for m in manifests
    ]
    index = ClusterIndex()
    notes: list[str] = []
    skipped: dict[str, list[Manifest]] = {}
    for m in placed:
        if m.kind not in READ_KINDS or (m.kind == "Secret" and m.body.get("type") != "kubernetes.io/tls"):
            skipped.setdefault(m.kind, []).append(m)
            continue
        if m.kind == "Secret":
            continue  # the operator reads only TLS Secrets, by name, into tls_secrets
        index.upsert(m.kind, m.body)
    index.tls_secrets.update(_tls_secrets(placed))
    for kind, objs in sorted(skipped.items()):
        shown = ", ".join(f"{m.namespace}/{m.name} ({m.where})" for m in objs[:3])
        more = f" and {len(objs) - 3} more" if len(objs) > 3 else ""
        notes.append(f"skipped {len(objs)} {kind} (no check reads it): {shown}{more}")

    groups, unlabelled = _applications(index, placed)
    for m in unlabelled:
        notes.append(
            f"{m.ref} ({m.where}) has no {NAME_LABEL} label, so no release selects it by default; audited alone "
            f"as application {m.name}"
        )
    if not groups:
        kinds = ", ".join(k.kind for k in CANDIDATE_KINDS)
        raise InputError(f"no workload ({kinds}) in the input: nothing to audit; pass the manifests with -f or -k")

    applications = []
    for (ns, app), (version, workloads) in sorted(groups.items()):
        release = _release(app, version or "unversioned", ns, checklist.metadata.name, workloads[0].where)
        snapshot = index.snapshot(release, now)
        if workloads[0] in unlabelled:
            # No label selects it: the operator would never inspect it; judge it alone.
            snapshot.workloads = [w for w in _workloads(index) if (w.kind, w.namespace, w.name) == _key(workloads[0])]
        snapshot = dataclasses.replace(snapshot, offline=True)
        status = evaluate_release(EvaluationInput(release=release, checklist=checklist, snapshot=snapshot, now=now))
        states = {s.id: s for s in status.items}
        results = []
        for item in checklist.spec.items:
            state = states[item.id]
            outcome = _OUTCOMES.get(state.state, Outcome.NOT_RUN)
            results.append(
                ItemResult(
                    item=item,
                    outcome=outcome,
                    message=state.message,
                    needs=needs(item) if outcome == Outcome.NOT_RUN else "",
                    manifests=_locations(state.message, workloads) if outcome == Outcome.FAILED else (),
                )
            )
        applications.append(ApplicationResult(app, version or "unversioned", ns, tuple(workloads), tuple(results)))
    return AuditReport(checklist=checklist, applications=applications, objects=len(placed), notes=notes)


def load_checklist(text: str, source: str) -> ReadinessChecklist:
    """A ReadinessChecklist from a file's text; errors name the file and the field."""
    docs = [m for m in parse_documents(text, source) if m.kind == "ReadinessChecklist"]
    if len(docs) != 1:
        raise InputError(f"{source}: expected one ReadinessChecklist, found {len(docs)}")
    try:
        return ReadinessChecklist.model_validate(docs[0].body)
    except ValidationError as err:
        first = err.errors()[0]
        at = ".".join(str(p) for p in first["loc"])
        raise InputError(f"{docs[0].where}: ReadinessChecklist {docs[0].name}: {at}: {first['msg']}") from None
