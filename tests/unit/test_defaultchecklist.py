"""The default checklist file the operator applies (RR_DEFAULT_CHECKLIST): one ReadinessChecklist, or an error
naming the file and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from release_readiness.defaultchecklist import load_checklist

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_checklist_loads() -> None:
    body = load_checklist(REPO / "deploy" / "checklists" / "pre-production.yaml")
    assert body["metadata"]["name"] == "pre-production"


@pytest.mark.parametrize(
    "text",
    [
        "kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n",
        "apiVersion: readiness.dev/v1alpha1\nkind: ReadinessChecklist\n",
        "[1, 2",
        "- a\n",
    ],
    ids=["other-kind", "no-name", "not-yaml", "a-list"],
)
def test_anything_else_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "checklist.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"RR_DEFAULT_CHECKLIST={path}"):
        load_checklist(path)
    with pytest.raises(ValueError, match="cannot read it"):
        load_checklist(tmp_path / "missing.yaml")
