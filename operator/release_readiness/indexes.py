"""In-memory indexes of everything the checks and the gate read, fed by the operator's watches.

The watches upsert and delete objects here; `dependents()` says which releases must be
re-evaluated when an object changes; `snapshot()` builds the plain data the checks run on.
Nothing here calls the API server, so the gate can answer from it on the request path.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from release_readiness.api import ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.api.common import LabelSelector
from release_readiness.api.signoff import SignoffItem
from release_readiness.checks.model import Body, CandidateSnapshot, Workload
from release_readiness.kinds import BUILTIN_GATED_KINDS, GatedKind
from release_readiness.tally import note

__all__ = ["WATCHED", "ClusterIndex", "Key", "Watched", "watched"]

Key = tuple[str, str]
"""(namespace, name); namespace is '' for cluster-scoped objects."""


@dataclass(frozen=True)
class Watched:
    group: str
    version: str
    plural: str
    kind: str
    optional: bool = False
    """Only watched when its CRD is installed (Kopf skips resources the cluster does not serve)."""
    provider: str = ""
    """For an optional kind: what installs its CRD (said when it is absent)."""


def _optional(group: str, version: str, plural: str, kind: str, provider: str) -> Watched:
    return Watched(group, version, plural, kind, optional=True, provider=provider)


CANDIDATE_KINDS: tuple[GatedKind, ...] = tuple(k for k in BUILTIN_GATED_KINDS if k.candidate)
"""Kinds inspected as a release's candidate (besides configured extra kinds, e.g. Argo Rollouts)."""

WATCHED: tuple[Watched, ...] = (
    # Candidates, and what the checks read about them (a Deployment's ReplicaSets, smoke-test Jobs).
    *(
        Watched(k.group, k.version, k.plural, k.kind)
        for k in BUILTIN_GATED_KINDS
        if k.candidate or k.kind in ("ReplicaSet", "Job")
    ),
    Watched("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    Watched("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget"),
    Watched("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler"),
    Watched("", "v1", "services", "Service"),
    Watched("networking.k8s.io", "v1", "ingresses", "Ingress"),
    _optional("aquasecurity.github.io", "v1alpha1", "vulnerabilityreports", "VulnerabilityReport", "trivy-operator"),
    _optional("monitoring.coreos.com", "v1", "servicemonitors", "ServiceMonitor", "prometheus-operator"),
    _optional("monitoring.coreos.com", "v1", "podmonitors", "PodMonitor", "prometheus-operator"),
    _optional("monitoring.coreos.com", "v1", "prometheusrules", "PrometheusRule", "prometheus-operator"),
    _optional("monitoring.coreos.com", "v1alpha1", "alertmanagerconfigs", "AlertmanagerConfig", "prometheus-operator"),
    _optional("external-secrets.io", "v1", "externalsecrets", "ExternalSecret", "external-secrets"),
    _optional("bitnami.com", "v1alpha1", "sealedsecrets", "SealedSecret", "sealed-secrets"),
    _optional("grafana.integreatly.org", "v1beta1", "grafanadashboards", "GrafanaDashboard", "grafana-operator"),
    # Velero's backup schedules and where they store, in velero's own namespace: they cover other namespaces.
    _optional("velero.io", "v1", "schedules", "Schedule", "velero"),
    _optional("velero.io", "v1", "backupstoragelocations", "BackupStorageLocation", "velero"),
)
OPTIONAL_KINDS = frozenset(w.kind for w in WATCHED if w.optional)
CLUSTER_WIDE_KINDS = frozenset({"Schedule", "BackupStorageLocation"})
"""Kinds that concern every release wherever they live (a velero Schedule names the namespaces it backs up)."""


def watched(extra_kinds: Sequence[GatedKind] = ()) -> tuple[Watched, ...]:
    """What the operator watches: WATCHED, and configured extra kinds (optional: their CRD may be absent)."""
    return WATCHED + tuple(Watched(k.group, k.version, k.plural, k.kind, optional=True) for k in extra_kinds)


_KEEP_METADATA = (
    "name",
    "namespace",
    "uid",
    "generation",
    "resourceVersion",
    "creationTimestamp",
    "labels",
    "annotations",
    "ownerReferences",
    "deletionTimestamp",
)


def _slim(body: Any) -> Body:
    """A plain dict of the object without managedFields (most of an object's size)."""
    data = dict(body)
    meta = dict(data.get("metadata") or {})
    data["metadata"] = {k: meta[k] for k in _KEEP_METADATA if k in meta}
    if data["metadata"].get("annotations"):
        notes = dict(data["metadata"]["annotations"])
        notes.pop("kubectl.kubernetes.io/last-applied-configuration", None)
        data["metadata"]["annotations"] = notes
    return data


_ITEM_FIELDS = {"id", "value"}
"""Shared by every compact SignoffItem (never mutated: index copies are read-only)."""


def compact_signoff(signoff: ReleaseSignoff) -> ReleaseSignoff:
    """The part of a signoff evaluation and admission need: no evidence URLs, a comment only as the short note
    status shows for a veto or waiver, and item ids and group names shared between signoffs (interned)."""
    spec = signoff.spec
    keep_note = spec.decision in ("reject", "waive")
    # Already validated: constructed without validation, sharing one fields-set (a third of an item's memory).
    items = [
        SignoffItem.model_construct(
            _fields_set=_ITEM_FIELDS, id=sys.intern(i.id), value=sys.intern(i.value) if i.value is not None else None
        )
        for i in spec.items
    ]
    signer = spec.signer
    if signer is not None:
        signer = signer.model_copy(update={"groups": [sys.intern(g) for g in signer.groups]})
    return signoff.model_copy(
        update={
            "spec": spec.model_copy(
                update={"items": items, "signer": signer, "comment": note(spec.comment) if keep_note else None}
            ),
            "metadata": signoff.metadata.model_copy(update={"labels": {}, "annotations": {}}),
        }
    )


def _reason(err: ValidationError) -> str:
    """The first of pydantic's complaints, with the field it names: `spec.version: String should match ...`."""
    first = err.errors()[0] if err.errors() else None
    if first is None:
        return str(err).splitlines()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the object"
    return f"{where}: {first['msg']}"[:512]


ROUTED_KINDS = frozenset({"ReplicaSet", "Job"})
"""Kinds whose events go only to the releases they belong to (see ClusterIndex._concerned)."""


def _same_but_status(before: Body, after: Body) -> bool:
    """The same object but for its status (and resourceVersion): spec, labels, annotations, generation, uid,
    finalizers and deletion are what evaluation reads."""

    def essence(body: Body) -> Body:
        meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "resourceVersion"}
        return {**{k: v for k, v in body.items() if k != "status"}, "metadata": meta}

    return essence(before) == essence(after)


