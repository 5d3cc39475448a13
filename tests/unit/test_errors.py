"""The closed set of client-facing errors: status, OpenAI type and code, and body shape.

Scenario matrix:

- each GatewayError subclass: HTTP status, ``type``, default ``code``
- body: the OpenAI envelope ``{"error": {message, type, param, code}}``; ``payload`` is its JSON
- overrides: ``param``, ``code`` and ``headers`` per instance, without touching the class default
- UpstreamRejected: keeps the upstream's status and whole body; message from the body, or a
  fallback naming the status when the body has no usable error
- openai_error_body: the envelope translators build
"""

from __future__ import annotations

import json

import pytest

from switchman.gateway.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    ModelNotFound,
    NotFound,
    NotReady,
    PayloadTooLarge,
    RateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    openai_error_body,
)

TABLE = [
    (GatewayError, 500, "server_error", "internal_error"),
    (InvalidRequest, 400, "invalid_request_error", "invalid_request"),
    (ModelNotFound, 404, "invalid_request_error", "model_not_found"),
    (NotFound, 404, "invalid_request_error", "not_found"),
    (MethodNotAllowed, 405, "invalid_request_error", "method_not_allowed"),
    (PayloadTooLarge, 413, "invalid_request_error", "request_too_large"),
    (RateLimited, 429, "rate_limit_error", "rate_limit_exceeded"),
    (UpstreamUnavailable, 502, "api_error", "upstream_unavailable"),
    (UpstreamTimeout, 504, "api_error", "upstream_timeout"),
    (NotReady, 503, "api_error", "not_ready"),
]


@pytest.mark.parametrize(
    ("cls", "status", "type_", "code"), TABLE, ids=[row[0].__name__ for row in TABLE]
)
def test_each_error_maps_to_its_status_type_and_code(
    cls: type[GatewayError], status: int, type_: str, code: str
) -> None:
    error = cls("something went wrong")

    assert isinstance(error, GatewayError)
    assert (error.status, error.type, error.code) == (status, type_, code)
    assert error.body() == {
        "error": {
            "message": "something went wrong",
            "type": type_,
            "param": None,
            "code": code,
        }
    }
    assert json.loads(error.payload()) == error.body()
    assert error.headers == {}
    assert str(error) == "something went wrong"


def test_param_code_and_headers_are_per_instance() -> None:
    error = InvalidRequest("bad stream", param="stream", code="bad_stream", headers={"A": "b"})

    assert error.body()["error"] == {
        "message": "bad stream",
        "type": "invalid_request_error",
        "param": "stream",
        "code": "bad_stream",
    }
    assert error.headers == {"A": "b"}
    assert InvalidRequest("other").code == "invalid_request"  # class default untouched


def test_headers_are_not_shared_between_instances() -> None:
    first, second = RateLimited("a"), RateLimited("b")

    first.headers["Retry-After"] = "3"

    assert second.headers == {}


def test_upstream_rejected_keeps_the_upstream_status_and_body() -> None:
    upstream_body = {
        "error": {
            "message": "This model's maximum context length is 8192 tokens",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        },
        "object": "error",
    }

    error = UpstreamRejected(400, upstream_body)

    assert error.status == 400
    assert error.type == "invalid_request_error"
    assert error.message == "This model's maximum context length is 8192 tokens"
    assert error.body() == upstream_body
    assert json.loads(error.payload()) == upstream_body


@pytest.mark.parametrize(
    "body",
    [{}, {"error": "not a dict"}, {"error": {"message": ""}}, {"detail": "Not Found"}],
    ids=["empty", "string_error", "empty_message", "other_shape"],
)
def test_upstream_rejected_without_a_message_names_the_status(body: dict[str, object]) -> None:
    error = UpstreamRejected(422, body)

    assert error.status == 422
    assert error.message == "upstream returned 422"
    assert error.body() == body


def test_openai_error_body_builds_the_envelope() -> None:
    assert openai_error_body("overloaded", type_="api_error", code="529") == {
        "error": {"message": "overloaded", "type": "api_error", "param": None, "code": "529"}
    }
    assert openai_error_body("bad", type_="invalid_request_error", param="tools")["error"] == {
        "message": "bad",
        "type": "invalid_request_error",
        "param": "tools",
        "code": None,
    }
