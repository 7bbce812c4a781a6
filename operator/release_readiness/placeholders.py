"""The placeholders a PromQL item may use, found and filled by one piece of code.

`$name` or `${name}`; a name is a letter or `_` followed by letters, digits or `_`, so `$1` and `${1}` (a
label_replace group) are not placeholders. The validating webhook refuses any placeholder not listed here;
the metric gates fill the listed ones at evaluation time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

__all__ = ["PLACEHOLDERS", "Placeholder", "fill", "find"]

# Longest first, so an alternation can never take a shorter name out of a longer one.
PLACEHOLDERS: tuple[str, ...] = tuple(
    sorted(
        ("candidateNamespace", "productionNamespace", "application", "version", "namespace"),
        key=lambda n: (-len(n), n),
    )
)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ANY = re.compile(rf"\$(?:\{{({_NAME})\}}|({_NAME}))")


@dataclass(frozen=True)
class Placeholder:
    name: str
    start: int  # offset of the `$` in the query
    text: str  # as written: `$name` or `${name}`


def find(query: str) -> Iterator[Placeholder]:
    """Every `$name` / `${name}` in the query, known or not, whole names only."""
    for m in _ANY.finditer(query):
        yield Placeholder(m.group(1) or m.group(2), m.start(), m.group(0))


def fill(query: str, values: Mapping[str, str]) -> str:
    """Replace every known placeholder by its value; whole names only, so `$namespace` never eats the start of
    a longer name. Unknown ones are left as written (the webhook refuses them at apply)."""
    return _ANY.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), query)
