"""A normal start is quiet: what Kopf reports at WARNING/ERROR about expected start-up conditions is said once at
INFO (or left to the operator's own INFO line); real problems keep their level."""

from __future__ import annotations

import logging

import pytest

from release_readiness.logs import ExpectedAtStartup

UNRESOLVED_OPTIONAL = (
    "Unresolved resources cannot be served (try creating their CRDs): "
    "Selector(group='monitoring.coreos.com', version='v1', plural='servicemonitors')"
)
UNRESOLVED_OURS = (
    "Unresolved resources cannot be served (try creating their CRDs): "
    "Selector(group='readiness.dev', version='v1alpha1', plural='releasesignoffs')"
)
STORAGE = (
    "Request attempt #1/9 failed; will retry: GET https://127.0.0.1:6443/apis/velero.io/v1/schedules -> "
    "APITooManyRequestsError('storage is (re)initializing', {'code': 429})"
)


def record(
    message: str, level: int = logging.WARNING, name: str = "kopf._core.reactor.observation"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, (), None)


@pytest.fixture(autouse=True)
def info_level() -> None:
    logging.getLogger().setLevel(logging.INFO)


def test_optional_crds_absent_go_to_debug_our_own_stay_a_warning() -> None:
    quiet = ExpectedAtStartup()
    optional = record(UNRESOLVED_OPTIONAL)
    assert not quiet.filter(optional)  # the operator's own INFO line says which and what to install
    assert optional.levelno == logging.DEBUG
    ours = record(UNRESOLVED_OURS)
    assert quiet.filter(ours)
    assert ours.levelno == logging.WARNING  # the operator cannot work without its CRDs


def test_storage_initializing_is_said_once_at_info() -> None:
    quiet = ExpectedAtStartup()
    first = record(STORAGE, logging.ERROR, "kopf._cogs.clients.watching")
    assert quiet.filter(first)
    assert (first.levelno, first.levelname) == (logging.INFO, "INFO")
    assert first.getMessage().startswith("the API server is still initializing the storage of a resource")
    assert "retrying GET https://127.0.0.1:6443/apis/velero.io/v1/schedules" in first.getMessage()
    again = record(STORAGE.replace("#1/9", "#2/9"), logging.ERROR, "kopf._cogs.clients.watching")
    assert not quiet.filter(again)
    logging.getLogger().setLevel(logging.DEBUG)
    assert quiet.filter(again)  # with --verbose, every retry
    assert again.levelno == logging.DEBUG


@pytest.mark.parametrize(
    ("message", "name"),
    [
        (STORAGE.replace("will retry", "escalating"), "kopf._cogs.clients.watching"),  # out of retries
        (STORAGE.replace("storage is (re)initializing", "etcdserver: request timed out"), "kopf._cogs.clients.api"),
        (UNRESOLVED_OPTIONAL, "release_readiness.handlers"),  # not Kopf's
    ],
)
def test_real_problems_keep_their_level(message: str, name: str) -> None:
    kept = record(message, logging.ERROR, name)
    assert ExpectedAtStartup().filter(kept)
    assert kept.levelno == logging.ERROR