def _key(body: Body) -> Key:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta["name"])


@dataclass
class ClusterIndex:
    objects: dict[str, dict[str, dict[str, Body]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(dict))
    )
    """kind -> namespace -> name -> body."""
    releases: dict[Key, ReleaseReadiness] = field(default_factory=dict)
    release_bodies: dict[Key, Body] = field(default_factory=dict)
    checklists: dict[str, ReadinessChecklist] = field(default_factory=dict)
    invalid_checklists: dict[str, str] = field(default_factory=dict)
    invalid_releases: dict[Key, str] = field(default_factory=dict)
    """Releases the API server stored but the operator's model refuses (an older schema): key -> reason."""
    signoffs: dict[Key, ReleaseSignoff] = field(default_factory=dict)
    invalid_signoffs: dict[Key, str] = field(default_factory=dict)
    """Signoffs the model refuses: key -> reason (listed on their release's status, never silently dropped)."""
    namespaces: dict[str, Body] = field(default_factory=dict)
    installed: set[str] = field(default_factory=set)
    tls_secrets: dict[Key, Body] = field(default_factory=dict)
    tls_secret_read_at: dict[Key, float] = field(default_factory=dict)
    """When each named TLS Secret was last read (monotonic); an Ingress change forgets its namespace's."""
    extra_kinds: Sequence[GatedKind] = ()
    """Configured kinds with a pod template (RR_EXTRA_GATED_KINDS): candidates and production workloads too."""
    # Secondary indexes, so that neither the gate nor the reconciler scans every release or signoff.
    _by_namespace: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))
    """namespace -> the releases in it (the gate's question)."""
    _by_app: dict[tuple[str, str, str], set[Key]] = field(default_factory=lambda: defaultdict(set))
    """(namespace, application, version) -> the releases for it (the gate's question: scanning every release of a
    namespace cost 7 ms a request with 2,000 of them, docs/benchmarks.md)."""
    _watching_ns: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))
    """namespace -> the releases whose candidate runs there or that gate it (who an object there concerns)."""
    _by_checklist: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))
    _signoffs_by_release: dict[Key, set[Key]] = field(default_factory=lambda: defaultdict(set))
    """(namespace, spec.release) -> the signoffs naming it."""

    @property
    def workload_kinds(self) -> tuple[GatedKind, ...]:
        return CANDIDATE_KINDS + tuple(self.extra_kinds)

    # -- feeding -----------------------------------------------------------------------------------

    def upsert(self, kind: str, body: Any) -> list[Key]:
        """Record an object; returns the releases that depend on it."""
        slim = _slim(body)
        namespace, name = _key(slim)
        if kind == "ReleaseReadiness":
            key = (namespace, name)
            before = self.release_bodies.get(key)
            own_write = key in self.releases and before is not None and _same_but_status(before, slim)
            self.release_bodies[key] = slim
            self._unlink_release(key)
            try:
                release = ReleaseReadiness.model_validate(slim)
            except ValidationError as err:
                self.invalid_releases[key] = _reason(err)
                return [key]
            self.invalid_releases.pop(key, None)
            self.releases[key] = release
            self._by_namespace[namespace].add(key)
            self._by_app[(namespace, release.spec.application, release.spec.version)].add(key)
            self._watching_ns[namespace].add(key)
            self._watching_ns[release.spec.candidate.namespace].add(key)
            self._by_checklist[release.spec.checklist].add(key)
            # Only the operator writes status (the status webhook refuses everyone else): a change of status
            # alone is its own write coming back, and evaluating again would only repeat it.
            return [] if own_write else [key]
        if kind == "ReadinessChecklist":
            try:
                self.checklists[name] = ReadinessChecklist.model_validate(slim)
                self.invalid_checklists.pop(name, None)
            except ValidationError as err:
                self.checklists.pop(name, None)
                self.invalid_checklists[name] = _reason(err)
            return self.releases_using(name)
        if kind == "ReleaseSignoff":
            key = (namespace, name)
            named_before = self._unlink_signoff(key)
            named = str((slim.get("spec") or {}).get("release") or "")
            try:
                signoff = ReleaseSignoff.model_validate(slim)
            except ValidationError as err:
                self.invalid_signoffs[key] = _reason(err)
                self._signoffs_by_release[(namespace, named)].add(key)
                return sorted({(namespace, named), *named_before} - {(namespace, "")})
            self.invalid_signoffs.pop(key, None)
            self.signoffs[key] = compact_signoff(signoff)
            self._signoffs_by_release[(namespace, signoff.spec.release)].add(key)
            return sorted({(namespace, signoff.spec.release), *named_before})
        if kind == "Namespace":
            self.namespaces[name] = slim
            return self._watching(name)
        if kind in OPTIONAL_KINDS or any(k.kind == kind for k in self.extra_kinds):
            self.installed.add(kind)
        if kind == "Ingress":
            self._forget_secret_reads(namespace)
        before = self.objects[kind][namespace].get(name)
        self.objects[kind][namespace][name] = slim
        if kind in CLUSTER_WIDE_KINDS:
            return list(self.releases)
        return self._concerned(kind, namespace, before, slim)

    def delete(self, kind: str, body: Any) -> list[Key]:
        namespace, name = _key(_slim(body))
        if kind == "ReleaseReadiness":
            self._unlink_release((namespace, name))
            self.release_bodies.pop((namespace, name), None)
            self.invalid_releases.pop((namespace, name), None)
            return [(namespace, name)]  # the reconciler finds it gone and forgets its metrics
        if kind == "ReadinessChecklist":
            self.checklists.pop(name, None)
            self.invalid_checklists.pop(name, None)
            return self.releases_using(name)
        if kind == "ReleaseSignoff":
            return self._unlink_signoff((namespace, name))
        if kind == "Namespace":
            self.namespaces.pop(name, None)
            return self._watching(name)
        if kind == "Ingress":
            self._forget_secret_reads(namespace)
        before = self.objects[kind][namespace].pop(name, None)
        if kind in CLUSTER_WIDE_KINDS:
            return list(self.releases)
        return self._concerned(kind, namespace, before, None)

    def listed(self, kind: str) -> list[Key]:
        """The API server listed this kind: it is served (an optional kind's CRD is installed, even with no
        objects yet), so checks that read it judge what is there instead of saying what to install."""
        if kind in self.installed or not (kind in OPTIONAL_KINDS or any(k.kind == kind for k in self.extra_kinds)):
            return []
        self.installed.add(kind)
        return list(self.releases)

    def keys(self, kind: str) -> set[Key]:
        """Every (namespace, name) of `kind` the index holds (cluster-scoped kinds: namespace '')."""
        if kind == "ReleaseReadiness":
            return set(self.release_bodies)
        if kind == "ReadinessChecklist":
            return {("", name) for name in (*self.checklists, *self.invalid_checklists)}
        if kind == "ReleaseSignoff":
            return set(self.signoffs) | set(self.invalid_signoffs)
        if kind == "Namespace":
            return {("", name) for name in self.namespaces}
        return {(namespace, name) for namespace, names in self.objects[kind].items() for name in names}

    def _forget_secret_reads(self, namespace: str) -> None:
        for key in [k for k in self.tls_secret_read_at if k[0] == namespace]:
            del self.tls_secret_read_at[key]

    def _unlink_release(self, key: Key) -> None:
        """Drop a release from the secondary indexes (before it is re-added with its current spec, or deleted)."""
        old = self.releases.pop(key, None)
        if old is None:
            return
        for index, value in (
            (self._by_namespace, key[0]),
            (self._watching_ns, key[0]),
            (self._watching_ns, old.spec.candidate.namespace),
            (self._by_checklist, old.spec.checklist),
        ):
            keys = index.get(value)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del index[value]
        app = (key[0], old.spec.application, old.spec.version)
        same_app = self._by_app.get(app)
        if same_app is not None:
            same_app.discard(key)
            if not same_app:
                del self._by_app[app]

    def _unlink_signoff(self, key: Key) -> list[Key]:
        """Forget a signoff (valid or not); returns the release it named, which must be re-evaluated."""
        old = self.signoffs.pop(key, None)
        invalid = self.invalid_signoffs.pop(key, None)
        named: Key | None = None
        if old is not None:
            named = (key[0], old.spec.release)
        elif invalid is not None:
            named = next((r for r, keys in self._signoffs_by_release.items() if key in keys), None)
        if named is None:
            return []
        keys = self._signoffs_by_release.get(named)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._signoffs_by_release[named]
        return [named] if named[1] else []

    def _concerned(self, kind: str, namespace: str, before: Body | None, after: Body | None) -> list[Key]:
        """The releases an object's change can affect. Most kinds: every release watching its namespace. The
        busiest, ReplicaSets and Jobs (their status changes with every pod), only the releases they belong to:
        a ReplicaSet selected by the candidate or owned by one of its workloads, a Job labelled with the
        release's application; both before and after the change, so a relabelled one leaves its old release
        re-evaluated too."""
        watching = self._watching(namespace)
        if kind not in ROUTED_KINDS or not watching:
            return watching
        bodies = [b for b in (before, after) if b is not None]
        labels = [dict((b.get("metadata") or {}).get("labels") or {}) for b in bodies]
        owners = {
            str(ref.get("uid"))
            for b in bodies
            for ref in (b.get("metadata") or {}).get("ownerReferences") or []
            if ref.get("controller")
        }
        out = []
        for key in watching:
            release = self.releases[key]
            if kind == "Job":
                if any(lab.get("app.kubernetes.io/name") == release.spec.application for lab in labels):
                    out.append(key)
                continue
            selector = self.candidate_selector(release)
            if any(selector.matches(lab) for lab in labels):
                out.append(key)
            elif owners:
                mine = self.candidate_workloads(release) if release.spec.candidate.namespace == namespace else []
                if key[0] == namespace:
                    mine += self.production_workloads(release)
                if any(w.uid in owners for w in mine):
                    out.append(key)
        return out

    def _watching(self, namespace: str) -> list[Key]:
        """Releases whose candidate runs in `namespace`, or that gate it (production workloads mark admission)."""
        return sorted(self._watching_ns.get(namespace, ()))

    def releases_using(self, checklist: str) -> list[Key]:
        return sorted(self._by_checklist.get(checklist, ()))

    def releases_in(self, namespace: str) -> list[ReleaseReadiness]:
        """The valid releases in a namespace (the gate's candidates), in no particular order."""
        return [self.releases[k] for k in self._by_namespace.get(namespace, ())]

    def releases_for(self, namespace: str, application: str, version: str) -> list[ReleaseReadiness]:
        """The valid releases of one application and version in a namespace (the gate's question)."""
        return [self.releases[k] for k in self._by_app.get((namespace, application, version), ())]

    def invalid_releases_in(self, namespace: str) -> dict[str, str]:
        """name -> why the operator cannot read it, for the releases of a namespace its model refuses."""
        return {name: reason for (ns, name), reason in self.invalid_releases.items() if ns == namespace}

    def invalid_signoffs_naming(self, key: Key) -> dict[str, str]:
        """name -> why, for the signoffs naming this release that the operator's model refuses."""
        return {
            name: self.invalid_signoffs[(ns, name)]
            for ns, name in self._signoffs_by_release.get(key, ())
            if (ns, name) in self.invalid_signoffs
        }

    # -- reading ---------------------------------------------------------------------------------------

    def of_kind(self, kind: str, namespace: str) -> list[Body]:
        return list(self.objects[kind][namespace].values())

    def of_kind_everywhere(self, kind: str) -> list[Body]:
        return [body for bodies in list(self.objects[kind].values()) for body in bodies.values()]

    def candidate_selector(self, release: ReleaseReadiness) -> LabelSelector:
        selector = release.spec.candidate.selector
        if selector is not None and not selector.is_empty():
            return selector
        return LabelSelector(match_labels={"app.kubernetes.io/name": release.spec.application})

    def candidate_workloads(self, release: ReleaseReadiness) -> list[Workload]:
        selector = self.candidate_selector(release)
        namespace = release.spec.candidate.namespace
        out = []
        for kind in self.workload_kinds:
            for body in self.of_kind(kind.kind, namespace):
                wl = Workload({**body, "kind": kind.kind}, kind.template_path)
                if selector.matches(wl.labels) or selector.matches(wl.template_labels):
                    out.append(wl)
        return sorted(out, key=lambda w: (w.kind, w.name))

    def production_workloads(self, release: ReleaseReadiness) -> list[Workload]:
        """Workloads of this application and version in the release's own namespace: it has been admitted."""
        namespace = release.metadata.namespace or ""
        out = []
        for kind in self.workload_kinds:
            for body in self.of_kind(kind.kind, namespace):
                wl = Workload({**body, "kind": kind.kind}, kind.template_path)
                labels = wl.template_labels
                if (
                    labels.get("app.kubernetes.io/name") == release.spec.application
                    and labels.get("app.kubernetes.io/version") == release.spec.version
                ):
                    out.append(wl)
        return out

    def tls_secret_names(self, release: ReleaseReadiness) -> list[Key]:
        """Secrets named by Ingresses in the candidate namespace: the only Secrets ever read."""
        namespace = release.spec.candidate.namespace
        names = set()
        for ing in self.of_kind("Ingress", namespace):
            for tls in (ing.get("spec") or {}).get("tls") or []:
                if tls.get("secretName"):
                    names.add((namespace, str(tls["secretName"])))
        return sorted(names)

    def snapshot(self, release: ReleaseReadiness, now: dt.datetime) -> CandidateSnapshot:
        ns = release.spec.candidate.namespace
        return CandidateSnapshot(
            application=release.spec.application,
            version=release.spec.version,
            namespace=ns,
            workloads=self.candidate_workloads(release),
            now=now,
            replicasets=self.of_kind("ReplicaSet", ns),
            network_policies=self.of_kind("NetworkPolicy", ns),
            pod_disruption_budgets=self.of_kind("PodDisruptionBudget", ns),
            autoscalers=self.of_kind("HorizontalPodAutoscaler", ns),
            services=self.of_kind("Service", ns),
            ingresses=self.of_kind("Ingress", ns),
            tls_secrets={name: body for (sns, name), body in self.tls_secrets.items() if sns == ns},
            jobs=self.of_kind("Job", ns),
            vulnerability_reports=self.of_kind("VulnerabilityReport", ns),
            service_monitors=self.of_kind("ServiceMonitor", ns),
            pod_monitors=self.of_kind("PodMonitor", ns),
            prometheus_rules=self.of_kind("PrometheusRule", ns),
            alertmanager_configs=self.of_kind("AlertmanagerConfig", ns),
            external_secrets=self.of_kind("ExternalSecret", ns),
            sealed_secrets=self.of_kind("SealedSecret", ns),
            grafana_dashboards=self.of_kind("GrafanaDashboard", ns),
            backup_schedules=self.of_kind_everywhere("Schedule"),
            backup_locations=self.of_kind_everywhere("BackupStorageLocation"),
            installed=frozenset(self.installed),
            production_namespace=release.metadata.namespace or "",
            namespace_labels={
                name: dict((self.namespaces[name].get("metadata") or {}).get("labels") or {})
                for name in (ns, release.metadata.namespace or "")
                if name in self.namespaces
            },
        )

    def signoffs_naming(self, key: Key) -> list[ReleaseSignoff]:
        """Every signoff whose spec.release names the release, whichever object it was signed for (evaluation lists
        the ones of an earlier release of the same name as not counted, with the reason)."""
        return [self.signoffs[k] for k in sorted(self._signoffs_by_release.get(key, ())) if k in self.signoffs]

    def signoffs_for(self, key: Key) -> list[ReleaseSignoff]:
        """The signoffs of the release object the index holds under `key`: stamped with its metadata.uid (none when
        the index does not know it). A deleted release's signoffs never count for a new one with the same name."""
        release = self.releases.get(key)
        uid = release.metadata.uid if release is not None else None
        if not uid:
            return []
        return [s for s in self.signoffs_naming(key) if s.spec.release_uid == uid]
