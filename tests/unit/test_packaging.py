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


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO / "operator").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the product modules it imports, at any level (TYPE_CHECKING and function-level imports too: a
    circle hidden behind a lazy import is still a circle in the design)."""
    modules = {module_name(p): p for p in PRODUCT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_modules(path):
            # `from release_readiness import metrics` names a module too.
            candidates = [imported] + [f"{imported}.{n}" for n in modules if n.startswith(imported + ".")]
            targets |= {c for c in candidates if c in modules and c != name and not name.startswith(c + ".")}
        graph[name] = {t for t in targets if t != "release_readiness"}
    return graph


def test_no_import_circle_in_the_product() -> None:
    graph = import_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []
