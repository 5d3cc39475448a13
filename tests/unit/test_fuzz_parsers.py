"""Property-based fuzzing (hypothesis) of everything that parses bytes from outside: the client
request parser, the SSE parser, and the provider translators and decoders.

Bounded for CI: each property runs ``EXAMPLES`` generated cases (no example database, no
deadline), about a second each. Properties:

- request parser: any bytes, and any JSON document (lone surrogates, deep nesting, huge numbers
  included) -> a ``ClientRequest`` or ``InvalidRequest`` (400), never another exception; an
  accepted body re-encodes to UTF-8 JSON (what is sent upstream).
- SSE parser: any byte stream cut at any points yields exactly the events of the uncut stream,
  and each event's ``raw`` bytes concatenate back to the stream they came from; the same when
  each piece is taken as a block of whole events (``complete``) where it can be.
- OpenAI stream decoder: any read of events made of the fragments that matter (finish reasons,
  usage, model, error, ``[DONE]``, quotes and braces) gives the same bytes, or the same
  exception, and the same state through ``feed_block`` as through ``feed`` on each event.
- translators: ``chat_to_messages`` on any chat-shaped body, and the inbound
  ``messages_to_chat`` (Anthropic Messages) and ``responses_to_chat`` (Responses) on any
  body of their shape -> a request or ``InvalidRequest``;
  each provider's ``decode`` on any bytes -> an answer or ``ValueError``/``KeyError``/``TypeError``
  (the attempt's ``bad_response``); ``error`` on any status and bytes -> an OpenAI-shaped error
  and never an exception; stream decoders on any event -> bytes, ``ValueError`` or a
  ``GatewayError`` (the attempt's failure), never anything else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchman.api.gatewayconfig import AnthropicSettings
from switchman.gateway.errors import GatewayError, InvalidRequest
from switchman.gateway.inbound.anthropic_openai import messages_to_chat
from switchman.gateway.inbound.responses_openai import responses_to_chat
from switchman.gateway.providers.anthropic import Anthropic
from switchman.gateway.providers.openai_anthropic import chat_to_messages
from switchman.gateway.providers.openai_compat import OpenAICompatible, OpenAIStream
from switchman.gateway.providers.sse import Event, SSEParser, block_events
from switchman.gateway.serve.request import ClientRequest, parse

EXAMPLES = 300
bounded = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Text including lone surrogates, controls and astral characters.
TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=30,
)
SMALL_JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", "function", "x"])
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES},
    optional={
        "content": SMALL_JSON,
        "tool_calls": SMALL_JSON,
        "tool_call_id": SMALL_JSON,
        "name": SMALL_JSON,
    },
)
CHAT = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(MESSAGE, max_size=4) | SMALL_JSON},
    optional={
        name: SMALL_JSON
        for name in (
            "stream",
            "max_tokens",
            "max_completion_tokens",
            "temperature",
            "top_p",
            "stop",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "user",
            "n",
            "logprobs",
        )
    },
)


def outcome(call: Callable[[], Any]) -> Any:
    """The call's result, or the ``InvalidRequest`` it raised (any other exception propagates)."""
    try:
        return call()
    except InvalidRequest as exc:
        return exc


def refused_or(result: Any, kind: type) -> bool:
    """True for a 400 refusal or a result of ``kind``."""
    if isinstance(result, InvalidRequest):
        return result.status == 400
    return isinstance(result, kind)


