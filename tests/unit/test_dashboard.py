"""The dashboard's pages without a browser or a cluster: what each page shows (views), that everything is
escaped, and the guard (Host header, token, read-only methods, cross-site requests, security headers)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from release_readiness.api import Check, ReadinessChecklist, ReleaseReadiness, ReleaseSignoff
from release_readiness.dashboard.reader import Listing, Unreadable
from release_readiness.dashboard.server import Dashboard, make_app
from release_readiness.dashboard.views import checklist_view, how_verified, release_row, release_view, stage
from tests.unit.test_report import NOW, sample

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def signoff(name: str, **spec: Any) -> ReleaseSignoff:
    return ReleaseSignoff.model_validate(
        {
            "metadata": {"name": name, "namespace": "payments-prod"},
            "spec": {"release": "payments-api-3.2.0", "releaseUID": "uid-sample", **spec},
        }
    )


def extra_signoffs() -> list[ReleaseSignoff]:
    return [
        signoff(
            "veto",
            role="security-lead",
            decision="reject",
            comment=HOSTILE,
            signer={"username": "sasha"},
            signedAt="2026-11-27T11:00:00Z",
        ),
        signoff(
            "waiver-live",
            role="vp-engineering",
            decision="waive",
            items=[{"id": "load-test"}],
            comment="vendor outage",
            expires="2026-12-04T12:00:00Z",
            signer={"username": "val"},
            signedAt="2026-11-27T09:30:00Z",
        ),
        signoff(
            "waiver-old",
            role="vp-engineering",
            decision="waive",
            items=[{"id": "chaos-test"}],
            comment="old",
            expires="2026-11-26T12:00:00Z",
            signer={"username": "val"},
            signedAt="2026-11-20T09:30:00Z",
        ),
        # Another release object of the same name (deleted and recreated): not this one's.
        signoff("other-uid", role="product-lead", decision="reject", comment="x", releaseUID="uid-other"),
    ]


EVENTS: list[dict[str, Any]] = [
    {"type": "Warning", "reason": "BreakGlass", "message": "Deployment p/api admitted by break-glass by sam: sev1",
     "lastTimestamp": "2026-11-27T11:40:00Z", "reportingComponent": "readiness.dev/operator"},
    {"type": "Warning", "reason": "RolloutRefused", "message": "Deployment p/api refused: " + HOSTILE,
     "lastTimestamp": "2026-11-27T11:20:00Z", "count": 3},
    {"type": "Normal", "reason": "Ready", "message": "all done", "lastTimestamp": "2026-11-27T11:10:00Z"},
]  # fmt: skip


def test_release_view_of_the_sample_release() -> None:
    release, checklist, signoffs = sample()
    view = release_view(release, checklist, [*signoffs, *extra_signoffs()], EVENTS, now=NOW)

    sections = list(dict.fromkeys(i.section for i in checklist.spec.items))
    assert [s.name for s in view.sections] == sections
    assert sum(s.total for s in view.sections) == len(checklist.spec.items)
    assert sum(s.done for s in view.sections) == sum(
        1 for i in release.status.items if i.state in ("Passed", "Waived", "NotApplicable")
    )
    # Outstanding: pre-deployment only; required before optional, failing before pending.
    assert view.outstanding
    assert all(i.phase == "pre" and i.state in ("Failed", "Pending") for i in view.outstanding)
    keys = [(not i.required, i.state != "Failed") for i in view.outstanding]
    assert keys == sorted(keys)
    assert all(i.suggestion for i in view.outstanding)

    erin = next(a for a in view.approvals if a.role == "engineering-lead")
    assert (erin.state, erin.by, erin.at) == ("Approved", "erin", "2026-11-27 11:30:00 UTC")
    assert [(v.role, v.by) for v in view.vetoes] == [("security-lead", "sasha")]  # not the other uid's
    assert [(w.items, w.state, w.remaining) for w in view.waivers] == [
        ("chaos-test", "Expired", "expired"),
        ("load-test", "Active", "in 7d 0h"),
    ]
    assert [e.reason for e in view.gate_refusals] == ["RolloutRefused"]
    assert view.gate_refusals[0].count == 3
    assert [e.reason for e in view.break_glass] == ["BreakGlass"]
    assert [e.reason for e in view.other_events] == ["Ready"]
    assert view.post_items
    assert all(i.phase == "post" for i in view.post_items)
    assert view.post_condition is not None
    assert view.post_condition[0] == "False"  # not admitted yet


def test_stage_follows_a_release_from_waiting_to_healthy() -> None:
    release, _, _ = sample()
    assert stage(release).state == "Waiting"
    status = release.status
    assert status is not None
    ready = status.condition("Ready")
    assert ready is not None
    ready.status = "True"
    assert stage(release).state == "Ready"
    status.admitted_at = NOW
    assert stage(release).state == "Admitted"
    post = status.condition("PostDeploymentHealthy")
    assert post is not None
    post.status = "True"
    assert stage(release).state == "Healthy"
    row = release_row(release)
    assert (row.stage.state, row.total) == ("Healthy", len(status.items))


def test_how_each_kind_of_item_is_verified_and_what_to_do() -> None:
    release, checklist, _ = sample()
    items = {i.id: i for i in checklist.spec.items}
    kinds = {how_verified(i)[0] for i in checklist.spec.items}
    assert kinds <= {"workload", "cel", "evidence", "prometheus", "attestation"}
    assert kinds >= {"workload", "evidence", "prometheus", "attestation"}
    cel = checklist.spec.items[0].model_copy(
        update={"check": Check.model_validate({"cel": {"rules": [{"expression": "true", "message": "has TZ"}]}})}
    )
    assert how_verified(cel) == ("cel", "the operator checks the candidate's workloads with CEL rules: has TZ")
    evidence = next(i for i in checklist.spec.items if i.check.evidence is not None)
    kind, text = how_verified(evidence)
    assert kind == "evidence"
    assert evidence.check.evidence is not None
    assert evidence.check.evidence.key in text
    assert "recorded by" in text
    view = release_view(release, checklist, now=NOW)
    by_id = {i.id: i for i in view.outstanding}
    attested = next(i for i in view.outstanding if items[i.id].check.attestation is not None)
    assert f"kubectl readiness -n payments-prod attest payments-api-3.2.0 {attested.id}" in attested.suggestion
    failed = next((i for i in by_id.values() if i.state == "Failed" and items[i.id].check.workload), None)
    if failed is not None:
        assert failed.suggestion.startswith("Fix the candidate in payments-staging: ")
    table = checklist_view(checklist)
    assert sum(len(items) for _, items in table.sections) == len(checklist.spec.items)
    assert {role for role, *_ in table.approvals} >= {"engineering-lead", "security-lead"}


class FakeReader:
    """The reads, answered from memory (the real ones are tested against the API server)."""

    def __init__(self, release: ReleaseReadiness, checklist: ReadinessChecklist, signoffs: list[ReleaseSignoff]):
        self.namespace: str | None = None
        self._release, self._checklist, self._signoffs = release, checklist, signoffs

    def in_scope(self, namespace: str) -> bool:
        return self.namespace is None or namespace == self.namespace

    async def releases(self) -> Listing:
        return Listing([self._release])

    async def release(self, namespace: str, name: str) -> ReleaseReadiness:
        if (namespace, name) != (self._release.metadata.namespace, self._release.metadata.name):
            raise Unreadable(f"you may not read releasereadiness {namespace}/{name}: forbidden", 403)
        return self._release

    async def checklist(self, name: str) -> ReadinessChecklist:
        return self._checklist

    async def signoffs(self, namespace: str) -> list[ReleaseSignoff]:
        return self._signoffs

    async def events(self, release: ReleaseReadiness) -> list[dict[str, Any]]:
        raise Unreadable("you may not read the events in namespace payments-prod: forbidden", 403)


def with_client(test: Callable[[TestClient[Any, Any], Dashboard], Awaitable[None]]) -> None:
    release, checklist, signoffs = sample()
    release.status.items[0].message = HOSTILE  # type: ignore[union-attr]
    reader = FakeReader(release, checklist, [*signoffs, *extra_signoffs()])

    async def run() -> None:
        dashboard = Dashboard(reader, port=0, user="erin<b>", refresh=2.0, token="t0ken")  # type: ignore[arg-type]
        async with TestClient(TestServer(make_app(dashboard), host="127.0.0.1")) as client:
            dashboard.port = client.port  # type: ignore[assignment]
            await test(client, dashboard)

    asyncio.run(run())


def test_pages_render_escaped_with_security_headers() -> None:
    async def check(client: TestClient[Any, Any], dashboard: Dashboard) -> None:
        pages = {
            "/t0ken/": "payments-api-3.2.0",
            "/t0ken/fragments/releases": "payments-api-3.2.0",
            "/t0ken/releases/payments-prod/payments-api-3.2.0": "Outstanding items",
            "/t0ken/fragments/releases/payments-prod/payments-api-3.2.0": "Vetoes (1)",
            "/t0ken/checklists/pre-production": "Checklist pre-production",
        }
        for path, expected in pages.items():
            resp = await client.get(path)
            html = await resp.text()
            assert resp.status == 200, (path, html[:500])
            assert expected in html, path
            for raw in ("<script>alert", "<img src=x", "<b>"):
                assert raw not in html, path
            assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["Cache-Control"] == "no-store"
        page = await (await client.get("/t0ken/releases/payments-prod/payments-api-3.2.0")).text()
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
        assert "you may not read the events in namespace payments-prod" in page  # the rest still shows
        assert 'data-fragment="/t0ken/fragments/releases/payments-prod/payments-api-3.2.0"' in page
        assert "Viewing as <strong>erin&lt;b&gt;</strong>" in page
        # Unchanged, the fragment has the digest the page was rendered with: the script swaps nothing.
        digest = re.search(r'data-digest="([0-9a-f]{20})"', page)
        assert digest is not None
        fragment_path = "/t0ken/fragments/releases/payments-prod/payments-api-3.2.0"
        fragment = await client.get(fragment_path)
        assert fragment.headers["ETag"] == f'"{digest.group(1)}"'
        unchanged = await client.get(fragment_path, headers={"If-None-Match": f'"{digest.group(1)}"'})
        assert unchanged.status == 304
        assert await unchanged.read() == b""
        changed = await client.get(fragment_path, headers={"If-None-Match": '"older"'})
        assert changed.status == 200
        assert "Vetoes (1)" in await changed.text()
        denied = await client.get("/t0ken/releases/payments-prod/other")
        assert denied.status == 403
        assert "you may not read releasereadiness payments-prod/other" in await denied.text()
        js = await client.get("/static/dashboard.js")
        assert js.status == 200
        assert js.headers["Content-Type"].startswith("text/javascript")
        assert (await client.get("/static/server.py")).status == 404

    with_client(check)


def test_guard_refuses_other_hosts_methods_sites_and_tokens() -> None:
    async def check(client: TestClient[Any, Any], dashboard: Dashboard) -> None:
        home = "/t0ken/"
        rebound = await client.get(home, headers={"Host": f"evil.example:{dashboard.port}"})
        assert rebound.status == 421
        assert (await client.get(home, headers={"Host": f"localhost:{dashboard.port}"})).status == 200
        assert (await client.get(home, headers={"Host": f"127.0.0.1:{dashboard.port + 1}"})).status == 421
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            resp = await client.request(method, home)
            assert resp.status == 405, method
            assert resp.headers["Allow"] == "GET, HEAD"
        assert (await client.get(home, headers={"Origin": "http://evil.example"})).status == 403
        assert (await client.get(home, headers={"Sec-Fetch-Site": "cross-site"})).status == 403
        assert (await client.get(home, headers={"Sec-Fetch-Site": "same-site"})).status == 403
        assert (await client.get(home, headers={"Sec-Fetch-Site": "same-origin"})).status == 200
        for path in ("/", "/wrong/", "/t0ke/", "/t0kenX/", "/releases/payments-prod/payments-api-3.2.0"):
            resp = await client.get(path)
            assert resp.status == 403, path
            assert "t0ken" not in await resp.text()
        assert dashboard.url == f"http://127.0.0.1:{dashboard.port}/t0ken/"

    with_client(check)


def test_a_namespace_outside_the_scope_is_not_shown() -> None:
    async def check(client: TestClient[Any, Any], dashboard: Dashboard) -> None:
        dashboard.reader.namespace = "payments-staging"
        resp = await client.get("/t0ken/releases/payments-prod/payments-api-3.2.0")
        assert resp.status == 404
        assert "outside this dashboard&#39;s scope (-n payments-staging)" in await resp.text()

    with_client(check)


def test_times_are_utc() -> None:
    release, _, _ = sample()
    release.metadata.creation_timestamp = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert release_row(release).created == "2026-11-27 08:00:00 UTC"


def test_the_command_takes_the_global_flags_a_port_and_a_refresh(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_cli import parse

    args = parse("-A", "dashboard", "--port", "8765", "--refresh", "10s", "--as", "erin")
    assert (args.command, args.all_namespaces, args.port, args.refresh, args.as_user) == (
        "dashboard", True, 8765, 10.0, "erin",
    )  # fmt: skip
    assert (parse("dashboard", "-n", "payments-prod").namespace, parse("dashboard").port) == ("payments-prod", 0)
    for bad, message in (
        (("--port", "70000"), "'70000' is not a port: use 1-65535, or 0 for a free one"),
        (("--refresh", "0.1"), "'0.1' is not a refresh interval: use 1s to 300s"),
    ):
        with pytest.raises(SystemExit):
            parse("dashboard", *bad)
        assert message in capsys.readouterr().err
