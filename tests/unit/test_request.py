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
- hostile input, each a 400 naming the problem (never Python internals) and the field where one
  exists: invalid UTF-8 (incl. a UTF-16 body); a lone surrogate escape in a value (param = its
  path) or a key; nesting over MAX_DEPTH in objects (param = the path) and arrays (the parser's
  own recursion limit too); NaN / Infinity / -Infinity; a float overflowing to infinity; an
  integer over MAX_INT_DIGITS digits. Accepted: a surrogate *pair* escape, nesting of exactly
  MAX_DEPTH, many siblings (brackets over MAX_DEPTH but shallow), a MAX_INT_DIGITS integer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.providers.exchange import Operation
from switchman.gateway.serve.request import MAX_DEPTH, MAX_INT_DIGITS, ClientRequest, parse

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


@pytest.mark.parametrize("data", [b"{not json", b'{"model": "a",}'])
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


def chat(content: str) -> bytes:
    """A chat body whose message content is ``content`` (raw JSON text, escapes kept)."""
    return b'{"model": "m", "messages": [{"role": "user", "content": ' + content.encode() + b"}]}"


@pytest.mark.parametrize(
    "data", [b'{"model": "\xff"}', "{}".encode("utf-16")], ids=["bad-byte", "utf-16"]
)
def test_body_that_is_not_utf8_is_rejected(data: bytes) -> None:
    error = invalid("chat", data)

    assert error.message.startswith("request body is not valid UTF-8")


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "a\\udc00b", "\\ude00\\ud83d"])
def test_lone_surrogate_in_a_value_names_the_field(escape: str) -> None:
    error = invalid("chat", chat(f'"{escape}"'))

    assert "lone UTF-16 surrogate" in error.message
    assert error.param == "messages[0].content"


def test_lone_surrogate_in_a_key_names_the_object() -> None:
    error = invalid("chat", b'{"model": "m", "messages": [{"role": "user", "\\ud800": 1}]}')

    assert error.param == "messages[0]"


def test_surrogate_pair_escape_is_accepted() -> None:
    creq = parse("chat", chat('"smile \\ud83d\\ude00"'))

    assert creq.body["messages"][0]["content"] == "smile \U0001f600"


def nested_object(depth: int) -> str:
    return '{"a": ' * (depth - 1) + "{}" + "}" * (depth - 1)


def test_nesting_over_the_limit_is_rejected_with_its_path() -> None:
    # content is at depth 4 (body, messages, message, content): content adds the rest.
    error = invalid("chat", chat(nested_object(MAX_DEPTH - 2)))

    assert error.message == f"request body nests arrays/objects over {MAX_DEPTH} levels deep"
    assert error.param is not None
    assert error.param.startswith("messages[0].content.a.a")


def test_nesting_at_the_limit_is_accepted() -> None:
    parse("chat", chat(nested_object(MAX_DEPTH - 3)))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5000, 100_000])
def test_deep_arrays_are_rejected_not_a_recursion_error(depth: int) -> None:
    error = invalid("chat", chat("[" * depth + "]" * depth))

    assert "levels deep" in error.message


def test_many_shallow_siblings_are_accepted() -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "x"}]}] * (MAX_DEPTH * 3)

    assert len(parse("chat", raw({"model": "m", "messages": messages})).body["messages"]) == 300


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_constants_are_rejected(constant: str) -> None:
    error = invalid("chat", b'{"model": "m", "temperature": ' + constant.encode() + b"}")

    assert error.message.startswith(f"{constant} is not a JSON number")


def test_float_overflowing_to_infinity_is_rejected() -> None:
    assert "finite" in invalid("chat", b'{"model": "m", "temperature": 1e999}').message


def test_huge_integer_is_rejected_without_python_internals() -> None:
    error = invalid("chat", b'{"model": "m", "seed": ' + b"9" * 5000 + b"}")

    assert error.message == f"an integer in the request body has over {MAX_INT_DIGITS} digits"
    assert "sys." not in error.message


def test_integer_of_the_largest_allowed_length_is_accepted() -> None:
    body = b'{"model": "m", "messages": [{"role": "u"}], "seed": -' + b"9" * MAX_INT_DIGITS + b"}"

    assert parse("chat", body).body["seed"] == -int("9" * MAX_INT_DIGITS)
