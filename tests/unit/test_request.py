"""Client request parsing: only the fields routing and proxying need, the rest passed through.

Scenario matrix (``parse``), for chat, completions and embeddings:

- valid: model, stream flag, wants_usage; unknown fields preserved in ``body``
- body: empty, invalid JSON, invalid UTF-8, not an object -> InvalidRequest
- model: missing, empty, not a string -> ``param="model"``
- required field per operation: messages / prompt / input missing -> ``param`` names it
- messages: not a list, empty, an item not an object (``messages[i]``), an item without a string
  role (``messages[i].role``)
- stream: non-bool rejected; null means false; streamed embeddings rejected
- stream_options: non-object rejected; ``include_usage`` drives wants_usage
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.providers.exchange import Operation
from switchman.gateway.serve.request import ClientRequest, parse

HELLO = [{"role": "user", "content": "hi"}]
VALID: dict[Operation, dict[str, Any]] = {
    "chat": {"model": "auto", "messages": HELLO},
    "completions": {"model": "auto", "prompt": "Once upon"},
    "embeddings": {"model": "embed", "input": ["a", "b"]},
}


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def invalid(op: Operation, data: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse(op, data)
    assert info.value.status == 400
    return info.value


@pytest.mark.parametrize("op", list(VALID))
def test_valid_request_parses(op: Operation) -> None:
    data = raw(VALID[op])
    creq = parse(op, data)

    assert creq == ClientRequest(
        op=op,
        body=VALID[op],
        model=VALID[op]["model"],
        stream=False,
        wants_usage=False,
        size=len(data),
    )


def test_unknown_fields_are_preserved_in_the_body() -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "vendor_extension": {"top_k": 5},
    }

    assert parse("chat", raw(body)).body == body


@pytest.mark.parametrize("op", list(VALID))
def test_empty_body_is_rejected(op: Operation) -> None:
    assert "empty" in invalid(op, b"").message


@pytest.mark.parametrize("data", [b"{not json", b'{"model": "a",}', b"\xff\xfe"])
def test_invalid_json_is_rejected(data: bytes) -> None:
    error = invalid("chat", data)

    assert "not valid JSON" in error.message
    assert error.param is None


@pytest.mark.parametrize("body", [[VALID["chat"]], "auto", 3, None])
def test_non_object_body_is_rejected(body: Any) -> None:
    assert invalid("chat", raw(body)).message == "request body must be a JSON object"


@pytest.mark.parametrize("model", [None, "", 42, ["auto"]], ids=["null", "empty", "int", "list"])
@pytest.mark.parametrize("op", list(VALID))
def test_missing_or_empty_model_is_rejected(op: Operation, model: Any) -> None:
    body = {**VALID[op], "model": model}

    assert invalid(op, raw(body)).param == "model"


def test_absent_model_is_rejected() -> None:
    assert invalid("chat", raw({"messages": HELLO})).param == "model"


@pytest.mark.parametrize(
    ("op", "field"), [("chat", "messages"), ("completions", "prompt"), ("embeddings", "input")]
)
def test_operation_specific_required_field(op: Operation, field: str) -> None:
    body = {k: v for k, v in VALID[op].items() if k != field}

    error = invalid(op, raw(body))

    assert error.param == field
    assert field in error.message


@pytest.mark.parametrize("messages", ["hi", {"role": "user"}, None, []])
def test_messages_must_be_a_non_empty_list(messages: Any) -> None:
    error = invalid("chat", raw({"model": "auto", "messages": messages}))

    assert error.param == "messages"
    assert "non-empty array" in error.message


def test_message_that_is_not_an_object_names_its_index() -> None:
    body = {"model": "auto", "messages": [*HELLO, "hello"]}

    assert invalid("chat", raw(body)).param == "messages[1]"


@pytest.mark.parametrize("message", [{"content": "x"}, {"role": None}, {"role": 1}])
def test_message_without_a_string_role_names_the_field(message: dict[str, Any]) -> None:
    body = {"model": "auto", "messages": [*HELLO, message]}

    error = invalid("chat", raw(body))

    assert error.param == "messages[1].role"
    assert "role" in error.message


@pytest.mark.parametrize("stream", ["true", 1, {}])
def test_non_boolean_stream_is_rejected(stream: Any) -> None:
    assert invalid("chat", raw({**VALID["chat"], "stream": stream})).param == "stream"


def test_null_stream_means_not_streamed() -> None:
    assert parse("chat", raw({**VALID["chat"], "stream": None})).stream is False


@pytest.mark.parametrize("op", ["chat", "completions"])
def test_stream_true_is_read(op: Operation) -> None:
    assert parse(op, raw({**VALID[op], "stream": True})).stream is True


def test_streamed_embeddings_are_rejected() -> None:
    error = invalid("embeddings", raw({**VALID["embeddings"], "stream": True}))

    assert error.param == "stream"
    assert "embeddings" in error.message


def test_unstreamed_embeddings_with_stream_false_are_accepted() -> None:
    assert parse("embeddings", raw({**VALID["embeddings"], "stream": False})).stream is False


@pytest.mark.parametrize("options", [True, "include_usage", [{"include_usage": True}]])
def test_non_object_stream_options_are_rejected(options: Any) -> None:
    body = {**VALID["chat"], "stream": True, "stream_options": options}

    assert invalid("chat", raw(body)).param == "stream_options"


@pytest.mark.parametrize(
    ("options", "wants"),
    [
        (None, False),
        ({}, False),
        ({"include_usage": False}, False),
        ({"include_usage": True}, True),
        ({"include_usage": True, "continuous_usage_stats": True}, True),
    ],
)
def test_wants_usage_follows_stream_options_include_usage(
    options: dict[str, Any] | None, wants: bool
) -> None:
    body: dict[str, Any] = {**VALID["chat"], "stream": True}
    if options is not None:
        body["stream_options"] = options

    creq = parse("chat", raw(body))

    assert creq.wants_usage is wants
    assert creq.body == body
