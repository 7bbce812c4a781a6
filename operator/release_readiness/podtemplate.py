"""What was inspected is what runs: pod templates normalized for comparison, hashed, and diffed.

The reconciler records, for each inspected candidate workload, the hash of its pod template with the
per-environment fields removed (`environment fields`: a checklist's spec.rules.environmentFields, or
DEFAULT_ENVIRONMENT_FIELDS). The gate normalizes the production template the same way and compares
hashes; on a mismatch `first_difference` names the first field that differs and both values.

A field pattern is a dotted path inside the pod template; `[*]` stands for every element of a list
(or every value of a map), e.g. `spec.containers[*].env[*].value`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_ENVIRONMENT_FIELDS",
    "GENERATED_LABELS",
    "HARMLESS_ANNOTATIONS",
    "PROTECTED_ANNOTATIONS",
    "controller_labels",
    "differences",
    "first_difference",
    "normalize_template",
    "parse_field",
    "template_hash",
]

DEFAULT_ENVIRONMENT_FIELDS: tuple[str, ...] = (
    "spec.containers[*].resources",
    "spec.initContainers[*].resources",
    "spec.containers[*].env[*].value",
    "spec.initContainers[*].env[*].value",
    "spec.topologySpreadConstraints",
)
"""Fields of a pod template that may differ between the candidate and production unless a checklist says
otherwise: container resources, literal env values (the names must match) and how replicas spread over the
nodes. Replicas are not part of the pod template. Everything else is compared, in particular:
- annotations (but HARMLESS_ANNOTATIONS): admission webhooks read them to inject sidecars (Vault, Istio), to
  attach networks (Multus) or to change the security profile;
