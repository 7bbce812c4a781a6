"""The webhook server's request path without TLS or Kopf: checks, answers and metric labels from fixed sets."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp.web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from release_readiness.admission.configuration import admission_kinds, webhook_configurations
from release_readiness.admission.review import routes_of
from release_readiness.admission.webhooks import InstrumentedWebhookServer
from tests.unit.reviews import valid_review

ROUTES = routes_of(webhook_configurations(b"", base_url="https://webhook"))


def allowed(request: Any, **_: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": "u", "allowed": True}}


async def call(fn: Any, path: str, body: Any, max_body: int = 1 << 20) -> tuple[int, str]:
    server = InstrumentedWebhookServer(routes=ROUTES, kinds=admission_kinds(), max_body=max_body)

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return await server._serve(fn, request)

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.post("/{id:.*}", handle)])
    async with TestClient(TestServer(app)) as client:
        resp = await client.post(f"/{path}", data=body)
        return resp.status, await resp.text()


def run(fn: Any, path: str, body: Any, **kwargs: Any) -> tuple[int, str]:
    return asyncio.run(call(fn, path, body, **kwargs))


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def answer(request: Any, **_: Any) -> dict[str, Any]:
    return allowed(request)


def test_a_well_formed_review_reaches_the_handler_and_is_counted_with_fixed_labels() -> None:
    review = valid_review()
    review["request"]["kind"]["kind"] = "Made-Up"
    labels = {"webhook": "gate-deployments", "kind": "other", "mode": "-", "decision": "allowed"}
    before = sample("release_readiness_admission_requests_total", labels)
    status, text = run(answer, "gate-deployments", json.dumps(review).encode())
    assert status == 200
    assert json.loads(text)["response"]["allowed"] is True
    assert sample("release_readiness_admission_requests_total", labels) == before + 1


def test_an_unknown_path_is_404_and_counted_as_other() -> None:
    before = sample("release_readiness_admission_malformed_total", {"webhook": "other"})
    status, text = run(answer, "../../etc/passwd", b"{}")
    assert status == 404
    assert text == "no admission webhook is served at this path\n"
    assert sample("release_readiness_admission_malformed_total", {"webhook": "other"}) == before + 1


def test_a_body_over_the_cap_is_refused() -> None:
    status, text = run(answer, "gate-deployments", b" " * 2048, max_body=1024)
    assert status == 400
    assert text == "the body is larger than 1024 bytes\n"


def test_kopf_failing_on_a_review_is_a_refusal_without_the_exception() -> None:
    async def broken(request: Any, **_: Any) -> dict[str, Any]:
        raise RuntimeError("secret internals: 'list' object has no attribute 'get'")

    review = valid_review()
    status, text = run(broken, "gate-deployments", json.dumps(review).encode())
    assert status == 200
    response = json.loads(text)["response"]
    assert response["allowed"] is False
    assert response["uid"] == review["request"]["uid"]
    assert "internal error" in response["status"]["message"]
    assert "secret internals" not in text


def test_a_handler_error_in_kopfs_answer_is_replaced() -> None:
    async def leaky(request: Any, **_: Any) -> dict[str, Any]:
        out = allowed(request)
        out["response"] = {"uid": "u", "allowed": False, "status": {"code": 500, "message": "KeyError: 'spec'"}}
        return out

    before = sample("release_readiness_admission_errors_total", {"webhook": "validate-release"})
    review = valid_review()
    review["request"]["resource"] = {"group": "readiness.dev", "version": "v1alpha1", "resource": "releasereadinesses"}
    status, text = run(leaky, "validate-release", json.dumps(review).encode())
    assert status == 200
    assert "KeyError" not in text
    assert json.loads(text)["response"]["allowed"] is False
    assert sample("release_readiness_admission_errors_total", {"webhook": "validate-release"}) == before + 1


def test_a_body_that_trickles_in_is_cut_off(monkeypatch: Any) -> None:
    from release_readiness.admission import webhooks

    monkeypatch.setattr(webhooks, "BODY_TIMEOUT_SECONDS", 0.2)

    async def slow() -> Any:
        yield b"{"
        await asyncio.sleep(1.0)
        yield b"}"

    status, text = run(answer, "gate-deployments", slow())
    assert status == 400
    assert text == "the body did not arrive within 0.2 seconds\n"


# -- bounded under load ----------------------------------------------------------------------------------------


async def held_and_probed(server: InstrumentedWebhookServer, probe_body: bytes) -> tuple[int, str, str, int]:
    """One request held inside its handler; meanwhile `probe_body` is posted: (its status, text, Retry-After,
    the held request's status once released)."""
    release, entered = asyncio.Event(), asyncio.Event()

    async def hold(request: Any, **_: Any) -> dict[str, Any]:
        entered.set()
        await release.wait()
        return allowed(request)

    async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return await server._serve(hold, request)

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.post("/{id:.*}", handle)])
    async with TestClient(TestServer(app)) as client:
        held = asyncio.create_task(client.post("/gate-deployments", data=json.dumps(valid_review()).encode()))
        await entered.wait()
        probe = await client.post("/gate-deployments", data=probe_body)
        text = await probe.text()
        release.set()
        first = await held
        return probe.status, text, probe.headers.get("Retry-After", ""), first.status


