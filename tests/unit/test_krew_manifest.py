"""plugins/readiness.yaml: the krew manifest holds what krew validates, its archive is the one `make krew` builds,
and the launcher in it runs the plugin (and its completion) by the name it is called."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from release_readiness import __version__

REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "plugins" / "readiness.yaml"


def krew_archive() -> ModuleType:
    spec = importlib.util.spec_from_file_location("krew_archive", REPO / "hack" / "krew_archive.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return data


def test_the_manifest_has_what_krew_validates() -> None:
    m = manifest()
    assert (m["apiVersion"], m["kind"]) == ("krew.googlecontainertools.github.com/v1alpha2", "Plugin")
    name = m["metadata"]["name"]
    assert name == MANIFEST.stem == "readiness"
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", name)
    assert not name.startswith("kubectl")
    spec = m["spec"]
    assert spec["version"] == f"v{__version__}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", spec["version"])
    assert spec["homepage"].startswith("https://")
    assert 0 < len(spec["shortDescription"]) <= 50
    assert spec["description"].strip()
    assert set(spec) <= {"version", "homepage", "shortDescription", "description", "caveats", "platforms"}
    selectors = set()
    for platform in spec["platforms"]:
        assert set(platform) == {"selector", "uri", "sha256", "files", "bin"}
        labels = platform["selector"]["matchLabels"]
        assert labels["os"] in {"linux", "darwin", "windows"}
        selectors.add((labels["os"], labels["arch"]))
        assert platform["uri"].startswith("https://")
        assert platform["uri"].endswith(f"/{spec['version']}/kubectl-readiness-{spec['version']}.tar.gz")
        assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
        for entry in platform["files"]:
            assert not Path(entry["from"]).is_absolute()
            assert ".." not in Path(entry["to"]).parts
        assert platform["bin"] in {Path(e["from"]).name for e in platform["files"]}
    assert selectors == {("linux", "amd64"), ("linux", "arm64"), ("darwin", "amd64"), ("darwin", "arm64")}


def test_the_sha256_is_the_archive_make_krew_builds() -> None:
    """Rebuilt here byte for byte: a launcher changed without `make krew` fails this test."""
    module = krew_archive()
    data = module.archive_bytes()
    assert data == module.archive_bytes()  # reproducible
    digest = hashlib.sha256(data).hexdigest()
    assert {p["sha256"] for p in manifest()["spec"]["platforms"]} == {digest}, "run `make krew`"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for platform in manifest()["spec"]["platforms"]:
        for entry in platform["files"]:
            assert entry["from"] in members
        assert members[platform["bin"]].mode & 0o111, "the plugin's bin must be executable"


def test_the_launcher_hands_over_to_the_installed_plugin(tmp_path: Path) -> None:
    """The launcher as krew would lay it out, with its virtualenv already made (the first run's pip install needs
    the network): by its name it runs the plugin, or the completion kubectl asks for."""
    with tarfile.open(fileobj=io.BytesIO(krew_archive().archive_bytes())) as tar:
        tar.extractall(tmp_path, filter="data")
    launcher = tmp_path / "kubectl-readiness"
    text = launcher.read_text()
    assert f"version=v{__version__}\n" in text
    (tmp_path / "venv").symlink_to(Path(sys.executable).parent.parent)
    env = {**os.environ, "KUBECTL_READINESS_PYTHON": sys.executable, "KUBECONFIG": "/nonexistent"}
    linked = tmp_path / "bin"
    linked.mkdir()
    (linked / "kubectl-readiness").symlink_to(launcher)  # what krew does
    (linked / "kubectl_complete-readiness").symlink_to(launcher)  # what the caveats ask for
    version = subprocess.run([linked / "kubectl-readiness", "version"], capture_output=True, text=True, env=env)
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"kubectl-readiness {__version__}\n"
    complete = linked / "kubectl_complete-readiness"
    completed = subprocess.run([complete, "versi"], capture_output=True, text=True, env=env)
    assert completed.stdout == "version\tprint the plugin's version\n:4\n", completed.stderr
    old = subprocess.run(
        [linked / "kubectl-readiness", "version"], capture_output=True, text=True,
        env={**env, "KUBECTL_READINESS_PYTHON": "/nonexistent/python3"},
    )  # fmt: skip
    assert old.returncode == 2
    assert "needs Python 3.11 or later" in old.stderr
