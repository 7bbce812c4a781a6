"""The objects tests and benchmarks build again and again: workloads (a Deployment, its pod template's containers),
and the project's kinds (checklists, releases, signoffs), with the Secrets and RBAC around them.

One module for the unit tests (plain objects, as the API server would return them: `stored`), the integration
tests (manifests to apply) and `make bench`. Every default here is a healthy `payments-api` 3.2.0 in
`payments-staging`; a test states only what it changes.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import uuid
from typing import Any

from release_readiness import API_VERSION
from release_readiness.checks.model import CandidateSnapshot, Workload
from release_readiness.pki import CertificateAuthority, KeyPair

Body = dict[str, Any]

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
NS = "payments-staging"
APP = "payments-api"
IMAGE = "registry.example.com/payments/api:3.2.0"
CI_ONLY = {"groups": ["system:serviceaccounts:ci"]}
"""check.evidence.recordedBy: evidence from CI's service accounts only."""

RESOURCES: Body = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
PROBES: Body = {
    "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
}
HARDENED: Body = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""A container's securityContext that every workload check accepts."""

APP_NAME = "app.kubernetes.io/name"
_API_VERSIONS = {"Job": "batch/v1", "CronJob": "batch/v1", "Pod": "v1", "ReplicationController": "v1"}


def app_labels(name: str = APP, version: str = "3.2.0") -> dict[str, str]:
    """The labels a release finds its workloads by."""
    return {APP_NAME: name, "app.kubernetes.io/version": version}


LABELS = app_labels()


def container(name: str = "api", image: str = IMAGE, **fields: Any) -> Body:
    """A container with `fields` as given (a field given as None is left out)."""
    body = {"name": name, "image": image, **fields}
    return copy.deepcopy({key: value for key, value in body.items() if value is not None})


def probed_container(name: str = "api", image: str = IMAGE, **fields: Any) -> Body:
    """A container with requests, limits and both probes (override or drop any with `fields`)."""
    return container(name, image, **{"resources": RESOURCES, **PROBES, **fields})


def good_container(name: str = "api", image: str = IMAGE, **fields: Any) -> Body:
    """A container every workload check passes: requests, limits, probes and a hardened securityContext."""
    return probed_container(name, image, **{"securityContext": HARDENED, **fields})


