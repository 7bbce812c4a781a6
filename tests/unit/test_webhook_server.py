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
