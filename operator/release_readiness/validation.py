"""Semantic rules the CRD schema cannot express, as pure functions returning error sentences.

Each sentence names the object, the field and the fix. The admission webhook calls the same
functions, so `kubectl apply` of a bad checklist or release is refused with these messages.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

import promql_parser

from release_readiness.api import ReadinessChecklist, ReleaseReadiness
from release_readiness.api.checklist import CHECK_KINDS, FOR_PATTERN, FOR_ZERO, CelCheck
from release_readiness.checks.cel import VARIABLES, Purpose, expression_errors
from release_readiness.checks.workload import CATALOG, parse_params
from release_readiness.evaluation import abbreviate
from release_readiness.metricgates import parse_duration
from release_readiness.placeholders import PLACEHOLDERS, find
from release_readiness.podtemplate import parse_field

__all__ = [
    "MAX_CEL_EXPRESSIONS",
    "MAX_QUERY_CHARS",
    "PLACEHOLDERS",
    "validate_checklist",
    "validate_release",
    "validate_release_unique",
]


MAX_QUERY_CHARS = 4096  # the default checklist's longest is about 1000; promql-parser handles any 4096 (tested)


def _range_errors(where: str, low: float | None, high: float | None) -> Iterable[str]:
    if low is not None and high is not None and low > high:
        yield f"{where}: min {low:g} is greater than max {high:g}; swap them or fix one"


def _query_errors(where: str, query: str) -> list[str]:
    """Unknown placeholders, each with its position (1-based character offset in the query); then, with the known
    ones filled by a dummy value, the PromQL parse (promql-parser, a binding of the Rust parser GreptimeDB uses). That
    parser reports what is wrong but no position, so a syntax error names the item, the query and the parser's
    reason."""
    shown = abbreviate(query)
    if len(query) > MAX_QUERY_CHARS:
        # Before the parser: its recursion has a stack, and a hostile nesting deep enough crashes the webhook.
        return [
            f"{where}: the query has {len(query)} characters, more than {MAX_QUERY_CHARS}; shorten it (a recording "
            "rule can hold the long part)"
        ]
    errors = [
        f"{where}: unknown placeholder {p.text} at position {p.start + 1} of query {shown!r}; use only "
        f"{', '.join('$' + n for n in sorted(PLACEHOLDERS))}"
        for p in find(query)
        if p.name not in PLACEHOLDERS
    ]
    if not errors:
        try:
            promql_parser.parse(_dummy_filled(query))
        except ValueError as err:
            position = syntax_position(query, str(err))
            at = f" at position {position + 1}" if position is not None else ""
            errors.append(f"{where}: not valid PromQL{at}: {err} in query {shown!r}; fix the query")
    return errors


MAX_WINDOW = dt.timedelta(days=31)


def _window_errors(where: str, text: str) -> list[str]:
    """A `for` window: a Prometheus duration above zero and at most MAX_WINDOW (longer than most retention, and
    a query_range over it would be refused by Prometheus anyway)."""
    if not re.fullmatch(FOR_PATTERN, text) or re.fullmatch(FOR_ZERO, text):
        return [f"{where}: {text!r} is not a duration above zero; write one like 10m, 1h or 1h30m"]
    if parse_duration(text) > MAX_WINDOW:
        return [f"{where}: {text!r} is longer than {MAX_WINDOW.days}d; shorten the window"]
    return []


def _dummy_filled(query: str) -> str:
    """Known placeholders replaced by as many `x` as they have characters, so that offsets into what the parser
    reads are offsets into the query as written."""
    parts: list[str] = []
    last = 0
    for p in find(query):
        if p.name in PLACEHOLDERS:
            parts += [query[last : p.start], "x" * len(p.text)]
            last = p.start + len(p.text)
    return "".join(parts) + query[last:]


_OPENERS = {")": "(", "]": "[", "}": "{"}
_UNCLOSED = {"parenthesis": "(", "bracket": "[", "braces": "{"}
_TOKENS = (re.compile(r"'([^']+)'"), re.compile(r": (\S+)$"))  # a quoted token first, else a trailing one


def _unbalanced(query: str) -> tuple[dict[str, list[int]], dict[str, int]]:
    """The offsets of openers never closed (per kind, innermost last) and of the first closer with no opener,
    outside PromQL strings ("...", '...' with backslash escapes, `...` raw)."""
    open_at: dict[str, list[int]] = {"(": [], "[": [], "{": []}
    stray: dict[str, int] = {}
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(query):
        if quote is not None:
            if escaped:
                escaped = False
            elif ch == "\\" and quote != "`":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch in open_at:
            open_at[ch].append(i)
        elif ch in _OPENERS:
            opener = _OPENERS[ch]
            if open_at[opener]:
                open_at[opener].pop()
            else:
                stray.setdefault(opener, i)
    return open_at, stray


def syntax_position(query: str, message: str) -> int | None:
    """Where in the query (0-based) the parser's complaint points, when it can be told: promql-parser reports
    what is wrong but no offset. An unclosed `(`/`[`/`{` is the innermost one never closed; an unexpected closer
    is the first one without an opener; a message naming a token (`bad number or duration syntax: 5x`,
    `unknown function with name 'f'`) points at that token. None when the message says neither."""
    open_at, stray = _unbalanced(query)
    lowered = message.lower()
    for word, opener in _UNCLOSED.items():
        if word in lowered and ("unclosed" in lowered or "end of input" in lowered) and open_at[opener]:
            return open_at[opener][-1]
    if "unexpected" in lowered and stray:
        return min(stray.values())
    for pattern in _TOKENS:
        token = pattern.search(message)
        if token and (at := query.find(token.group(1))) >= 0:
            return at
    return None


def _cel_errors(at: str, item_id: str, check: CelCheck) -> list[str]:
    """Every expression compiles against the CEL variables and yields a bool (a rule) or a string (a message)."""
    errors = []
    for index, rule in enumerate(check.rules):
        fields: list[tuple[str, str, Purpose]] = [("expression", rule.expression, "rule")]
        if rule.message_expression is not None:
            fields.append(("messageExpression", rule.message_expression, "message"))
        for field_name, expression, purpose in fields:
            shown = abbreviate(expression)
            for error in expression_errors(expression, purpose):
                if "undeclared reference" in error:
                    hint = f"use only the variables {', '.join(VARIABLES)}"
                elif error.startswith("yields"):
                    hint = "make it yield a bool (true: the rule holds)" if purpose == "rule" else "make it a string"
                else:
                    hint = "fix the expression"
                errors.append(f"{at}.rules[{index}].{field_name} ({item_id}): {shown!r}: {error}; {hint}")
    return errors


MAX_CEL_EXPRESSIONS = 100
"""CEL expressions (rules and messageExpressions) one checklist may hold: each is compiled at apply, on the event
loop that also answers the gate, at up to ~100 ms for a hostile 4096-character one."""


def _checklist_cel_errors(name: str, checklist: ReadinessChecklist) -> list[str]:
    """Every CEL expression of the checklist compiles and has its type; past MAX_CEL_EXPRESSIONS, only that (compiling
    them all would be the attack)."""
    cel_items = [(i, item.id, item.check.cel) for i, item in enumerate(checklist.spec.items) if item.check.cel]
    count = sum(1 + (r.message_expression is not None) for _, _, check in cel_items for r in check.rules)
    if count > MAX_CEL_EXPRESSIONS:
        return [
            f"{name}: spec.items hold {count} CEL expressions (check.cel rules and messageExpressions), more "
            f"than {MAX_CEL_EXPRESSIONS}; merge rules (a rule may && several conditions) or split the checklist"
        ]
    errors = []
    for index, item_id, check in cel_items:
        errors += _cel_errors(f"{name}: spec.items[{index}].check.cel", item_id, check)
    return errors


def validate_checklist(checklist: ReadinessChecklist) -> list[str]:
    name = f"ReadinessChecklist {checklist.metadata.name}"
    errors: list[str] = _checklist_cel_errors(name, checklist)
    seen: dict[str, int] = {}
    roles = {a.role for a in checklist.spec.approvals}
    for index, item in enumerate(checklist.spec.items):
        at = f"{name}: spec.items[{index}]"
        if item.id in seen:
            errors.append(f"{at}.id {item.id!r} duplicates spec.items[{seen[item.id]}].id; give every item a unique id")
        seen.setdefault(item.id, index)
        check = item.check
        kinds = [k for k in CHECK_KINDS if getattr(check, k) is not None]
        if len(kinds) != 1:
            errors.append(
                f"{at}.check ({item.id}) sets {', '.join(kinds) or 'no check kind'}; set exactly one of "
                f"{', '.join(CHECK_KINDS)}"
            )
        if check.workload is not None:
            if check.workload not in CATALOG:
                errors.append(
                    f"{at}.check.workload ({item.id}): unknown check {check.workload!r}; use one of "
                    f"{', '.join(sorted(CATALOG))}"
                )
            else:
                try:
                    parse_params(check.workload, check.params)
                except ValueError as err:
                    errors.append(f"{at}.check.params ({item.id}): {err}")
        elif check.params is not None:
            errors.append(f"{at}.check.params ({item.id}): params are only for workload checks; remove them")
        if check.evidence is not None:
            ev = check.evidence
            errors += _range_errors(f"{at}.check.evidence ({item.id})", ev.min, ev.max)
            if ev.equals is not None and (ev.min is not None or ev.max is not None):
                errors.append(f"{at}.check.evidence ({item.id}): use either equals or min/max, not both")
        if check.prometheus is not None:
            prom = check.prometheus
            errors += _range_errors(f"{at}.check.prometheus ({item.id})", prom.min, prom.max)
            errors += _query_errors(f"{at}.check.prometheus.query ({item.id})", prom.query)
            if prom.min is None and prom.max is None:
                errors.append(f"{at}.check.prometheus ({item.id}): set min or max to compare the result with")
            if prom.for_ is not None:
                errors += _window_errors(f"{at}.check.prometheus.for ({item.id})", prom.for_)
        if check.attestation is not None:
            for j, role in enumerate(check.attestation.roles):
                if role not in roles:
                    errors.append(
                        f"{at}.check.attestation.roles[{j}] ({item.id}): role {role!r} is not in spec.approvals; "
                        f"add it there or use one of {', '.join(sorted(roles)) or '(none defined)'}"
                    )
    seen_roles: dict[str, int] = {}
    for index, approval in enumerate(checklist.spec.approvals):
        at = f"{name}: spec.approvals[{index}]"
        if approval.role in seen_roles:
            errors.append(f"{at}.role {approval.role!r} duplicates spec.approvals[{seen_roles[approval.role]}].role")
        seen_roles.setdefault(approval.role, index)
        if not approval.groups and not approval.users:
            errors.append(f"{at} ({approval.role}): nobody may sign; list groups or users who hold the role")
        for j, item_id in enumerate(approval.items):
            if item_id not in seen:
                errors.append(
                    f"{at}.items[{j}] ({approval.role}): {item_id!r} is not an item of this checklist; "
                    "add it to spec.items or remove it here"
                )
    errors += _waiver_grant_errors(name, checklist, roles, set(seen))
    return errors + _environment_field_errors(checklist)


def _environment_field_errors(checklist: ReadinessChecklist) -> list[str]:
    errors = []
    for index, pattern in enumerate(checklist.spec.rules.environment_fields or []):
        try:
            parse_field(pattern)
        except ValueError as err:
            errors.append(f"ReadinessChecklist {checklist.metadata.name}: spec.rules.environmentFields[{index}]: {err}")
    return errors


def _waiver_grant_errors(name: str, checklist: ReadinessChecklist, roles: set[str], items: set[str]) -> list[str]:
    """spec.rules.waivers names roles of spec.approvals and items of spec.items."""
    errors = []
    for index, grant in enumerate(checklist.spec.rules.waivers):
        at = f"{name}: spec.rules.waivers[{index}]"
        for j, role in enumerate(grant.roles):
            if role not in roles:
                errors.append(
                    f"{at}.roles[{j}]: role {role!r} is not in spec.approvals; add it there or use one of "
                    f"{', '.join(sorted(roles)) or '(none defined)'}"
                )
        for j, item_id in enumerate(grant.items):
            if item_id not in items:
                errors.append(f"{at}.items[{j}]: {item_id!r} is not an item of this checklist; fix or remove it")
    return errors


def validate_release(
    release: ReleaseReadiness, checklist: ReadinessChecklist | None, now: dt.datetime | None = None
) -> list[str]:
    """Rules of a release the schema cannot express (waivers are signoffs now: see admission/signoffs.py)."""
    name = f"ReleaseReadiness {release.metadata.namespace}/{release.metadata.name}"
    errors: list[str] = []
    spec = release.spec
    if spec.window is not None and spec.window.end <= spec.window.start:
        errors.append(f"{name}: spec.window.end must be after spec.window.start")
    return errors


def validate_release_unique(release: ReleaseReadiness, existing: Iterable[ReleaseReadiness]) -> list[str]:
    """One release decides: a second ReleaseReadiness for an application and version already covered in the
    namespace is refused (with an easier checklist it could otherwise decide the gate's answer)."""
    namespace, name = release.metadata.namespace, release.metadata.name
    for other in sorted(existing, key=lambda r: r.metadata.name or ""):
        if (
            other.metadata.namespace == namespace
            and other.metadata.name != name
            and other.spec.application == release.spec.application
            and other.spec.version == release.spec.version
        ):
            return [
                f"ReleaseReadiness {namespace}/{name or '(new)'}: {release.spec.application} {release.spec.version} "
                f"is already covered in {namespace} by ReleaseReadiness {other.metadata.name}; one release decides "
                f"a version: use {other.metadata.name} (or delete it first)"
            ]
    return []
