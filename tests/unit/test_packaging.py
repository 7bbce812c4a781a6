"""The product package never depends on the development-only one, which the wheel leaves out."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PRODUCT = REPO / "operator" / "release_readiness"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_product_imports_nothing_from_the_development_package() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(m for m in imported_modules(path) if m.startswith("release_readiness_dev"))
        for path in sorted(PRODUCT.rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_wheel_packages_only_the_product() -> None:
    find = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert find["include"] == ["release_readiness", "release_readiness.*"]
    assert not (PRODUCT / "localcluster.py").exists()
    assert (REPO / "operator" / "release_readiness_dev" / "localcluster.py").exists()
