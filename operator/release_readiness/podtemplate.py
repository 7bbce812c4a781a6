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
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_ENVIRONMENT_FIELDS",
    "GENERATED_LABELS",
    "PROTECTED_ANNOTATIONS",
    "differences",
    "first_difference",
    "normalize_template",
    "parse_field",
    "template_hash",
]

DEFAULT_ENVIRONMENT_FIELDS: tuple[str, ...] = (
    "metadata.annotations",
    "spec.containers[*].resources",
    "spec.initContainers[*].resources",
    "spec.containers[*].env[*].value",
    "spec.containers[*].env[*].valueFrom",
    "spec.initContainers[*].env[*].value",
    "spec.initContainers[*].env[*].valueFrom",
    "spec.nodeSelector",
    "spec.affinity",
    "spec.tolerations",
    "spec.topologySpreadConstraints",
    "spec.priorityClassName",
)
"""Fields of a pod template that may differ between the candidate and production unless a checklist says
otherwise: annotations (e.g. `kubectl rollout restart`'s restartedAt), container resources, env values (the
names must match), and where pods are scheduled. Replicas are not part of the pod template."""

GENERATED_LABELS = frozenset(
    {
        "pod-template-hash",
        "controller-revision-hash",
        "controller-uid",
        "job-name",
        "batch.kubernetes.io/controller-uid",
        "batch.kubernetes.io/job-name",
        "batch.kubernetes.io/job-completion-index",
        "statefulset.kubernetes.io/pod-name",
        "apps.kubernetes.io/pod-index",
    }
)
"""Labels the API server and the built-in controllers add to pod templates and pods."""

PROTECTED_ANNOTATIONS = (
    "container.apparmor.security.beta.kubernetes.io/",
    "seccomp.security.alpha.kubernetes.io/",
    "container.seccomp.security.alpha.kubernetes.io/",
)
"""Annotation prefixes that change a pod's security: compared even when annotations may differ per environment."""

_SEGMENT = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)((?:\[\*\])*)$")
_SA_VOLUME_PREFIX = "kube-api-access-"
"""The projected service-account volume the ServiceAccount admission plugin adds to every Pod."""


@functools.lru_cache(maxsize=512)
def parse_field(pattern: str) -> tuple[str, ...]:
    """'spec.containers[*].resources' -> ['spec', 'containers', '*', 'resources']; ValueError when malformed."""
    if not pattern or pattern.startswith(".") or pattern.endswith("."):
        raise ValueError(f"{pattern!r} is not a dotted field path such as spec.containers[*].resources")
    tokens: list[str] = []
    for segment in pattern.split("."):
        match = _SEGMENT.match(segment)
        if match is None:
            raise ValueError(
                f"{pattern!r}: segment {segment!r} is not a field name optionally followed by [*] "
                "(e.g. spec.containers[*].env[*].value)"
            )
        tokens.append(match.group(1))
        tokens += ["*"] * (len(match.group(2)) // 3)
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
    if not isinstance(node, dict) or head not in node:
        return
    if rest:
        _remove(node[head], rest)
    else:
        del node[head]


def _drop_empty(node: Any) -> Any:
    """None, empty maps and empty lists are the same as absent (clients differ in what they send)."""
    if isinstance(node, dict):
        out = {k: _drop_empty(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not None and v not in ({}, [])}
    if isinstance(node, list):
        return [_drop_empty(v) for v in node]
    return node


def normalize_template(template: Mapping[str, Any], environment_fields: Sequence[str]) -> dict[str, Any]:
    """The pod template as the gate compares it: what the system adds and the environment fields removed."""
    meta = template.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in GENERATED_LABELS}
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
        "metadata": {"labels": labels, "annotations": dict(meta.get("annotations") or {})},
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
