"""Reads the seed pre-production checklist (markdown) into its items, in the document's order.

The seed is the document teams walk by hand today; the default ReadinessChecklist carries every one
of its items, and the readiness report mirrors its layout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SEED_PATH", "SeedItem", "parse_seed"]

SEED_PATH = Path(__file__).parent / "data" / "pre-production-checklist.md"
"""The seed document as shipped with the package (a copy of the shared pre-production checklist)."""

_ITEM = re.compile(r"^- \[[ xX]\] (.+?)\s*$")
POST_SECTION = "Post-Deployment Tasks"


@dataclass(frozen=True)
class SeedItem:
    section: str
    """'Top / Sub', e.g. 'Security & Compliance / Authentication & Authorization'."""
    title: str
    post: bool


def parse_seed(text: str) -> list[SeedItem]:
    items: list[SeedItem] = []
    top = sub = ""
    for line in text.splitlines():
        if line.startswith("## "):
            top, sub = line[3:].strip(), ""
        elif line.startswith("### "):
            sub = line[4:].strip()
        else:
            match = _ITEM.match(line)
            if match:
                section = f"{top} / {sub}" if sub else top
                items.append(SeedItem(section, match.group(1), post=top == POST_SECTION))
    return items
