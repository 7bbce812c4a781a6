"""A seeded generator of hostile AdmissionReview bodies (shared by the unit test of the review check and the
fuzz test against the real webhook server). Same seed, same bodies: a failure is reproducible."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from typing import Any

from release_readiness_dev import builders

# Values of every JSON type; a mutation picks one of a type the field must not have.
_ODD: tuple[Any, ...] = (None, 0, -1, 1.5, True, False, "", "x" * 300, [], [1, "a"], {}, {"a": {"b": 1}})


@dataclass(frozen=True)
class Case:
    what: str
    """What is wrong, for the failure message."""
    path: str
    body: bytes


def valid_review(namespace: str = "payments-prod", uid: str | None = None) -> dict[str, Any]:
    """A well-formed review of a Deployment created in `namespace` (what the API server sends to the gate)."""
    rollout = builders.deployment(
        "payments-api",
        namespace,
        labels={"app": "payments-api"},
        template_labels={"app": "payments-api", **builders.app_labels("payments-api", "9.9.9")},
        selector={"app": "payments-api"},
        containers=[builders.container(image="registry.example.com/api:9.9.9")],
        replicas=1,
    )
    return builders.admission_review(rollout, uid, groups=("developers", "system:authenticated"))


# Fields of the review that must be present with a given JSON shape: (path, what must hold).
_FIELDS: tuple[tuple[tuple[str, ...], type | tuple[type, ...]], ...] = (
    (("request",), dict),
    (("request", "uid"), str),
    (("request", "kind"), dict),
    (("request", "kind", "kind"), str),
    (("request", "kind", "group"), str),
    (("request", "resource"), dict),
    (("request", "resource", "resource"), str),
    (("request", "resource", "version"), str),
    (("request", "operation"), str),
    (("request", "userInfo"), dict),
    (("request", "userInfo", "username"), str),
    (("request", "object"), dict),
)
# Optional fields that, when present, must have a shape.
_TYPED: tuple[tuple[tuple[str, ...], type | tuple[type, ...]], ...] = (
    (("request", "userInfo", "groups"), list),
    (("request", "dryRun"), bool),
    (("request", "namespace"), str),
    (("request", "object", "metadata"), dict),
    (("request", "object", "metadata", "labels"), dict),
    (("request", "object", "metadata", "name"), str),
    (("request", "object", "spec"), dict),
)


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _delete(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node = data
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)


def _wrong(rng: random.Random, must: type | tuple[type, ...], optional: bool = False) -> Any:
    types = must if isinstance(must, tuple) else (must,)
    while True:
        value = rng.choice(_ODD)
        if value is None and optional:  # an optional field may be null
            continue
        # bool is an int in Python, but not for JSON: keep True/False as wrong for str/dict/list fields.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            if str in types and isinstance(value, str):
                continue
            return value


def malformed_cases(seed: int, count: int) -> list[Case]:
    """`count` bodies that are not well-formed reviews for their path; each must get a 400 (or 404)."""
    rng = random.Random(seed)
    cases: list[Case] = []

    def dumps(data: Any) -> bytes:
        return json.dumps(data).encode()

    generators = [
        lambda: Case("not JSON", "gate-deployments", rng.randbytes(rng.randint(0, 200))),
        lambda: Case("truncated JSON", "gate-deployments", dumps(valid_review())[: rng.randint(1, 400)]),
        lambda: Case("not UTF-8", "gate-deployments", b'{"apiVersion": "\xff\xfe"}'),
        lambda: Case("not an object", "gate-deployments", dumps(rng.choice([[], [1], "review", 7, None, True]))),
        lambda: Case("not a review", "validate-release", dumps({**valid_review(), "kind": "Pod"})),
        lambda: Case("old review version", "gate-deployments", dumps({**valid_review(), "apiVersion": "v1beta1"})),
        lambda: Case("unknown path", rng.choice(["x", "gate-", "../metrics", "gate-deployments/x", "%00"]), b"{}"),
        lambda: Case("deep nesting", "gate-deployments", _deep(rng.randint(120, 5000))),
    ]

    def missing() -> Case:
        data = valid_review()
        path, _ = rng.choice(_FIELDS)
        _delete(data, path)
        return Case(f"missing {'.'.join(path)}", "gate-deployments", dumps(data))

    def wrong_type() -> Case:
        data = valid_review()
        path, must = rng.choice(_FIELDS + _TYPED)
        _set(data, path, _wrong(rng, must, optional=(path, must) in _TYPED))
        return Case(f"wrong type at {'.'.join(path)}", "gate-deployments", dumps(data))

    def bad_value() -> Case:
        data = valid_review()
        choice = rng.randrange(6)
        if choice == 0:
            data["request"]["operation"] = rng.choice(["create", "PATCH", "", "DELETE-ALL"])
        elif choice == 1:
            data["request"]["uid"] = rng.choice(["", "u" * 200])
        elif choice == 2:
            data["request"]["resource"] = {"group": "", "version": "v1", "resource": rng.choice(["secrets", "pods"])}
        elif choice == 3:
            data["request"]["object"]["metadata"]["labels"] = {"a": rng.choice([1, None, [], {}])}
        elif choice == 4:
            data["request"]["operation"] = "UPDATE"  # without oldObject
        else:
            data["request"]["userInfo"]["groups"] = ["ok", rng.choice([1, None, {}])]
        return Case(f"bad value #{choice}", "gate-deployments", dumps(data))

    generators += [missing, wrong_type, bad_value]
    while len(cases) < count:
        cases.append(rng.choice(generators)())
    return cases


def weird_valid_cases(seed: int, count: int) -> list[tuple[str, dict[str, Any]]]:
    """Well-formed reviews with odd contents (unknown namespaces and kinds, odd labels, dry runs): each must get
    an AdmissionReview answer (HTTP 200) with its own uid, whatever the verdict."""
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for _ in range(count):
        data = valid_review(namespace=f"fuzz-{rng.randrange(10**6)}")
        req = data["request"]
        req["kind"]["kind"] = rng.choice(["Deployment", "D\u0435ployment", "X" * 60, "kind-" + str(rng.random())])
        req["dryRun"] = rng.random() < 0.3
        template = req["object"]["spec"]["template"]
        template["metadata"]["labels"] = {
            rng.choice(["app.kubernetes.io/name", "app.kubernetes.io/version", "z"]): "v" * rng.randint(0, 70)
        }
        if rng.random() < 0.3:
            req["object"]["metadata"]["annotations"] = {"readiness.dev/break-glass": "fuzz"}
            req["userInfo"]["groups"] = ["sre-oncall"]
        if rng.random() < 0.3:
            req["operation"] = "UPDATE"
            req["oldObject"] = copy.deepcopy(req["object"])
            req["oldObject"]["spec"]["template"]["spec"]["containers"][0]["image"] = "other:1"
        out.append(("gate-deployments", data))
    return out


def _deep(levels: int) -> bytes:
    data = valid_review()
    node: dict[str, Any] = data["request"]["object"]["spec"]
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return json.dumps(data).encode() if levels < 900 else ('{"a":' * levels + "1" + "}" * levels).encode()
