"""Failure classes: what each upstream error means for the next attempt."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.gateway.errors import RateLimited, UpstreamRejected
from switchman.gateway.routing.features import features
from switchman.gateway.serve.failures import Failure, status_failure


def error(message: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


def test_429_is_a_model_failure_with_its_retry_after() -> None:
    failure = status_failure("u", 429, error("slow down"), {"Retry-After": "7"})
    assert isinstance(failure, Failure)
    assert (failure.reason, failure.scope, failure.retry_after) == ("rate_limited", "model", 7.0)
    assert isinstance(failure.error, RateLimited)
    assert failure.error.headers == {"Retry-After": "7"}


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 409])
def test_server_errors_are_endpoint_failures(status: int) -> None:
    failure = status_failure("u", status, error("boom"), {})
    assert isinstance(failure, Failure)
    assert failure.scope == "endpoint"


@pytest.mark.parametrize(
    "message",
    [
        "This model's maximum context length is 512 tokens. However, you requested 900 tokens",
        "prompt is too long: 210000 tokens > 200000 maximum",
        "Please reduce the length of the messages.",
    ],
)
def test_context_length_errors_look_for_a_larger_window(message: str) -> None:
    failure = status_failure("u", 400, error(message), {})
    assert isinstance(failure, Failure)
    assert (failure.reason, failure.scope) == ("context_length", "context")
    assert isinstance(failure.error, UpstreamRejected)  # what the client gets if none is larger
    assert failure.error.body() == error(message)


def test_context_length_code_and_content_filter_code() -> None:
    coded = status_failure("u", 400, error("too big", code="context_length_exceeded"), {})
    assert isinstance(coded, Failure) and coded.scope == "context"  # noqa: PT018
    filtered = status_failure("u", 400, error("flagged", code="content_filter"), {})
    assert isinstance(filtered, Failure)
    assert (filtered.reason, filtered.scope) == ("content_filter", "content")


def test_other_client_errors_go_back_unchanged() -> None:
    rejected = status_failure("u", 400, error("bad temperature"), {})
    assert isinstance(rejected, UpstreamRejected)
    assert rejected.status == 400
    assert status_failure("u", 401, error("no key"), {}).status == 401  # type: ignore[union-attr]


def test_features_read_needs_and_size() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "x" * 400},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "y" * 40},
                    {"type": "image_url", "image_url": {"url": "data:,"}},
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s"}},
        "max_completion_tokens": 50,
    }
    feats = features("chat", body)
    assert (feats.vision, feats.tools, feats.json_schema) == (True, True, True)
    assert feats.max_tokens == 50
    assert feats.prompt_tokens > 800 + 440 // 4  # the image and the text
    plain = features("chat", {"messages": [{"role": "user", "content": "hi"}]})
    assert (plain.vision, plain.tools, plain.json_schema, plain.max_tokens) == (
        False,
        False,
        False,
        None,
    )
    assert plain.output_tokens == 256
    assert features("chat", {"messages": "garbage", "max_tokens": "x"}).max_tokens is None


def test_tools_are_sized_from_the_raw_body_when_known() -> None:
    tools = [{"type": "function", "function": {"name": "f", "description": "d" * 4000}}]
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": tools}
    walked = features("chat", body)
    sized = features("chat", body, size=len(json.dumps(body)))
    assert walked.prompt_tokens >= 1000
    assert abs(sized.prompt_tokens - walked.prompt_tokens) < 50  # framing only
