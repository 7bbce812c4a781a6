"""CEL checks: a platform team's own rules, as CEL expressions over each candidate workload and its related objects.

The same function judges a release live (the reconciler) and offline (`kubectl readiness audit`), on plain dicts.
Expressions are compiled and type-checked by cel-expr-python, the Python binding of cel-cpp (CEL's C++ reference
implementation; docs/architecture.md says why this one). Each distinct expression is compiled once (a cache keyed by
its text, so by the checklist's content), never per workload.

Cost: cel-cpp stops an evaluation after MAX_ITERATIONS comprehension iterations (nested loops included), which
bounds what hostile objects in the candidate namespace (thousands of Services, huge lists) can make one rule cost.
On top of that, an item stops evaluating once it has spent ITEM_SECONDS, and every item once the evaluation's CEL
items together have spent EVALUATION_SECONDS (the operator evaluates on its event loop): Pending, saying so.
Neither limit, nor an evaluation error, ever passes an item.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from cel_expr_python import cel
from cel_expr_python.ext import ext_strings

from release_readiness.checks.model import Body, CandidateSnapshot, CheckResult, Workload
from release_readiness.checks.workload import autoscalers_of, pdbs_selecting, policies_selecting

if TYPE_CHECKING:
    from release_readiness.api.checklist import CelCheck, CelRule

__all__ = [
    "EVALUATION_SECONDS",
    "ITEM_SECONDS",
    "MAX_ITERATIONS",
    "TEMPLATE_VARIABLES",
    "VARIABLES",
    "expression_errors",
    "reads_template_only",
    "run_cel_check",
    "variables_of",
]

VARIABLES: dict[str, str] = {
    "workload": "the Deployment, StatefulSet or DaemonSet, as the API server returns it",
    "podSpec": "its pod template's spec",
    "containers": "podSpec.containers",
    "services": "the Services whose selector picks its pods",
    "networkPolicies": "the NetworkPolicies whose podSelector picks its pods",
    "pdbs": "the PodDisruptionBudgets whose selector picks its pods",
    "hpas": "the HorizontalPodAutoscalers whose scaleTargetRef names it",
    "ingresses": "the Ingresses that route to one of those Services",
}

TEMPLATE_VARIABLES = ("workload", "podSpec", "containers")
"""What a rule may read to be judged on a production workload alone (the gate has no related objects)."""

MAX_ITERATIONS = 10_000
"""cel-cpp's comprehension_max_iterations, which the binding keeps at its default: comprehension iterations
(all(), exists(), map(), filter(), nested ones included) one evaluation may run."""

ITEM_SECONDS = 2.0
"""Wall-clock time one CEL item may spend on one release's workloads; the rest of its workloads stay unjudged."""

EVALUATION_SECONDS = 2.5
"""Wall-clock time all CEL items of one evaluation (one snapshot) may spend together: well under the gate's 5 s
timeout, since the event loop they hold answers the gate (red-team 3 finding 2: the sample's three items over 1,000
Deployments and 300 Services a developer created held it 6 s; a 10 s budget still let one developer's objects time
out every enforce rollout in the cluster, failurePolicy Fail)."""
_SPENT = ("cel", "seconds")

Purpose = Literal["rule", "message"]
WANTED: dict[Purpose, str] = {"rule": "bool", "message": "string"}


@functools.cache
def _env(names: tuple[str, ...] = tuple(VARIABLES)) -> Any:
    """The CEL environment declaring `names`: workload and podSpec are objects, the others lists of objects."""
    obj = cel.Type.Map(cel.Type.STRING, cel.Type.DYN)
    types = {name: obj if name in ("workload", "podSpec") else cel.Type.List(obj) for name in names}
    return cel.NewEnv(variables=types, extensions=[ext_strings.ExtStrings()])


@functools.lru_cache(maxsize=1024)
def _template_only(expression: str) -> bool:
    try:
        _env(TEMPLATE_VARIABLES).compile(expression)
    except RuntimeError:
        return False
    return True


def reads_template_only(check: CelCheck) -> bool:
    """Whether every rule reads only TEMPLATE_VARIABLES (told by the type checker, which refuses any other name
    in an environment that declares only those): such an item is judged again on the production workload at the
    gate, like the built-in template checks, since the per-environment fields (env values, resources) may differ."""
    return all(_template_only(r.expression) for r in check.rules)


@dataclass(frozen=True)
class Compiled:
    """A compiled expression, or why it does not compile (each error with its position)."""

    program: Any
    errors: tuple[str, ...]
    result_type: str


_POSITION = re.compile(r"^ERROR: <input>:(\d+):(\d+): (.*)$")


