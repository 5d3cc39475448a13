"""Inbound OpenAI Responses: request -> chat body, chat answers/chunks -> response/events.

Scenario matrix:
- request golden: instructions, input items (messages with input_text/input_image parts, two
  consecutive function_call items merged into one assistant turn, function_call_output), function
  tools, tool_choice, text.format json_schema, max_output_tokens, stream -> include_usage
- input as a plain string is one user message
- stateful requests (previous_response_id, conversation, store: true, background: true) and
  built-in tools are refused with a 400 naming the field
- whole answers: text + function call -> a response whose output parses as the openai SDK's
  Response (output_text, call_id kept, usage with cached tokens); a ``length`` finish is
  ``incomplete`` with reason max_output_tokens
- stream golden: role chunk, text deltas, a function call with argument deltas, finish, usage ->
  response.created, in_progress, output_item.added, content_part.added, output_text.delta x2,
  output_text.done, content_part.done, output_item.done, output_item.added (function_call),
  function_call_arguments.delta x2, .done, output_item.done, response.completed; sequence numbers
  count from 0 without gaps; every event parses as the SDK's ResponseStreamEvent
- an error chunk mid-stream: ``error`` then ``response.failed``, nothing after
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.inbound.responses_openai import responses_to_chat
from switchman.gateway.inbound.responses_openai_stream import EventEncoder, chat_to_response
from switchman.gateway.providers.sse import SSEParser

EVENT = TypeAdapter(ResponseStreamEvent)

REQUEST: dict[str, Any] = {
    "model": "auto",
    "instructions": "Be brief.",
    "input": [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is here?"},
                {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
            ],
        },
        {"type": "function_call", "call_id": "call_1", "name": "look", "arguments": "{}"},
        {"type": "function_call", "call_id": "call_2", "name": "zoom", "arguments": '{"x":2}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "a cat"},
        {"type": "function_call_output", "call_id": "call_2", "output": "a hat"},
        {"type": "reasoning", "summary": []},
    ],
    "tools": [{"type": "function", "name": "look", "parameters": {"type": "object"}}],
    "tool_choice": {"type": "function", "name": "look"},
    "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
    "max_output_tokens": 64,
    "temperature": 0.2,
    "stream": True,
}

CHAT = {
    "model": "auto",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is here?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "look", "arguments": "{}"},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "zoom", "arguments": '{"x":2}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        {"role": "tool", "tool_call_id": "call_2", "content": "a hat"},
    ],
    "temperature": 0.2,
    "max_tokens": 64,
    "stream": True,
    "stream_options": {"include_usage": True},
    "tools": [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}],
    "tool_choice": {"type": "function", "function": {"name": "look"}},
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}},
    },
}


def test_request_translates_to_the_golden_chat_body() -> None:
    assert responses_to_chat(REQUEST).chat == CHAT


def test_reasoning_effort_and_cache_key_carry_over() -> None:
    body = {
        "model": "m",
        "input": "hi",
        "reasoning": {"effort": "low", "summary": "auto"},
        "prompt_cache_key": "tenant-7",
    }
    chat = responses_to_chat(body).chat
    assert (chat["reasoning_effort"], chat["prompt_cache_key"]) == ("low", "tenant-7")


def test_a_string_input_is_one_user_message() -> None:
    chat = responses_to_chat({"model": "m", "input": "hi"}).chat
    assert chat == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"store": True}, "store"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"input": []}, "input"),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
        ),
        ({"max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_refusals_name_the_field(change: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        responses_to_chat({"model": "m", "input": "hi", **change})
    assert caught.value.param == param
    if param in ("previous_response_id", "store"):
        assert "state" in caught.value.message or "stateless" in caught.value.message


def test_whole_answer_becomes_a_response() -> None:
    chat = {
        "id": "chatcmpl-9",
        "created": 5,
        "model": "small",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "A cat.",
                    "tool_calls": [
                        {
                            "id": "call_5",
                            "type": "function",
                            "function": {"name": "look", "arguments": '{"a":1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 20,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 16},
        },
    }
    body = chat_to_response(chat, {"model": "auto", "input": "x", "temperature": 0.1})
    response = Response.model_validate(body)
    assert response.id == "resp_9"
    assert response.output_text == "A cat."
    call = response.output[1]
    assert call.type == "function_call"
    assert (call.call_id, call.name, call.arguments) == ("call_5", "look", '{"a":1}')
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 16
    assert (response.usage.input_tokens, response.usage.total_tokens) == (20, 24)
    assert (response.status, response.store, response.temperature) == ("completed", False, 0.1)
    cut = {"id": "c", "choices": [{"message": {"content": "a"}, "finish_reason": "length"}]}
    incomplete = chat_to_response(cut, {})
    assert incomplete["status"] == "incomplete"
    assert incomplete["incomplete_details"] == {"reason": "max_output_tokens"}


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-r1", "model": "small", "created": 3, "choices": choices}


STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Hi"}),
    _chunk({"content": " there"}),
    _chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "call_3", "function": {"name": "look", "arguments": ""}}
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
    _chunk({}, "tool_calls"),
    {**_chunk(), "usage": {"prompt_tokens": 7, "completion_tokens": 5}},
]


def _events(data: bytes) -> list[dict[str, Any]]:
    out = []
    for event in SSEParser().feed(data):
        parsed = json.loads(event.data)
        assert event.event == parsed["type"]
        EVENT.validate_python(parsed)
        out.append(parsed)
    return out


def test_chat_stream_becomes_the_responses_event_sequence() -> None:
    encoder = EventEncoder({"model": "auto", "input": "x"})
    events = _events(b"".join(encoder.chunk(c) for c in STREAM) + encoder.done())
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert events[6]["text"] == "Hi there"
    assert events[12]["arguments"] == '{"a":1}'
    assert events[9]["item"]["call_id"] == "call_3"
    final = Response.model_validate(events[-1]["response"])
    assert final.output_text == "Hi there"
    assert final.usage is not None
    assert final.usage.output_tokens == 5
    assert [item.type for item in final.output] == ["message", "function_call"]


def test_an_error_chunk_fails_the_response() -> None:
    encoder = EventEncoder({})
    data = encoder.chunk(STREAM[0]) + encoder.chunk(STREAM[1])
    data += encoder.chunk({"error": {"message": "cut", "code": "upstream_unavailable"}})
    data += encoder.chunk(STREAM[2]) + encoder.done()
    events = _events(data)
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["message"] == "cut"
