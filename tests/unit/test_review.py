"""parse_review: what a well-formed AdmissionReview is, and one line naming what is wrong otherwise."""

from __future__ import annotations

import json

import pytest

from release_readiness.admission.configuration import webhook_configurations
from release_readiness.admission.review import MAX_DEPTH, ReviewError, parse_review, routes_of
from tests.unit.reviews import malformed_cases, valid_review, weird_valid_cases

ROUTES = routes_of(webhook_configurations(b"", base_url="https://webhook"))


def test_routes_come_from_the_webhook_configurations() -> None:
    assert ("apps", "v1", "deployments", "") in ROUTES["gate-deployments"]
    assert ROUTES["validate-release"] == frozenset({("readiness.dev", "v1alpha1", "releasereadinesses", "")})
    assert "stamp-signoff" in ROUTES


def test_a_routes_service_path_is_read_like_a_url() -> None:
    service = {"name": "rr", "namespace": "rr", "port": 443}
    assert routes_of(webhook_configurations(b"", service=service)) == ROUTES


def test_a_well_formed_review_passes() -> None:
    review = valid_review()
    assert parse_review(json.dumps(review).encode(), "gate-deployments", ROUTES) == review


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("request"), "AdmissionReview.request must be an object"),
        (lambda r: r["request"].pop("uid"), "request.uid must be a non-empty string"),
        (lambda r: r["request"]["kind"].pop("kind"), "request.kind.kind must be a non-empty string"),
        (lambda r: r["request"].update(operation="PATCH"), "request.operation must be one of CONNECT, CREATE, D"),
        (lambda r: r["request"].update(dryRun="yes"), "request.dryRun must be a boolean"),
        (lambda r: r["request"]["userInfo"].update(groups="admins"), "request.userInfo.groups must be a list of s"),
        (lambda r: r["request"].update(object=None), "request.object or request.oldObject must be an object"),
        (lambda r: r["request"].update(operation="UPDATE"), "request.object and request.oldObject must be object"),
        (
            lambda r: r["request"]["object"]["metadata"].update(labels={"a": 1}),
            "request.object.metadata.labels must be a map of strings",
        ),
        (
            lambda r: r["request"].update(resource={"group": "", "version": "v1", "resource": "secrets"}),
            "request.resource is not a resource the webhook at /gate-deployments is configured for",
        ),
    ],
)
def test_a_malformed_review_is_named_in_one_line(change: object, message: str) -> None:
    review = valid_review()
    change(review)  # type: ignore[operator]
    with pytest.raises(ReviewError) as err:
        parse_review(json.dumps(review).encode(), "gate-deployments", ROUTES)
    assert str(err.value).startswith(message)


def test_too_deep_a_body_is_refused_without_recursing() -> None:
    deep = ('{"a":' * 50_000 + "1" + "}" * 50_000).encode()
    with pytest.raises(ReviewError, match=f"deeper than {MAX_DEPTH}"):
        parse_review(deep, "gate-deployments", ROUTES)


def test_every_generated_malformed_body_is_refused_with_one_line() -> None:
    for case in malformed_cases(seed=1, count=600):
        with pytest.raises(ReviewError) as err:
            parse_review(case.body, case.path, ROUTES)
        text = str(err.value)
        assert text, case.what
        assert "\n" not in text, case.what
        assert "Traceback" not in text, case.what
        assert len(text) < 200, case.what


def test_the_generated_odd_but_well_formed_reviews_pass_the_check() -> None:
    for path, review in weird_valid_cases(seed=1, count=100):
        parse_review(json.dumps(review).encode(), path, ROUTES)
