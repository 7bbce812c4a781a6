"""Runs the shipped Argo CD health check (deploy/argocd/argocd-cm-patch.yaml) as Argo CD does: Lua 5.1 (Argo CD's
gopher-lua), the object as the global `obj`, the chunk returning {status, message}."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from lupa import lua51

REPO = Path(__file__).resolve().parents[1]
PATCH = REPO / "deploy" / "argocd" / "argocd-cm-patch.yaml"
KEY = "resource.customizations.health.readiness.dev_ReleaseReadiness"


def health_script() -> str:
    data: dict[str, str] = yaml.safe_load(PATCH.read_text())["data"]
    return data[KEY]


def argocd_health(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) the script gives for `obj`, a ReleaseReadiness as the API server returns it."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    hs = lua.execute(health_script())
    return str(hs["status"]), str(hs["message"])
