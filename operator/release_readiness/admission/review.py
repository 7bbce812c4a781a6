"""What a well-formed AdmissionReview is: a pure check of a request body, before any handler sees it.

The webhook port is reachable by more than the API server (until client certificates are required,
and even then by a misconfigured one), so every body is hostile until checked here. A body that fails
gets HTTP 400 with one line naming the field and what it must be; nothing of the body is echoed back,
no handler runs, and no event or per-object metric is recorded for it.

`routes` (path -> the resources the API server sends there) come from the webhook configurations
(configuration.py), so a review of a resource that the path does not serve is refused too: it can only
be forged or misrouted, and Kopf would answer "allowed" for it (no handler matches).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "MAX_DEPTH",
    "OPERATIONS",
    "ReviewError",
    "Route",
    "check_review",
    "dump_json",
    "parse_review",
    "routes_of",
]

MAX_DEPTH = 100
"""Deepest nesting accepted (Kubernetes objects nest about 15 levels; json and Kopf recurse on it)."""

OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})

Route = tuple[str, str, str, str]
"""(group, version, resource, subresource) as the API server names them in request.resource."""


class ReviewError(ValueError):
    """The body is not a well-formed AdmissionReview; the message is one line for the HTTP 400."""


def routes_of(configurations: list[dict[str, Any]]) -> dict[str, frozenset[Route]]:
    """Path -> the resources its webhooks receive, read from Validating/MutatingWebhookConfigurations."""
    routes: dict[str, set[Route]] = {}
    for configuration in configurations:
        for hook in configuration.get("webhooks") or []:
            config = hook["clientConfig"]
            path = str(config["service"]["path"] if "service" in config else config["url"]).rsplit("/", 1)[-1]
            found = routes.setdefault(path, set())
            for rule in hook.get("rules") or []:
                for group in rule["apiGroups"]:
                    for version in rule["apiVersions"]:
                        for resource in rule["resources"]:
                            plural, _, sub = str(resource).partition("/")
                            found.add((group, version, plural, sub))
    return {path: frozenset(found) for path, found in routes.items()}


def _depth(data: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node if isinstance(v, (dict, list)))
    return deepest


def _string(payload: Mapping[str, Any], key: str, where: str, required: bool = True, empty: bool = True) -> None:
    value = payload.get(key)
    if value is None and not required:
        return
    if not isinstance(value, str) or (not empty and not value):
        raise ReviewError(f"{where}.{key} must be a {'non-empty ' if not empty else ''}string")


def _object(payload: Mapping[str, Any], key: str, where: str, required: bool = True) -> Mapping[str, Any] | None:
    value = payload.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise ReviewError(f"{where}.{key} must be an object")
    return value


def _string_map(payload: Mapping[str, Any], key: str, where: str) -> None:
    value = payload.get(key)
    if value is None:
        return
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ReviewError(f"{where}.{key} must be a map of strings")


def _kubernetes_object(obj: Mapping[str, Any], where: str) -> None:
    meta = _object(obj, "metadata", where, required=False)
    if meta is None:
        return
    for key in ("name", "namespace", "generateName", "uid"):
        _string(meta, key, f"{where}.metadata", required=False)
    _string_map(meta, "labels", f"{where}.metadata")
    _string_map(meta, "annotations", f"{where}.metadata")
    refs = meta.get("ownerReferences")
    if refs is not None and not (isinstance(refs, list) and all(isinstance(r, dict) for r in refs)):
        raise ReviewError(f"{where}.metadata.ownerReferences must be a list of objects")
    for key in ("spec", "status"):
        _object(obj, key, where, required=False)


def _check_user(request: Mapping[str, Any]) -> None:
    user = _object(request, "userInfo", "request")
    assert user is not None
    _string(user, "username", "request.userInfo")
    _string(user, "uid", "request.userInfo", required=False)
    groups = user.get("groups")
    if groups is not None and not (isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
        raise ReviewError("request.userInfo.groups must be a list of strings")
    extra = user.get("extra")
    if extra is not None and not (
        isinstance(extra, dict)
        and all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in extra.values())
    ):
        raise ReviewError("request.userInfo.extra must be a map of string lists")


def check_review(data: Any, path: str, routes: Mapping[str, frozenset[Route]]) -> Mapping[str, Any]:
    """The review's `request` when `data` is a well-formed AdmissionReview for `path`; raises ReviewError."""
    if not isinstance(data, dict):
        raise ReviewError("the body must be a JSON object (an admission.k8s.io/v1 AdmissionReview)")
    if data.get("apiVersion") != "admission.k8s.io/v1" or data.get("kind") != "AdmissionReview":
        raise ReviewError("apiVersion and kind must be admission.k8s.io/v1 AdmissionReview")
    if _depth(data) > MAX_DEPTH:
        raise ReviewError(f"the body nests deeper than {MAX_DEPTH} levels")
    request = _object(data, "request", "AdmissionReview")
    assert request is not None
    where = "request"
    _string(request, "uid", where, empty=False)
    if len(request["uid"]) > 128:
        raise ReviewError("request.uid must be at most 128 characters")
    kind = _object(request, "kind", where)
    resource = _object(request, "resource", where)
    assert kind is not None
    assert resource is not None
    for key in ("group", "version"):
        _string(kind, key, "request.kind")
        _string(resource, key, "request.resource")
    _string(kind, "kind", "request.kind", empty=False)
    _string(resource, "resource", "request.resource", empty=False)
    _string(request, "subResource", where, required=False)
    operation = request.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise ReviewError(f"request.operation must be one of {', '.join(sorted(OPERATIONS))}")
    for key in ("name", "namespace"):
        _string(request, key, where, required=False)
    if "dryRun" in request and not isinstance(request["dryRun"], bool):
        raise ReviewError("request.dryRun must be a boolean")
    _check_user(request)
    new = _object(request, "object", where, required=False)
    old = _object(request, "oldObject", where, required=False)
    if new is None and old is None:
        raise ReviewError("request.object or request.oldObject must be an object")
    if request["operation"] == "CREATE" and new is None:
        raise ReviewError("request.object must be an object for a CREATE")
    if request["operation"] == "UPDATE" and (new is None or old is None):
        raise ReviewError("request.object and request.oldObject must be objects for an UPDATE")
    for obj, name in ((new, "request.object"), (old, "request.oldObject")):
        if obj is not None:
            _kubernetes_object(obj, name)
    served = routes.get(path)
    if served is None:
        raise ReviewError(f"no webhook is served at /{path}")
    asked = (resource["group"], resource["version"], resource["resource"], str(request.get("subResource") or ""))
    if asked not in served:
        raise ReviewError(f"request.resource is not a resource the webhook at /{path} is configured for")
    return request


def parse_review(body: bytes, path: str, routes: Mapping[str, frozenset[Route]]) -> dict[str, Any]:
    """Decode and check a body; raises ReviewError with one line naming what is wrong."""
    try:
        data = orjson.loads(body)  # several times faster than json; what it refuses, json is asked (same messages)
    except orjson.JSONDecodeError:
        data = _stdlib_loads(body)
    check_review(data, path, routes)
    result: dict[str, Any] = data
    return result


def dump_json(data: Any) -> bytes:
    """An answer's JSON (orjson: several times faster than json; non-str keys as strings, like json)."""
    return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


def _stdlib_loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise ReviewError(f"the body nests deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # also UnicodeDecodeError
        raise ReviewError("the body is not JSON (an admission.k8s.io/v1 AdmissionReview)") from None