def _compile_errors(text: str) -> tuple[str, ...]:
    """cel-cpp's error text ('ERROR: <input>:1:19: Syntax error: ...' lines, each followed by the source line and a
    caret) as sentences: 'Syntax error: ... at line 1, column 19'."""
    errors = []
    for line in text.splitlines():
        found = _POSITION.match(line.strip())
        if found:
            row, column, what = found.groups()
            what = what.removesuffix(" (in container '')")
            errors.append(f"{what} at line {row}, column {column}")
    # The checker goes on after an unknown name and reports what follows from it ("of type '*error*'"): noise.
    first = [e for e in errors if "'*error*'" not in e] or errors
    if first:
        return tuple(first)
    # No position (e.g. "CANCELLED: Expression recursion limit exceeded. limit: 32 [CANCELLED]"): the reason alone.
    reason = text.strip().splitlines()[0] if text.strip() else "does not compile"
    return (re.sub(r"^[A-Z_]+: | \[[A-Z_]+\]$", "", reason),)


@functools.lru_cache(maxsize=1024)
def compiled(expression: str) -> Compiled:
    """Parse and type-check once per distinct expression (the checklist's content is the cache key)."""
    try:
        program = _env().compile(expression)
    except RuntimeError as err:
        return Compiled(None, _compile_errors(str(err).removeprefix("INVALID_ARGUMENT: ")), "")
    return Compiled(program, (), program.return_type().name())