def test_past_the_requests_in_flight_a_request_is_answered_503_at_once() -> None:
    server = InstrumentedWebhookServer(routes=ROUTES, kinds=admission_kinds(), max_body=1 << 20, max_in_flight=1)
    before = sample("release_readiness_admission_shed_total", {"reason": "requests"})
    status, text, retry, first = asyncio.run(held_and_probed(server, json.dumps(valid_review()).encode()))
    assert (status, retry, first) == (503, "1", 200)
    assert text.count("\n") == 1
    assert "at its limit of 1 requests being answered at once" in text
    assert "failurePolicy" in text
    assert sample("release_readiness_admission_shed_total", {"reason": "requests"}) == before + 1
    assert server.in_flight == 0
    assert server.bytes_in_flight == 0


def test_past_the_bytes_in_flight_a_request_is_answered_503_without_being_read() -> None:
    server = InstrumentedWebhookServer(
        routes=ROUTES, kinds=admission_kinds(), max_body=64 * 1024, max_in_flight=10, max_bytes_in_flight=64 * 1024
    )
    status, text, _, first = asyncio.run(held_and_probed(server, b" " * (64 * 1024 - 100)))
    assert (status, first) == (503, 200)
    assert f"at its limit of {64 * 1024} bytes of requests" in text
    # Within the budget, the same server reads and checks the body as always.
    assert run(answer, "gate-deployments", b"{not json", max_body=64 * 1024)[0] == 400


async def connections_past(limit: int) -> tuple[list[bytes], bytes, int]:
    """`limit` idle connections to a BoundedSite, then one more: (what each of the first got for a request, what
    the extra one read, the shed counter's increase)."""
    from release_readiness.admission.webhooks import BoundedSite
    from release_readiness_dev.localcluster import free_port

    app = aiohttp.web.Application()

    async def ok(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="ok")

    app.add_routes([aiohttp.web.get("/", ok)])
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = BoundedSite(runner, "127.0.0.1", port, ssl_context=None, limit=limit)
    await site.start()
    before = sample("release_readiness_admission_shed_total", {"reason": "connections"})
    try:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(limit)]
        for _ in range(3000):  # the accept loop has seen them all
            if site.open_connections() >= limit:
                break
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            extra = await reader.read()  # reset or closed: nothing served
        except ConnectionResetError:
            extra = b""
        writer.close()
        answers = []
        for r, w in held:
            w.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answers.append(await r.read())
            w.close()
        shed = sample("release_readiness_admission_shed_total", {"reason": "connections"}) - before
        return answers, extra, int(shed)
    finally:
        await runner.cleanup()


def test_past_the_connection_limit_a_new_connection_is_reset_and_the_held_ones_are_served() -> None:
    answers, extra, shed = asyncio.run(connections_past(3))
    assert extra == b""
    assert shed == 1
    assert len(answers) == 3
    assert all(a.startswith(b"HTTP/1.1 200") and a.endswith(b"ok") for a in answers), answers


def test_a_path_with_a_direct_answer_is_answered_without_kopf() -> None:
    """The gate's paths are answered by the server itself; Kopf's function is not called for them."""

    async def kopf_fn(request: Any, **_: Any) -> dict[str, Any]:
        raise AssertionError("Kopf was asked")

    def direct(review: Any) -> dict[str, Any]:
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": False, "status": {"code": 403, "message": "no"}},
        }

    async def go() -> tuple[int, str]:
        server = InstrumentedWebhookServer(
            routes=ROUTES, kinds=admission_kinds(), max_body=1 << 20, direct={"gate-deployments": direct}
        )

        async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
            return await server._serve(kopf_fn, request)

        app = aiohttp.web.Application()
        app.add_routes([aiohttp.web.post("/{id:.*}", handle)])
        async with TestClient(TestServer(app)) as client:
            resp = await client.post("/gate-deployments", data=json.dumps(review).encode())
            return resp.status, await resp.text()

    review = valid_review()
    status, text = asyncio.run(go())
    assert status == 200
    answer = json.loads(text)["response"]
    assert answer == {"uid": review["request"]["uid"], "allowed": False, "status": {"code": 403, "message": "no"}}