- env valueFrom: a Secret or ConfigMap of the same name holds each environment's values in its own namespace;
  pointing at another object (another application's Secret) is a change of what runs;
- nodeSelector, affinity, tolerations, priorityClassName: with them a pod lands on control-plane nodes or
  preempts system pods. A checklist that truly needs one per environment lists it in
  spec.rules.environmentFields (a single annotation: metadata.annotations['example.com/key'], or a prefix:
  metadata.annotations['example.com/*'])."""

HARMLESS_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/restartedAt",
        "readiness.dev/scan",
    }
)
"""Pod-template annotations never compared: `kubectl rollout restart` writes restartedAt (so a restart of an
admitted release keeps working); readiness.dev/scan is this operator's own, read only on the candidate (by
imageScan where a checklist allows it). Annotations of the workload object itself (e.g. the Deployment's
deployment.kubernetes.io/revision, kubernetes.io/change-cause) are not part of the pod template and never
compared."""

_JOB_LABELS = ("controller-uid", "batch.kubernetes.io/controller-uid", "job-name", "batch.kubernetes.io/job-name")
GENERATED_LABELS = frozenset(
    {
        *_JOB_LABELS,
        "pod-template-hash",
        "controller-revision-hash",
        "pod-template-generation",
        "batch.kubernetes.io/job-completion-index",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
    }
)
"""Labels the API server and the built-in controllers add to pod templates and pods. They are ignored only on
the objects that controller makes, with the value it sets (see `controller_labels`), never on a person's
template: a label selects the pod for Services and NetworkPolicies."""

PROTECTED_ANNOTATIONS = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
    "sidecar.istio.io/",
    "vault.hashicorp.com/",
    "k8s.v1.cni.cncf.io/",
)
"""Annotation prefixes that change a pod's security, its sidecars or its networks: compared even when a
checklist lets all annotations differ per environment."""

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_SELECTOR = re.compile(r"\[\*\]|\['([A-Za-z0-9][A-Za-z0-9._/-]*\*?)'\]")
KEY = "'"
"""Prefix of a map-key token: ('metadata', 'annotations', "'example.com/key")."""
_DEFAULT_TOLERATIONS = [
    {"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
    for taint in ("not-ready", "unreachable")
]
"""What the DefaultTolerationSeconds admission plugin adds to every Pod (the same as not having them)."""
_SA_VOLUME_PREFIX = "kube-api-access-"
"""The projected service-account volume the ServiceAccount admission plugin adds to every Pod."""


@functools.lru_cache(maxsize=512)
def parse_field(pattern: str) -> tuple[str, ...]:
    """'spec.containers[*].resources' -> ['spec', 'containers', '*', 'resources'];
    "metadata.annotations['example.com/key']" -> ['metadata', 'annotations', "'example.com/key"] (a trailing * in
    the key: every key with that prefix). ValueError when malformed."""
    if not pattern or pattern.startswith(".") or pattern.endswith("."):
        raise ValueError(f"{pattern!r} is not a dotted field path such as spec.containers[*].resources")
    tokens: list[str] = []
    at = 0
    while at < len(pattern):
        name = _NAME.match(pattern, at)
        if name is None:
            segment = pattern[at:].split(".", 1)[0]
            raise ValueError(
                f"{pattern!r}: segment {segment!r} is not a field name optionally followed by [*] or ['key'] "
                "(e.g. spec.containers[*].env[*].value, metadata.annotations['example.com/key'])"
            )
        tokens.append(name.group(0))
        at = name.end()
        while (selector := _SELECTOR.match(pattern, at)) is not None:
            tokens.append("*" if selector.group(1) is None else KEY + selector.group(1))
            at = selector.end()
        if at < len(pattern):
            if pattern[at] != "." or at + 1 == len(pattern):
                segment = pattern[: at + 1].rsplit(".", 1)[-1] + pattern[at + 1 :].split(".", 1)[0]
                raise ValueError(
                    f"{pattern!r}: segment {segment!r} is not a field name optionally followed by [*] or ['key'] "
                    "(e.g. spec.containers[*].env[*].value, metadata.annotations['example.com/key'])"
                )
            at += 1
    if tokens[0] not in ("metadata", "spec"):
        raise ValueError(f"{pattern!r} must start with metadata or spec (a path inside the pod template)")
    return tuple(tokens)


def _remove(node: Any, tokens: Sequence[str]) -> None:
    if not tokens:
        return
    head, rest = tokens[0], tokens[1:]
    if head == "*":
        children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
        for child in children:
            _remove(child, rest)
        return
    if not isinstance(node, dict):
        return
    if head.startswith(KEY):
        key = head[len(KEY) :]
        matched = [k for k in node if k.startswith(key[:-1])] if key.endswith("*") else [key] if key in node else []
    else:
        matched = [head] if head in node else []
    for name in matched:
        if rest:
            _remove(node[name], rest)
        else:
            del node[name]


def _drop_empty(node: Any) -> Any:
    """None, empty maps and empty lists are the same as absent (clients differ in what they send)."""
    if isinstance(node, dict):
        out = {k: _drop_empty(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not None and v not in ({}, [])}
    if isinstance(node, list):
        return [_drop_empty(v) for v in node]
    return node


def _controller_owner(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    owner = next((r for r in refs if isinstance(r, Mapping) and r.get("controller") is True), None)
    return owner or {}


def controller_labels(kind: str, obj: Mapping[str, Any], template: Mapping[str, Any]) -> frozenset[str]:
    """The GENERATED_LABELS of `obj`'s pod template that its kind's controller (or the API server) set there,
    with the value it sets: pod-template-hash on a Deployment's ReplicaSets and their Pods, the revision and
    pod name on a StatefulSet's Pods, the revision and generation on a DaemonSet's Pods, the job's name and uid
    on every Job (the API server adds them) and on a Job's Pods. Nothing on a person's own template.
    `template`: obj's pod template (for a Pod, its labels, annotations and spec)."""
    meta = obj.get("metadata") or {}
    owner = _controller_owner(obj)
    owner_kind, owner_name, owner_uid = str(owner.get("kind", "")), str(owner.get("name", "")), owner.get("uid")
    labels: Mapping[str, Any] = (template.get("metadata") or {}).get("labels") or {}
    expected: dict[str, Any] = {}
    if kind == "ReplicaSet" and owner_kind == "Deployment":
        expected["pod-template-hash"] = str(meta.get("name", "")).removeprefix(f"{owner_name}-")
    elif kind == "Job":
        expected |= {k: meta.get("uid") if "uid" in k else meta.get("name") for k in _JOB_LABELS}
    elif kind == "Pod" and owner_kind == "ReplicaSet":
        expected["pod-template-hash"] = owner_name.rpartition("-")[2]
    elif kind == "Pod" and owner_kind == "StatefulSet":
        name = str(meta.get("name", ""))
        expected["statefulset.kubernetes.io/pod-name"] = name
        expected["apps.kubernetes.io/pod-index"] = name.rpartition("-")[2]
        revision = str(labels.get("controller-revision-hash", ""))
        if revision.startswith(f"{owner_name}-"):
            expected["controller-revision-hash"] = revision
    elif kind == "Pod" and owner_kind == "DaemonSet":
        revision = str(labels.get("controller-revision-hash", ""))
        generation = str(labels.get("pod-template-generation", ""))
        if revision.startswith(f"{owner_name}-"):
            expected["controller-revision-hash"] = revision
        if generation.isdigit():
            expected["pod-template-generation"] = generation
    elif kind == "Pod" and owner_kind == "Job":
        expected |= {k: owner_uid if "uid" in k else owner_name for k in _JOB_LABELS}
        index = (meta.get("annotations") or {}).get("batch.kubernetes.io/job-completion-index")
        expected["batch.kubernetes.io/job-completion-index"] = index
    return frozenset(k for k, v in expected.items() if v and labels.get(k) == v)


