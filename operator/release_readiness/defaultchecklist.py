"""The default checklist, applied by the operator once its webhook answers (RR_DEFAULT_CHECKLIST).

Why the operator and not the chart: the checklist webhook fails closed, so a checklist applied with the rest of
an install (Helm, `kubectl apply -k`, install.yaml, Argo CD) is refused while no replica serves yet. The operator
applies it with server-side apply under its own field manager, without force: a later version of the checklist
updates what the operator set, while a checklist someone changed (a conflict) is left as it is and the log says
how to take the shipped version. It is applied at every start (a deleted one comes back then; the chart's
installDefaultChecklist=false turns it off).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from release_readiness import GROUP, VERSION

__all__ = ["FIELD_MANAGER", "apply_default_checklist", "load_checklist"]

log = logging.getLogger(__name__)

FIELD_MANAGER = "release-readiness-operator"


def load_checklist(path: Path) -> dict[str, Any]:
    """The manifest at `path`; ValueError naming the file and the fix when it is not one ReadinessChecklist."""
    try:
        body = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"RR_DEFAULT_CHECKLIST={path}: cannot read it ({err})") from None
    if (
        not isinstance(body, dict)
        or body.get("kind") != "ReadinessChecklist"
        or not str(body.get("apiVersion", "")).startswith(f"{GROUP}/")
        or not (body.get("metadata") or {}).get("name")
    ):
        raise ValueError(
            f"RR_DEFAULT_CHECKLIST={path}: not a ReadinessChecklist with a metadata.name; point it at one manifest"
        )
    return body


async def apply_default_checklist(api_client: client.ApiClient, path: Path, max_delay: float = 5.0) -> str:
    """Apply the checklist, retrying while the API server cannot reach a webhook replica yet; returns the outcome
    ("applied", "left as is", "refused")."""
    body = load_checklist(path)
    name = body["metadata"]["name"]
    api = client.CustomObjectsApi(api_client)
    delay, waiting = 0.5, False
    while True:
        try:
            await asyncio.to_thread(
                api.patch_cluster_custom_object,
                GROUP,
                VERSION,
                "readinesschecklists",
                name,
                body,
                field_manager=FIELD_MANAGER,
                _content_type="application/apply-patch+yaml",
            )
        except ApiException as err:
            if err.status == 409:
                log.warning(
                    "the default checklist %s was changed by someone else: left as it is (%s). To take the shipped "
                    "version: kubectl apply --server-side --field-manager=%s --force-conflicts -f <its manifest>",
                    name,
                    _message(err),
                    FIELD_MANAGER,
                )
                return "left as is"
            if err.status is not None and 400 <= err.status < 500 and err.status != 429:
                log.warning("the default checklist %s was refused: %s %s", name, err.status, _message(err))
                return "refused"
            if not waiting:
                log.info("applying the default checklist %s once the webhook answers (%s)", name, _message(err))
                waiting = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
            continue
        log.info("applied the default checklist %s", name)
        return "applied"


def _message(err: ApiException) -> str:
    import json

    try:
        return str(json.loads(err.body or "{}").get("message") or err.reason)
    except (ValueError, AttributeError):
        return str(err.reason)