# A representative candidate: what an expression whose type the checker cannot tell (dyn) yields is found by
# evaluating it here. Only a non-bool (non-string) value refuses it; an error on this sample says nothing.
_SAMPLE_CONTAINER: Body = {
    "name": "app",
    "image": "registry.example/app:1.0.0",
    "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
    "env": [{"name": "TZ", "value": "UTC"}],
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
    "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
    "livenessProbe": {"httpGet": {"path": "/live", "port": "http"}},
    "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True},
}
_SAMPLE_LABELS = {"app.kubernetes.io/name": "app", "app.kubernetes.io/version": "1.0.0"}
_SAMPLE_POD: Body = {"containers": [_SAMPLE_CONTAINER], "serviceAccountName": "app"}
SAMPLE: dict[str, Any] = {
    "workload": {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "staging", "labels": _SAMPLE_LABELS, "annotations": {}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
            "template": {"metadata": {"labels": _SAMPLE_LABELS}, "spec": _SAMPLE_POD},
        },
        "status": {"replicas": 2, "availableReplicas": 2},
    },
    "podSpec": _SAMPLE_POD,
    "containers": [_SAMPLE_CONTAINER],
    "services": [
        {
            "metadata": {"name": "app", "namespace": "staging"},
            "spec": {"selector": {"app.kubernetes.io/name": "app"}, "ports": [{"port": 443, "targetPort": "http"}]},
        }
    ],
    "networkPolicies": [{"metadata": {"name": "app"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}],
    "pdbs": [{"metadata": {"name": "app"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": _SAMPLE_LABELS}}}],
    "hpas": [
        {
            "metadata": {"name": "app"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "app"}, "minReplicas": 2, "maxReplicas": 5},
        }
    ],
    "ingresses": [
        {
            "metadata": {"name": "app"},
            "spec": {"rules": [{"host": "app.example", "http": {"paths": [{"path": "/", "backend": {}}]}}]},
        }
    ],
}


def expression_errors(expression: str, purpose: Purpose) -> list[str]:
    """Why `expression` cannot serve as a rule (a bool) or a message (a string): it does not parse, names a variable
    that does not exist, or yields another type (checked statically; when the checker sees only dyn, by evaluating
    it on SAMPLE). Each error says where: 'at line L, column C'."""
    found = compiled(expression)
    if found.errors:
        return list(found.errors)
    wanted = WANTED[purpose]
    kind = found.result_type.lower()
    if kind == wanted:
        return []
    if kind != "dyn":
        return [f"yields {_a(kind)}, not a {wanted}"]
    value = found.program.eval(_env().Activation(SAMPLE))
    got = value.type().name().lower()
    if got in (wanted, "error"):
        return []
    return [f"yields {_a(got)} (on a sample Deployment and its objects), not a {wanted}"]


def _a(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def variables_of(snap: CandidateSnapshot, wl: Workload) -> dict[str, Any]:
    """The CEL variables for one workload: plain dicts, exactly as the API server (or a manifest) has them."""
    services = snap.services_selecting(wl)
    return {
        "workload": wl.body,
        "podSpec": wl.pod_spec,
        "containers": list(wl.pod_spec.get("containers") or []),
        "services": services,
        "networkPolicies": policies_selecting(snap, wl),
        "pdbs": pdbs_selecting(snap, wl),
        "hpas": autoscalers_of(snap, wl),
        "ingresses": [ing for ing, _routes in snap.ingresses_routing_to(wl)],
    }


def _activation(snap: CandidateSnapshot, wl: Workload) -> Any:
    """One activation per workload and snapshot, shared by every CEL item of the evaluation."""
    key = ("cel", id(wl.body))
    if key not in snap.memo:
        snap.memo[key] = _env().Activation(variables_of(snap, wl))
    return snap.memo[key]


def _why(error: str) -> str:
    text = error.strip()
    text = re.sub(r"^(INTERNAL|INVALID_ARGUMENT|NOT_FOUND|UNKNOWN|OUT_OF_RANGE): ", "", text).removesuffix(
        " [INTERNAL]"
    )
    if "Iteration budget exceeded" in text:
        return (
            f"it exceeded the cost limit ({MAX_ITERATIONS:,} comprehension iterations in one evaluation) on these "
            "objects; narrow the rule (filter before nesting all()/exists())"
        )
    if "Key not found" in text or "No such key" in text:
        return f"{text}; guard optional fields with has(), e.g. has(c.env) && c.env.exists(...)"
    return text


def _evaluate(program: Any, activation: Any) -> tuple[Any, str | None]:
    """(value, None), or (None, why it has no value)."""
    try:
        value = program.eval(activation)
    except RuntimeError as err:  # the iteration budget, and what cel-cpp reports as a status rather than a value
        return None, _why(str(err))
    if value.type() == cel.Type.ERROR:
        return None, _why(str(value))
    return value.value(), None


def _shown(expression: str, limit: int = 120) -> str:
    flat = " ".join(expression.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def run_cel_check(check: CelCheck, snap: CandidateSnapshot, clock: Callable[[], float] = time.monotonic) -> CheckResult:
    """Passed when every rule is true for every selected workload; Failed naming each workload (and, through the
    message expression, the container) where one is false, does not compile, cannot be evaluated or is too costly;
    Pending when nothing is selected or ITEM_SECONDS ran out before every workload was judged."""
    if not snap.workloads:
        return CheckResult.pending(f"no candidate workloads found in {snap.namespace}")
    problems: list[str] = []
    rules = [(i, r, compiled(r.expression)) for i, r in enumerate(check.rules)]
    for index, rule, found in rules:
        if found.errors:
            problems.append(
                f"rules[{index}].expression does not compile: {'; '.join(found.errors)} "
                f"({_shown(rule.expression)}); fix the ReadinessChecklist"
            )
    if problems:
        return CheckResult.failed(problems)
    started = clock()
    spent_before = float(snap.memo.get(_SPENT, 0.0))
    try:
        for done, wl in enumerate(snap.workloads):
            limit = _limit_reached(clock() - started, spent_before)
            if limit:
                stopped = (
                    f"evaluation stopped after {limit} with {len(snap.workloads) - done} of {len(snap.workloads)} "
                    "workload(s) not judged; it is tried again at the next evaluation (simplify the rules, or select "
                    "fewer workloads)"
                )
                return CheckResult.failed([*problems, stopped]) if problems else CheckResult.pending(stopped)
            problems += _judge(snap, wl, rules)
    finally:
        snap.memo[_SPENT] = spent_before + (clock() - started)
    if problems:
        return CheckResult.failed(problems)
    count = len(check.rules)
    return CheckResult.passed(f"{count} CEL rule(s) hold for {len(snap.workloads)} workload(s)")


def _limit_reached(item: float, before: float) -> str:
    if item > ITEM_SECONDS:
        return f"{ITEM_SECONDS:g}s (the time limit of a CEL item)"
    if before + item > EVALUATION_SECONDS:
        return f"the {EVALUATION_SECONDS:g}s all CEL items of one evaluation may take (earlier items spent them)"
    return ""


def _judge(snap: CandidateSnapshot, wl: Workload, rules: list[tuple[int, CelRule, Compiled]]) -> list[str]:
    """What is wrong with one workload, rule by rule."""
    problems = []
    activation = _activation(snap, wl)
    for index, rule, found in rules:
        value, error = _evaluate(found.program, activation)
        if error is not None:
            problems.append(f"{wl.ref}: rules[{index}] could not be evaluated: {error}")
        elif not isinstance(value, bool):
            problems.append(
                f"{wl.ref}: rules[{index}] yields {type(value).__name__} {_shown(str(value), 60)!r}, not a bool"
            )
        elif not value:
            message = _message(rule.message, rule.message_expression, rule.expression, activation)
            problems.append(f"{wl.ref}: {message}")
    return problems


def _message(static: str | None, expression: str | None, rule: str, activation: Any) -> str:
    fallback = static or f"rule {_shown(rule)} is false"
    if expression is None:
        return fallback
    found = compiled(expression)
    if found.errors:
        return f"{fallback} (messageExpression does not compile: {'; '.join(found.errors)})"
    value, error = _evaluate(found.program, activation)
    if error is not None:
        return f"{fallback} (messageExpression failed: {error})"
    if not isinstance(value, str) or not value.strip():
        return fallback
    return _printable(value)


def _printable(text: str) -> str:
    """A message built from the candidate's objects (an annotation, an env value: whatever the developer wrote),
    with every character that is not printable written as its escape: an ANSI sequence in an annotation cannot
    clear or rewrite the terminal of whoever runs `kubectl readiness status`, nor a bidi override reorder what they
    read (red-team 3 finding 5)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)