def normalize_template(
    template: Mapping[str, Any], environment_fields: Sequence[str], generated: Collection[str] = frozenset()
) -> dict[str, Any]:
    """The pod template as the gate compares it: what the system adds (`generated`: the labels its controller
    set, see `controller_labels`; the HARMLESS_ANNOTATIONS) and the environment fields removed."""
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in generated}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in HARMLESS_ANNOTATIONS}
    # A JSON round trip copies plain API data several times faster than copy.deepcopy.
    spec: dict[str, Any] = json.loads(json.dumps(template.get("spec") or {}))
    # Set by admission plugins from other fields: the ServiceAccount plugin mirrors serviceAccountName and
    # mounts the token volume; the Priority plugin resolves priorityClassName.
    spec.pop("serviceAccount", None)
    if spec.get("serviceAccountName") == "default":
        spec.pop("serviceAccountName")
    spec.pop("priority", None)
    spec.pop("preemptionPolicy", None)
    # Defaulted on Pods but not on pod templates.
    if spec.get("enableServiceLinks") is True:
        spec.pop("enableServiceLinks")
    tolerations = spec.get("tolerations")
    if isinstance(tolerations, list):
        spec["tolerations"] = [t for t in tolerations if t not in _DEFAULT_TOLERATIONS]
    # Set by the kind, not by choice: Deployments require Always, Jobs Never or OnFailure.
    spec.pop("restartPolicy", None)
    volumes = spec.get("volumes")
    if isinstance(volumes, list):
        tokens = {str(v.get("name")) for v in volumes if str(v.get("name", "")).startswith(_SA_VOLUME_PREFIX)}
        spec["volumes"] = [v for v in volumes if str(v.get("name")) not in tokens]
        for key in ("containers", "initContainers"):
            for container in spec.get(key) or []:
                mounts = container.get("volumeMounts")
                if isinstance(mounts, list):
                    container["volumeMounts"] = [m for m in mounts if str(m.get("name")) not in tokens]
    normalized: dict[str, Any] = {
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": spec,
    }
    protected = {k: v for k, v in normalized["metadata"]["annotations"].items() if k.startswith(PROTECTED_ANNOTATIONS)}
    for pattern in environment_fields:
        _remove(normalized, parse_field(pattern))
    if protected:
        normalized.setdefault("metadata", {}).setdefault("annotations", {}).update(protected)
    cleaned: dict[str, Any] = _drop_empty(normalized)
    return cleaned


def template_hash(normalized: Mapping[str, Any]) -> str:
    material = json.dumps(normalized, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


_MISSING = object()


def differences(inspected: Any, running: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(field path, inspected value, production value) of every difference (keys in sorted order), down to the
    leaf: a map or list present on one side only is compared with an empty one. Absent is None."""
    if inspected is _MISSING and isinstance(running, dict | list):
        inspected = type(running)()
    if running is _MISSING and isinstance(inspected, dict | list):
        running = type(inspected)()
    if isinstance(inspected, dict) and isinstance(running, dict):
        for key in sorted(set(inspected) | set(running)):
            a, b = inspected.get(key, _MISSING), running.get(key, _MISSING)
            yield from differences(a, b, f"{path}.{key}" if path else key)
    elif isinstance(inspected, list) and isinstance(running, list):
        for index in range(max(len(inspected), len(running))):
            a = inspected[index] if index < len(inspected) else _MISSING
            b = running[index] if index < len(running) else _MISSING
            yield from differences(a, b, f"{path}[{index}]")
    elif inspected != running:
        yield path, None if inspected is _MISSING else inspected, None if running is _MISSING else running


def first_difference(inspected: Any, running: Any) -> tuple[str, Any, Any] | None:
    return next(differences(inspected, running), None)
