"""The committed CRDs are exactly what `make manifests` generates from the models, and are structural."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from release_readiness_dev.crdgen import render_all

CRDS = Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_match_the_models() -> None:
    rendered = render_all()
    committed = {p.name: p.read_text() for p in CRDS.glob("*.yaml")}
    assert set(committed) == set(rendered), "run `make manifests` and commit crds/"
    for name, text in rendered.items():
        assert committed[name] == text, f"crds/{name} is out of date: run `make manifests` and commit it"


def _walk(node: Any, path: str = "") -> list[str]:
    problems = []
    if isinstance(node, dict) and path.endswith(".properties"):  # keys are field names, not keywords
        for key, value in node.items():
            problems += _walk(value, f"{path}.{key}")
    elif isinstance(node, dict):
        for bad in ("$ref", "anyOf", "allOf", "oneOf", "title", "$defs"):
            if bad in node:
                problems.append(f"{path}: {bad}")
        if "properties" in node and node.get("type") != "object":
            problems.append(f"{path}: properties without type: object")
        if node.get("type") is None and not node.get("x-kubernetes-preserve-unknown-fields"):
            problems.append(f"{path}: no type")
        for key, value in node.items():
            if key not in ("x-kubernetes-validations", "x-kubernetes-list-map-keys", "required", "enum"):
                problems += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            problems += _walk(value, f"{path}[{i}]")
    return problems


def test_schemas_are_structural() -> None:
    for name, text in render_all().items():
        crd = yaml.safe_load(text.split("\n", 1)[1])
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert _walk(schema["properties"]["spec"]) == [], name


def test_release_crd_has_printer_columns_short_names_and_category() -> None:
    crd = yaml.safe_load(render_all()["readiness.dev_releasereadinesses.yaml"].split("\n", 1)[1])
    version = crd["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Application",
        "Version",
        "Ready",
        "Passed",
        "Approvals",
        "Reason",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["shortNames"] == ["rr"]
    assert crd["spec"]["names"]["categories"] == ["readiness"]
    items = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["items"]
    assert items["x-kubernetes-list-type"] == "map"
    assert items["x-kubernetes-list-map-keys"] == ["id"]


def test_the_charts_generated_files_match_their_sources() -> None:
    from release_readiness_dev.crdgen import chart_files

    for path, text in chart_files(CRDS.parent).items():
        assert path.read_text() == text, f"{path} is out of date: run `make manifests` and commit it"