def pod_template(
    containers: list[Body] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Body:
    """A pod template: `containers` (one good container by default) with more pod `spec` fields, `labels` (LABELS
    by default) and `annotations` (only when given)."""
    metadata: Body = {"labels": labels if labels is not None else LABELS}
    if annotations is not None:
        metadata["annotations"] = annotations
    pod = {"containers": containers if containers is not None else [good_container()], **spec}
    return copy.deepcopy({"metadata": metadata, "spec": pod})


def deployment(
    name: str = APP,
    namespace: str = NS,
    *,
    labels: dict[str, str] | None = None,
    template_labels: dict[str, str] | None = None,
    selector: dict[str, str] | None = None,
    containers: list[Body] | None = None,
    replicas: int | None = 2,
    kind: str = "Deployment",
    annotations: dict[str, str] | None = None,
    template_annotations: dict[str, str] | None = None,
    pod: Body | None = None,
) -> Body:
    """A workload manifest (a Deployment unless `kind` says otherwise) selecting on app.kubernetes.io/name, with
    `labels` on it and (unless `template_labels`) on its pod template. `pod`: more fields of the pod spec.
    No replicas when None or for a DaemonSet; annotations only when given (the API server stores no empty map)."""
    labels = labels if labels is not None else LABELS
    template = pod_template(
        containers, template_labels if template_labels is not None else labels, template_annotations, **(pod or {})
    )
    spec: Body = {
        "selector": {"matchLabels": selector if selector is not None else {APP_NAME: labels[APP_NAME]}},
        "template": template,
    }
    if replicas is not None and kind != "DaemonSet":
        spec["replicas"] = replicas
    metadata: Body = {"name": name, "namespace": namespace, "labels": labels}
    if annotations is not None:
        metadata["annotations"] = annotations
    body = {"apiVersion": _API_VERSIONS.get(kind, "apps/v1"), "kind": kind, "metadata": metadata, "spec": spec}
    return copy.deepcopy(body)


def of_kind(
    kind: str,
    name: str,
    namespace: str = NS,
    template: Body | None = None,
    *,
    labels: dict[str, str] | None = None,
    owner: Body | None = None,
) -> Body:
    """An object of a pod-making kind other than the Deployment's around `template` (`pod_template()` by default),
    labelled `labels` (LABELS): a Pod (the template's spec), a ReplicaSet or ReplicationController (one replica), a
    Job (never restarted), a CronJob (every five minutes). `owner`: its controller's ownerReference."""
    labels = labels if labels is not None else LABELS
    tpl = copy.deepcopy(template if template is not None else pod_template())
    meta: Body = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if owner is not None:
        meta["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": True}]
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": tpl["spec"]}
    if kind == "ReplicaSet":
        spec: Body = {"replicas": 1, "selector": {"matchLabels": {APP_NAME: labels[APP_NAME]}}, "template": tpl}
    elif kind == "ReplicationController":
        spec = {"replicas": 1, "selector": {APP_NAME: labels[APP_NAME]}, "template": tpl}
    elif kind in ("Job", "CronJob"):
        tpl["spec"]["restartPolicy"] = "Never"
        spec = (
            {"template": tpl}
            if kind == "Job"
            else {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": tpl}}}
        )
    else:
        raise ValueError(f"of_kind makes Pods, ReplicaSets, ReplicationControllers, Jobs and CronJobs, not {kind}")
    return {"apiVersion": _API_VERSIONS.get(kind, "apps/v1"), "kind": kind, "metadata": meta, "spec": spec}


def stored(body: Body, status: Body | None = None, generation: int = 1) -> Body:
    """`body` as the API server returns it: a uid (`uid-<name>`), a generation and a status."""
    body = copy.deepcopy(body)
    body["metadata"].update(uid=f"uid-{body['metadata']['name']}", generation=generation)
    body["status"] = copy.deepcopy(status) if status is not None else {}
    return body


def stored_deployment(name: str = APP, *, status: Body | None = None, **fields: Any) -> Body:
    """A workload as the checks read it from the API server (see `deployment` for `fields`)."""
    return stored(deployment(name, **fields), status)


def obj(kind: str, name: str, spec: Body | None = None, **extra: Any) -> Body:
    """Any namespaced object in NS; `labels` go to its metadata, anything else beside its spec."""
    body: Body = {"kind": kind, "metadata": {"name": name, "namespace": NS}, "spec": spec or {}}
    for key, value in extra.items():
        if key == "labels":
            body["metadata"]["labels"] = value
        else:
            body[key] = value
    return body


def snapshot(*workloads: Body, **related: Any) -> CandidateSnapshot:
    """What the checks judge: the workloads (one stored `deployment` by default) and the objects around them."""
    return CandidateSnapshot(
        application=APP,
        version="3.2.0",
        namespace=NS,
        workloads=[Workload(copy.deepcopy(w)) for w in (workloads or (stored_deployment(),))],
        now=NOW,
        **related,
    )


def ingress(
    namespace: str = NS, tls: list[Body] | None = None, host: str = "pay.example.com", service: str = APP
) -> Body:
    """An Ingress (named as `service`) routing `host`/ to port 80 of `service`; `tls`: its spec.tls, if any."""
    path = {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": service, "port": {"number": 80}}}}
    spec: Body = {"rules": [{"host": host, "http": {"paths": [path]}}]}
    if tls is not None:
        spec["tls"] = tls
    metadata = {"name": service, "namespace": namespace}
    return copy.deepcopy({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec})


def admission_review(
    obj: Body,
    uid: str | None = None,
    *,
    namespace: str | None = None,
    user: str = "alice",
    groups: tuple[str, ...] = ("deployers", "system:authenticated"),
) -> Body:
    """The AdmissionReview the API server sends the gate when `user` creates the Deployment `obj` (in its namespace
    unless `namespace`); a fresh uid unless given."""
    deployments = {"group": "apps", "version": "v1", "resource": "deployments"}
    kind = {"group": "apps", "version": "v1", "kind": "Deployment"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": kind,
            "resource": deployments,
            "requestKind": dict(kind),
            "requestResource": dict(deployments),
            "name": obj["metadata"]["name"],
            "namespace": namespace if namespace is not None else obj["metadata"]["namespace"],
            "operation": "CREATE",
            "userInfo": {"username": user, "groups": list(groups)},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


# -- the project's kinds ------------------------------------------------------------------------------------


def checklist(
    name: str,
    checks: dict[str, Body] | list[Body],
    approvals: list[Body] | None = None,
    section: str = "Infra",
    **spec: Any,
) -> Body:
    """A ReadinessChecklist: one item per id -> check (titled by its id, in `section`), or the items as given (a
    list); `spec`: more fields of its spec (rules, description)."""
    items = (
        checks
        if isinstance(checks, list)
        else [
            {"id": item_id, "section": section, "title": item_id, "check": check} for item_id, check in checks.items()
        ]
    )
    body: Body = {"items": items, **spec}
    if approvals is not None:
        body["approvals"] = approvals
    return {"apiVersion": API_VERSION, "kind": "ReadinessChecklist", "metadata": {"name": name}, "spec": body}


def release(
    name: str, namespace: str, application: str, version: str, checklist: str, candidate: str, **spec: Any
) -> Body:
    """A ReleaseReadiness of `application` `version` judged by `checklist`, its candidate in namespace `candidate`."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ReleaseReadiness",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "application": application,
            "version": version,
            "checklist": checklist,
            "candidate": {"namespace": candidate},
            **spec,
        },
    }


def signoff(namespace: str, release: str, name: str | None = None, **spec: Any) -> Body:
    """A ReleaseSignoff of `release` (a fresh name unless given); the webhook stamps the signer."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ReleaseSignoff",
        "metadata": {"name": name or f"s-{uuid.uuid4().hex[:6]}", "namespace": namespace},
        "spec": {"release": release, **spec},
    }


# -- around them --------------------------------------------------------------------------------------------


def tls_secret(namespace: str, name: str, host: str, days: int) -> tuple[Body, KeyPair]:
    """A kubernetes.io/tls Secret for `host`, valid `days`, from a fresh CA; and its key pair."""
    pair = CertificateAuthority().issue(host.split(".", maxsplit=1)[0], hosts=(host,), validity=dt.timedelta(days=days))
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": name, "namespace": namespace},
        "data": {
            "tls.crt": base64.b64encode(pair.cert_pem).decode(),
            "tls.key": base64.b64encode(pair.key_pem).decode(),
        },
    }
    return secret, pair


def cluster_role(name: str, rules: list[Body], users: tuple[str, ...] = (), groups: tuple[str, ...] = ()) -> Body:
    """A List of a ClusterRole with `rules` and a ClusterRoleBinding of it to `users` and `groups`."""
    subjects = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": u} for u in users]
    subjects += [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]
    return {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": subjects,
            },
        ],
    }