def dumps(value: Any) -> bytes:
    """JSON text that keeps lone surrogates as escapes (what a hostile client can send)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


@bounded
@given(st.binary(max_size=300))
def test_request_parser_on_any_bytes(raw: bytes) -> None:
    for op in ("chat", "completions", "embeddings"):
        assert refused_or(outcome(lambda op=op: parse(op, raw)), ClientRequest)


@bounded
@given(JSON, st.sampled_from(["chat", "completions", "embeddings"]))
def test_request_parser_on_any_json(value: Any, op: str) -> None:
    document = {"model": "m", "messages": value, "prompt": value, "input": value}
    for raw in (dumps(value), dumps(document)):
        creq = outcome(lambda raw=raw: parse(op, raw))  # type: ignore[arg-type]
        assert refused_or(creq, ClientRequest)
        if isinstance(creq, ClientRequest):  # what goes upstream must encode
            json.dumps(creq.body, ensure_ascii=False, allow_nan=False).encode("utf-8")


@bounded
@given(st.integers(min_value=90, max_value=3000))
def test_request_parser_on_deep_nesting(depth: int) -> None:
    raw = b'{"model": "m", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    assert refused_or(outcome(lambda: parse("chat", raw)), ClientRequest)


SSE_LINES = st.lists(
    st.sampled_from(
        [b"data: {}", b"data: [DONE]", b"event: ping", b": comment", b"data:", b"id: 7", b""]
    )
    | st.binary(max_size=20).map(lambda b: b"data: " + b.replace(b"\n", b"").replace(b"\r", b"")),
    max_size=20,
)


@bounded
@given(
    SSE_LINES,
    st.sampled_from([b"\n", b"\r\n", b"\r"]),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_sse_parser_is_independent_of_chunking(
    lines: list[bytes], newline: bytes, cuts: list[int]
) -> None:
    stream, expected = _stream(lines, newline)
    pieces = SSEParser()
    got: list[Event] = []
    start = 0
    for cut in sorted(c for c in cuts if c <= len(stream)):
        got += pieces.feed(stream[start:cut])
        start = cut
    got += pieces.feed(stream[start:]) + pieces.flush()
    _assert_same_events(got, expected)


def _stream(lines: list[bytes], newline: bytes) -> tuple[bytes, list[Event]]:
    """The lines as one stream, and the events one parser fed it whole gives."""
    stream = b"".join(line + newline for line in lines) + newline
    whole = SSEParser()
    return stream, whole.feed(stream) + whole.flush()


def _assert_same_events(got: list[Event], expected: list[Event]) -> None:
    assert [(e.event, e.data) for e in got] == [(e.event, e.data) for e in expected]
    assert b"".join(e.raw for e in got) == b"".join(e.raw for e in expected)


@bounded
@given(
    SSE_LINES,
    st.sampled_from([b"\n", b"\r\n"]),
    st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_sse_blocks_of_whole_events_are_the_events_of_feed(
    lines: list[bytes], newline: bytes, cuts: list[int]
) -> None:
    stream, expected = _stream(lines, newline)
    pieces = SSEParser()
    got: list[Event] = []
    start = 0
    for cut in [*sorted(c for c in cuts if c <= len(stream)), len(stream)]:
        block = pieces.complete(stream[start:cut])
        got += pieces.feed(stream[start:cut]) if block is None else block_events(block)
        start = cut
    got += pieces.flush()
    _assert_same_events(got, expected)


FRAGMENT = st.sampled_from(
    [
        '"finish_reason":null',
        '"finish_reason":"stop"',
        '"finish_reason" : "length"',
        '"usage":null',
        '"usage":{"prompt_tokens":3,"completion_tokens":1}',
        '"usage": {}',
        '"model":"m"',
        '"model":"',
        '"choices":[]',
        '"choices":[{}]',
        '"error"',
        '"error":{}',
        "[DONE]",
        "NaN",
        "{",
        "}",
        '"',
        '\\"',
        ",",
        ":",
        " ",
        "x",
    ]
)
DATA = st.tuples(st.lists(FRAGMENT, max_size=8), st.booleans()).map(
    lambda parts: ("{" + ",".join(parts[0]) + "}") if parts[1] else "".join(parts[0])
)
LINE = DATA.map(lambda data: f"data: {data}\n\n") | st.sampled_from(
    ["data: [DONE]\n\n", ": ping\n\n", "event: x\ndata: {}\n\n", "data: {\ndata: }\n\n"]
)


@bounded
@given(st.lists(LINE, min_size=1, max_size=8), st.booleans())
def test_openai_feed_block_is_feed_on_each_event(lines: list[str], wants_usage: bool) -> None:
    block = "".join(lines).encode()
    whole, each = OpenAIStream(wants_usage), OpenAIStream(wants_usage)

    def outcome(feed: Callable[[bytes], bytes]) -> bytes | type[Exception]:
        try:
            return feed(block)
        except (ValueError, GatewayError) as exc:
            return type(exc)

    got = outcome(whole.feed_block)
    expected = outcome(lambda b: b"".join(each.feed(e) for e in block_events(b)))

    assert got == expected
    assert (whole.done, whole.model, whole.finish_reasons, whole.usage) == (
        each.done,
        each.model,
        each.finish_reasons,
        each.usage,
    )


@bounded
@given(CHAT)
def test_chat_to_anthropic_translation_on_any_chat_body(body: dict[str, Any]) -> None:
    request = outcome(lambda: chat_to_messages(body, "claude", default_max_tokens=64))
    assert refused_or(request, dict)
    if isinstance(request, dict):
        json.dumps(request)


ANTHROPIC_BODY = st.fixed_dictionaries(
    {"model": st.just("m"), "messages": st.lists(MESSAGE, max_size=4) | SMALL_JSON},
    optional={
        name: SMALL_JSON
        for name in ("max_tokens", "system", "stream", "stop_sequences", "tools", "tool_choice")
    },
)
RESPONSES_BODY = st.fixed_dictionaries(
    {"model": st.just("m"), "input": TEXT | st.lists(MESSAGE, max_size=4) | SMALL_JSON},
    optional={
        name: SMALL_JSON
        for name in ("instructions", "stream", "max_output_tokens", "tools", "text", "store")
    },
)


@bounded
@given(ANTHROPIC_BODY, RESPONSES_BODY)
def test_inbound_translation_on_any_body(anthropic: dict[str, Any], responses: Any) -> None:
    for translate, body in ((messages_to_chat, anthropic), (responses_to_chat, responses)):
        result = outcome(lambda t=translate, b=body: t(b))
        assert not isinstance(result, InvalidRequest) or result.status == 400


PROVIDERS = [
    OpenAICompatible(OpenAICompatible.bearer("sk-test-0123456789")),
    Anthropic(AnthropicSettings(), "sk-ant-test-0123456789"),
]
PAYLOADS = st.binary(max_size=200) | JSON.map(dumps)


@bounded
@given(PAYLOADS, st.sampled_from(["chat", "completions", "embeddings"]))
def test_provider_decode_on_any_payload(payload: bytes, op: str) -> None:
    for provider in PROVIDERS:
        if not provider.supports(op):  # type: ignore[arg-type]
            continue
        with suppress(ValueError, KeyError, TypeError):  # the attempt's bad_response
            provider.decode(op, payload)  # type: ignore[arg-type]


@bounded
@given(PAYLOADS, st.integers(min_value=400, max_value=599))
def test_provider_error_on_any_payload_is_openai_shaped(payload: bytes, status: int) -> None:
    for provider in PROVIDERS:
        error = provider.error(status, payload)["error"]
        assert isinstance(error, dict)
        assert isinstance(error.get("message"), str)


@bounded
@given(st.lists(PAYLOADS, max_size=6), st.sampled_from([None, "message_start", "ping", "x"]))
def test_stream_decoders_on_any_events(datas: list[bytes], kind: str | None) -> None:
    for provider in PROVIDERS:
        decoder = provider.stream("chat", "m", True)
        for data in datas:
            try:
                decoder.feed(Event(raw=b"data: " + data + b"\n\n", event=kind, data=data))
            except (ValueError, GatewayError):
                break
        decoder.finish()
