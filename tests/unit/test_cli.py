"""`kubectl readiness` argument parsing: kubectl's flag conventions (pure; no API server)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

import pytest

from release_readiness import __version__
from release_readiness.cli import (
    CliError,
    _expires,
    _impersonate_and_time_out,
    impersonation,
    main,
    merge_global_flags,
    parse_duration,
    parser,
)


def parse(*argv: str) -> argparse.Namespace:
    return merge_global_flags(parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ("-n", "prod", "status", "r1", "--outstanding"),
        ("status", "r1", "-n", "prod", "--outstanding"),
        ("status", "-n", "prod", "r1", "--outstanding"),
        ("--namespace", "prod", "status", "--outstanding", "r1"),
    ],
)
def test_global_flags_before_or_after_the_command(argv: tuple[str, ...]) -> None:
    args = parse(*argv)
    assert (args.command, args.release, args.namespace, args.outstanding) == ("status", "r1", "prod", True)


def test_a_flag_after_the_command_wins_and_groups_add_up() -> None:
    args = parse(
        "-n", "a", "--context", "c1", "--as", "u1", "--as-group", "g1",
        "approve", "r1", "--role", "x", "-n", "b", "--as-group", "g2", "--as-group", "g3", "--as-uid", "42",
    )  # fmt: skip
    assert (args.namespace, args.context, args.as_user, args.as_uid) == ("b", "c1", "u1", "42")
    assert args.as_group == ["g1", "g2", "g3"]
    assert impersonation(args) == [
        ("Impersonate-User", "u1"),
        ("Impersonate-Group", "g1"),
        ("Impersonate-Group", "g2"),
        ("Impersonate-Group", "g3"),
        ("Impersonate-Uid", "42"),
    ]


def test_defaults_when_no_global_flag_is_given() -> None:
    args = parse("list")
    assert (args.namespace, args.context, args.kubeconfig, args.as_user, args.as_uid) == (None,) * 5
    assert (args.as_group, args.all_namespaces, args.request_timeout) == ([], False, 0.0)
    assert impersonation(args) == []
    assert parse("-A", "list").all_namespaces
    assert parse("list", "-A").all_namespaces


def test_all_namespaces_only_where_a_listing_is_made() -> None:
    with pytest.raises(CliError, match=r"-A/--all-namespaces applies to `list` and `dashboard` only, not `status`"):
        parse("status", "r1", "-A")


def test_a_group_or_uid_without_a_user_is_refused() -> None:
    with pytest.raises(CliError, match=r"--as-group and --as-uid need --as USER"):
        impersonation(parse("status", "r1", "--as-group", "eng-leads"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3", 3.0), ("2.5", 2.5), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("7d", 604800.0),
     ("1h0m5s", 3605.0)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3x", "s", "5m3", "-1s", "1h 30m", "m5"])
def test_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_durations_in_the_time_flags() -> None:
    assert parse("wait", "r1", "--timeout", "2s").timeout == 2.0
    assert parse("wait", "r1", "--timeout", "1h30m").timeout == 5400.0
    assert parse("wait", "r1").timeout == 600.0
    assert parse("wait", "r1", "--request-timeout", "5m").request_timeout == 300.0


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (("wait", "r1", "--timeout", "3x"), "--timeout"),
        (("status", "r1", "--request-timeout", "soon"), "--request-timeout"),
    ],
)
def test_a_bad_duration_names_the_flag_and_gives_an_example(
    argv: tuple[str, ...], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}: " in err
    assert f"is not a duration: use e.g. {flag} 30s, 5m or 1h30m" in err


def test_expires_takes_a_duration_or_a_date() -> None:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert _expires("7d", now) == dt.datetime(2026, 11, 8, tzinfo=dt.UTC)
    assert _expires("36h", now) == dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
    assert _expires("2026-12-01", now) == dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    assert _expires("2026-12-01T18:00:00Z", now) == dt.datetime(2026, 12, 1, 18, tzinfo=dt.UTC)
    for bad in ("7", "next week"):
        with pytest.raises(CliError, match=r"--expires '.*' is neither a date nor a duration: use e.g. --expires 7d"):
            _expires(bad, now)


def test_version_needs_no_cluster(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    assert main(["version"]) == 0
    assert capsys.readouterr().out == f"kubectl-readiness {__version__}\n"


class FakePool:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        return "response"


class FakeRest:
    def __init__(self) -> None:
        self.pool_manager = FakePool()


class FakeClient:
    def __init__(self) -> None:
        self.rest_client = FakeRest()


def test_every_request_carries_one_header_per_group_and_the_timeout() -> None:
    fake = FakeClient()
    pool = fake.rest_client.pool_manager
    headers = [("Impersonate-User", "erin"), ("Impersonate-Group", "eng-leads"), ("Impersonate-Group", "sre")]
    _impersonate_and_time_out(fake, headers, 30.0)  # type: ignore[arg-type]
    assert pool.request("GET", "https://api/x", headers={"Accept": "application/json"}, timeout=None) == "response"
    sent = pool.calls[0]
    assert sent["headers"].getlist("Impersonate-Group") == ["eng-leads", "sre"]
    assert sent["headers"]["Impersonate-User"] == "erin"
    assert sent["headers"]["Accept"] == "application/json"
    assert sent["timeout"] == 30.0
    pool.request("GET", "https://api/x", headers={}, timeout=5)  # the client's own per-call timeout stays
    assert pool.calls[1]["timeout"] == 5
