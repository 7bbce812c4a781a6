"""The empty-patch shortcut answers [] without copying, and leaves real patches to Kopf."""

from __future__ import annotations

from kopf._cogs.structs import patches

from release_readiness import kopf_tuning


def test_empty_patch_is_empty_and_real_patches_still_diff() -> None:
    kopf_tuning.install()
    body = {"metadata": {"name": "x"}, "spec": {"a": 1}}
    assert patches.Patch(body=body).as_json_patch() == []
    patch = patches.Patch(body=body)
    patch["spec"] = {"a": 2, "b": 3}
    ops = patch.as_json_patch()
    assert {"op": "replace", "path": "/spec/a", "value": 2} in ops
    assert {"op": "add", "path": "/spec/b", "value": 3} in ops
