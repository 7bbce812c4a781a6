"""Kopf is pinned to the minor version whose private internals the operator relies on; an upgrade fails here,
loudly and by name, before it can fail in a cluster (an operator that cannot tell it is synced, or a gate that
answers through a changed server, must never start)."""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import kopf
from kopf._cogs.clients import api, errors, scanning, watching
from kopf._cogs.structs import patches, reviews

REPO = Path(__file__).resolve().parents[2]


def kopf_requirement() -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in deps if re.match(r"kopf\b", d))


def test_kopf_is_pinned_to_one_minor_version_and_the_installed_one_is_in_it() -> None:
    requirement = kopf_requirement()
    pinned = re.fullmatch(r"kopf>=(\d+)\.(\d+)\.(\d+),<(\d+)\.(\d+)", requirement)
    assert pinned, f"{requirement!r}: pin kopf to one minor version (kopf>=X.Y.Z,<X.Y+1)"
    major, minor, _, upper_major, upper_minor = map(int, pinned.groups())
    assert (upper_major, upper_minor) == (major, minor + 1), requirement
    installed = tuple(int(p) for p in version("kopf").split(".")[:2])
    assert installed == (major, minor), f"kopf {version('kopf')} is installed; the code is written for {requirement}"


def keyword_params(fn: object) -> set[str]:
    return {
        name
        for name, p in inspect.signature(fn).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY  # type: ignore[arg-type]
    }


def test_the_private_internals_the_operator_patches_or_calls_are_there_as_written() -> None:
    # sync.py: the watch-stream tap and its end-of-listing marker.
    assert watching.Bookmark.LISTED
    assert inspect.isasyncgenfunction(watching.infinite_watch)
    assert {"settings", "resource", "namespace"} <= keyword_params(watching.infinite_watch)
    assert inspect.isasyncgenfunction(watching.continuous_watch)
    assert {"settings", "resource", "namespace"} <= keyword_params(watching.continuous_watch)
    # sync.py: the discovery scan that is repeated while discovery lags, and the API calls it makes.
    assert inspect.iscoroutinefunction(scanning.scan_resources)
    assert keyword_params(scanning.scan_resources) == {"settings", "logger", "groups"}
    assert {"settings", "logger"} <= keyword_params(api.get)
    assert issubclass(errors.APIError, Exception)
    # kopf_tuning.py: the empty-patch shortcut on the admission path.
    assert callable(patches.Patch.as_json_patch)
    assert hasattr(patches.Patch(), "fns")
    # admission/webhooks.py: the server it subclasses and the review types it answers with.
    assert isinstance(inspect.getattr_static(kopf.WebhookServer, "_serve"), staticmethod)
    for name in ("Request", "Response", "ResponsePayload", "ResponseStatus", "WebhookClientConfig", "WebhookFn"):
        assert hasattr(reviews, name), name
    # admission/webhooks.py: its own server loop (on a BoundedSite) uses Kopf's helpers, and Kopf's wait for the
    # certificate files to change (name-mangled).
    for name in ("_build_ssl", "_build_url", "_get_accessible_addr", "_allocate_free_port"):
        assert callable(getattr(kopf.WebhookServer, name)), name
    sleep = kopf.WebhookServer._WebhookServer__sleep_forever_or_until_ssl_files_change  # type: ignore[attr-defined]
    assert inspect.iscoroutinefunction(sleep)
    assert {"path", "addr", "port", "host", "certfile", "pkeyfile", "cafile", "DEFAULT_HOST"} <= set(
        dir(kopf.WebhookServer(addr="127.0.0.1", port=1))
    )
    # The wait is replaced (the server's own subclass method of that mangled name): a rotated certificate is loaded
    # into the live TLS context kept from _build_ssl, instead of restarting the listener. Its interval is Kopf's.
    assert "file_check_interval" in inspect.signature(kopf.WebhookServer).parameters
