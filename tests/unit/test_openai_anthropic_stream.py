"""Anthropic Messages streaming events -> OpenAI chat.completion.chunk dicts.

Scenario matrix:
- a recorded-looking stream (message_start, ping, text block, tool_use block with
  input_json_delta, message_delta, message_stop), as raw SSE bytes through SSEParser, becomes the
  exact chunk list: role chunk, content chunks, tool call start (id, type, name, empty
  arguments), argument chunks, finish chunk, then the usage chunk with empty choices
- with include_usage every chunk carries ``usage: null`` except the last; without it no chunk has
  a usage key and message_stop adds nothing
- every chunk parses as openai ChatCompletionChunk; every event fixture parses as an anthropic
  RawMessageStreamEvent; the chunks reassemble into what messages_to_chat gives for the same
  Message
- tool call indexes count tool_use blocks only (thinking and text blocks before them do not
  shift them); thinking/signature deltas, ping, content_block_stop and unknown events give nothing
- stop_reason -> finish_reason in the stream; message_stop without message_delta still finishes
- ``usage`` attribute: None before message_start, prompt known from it, completion and cache
  counts final after message_delta; ``finished`` after message_stop
- an ``error`` event raises StreamError carrying the OpenAI error body, status and retryability
- the event name may come from ``data["type"]`` when the SSE event field is missing
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

from switchman.gateway.errors import GatewayError
from switchman.gateway.providers.openai_anthropic import (
    MessagesStreamTranslator,
    StreamError,
    messages_to_chat,
)
from switchman.gateway.providers.sse import SSEParser

CREATED = 1700000000
CHUNK_ID = "chatcmpl-msg_014p7gG3wDgGV9EUtLvnow3U"

RECORDED = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":0,"cache_read_input_tokens":128,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay, let me check"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the weather."}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"San Francisco, CA\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""  # noqa: E501 (the SSE bytes as Anthropic sends them, one event per line pair)


def recorded_events(raw: bytes = RECORDED) -> list[tuple[str, dict[str, Any]]]:
    parser = SSEParser()
    events = parser.feed(raw) + parser.flush()
    return [(event.event or "", json.loads(event.data)) for event in events]


def feed_all(
    translator: MessagesStreamTranslator, events: list[tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    return [chunk for name, data in events for chunk in translator.feed(name, data)]


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": CHUNK_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "my-route",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }


EXPECTED_USAGE = {
    "prompt_tokens": 600,
    "completion_tokens": 89,
    "total_tokens": 689,
    "prompt_tokens_details": {"cached_tokens": 128, "cache_write_tokens": 0},
}

EXPECTED = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Okay, let me check"}),
    chunk({"content": " the weather."}),
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
    chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "San Francisco, CA"}'}}]}),
    chunk({}, "tool_calls"),
    {
        "id": CHUNK_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "my-route",
        "choices": [],
        "usage": EXPECTED_USAGE,
    },
]


def test_recorded_stream_becomes_the_exact_openai_chunk_sequence() -> None:
    translator = MessagesStreamTranslator("my-route", CREATED, include_usage=True)

    chunks = feed_all(translator, recorded_events())

    assert chunks == EXPECTED
    for item in chunks:
        ChatCompletionChunk.model_validate(item)
    assert translator.finished
    assert translator.usage == {"prompt_tokens": 600, "completion_tokens": 89, "total_tokens": 689}


def test_recorded_events_are_real_anthropic_shapes() -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)

    for name, data in recorded_events():
        if name != "ping":
            assert adapter.validate_python(data).type == name


def test_without_include_usage_chunks_have_no_usage_key_and_stop_adds_nothing() -> None:
    translator = MessagesStreamTranslator("my-route", CREATED, include_usage=False)
    events = recorded_events()

    chunks = feed_all(translator, events[:-1])
    last = translator.feed(*events[-1])

    assert last == []
    assert chunks == [{k: v for k, v in item.items() if k != "usage"} for item in EXPECTED[:-1]]
    assert translator.finished
    assert translator.usage is not None


def test_chunks_reassemble_into_the_whole_response_translation() -> None:
    translator = MessagesStreamTranslator("my-route", CREATED, include_usage=True)
    chunks = feed_all(translator, recorded_events())
    content = ""
    arguments: dict[int, str] = {}
    for item in chunks:
        for choice in item["choices"]:
            content += choice["delta"].get("content") or ""
            for call in choice["delta"].get("tool_calls", []):
                arguments[call["index"]] = (
                    arguments.get(call["index"], "") + call["function"]["arguments"]
                )
    whole = {
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
        "content": [
            {"type": "text", "text": "Okay, let me check the weather."},
            {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {"location": "San Francisco, CA"},
            },
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 472, "cache_read_input_tokens": 128, "output_tokens": 89},
    }

    chat = messages_to_chat(whole, model="my-route", created=CREATED)

    message = chat["choices"][0]["message"]
    assert content == message["content"]
    assert json.loads(arguments[0]) == json.loads(message["tool_calls"][0]["function"]["arguments"])
    assert chunks[-1]["usage"] == chat["usage"]


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_start", {
        "type": "content_block_start",
        "index": index,
        "content_block": block,
    }


def block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def message_start(**usage: int) -> tuple[str, dict[str, Any]]:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1, **usage},
    }
    return "message_start", {"type": "message_start", "message": message}


def message_delta(stop_reason: str | None, **usage: int) -> tuple[str, dict[str, Any]]:
    return "message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": {"output_tokens": 5, **usage},
    }


def test_tool_call_indexes_count_tool_use_blocks_only() -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=False)
    events = [
        message_start(),
        block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
        block_delta(0, {"type": "thinking_delta", "thinking": "Two lookups."}),
        block_delta(0, {"type": "signature_delta", "signature": "EqQB"}),
        block_start(1, {"type": "text", "text": ""}),
        block_delta(1, {"type": "text_delta", "text": "Checking both."}),
        block_start(2, {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {}}),
        block_start(3, {"type": "tool_use", "id": "toolu_b", "name": "g", "input": {}}),
        block_delta(3, {"type": "input_json_delta", "partial_json": "{}"}),
        block_delta(2, {"type": "input_json_delta", "partial_json": '{"x": 1}'}),
    ]

    chunks = feed_all(translator, events)

    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks[2:]]
    assert [c["choices"][0]["delta"] for c in chunks[:2]] == [
        {"role": "assistant", "content": ""},
        {"content": "Checking both."},
    ]
    assert [(call["index"], call.get("id"), call["function"]["arguments"]) for call in calls] == [
        (0, "toolu_a", ""),
        (1, "toolu_b", ""),
        (1, None, "{}"),
        (0, None, '{"x": 1}'),
    ]


@pytest.mark.parametrize(
    "event",
    [
        ("ping", {"type": "ping"}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_annotations", {"type": "message_annotations", "items": []}),
        block_start(0, {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search"}),
        block_delta(0, {"type": "citations_delta", "citation": {}}),
        block_delta(0, {"type": "text_delta", "text": ""}),
        block_delta(7, {"type": "input_json_delta", "partial_json": "{}"}),  # no such tool block
    ],
)
def test_events_without_an_openai_equivalent_give_no_chunks(
    event: tuple[str, dict[str, Any]],
) -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=True)
    translator.feed(*message_start())

    assert translator.feed(*event) == []


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, "stop"),
    ],
)
def test_message_delta_carries_the_finish_reason(
    stop_reason: str | None, finish_reason: str
) -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=False)
    translator.feed(*message_start())

    (item,) = translator.feed(*message_delta(stop_reason))

    assert item["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": finish_reason,
    }


def test_message_stop_without_message_delta_still_finishes() -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=True)
    translator.feed(*message_start())

    chunks = translator.feed("message_stop", {"type": "message_stop"})

    assert [c["choices"][0]["finish_reason"] if c["choices"] else "usage" for c in chunks] == [
        "stop",
        "usage",
    ]


def test_usage_is_known_progressively() -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=False)
    assert translator.usage is None
    assert not translator.finished

    translator.feed(*message_start(cache_creation_input_tokens=50))
    assert translator.usage == {"prompt_tokens": 60, "completion_tokens": 1, "total_tokens": 61}

    # Newer API versions repeat cumulative input counts in message_delta.
    translator.feed(*message_delta("end_turn", input_tokens=10, cache_read_input_tokens=5))
    assert translator.usage == {"prompt_tokens": 65, "completion_tokens": 5, "total_tokens": 70}
    assert not translator.finished

    translator.feed("message_stop", {"type": "message_stop"})
    assert translator.finished


def test_event_name_falls_back_to_the_data_type() -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=False)

    (item,) = translator.feed("", message_start()[1])

    assert item["id"] == "chatcmpl-msg_1"


@pytest.mark.parametrize(
    ("kind", "status", "type_", "code", "retryable"),
    [
        ("overloaded_error", 502, "api_error", "overloaded", True),
        ("api_error", 502, "api_error", "upstream_error", True),
        ("rate_limit_error", 429, "rate_limit_error", "rate_limit_exceeded", True),
        ("invalid_request_error", 502, "invalid_request_error", None, False),
    ],
)
def test_error_event_raises_stream_error_with_openai_body(
    kind: str, status: int, type_: str, code: str | None, retryable: bool
) -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=True)
    translator.feed(*message_start())
    data = {"type": "error", "error": {"type": kind, "message": "Overloaded"}}

    with pytest.raises(StreamError) as caught:
        translator.feed("error", data)

    error = caught.value
    assert isinstance(error, GatewayError)
    assert error.body() == {
        "error": {"message": "Overloaded", "type": type_, "param": None, "code": code}
    }
    assert (error.status, error.retryable, error.upstream_type) == (status, retryable, kind)
    assert not translator.finished


def test_error_event_without_details_still_has_a_message() -> None:
    translator = MessagesStreamTranslator("m", 1, include_usage=False)

    with pytest.raises(StreamError) as caught:
        translator.feed("error", {"type": "error"})

    assert caught.value.body()["error"]["message"] == "upstream stream failed"
    assert caught.value.body()["error"]["type"] == "api_error"


@pytest.mark.parametrize("data", [b'{"type": "content_block_delta", "delta": {"te', b"[1, 2]"])
def test_garbled_event_data_is_the_attempts_failure_in_both_decoders(data: bytes) -> None:
    """A garbled Messages event would drop part of the answer if skipped: both decoders (an
    OpenAI client's and an Anthropic client's) raise, so the attempt fails over or continues."""
    from switchman.gateway.inbound.native import NativeMessagesStream
    from switchman.gateway.providers.anthropic import AnthropicStream
    from switchman.gateway.providers.sse import Event

    event = Event(raw=b"event: content_block_delta\ndata: " + data + b"\n\n", event=None, data=data)
    for decoder in (AnthropicStream("claude", wants_usage=True), NativeMessagesStream("claude")):
        with pytest.raises(ValueError, match=r"Unterminated|not a JSON object"):
            decoder.feed(event)
    keepalive = Event(raw=b"event: ping\n\n", event="ping", data=b"")
    assert AnthropicStream("claude", wants_usage=True).feed(keepalive) == b""
