"""Inbound Anthropic Messages: request -> chat body, chat answers/chunks -> Message/events.

Scenario matrix:
- request golden: system blocks, multi-turn, image (base64 and url), PDF document, tools,
  tool_use in an assistant turn and tool_result in the next user turn (ids kept), stop
  sequences, sampling, metadata.user_id, tool_choice (auto/any/tool/none, parallel off),
  output_config.format -> response_format; stream adds include_usage
- round trip both ways: Anthropic request -> chat (inbound) -> Anthropic (the provider's
  chat_to_messages) keeps roles, texts, tool_use ids/names/inputs and tool_result ids
- what chat cannot carry (server tools, mcp_servers) is listed as a problem, not raised
- malformed input: missing max_tokens, a bad role, a tool without input_schema -> InvalidRequest
  naming the field
- whole answers: text + tool call -> Message (ids kept, input parsed, stop_reason tool_use,
  cache reads/writes split out of prompt tokens); vLLM's matched stop string -> stop_sequence
- stream golden: role chunk, text deltas, a tool call whose arguments arrive in three deltas,
  finish chunk, usage chunk -> the exact Anthropic event sequence (message_start, ping, text block
  start/delta/stop, tool_use block start/input_json_delta x3/stop, message_delta with usage,
  message_stop); every event parses as the anthropic SDK's RawMessageStreamEvent
- [DONE] without a usage chunk still ends the message; an OpenAI error chunk becomes one
  ``error`` event with Anthropic's type and nothing after it
- Anthropic upstream events -> chat chunks (provider) -> Anthropic events: tool ids, argument
  deltas and cache usage survive the round trip
- error bodies: gateway statuses map to Anthropic's types and statuses (502 -> 529)
- the Anthropic provider's stream usage keeps the cache reads (priced at the cached rate)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.inbound.anthropic_openai import messages_to_chat
from switchman.gateway.inbound.anthropic_openai_stream import (
    EventEncoder,
    chat_to_message,
    error_body,
    error_status,
)
from switchman.gateway.providers.anthropic import AnthropicStream
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.providers.openai_anthropic import (
    MessagesStreamTranslator,
    chat_to_messages,
)
from switchman.gateway.providers.sse import Event, SSEParser

EVENT = TypeAdapter(RawMessageStreamEvent)

REQUEST: dict[str, Any] = {
    "model": "auto",
    "max_tokens": 256,
    "system": [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Use tools."},
    ],
    "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C, sunny"},
                {"type": "text", "text": "And this picture?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://x.test/a.jpg"}},
                {
                    "type": "document",
                    "title": "spec.pdf",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                },
            ],
        },
    ],
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "metadata": {"user_id": "u-1"},
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stream": True,
}

CHAT: dict[str, Any] = {
    "model": "auto",
    "max_tokens": 256,
    "messages": [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "Use tools."},
            ],
        },
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C, sunny"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.jpg"}},
                {
                    "type": "file",
                    "file": {
                        "file_data": "data:application/pdf;base64,JVBE",
                        "filename": "spec.pdf",
                    },
                },
            ],
        },
    ],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "stop": ["END"],
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "u-1",
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                "description": "Weather for a city",
            },
        }
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
}


def test_request_translates_to_the_golden_chat_body() -> None:
    translated = messages_to_chat(REQUEST)
    assert translated.chat == CHAT
    assert translated.problems == []


def test_round_trip_through_the_anthropic_provider_keeps_turns_and_tool_ids() -> None:
    back = chat_to_messages(messages_to_chat(REQUEST).chat, "claude", default_max_tokens=1)
    assert back["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Use tools."},
    ]
    assert [m["role"] for m in back["messages"]] == ["user", "assistant", "user"]
    assistant = back["messages"][1]["content"]
    assert assistant[1] == {
        "type": "tool_use",
        "id": "toolu_01A",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    result = back["messages"][2]["content"][0]
    assert result == {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C, sunny"}
    assert back["stop_sequences"] == ["END"]
    assert back["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: object) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    assert messages_to_chat({**body, "tool_choice": choice}).chat["tool_choice"] == expected


def test_output_format_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
    }
    chat = messages_to_chat(body).chat
    assert chat["response_format"]["json_schema"]["schema"] == schema


def test_what_chat_cannot_carry_is_a_problem_not_an_error() -> None:
    body = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        "mcp_servers": [{"type": "url", "url": "https://mcp.test"}],
    }
    translated = messages_to_chat(body)
    assert "tools" not in translated.chat
    assert [param for _, param in translated.problems] == ["tools.0", "mcp_servers"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": None}, "max_tokens"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        ({"tools": [{"name": "f"}]}, "tools.0"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ],
)
def test_malformed_requests_name_the_field(change: dict[str, Any], param: str) -> None:
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    body.update(change)
    with pytest.raises(InvalidRequest) as caught:
        messages_to_chat({k: v for k, v in body.items() if v is not None})
    assert caught.value.param == param


def test_whole_answer_becomes_a_message_with_tool_use_and_cache_usage() -> None:
    chat = {
        "id": "chatcmpl-abc",
        "model": "small",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "call_9",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 30},
        },
    }
    message = chat_to_message(chat)
    assert message == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "small",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_9", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 30,
            "cache_read_input_tokens": 60,
            "output_tokens": 7,
        },
    }
    Message.model_validate(message)


def test_a_matched_stop_string_is_a_stop_sequence() -> None:
    chat = {
        "id": "chatcmpl-1",
        "choices": [{"message": {"content": "a"}, "finish_reason": "stop", "stop_reason": "END"}],
    }
    message = chat_to_message(chat)
    assert (message["stop_reason"], message["stop_sequence"]) == ("stop_sequence", "END")
    length = {"id": "x", "choices": [{"message": {"content": "a"}, "finish_reason": "length"}]}
    assert chat_to_message(length)["stop_reason"] == "max_tokens"


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-s1", "model": "small", "created": 1, "choices": choices}


STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hel"}),
    _chunk({"content": "lo"}),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_7",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Ro'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'me"}'}}]}),
    _chunk({}, "tool_calls"),
    {**_chunk(), "usage": {"prompt_tokens": 12, "completion_tokens": 9}},
]


def _events(data: bytes) -> list[dict[str, Any]]:
    out = []
    for event in SSEParser().feed(data):
        parsed = json.loads(event.data)
        assert event.event == parsed["type"]  # the SSE event name matches the payload
        if parsed["type"] not in ("ping", "error"):  # not in the SDK's message event union
            EVENT.validate_python(parsed)
        out.append(parsed)
    return out


def test_chat_stream_becomes_the_exact_anthropic_event_sequence() -> None:
    encoder = EventEncoder()
    data = b"".join(encoder.chunk(c) for c in STREAM) + encoder.done()
    events = _events(data)
    assert [e["type"] for e in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[0]["message"]["id"] == "msg_s1"
    assert events[2] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[6]["content_block"] == {
        "type": "tool_use",
        "id": "call_7",
        "name": "get_weather",
        "input": {},
    }
    partials = [e["delta"]["partial_json"] for e in events[7:10]]
    assert partials == ['{"ci', 'ty":"Ro', 'me"}']
    assert {e["index"] for e in events[6:11]} == {1}
    assert events[11]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[11]["usage"]["input_tokens"] == 12
    assert events[11]["usage"]["output_tokens"] == 9


def test_done_without_usage_still_ends_the_message() -> None:
    encoder = EventEncoder()
    data = b"".join(encoder.chunk(c) for c in [*STREAM[:3], _chunk({}, "length")])
    data += encoder.done()
    events = _events(data)
    assert [e["type"] for e in events][-3:] == [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"
    assert encoder.done() == b""


def test_an_error_chunk_is_one_error_event_and_the_end() -> None:
    encoder = EventEncoder()
    data = encoder.chunk(STREAM[0]) + encoder.chunk(STREAM[1])
    error = {"error": {"message": "upstream 'a' broke off", "code": "upstream_unavailable"}}
    data += encoder.chunk(error) + encoder.chunk(STREAM[2]) + encoder.done()
    events = _events(data)
    assert events[-1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "upstream 'a' broke off"},
    }
    assert [e["type"] for e in events].count("error") == 1


def test_anthropic_upstream_events_survive_the_round_trip_through_chat() -> None:
    upstream = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_up",
                "usage": {"input_tokens": 5, "cache_read_input_tokens": 40, "output_tokens": 1},
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_X", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 8},
        },
        {"type": "message_stop"},
    ]
    translator = MessagesStreamTranslator("claude", 1, True)
    chunks = [c for event in upstream for c in translator.feed(event["type"], event)]
    encoder = EventEncoder()
    events = _events(b"".join(encoder.chunk(c) for c in chunks) + encoder.done())
    assert events[0]["message"]["id"] == "msg_up"  # the upstream's own id, not re-prefixed
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["id"] == "toolu_X"
    partials = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert partials == ['{"a":', "1}"]
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["usage"] == {
        "input_tokens": 5,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 40,
        "output_tokens": 8,
    }
    assert delta["delta"]["stop_reason"] == "tool_use"


@pytest.mark.parametrize(
    ("status", "kind", "sent"),
    [
        (400, "invalid_request_error", 400),
        (401, "authentication_error", 401),
        (404, "not_found_error", 404),
        (413, "request_too_large", 413),
        (429, "rate_limit_error", 429),
        (502, "overloaded_error", 529),
        (504, "timeout_error", 504),
        (500, "api_error", 500),
    ],
)
def test_error_shapes(status: int, kind: str, sent: int) -> None:
    assert error_body(status, "m") == {"type": "error", "error": {"type": kind, "message": "m"}}
    assert error_status(status) == sent


def test_an_anthropic_upstream_stream_reports_its_cache_reads_for_pricing() -> None:
    stream = AnthropicStream("claude", True)
    usage = {"input_tokens": 5, "cache_read_input_tokens": 40, "cache_creation_input_tokens": 10}
    start = {"type": "message_start", "message": {"id": "msg_1", "usage": usage}}
    for data in (start, {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 3}}):
        stream.feed(Event(raw=b"", event=data["type"], data=json.dumps(data).encode()))
    assert stream.usage == Usage(prompt_tokens=55, completion_tokens=3, cached_tokens=40)
