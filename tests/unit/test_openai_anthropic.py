"""OpenAI chat.completions <-> Anthropic Messages: request bodies, whole responses, upstream errors.

Scenario matrix (streams are in test_openai_anthropic_stream.py):

request (chat_to_messages)
- minimal user text; model = the upstream model id; default max_tokens when none given
- system and developer messages (string or text parts, anywhere) -> top-level system: one text a
  string, several text blocks in order
- consecutive same-role messages merged; empty texts left out; nothing left -> InvalidRequest
- content parts: text; image_url data: (base64) and http(s) (url source); bad media type, scheme
  or non-base64 data URL; PDF file_data -> document; file ids and audio input rejected
- tools -> name/description/input_schema/strict (no parameters -> empty object schema); custom
  tools rejected; tool_choice auto/none/required/named -> auto/none/any/tool;
  parallel_tool_calls false -> disable_parallel_tool_use (not on "none"); tool_choice without
  tools dropped; allowed_tools rejected
- assistant tool_calls -> tool_use (content null, empty arguments -> {}, bad JSON or a non-object
  -> InvalidRequest on ...function.arguments); tool messages -> one user turn of tool_result
  blocks, placed before other blocks of that turn; tool content as text parts; empty content
- max_completion_tokens over max_tokens; temperature/top_p passed within 0..1 under 2023-06-01,
  out of range rejected, dropped from API version 2026-10-21; stop string/list -> stop_sequences;
  stream; safety_identifier/user -> metadata.user_id; response_format json_schema ->
  output_config.format, json_object rejected, text ignored
- unsupported (n > 1, logprobs, top_logprobs, functions, function_call, audio, audio modalities,
  web_search_options) -> InvalidRequest naming the field; OpenAI-only knobs dropped
- malformed messages -> InvalidRequest with param such as messages[2].content
- the produced body conforms to the anthropic SDK's MessageCreateParams TypedDicts (closed: no
  unknown keys anywhere), streaming and not

whole response (messages_to_chat): text, tool_use, text + tool_use, thinking ignored; every
stop_reason; usage with cache reads/writes and thinking tokens; parses as openai ChatCompletion;
the fixtures themselves parse as anthropic Message.

errors (error_to_openai): every Anthropic error type -> OpenAI type/code, message kept,
details.error_code wins; unknown type; non-JSON and empty bodies -> short printable excerpt.
"""

from __future__ import annotations

import collections.abc as cabc
import json
import types
import typing
from typing import Any

import pytest
import typing_extensions
from anthropic.types import Message
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from openai.types.chat import ChatCompletion

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.providers.openai_anthropic import (
    chat_to_messages,
    error_to_openai,
    messages_to_chat,
)

MODEL_ID = "claude-sonnet-4-5"
PNG = "iVBORw0KGgoAAAANSUhEUg=="  # the PNG signature and IHDR tag: enough for a fixture


def translate(body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("default_max_tokens", 4096)
    return chat_to_messages(body, MODEL_ID, **kwargs)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def text(value: str) -> dict[str, str]:
    return {"type": "text", "text": value}


def rejected(body: dict[str, Any], **kwargs: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        translate(body, **kwargs)
    return caught.value


def conforms(value: Any, tp: Any) -> bool:
    """Whether ``value`` matches the SDK type ``tp``, TypedDicts closed (no unknown keys).

    pydantic validates the SDK's ``Iterable`` fields lazily (and its core panics materialising
    these recursive ones), so this walks the annotations itself.
    """
    origin = typing.get_origin(tp)
    if tp is Any or tp is object or isinstance(tp, typing.TypeVar):
        return True
    if origin in (typing.Required, typing.NotRequired, typing.Annotated):
        return conforms(value, typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, arg) for arg in typing.get_args(tp))
    if origin is typing.Literal:
        return value in typing.get_args(tp)
    if typing_extensions.is_typeddict(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        return (
            isinstance(value, dict)
            and set(value) <= set(hints)
            and tp.__required_keys__ <= set(value)
            and all(conforms(item, hints[key]) for key, item in value.items())
        )
    if origin in (dict, cabc.Mapping):
        key_type, value_type = typing.get_args(tp)
        return isinstance(value, dict) and all(
            conforms(k, key_type) and conforms(v, value_type) for k, v in value.items()
        )
    if origin in (list, cabc.Iterable, cabc.Sequence) or getattr(origin, "__name__", "") == (
        "SequenceNotStr"
    ):
        (item_type,) = typing.get_args(tp)
        return isinstance(value, list) and all(conforms(item, item_type) for item in value)
    if tp in (int, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is type(None):
        return value is None
    if isinstance(tp, type):
        try:
            return isinstance(value, tp)
        except TypeError:  # runtime-uncheckable protocols (file inputs)
            return False
    raise TypeError(f"unhandled annotation {tp!r}")


# --- request: conversation ------------------------------------------------------------------


def test_minimal_request_uses_model_id_and_default_max_tokens() -> None:
    body = {"model": "my-route", "messages": [user("Hello")]}

    assert translate(body, default_max_tokens=512) == {
        "model": MODEL_ID,
        "max_tokens": 512,
        "messages": [{"role": "user", "content": [text("Hello")]}],
    }


def test_system_and_developer_messages_anywhere_become_top_level_system() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            user("Hi"),
            {"role": "developer", "content": [text("Answer in French."), text("")]},
            user("Bye"),
        ]
    }

    request = translate(body)

    assert request["system"] == [text("Be brief."), text("Answer in French.")]
    assert request["messages"] == [{"role": "user", "content": [text("Hi"), text("Bye")]}]


def test_single_system_text_is_a_string() -> None:
    body = {"messages": [{"role": "system", "content": [text("Only rule.")]}, user("Hi")]}

    assert translate(body)["system"] == "Only rule."


def test_consecutive_same_role_messages_are_merged_and_empty_texts_dropped() -> None:
    body = {
        "messages": [
            user("a"),
            user([text("b"), text("")]),
            {"role": "assistant", "content": "c"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": [text("d")]},
            user("e"),
        ]
    }

    assert translate(body)["messages"] == [
        {"role": "user", "content": [text("a"), text("b")]},
        {"role": "assistant", "content": [text("c"), text("d")]},
        {"role": "user", "content": [text("e")]},
    ]


def test_conversation_without_content_is_rejected() -> None:
    error = rejected({"messages": [{"role": "system", "content": "s"}, user("")]})

    assert error.param == "messages"


def test_image_parts_become_base64_or_url_image_blocks() -> None:
    body = {
        "messages": [
            user(
                [
                    text("What is this?"),
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"},
                    },
                ]
            )
        ]
    }

    assert translate(body)["messages"][0]["content"] == [
        text("What is this?"),
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


@pytest.mark.parametrize(
    "url",
    [
        "data:image/bmp;base64,Qk0=",  # a type Anthropic does not take
        "data:image/png,rawbytes",  # not base64
        "ftp://example.com/cat.png",
        "",
    ],
)
def test_untranslatable_image_urls_are_rejected(url: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}

    error = rejected({"messages": [user([text("x"), part])]})

    assert error.param == "messages[0].content[1].image_url.url"


def test_pdf_file_part_becomes_document_block() -> None:
    part = {
        "type": "file",
        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
    }

    assert translate({"messages": [user([part])]})["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
            "title": "a.pdf",
        }
    ]


@pytest.mark.parametrize(
    ("part", "param"),
    [
        (
            {"type": "file", "file": {"file_id": "file-abc"}},
            "messages[0].content[0].file.file_data",
        ),
        (
            {"type": "file", "file": {"file_data": "data:text/plain;base64,aGk="}},
            "messages[0].content[0].file.file_data",
        ),
        (
            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}},
            "messages[0].content[0]",
        ),
        ({"type": "video"}, "messages[0].content[0]"),
    ],
)
def test_unsupported_content_parts_are_rejected(part: dict[str, Any], param: str) -> None:
    assert rejected({"messages": [user([part])]}).param == param


# --- request: tools -------------------------------------------------------------------------

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "strict": True,
    },
}


def test_tools_become_anthropic_tool_definitions() -> None:
    no_params = {"type": "function", "function": {"name": "now"}}

    request = translate({"messages": [user("hi")], "tools": [WEATHER_TOOL, no_params]})

    assert request["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
            "description": "Current weather for a city.",
            "strict": True,
        },
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert "tool_choice" not in request


@pytest.mark.parametrize(
    ("tool_choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("none", None, {"type": "none"}),
        ("required", None, {"type": "any"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (None, True, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
def test_tool_choice_and_parallel_tool_calls(
    tool_choice: Any, parallel: bool | None, expected: dict[str, Any] | None
) -> None:
    body: dict[str, Any] = {"messages": [user("hi")], "tools": [WEATHER_TOOL]}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel

    assert translate(body).get("tool_choice") == expected


def test_tool_choice_without_tools_is_dropped() -> None:
    request = translate({"messages": [user("hi")], "tool_choice": "none"})

    assert "tool_choice" not in request
    assert "tools" not in request


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("tools", [{"type": "custom", "custom": {"name": "grammar"}}], "tools[0]"),
        (
            "tools",
            [{"type": "function", "function": {"description": "no name"}}],
            "tools[0].function",
        ),
        (
            "tool_choice",
            {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": []}},
            "tool_choice",
        ),
        ("parallel_tool_calls", "no", "parallel_tool_calls"),
    ],
)
def test_untranslatable_tool_settings_are_rejected(field: str, value: Any, param: str) -> None:
    body = {"messages": [user("hi")], "tools": [WEATHER_TOOL], field: value}

    assert rejected(body).param == param


def assistant_call(arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    function = {"name": "get_weather", "arguments": arguments}
    return {"id": call_id, "type": "function", "function": function}


def test_tool_calls_and_tool_results_round_trip_into_tool_use_and_tool_result() -> None:
    body = {
        "messages": [
            user("Weather in Paris and Rome?"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    assistant_call('{"city": "Paris"}', "call_1"),
                    assistant_call('{"city": "Rome"}', "call_2"),
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [text("21C")]},
            user("Thanks, and tomorrow?"),
        ],
        "tools": [WEATHER_TOOL],
    }

    assert translate(body)["messages"] == [
        {"role": "user", "content": [text("Weather in Paris and Rome?")]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": [text("21C")]},
                text("Thanks, and tomorrow?"),
            ],
        },
    ]


def test_assistant_text_precedes_its_tool_use_and_empty_arguments_mean_no_input() -> None:
    body = {
        "messages": [
            user("time?"),
            {"role": "assistant", "content": "Checking.", "tool_calls": [assistant_call("")]},
            {"role": "tool", "tool_call_id": "call_1", "content": ""},
        ]
    }

    messages = translate(body)["messages"]

    assert messages[1]["content"] == [
        text("Checking."),
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
    ]
    assert messages[2]["content"] == [{"type": "tool_result", "tool_use_id": "call_1"}]


def test_tool_results_come_first_in_their_user_turn() -> None:
    body = {
        "messages": [
            {"role": "assistant", "content": None, "tool_calls": [assistant_call("{}")]},
            user("(user spoke before the result)"),
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
        ]
    }

    assert translate(body)["messages"][1]["content"] == [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "done"},
        text("(user spoke before the result)"),
    ]


@pytest.mark.parametrize("arguments", ['{"city": ', "[1, 2]", '"Paris"'])
def test_tool_call_arguments_must_be_a_json_object(arguments: str) -> None:
    body = {
        "messages": [
            user("hi"),
            {"role": "assistant", "tool_calls": [assistant_call(arguments)]},
        ]
    }

    assert rejected(body).param == "messages[1].tool_calls[0].function.arguments"


# --- request: parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, 4096),
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_completion_tokens": 200, "max_tokens": 100}, 200),
        ({"max_tokens": None}, 4096),
    ],
)
def test_max_tokens(fields: dict[str, Any], expected: int) -> None:
    assert translate({"messages": [user("hi")], **fields})["max_tokens"] == expected


@pytest.mark.parametrize("value", [0, -1, 1.5, "10", True])
def test_invalid_max_tokens_is_rejected(value: Any) -> None:
    assert rejected({"messages": [user("hi")], "max_tokens": value}).param == "max_tokens"


def test_sampling_parameters_pass_under_2023_06_01() -> None:
    request = translate({"messages": [user("hi")], "temperature": 0.2, "top_p": 0.9})

    assert request["temperature"] == 0.2
    assert request["top_p"] == 0.9


@pytest.mark.parametrize(("field", "value"), [("temperature", 1.5), ("top_p", 1.01)])
def test_sampling_parameters_beyond_anthropic_range_are_rejected(field: str, value: float) -> None:
    assert rejected({"messages": [user("hi")], field: value}).param == field


def test_sampling_parameters_are_dropped_from_api_version_2026_10_21() -> None:
    body = {"messages": [user("hi")], "temperature": 1.5, "top_p": 0.9}

    request = translate(body, api_version="2026-10-21")

    assert "temperature" not in request
    assert "top_p" not in request


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "", "b"], ["a", "b"]), (None, None), ("", None), ([], None)],
)
def test_stop_becomes_stop_sequences(stop: Any, expected: list[str] | None) -> None:
    assert translate({"messages": [user("hi")], "stop": stop}).get("stop_sequences") == expected


def test_stream_user_and_safety_identifier() -> None:
    base = {"messages": [user("hi")]}

    assert translate({**base, "stream": True, "user": "u-1"}) == {
        **translate(base),
        "stream": True,
        "metadata": {"user_id": "u-1"},
    }
    assert "stream" not in translate({**base, "stream": False})
    both = translate({**base, "user": "old", "safety_identifier": "new"})
    assert both["metadata"] == {"user_id": "new"}


def test_json_schema_response_format_becomes_structured_output() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    response_format = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}

    request = translate({"messages": [user("hi")], "response_format": response_format})

    assert request["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert "output_config" not in translate(
        {"messages": [user("hi")], "response_format": {"type": "text"}}
    )


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("n", 2, "n"),
        ("logprobs", True, "logprobs"),
        ("top_logprobs", 3, "top_logprobs"),
        ("functions", [{"name": "f"}], "functions"),
        ("function_call", "auto", "function_call"),
        ("audio", {"voice": "alloy", "format": "wav"}, "audio"),
        ("modalities", ["text", "audio"], "modalities"),
        ("web_search_options", {}, "web_search_options"),
        ("response_format", {"type": "json_object"}, "response_format"),
        ("response_format", {"type": "json_schema", "json_schema": {"name": "x"}}, None),
        ("temperature", "hot", "temperature"),
        ("stop", 5, "stop"),
        ("stream", "yes", "stream"),
        ("user", 42, "user"),
        ("safety_identifier", ["x"], "safety_identifier"),
    ],
)
def test_unsupported_or_malformed_fields_are_rejected_with_their_param(
    field: str, value: Any, param: str | None
) -> None:
    error = rejected({"messages": [user("hi")], field: value})

    assert error.param == (param or "response_format.json_schema.schema")
    assert error.status == 400
    assert error.message


def test_harmless_openai_only_fields_are_dropped() -> None:
    body = {
        "messages": [user("hi")],
        "n": 1,
        "logprobs": False,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
        "logit_bias": {"50256": -100},
        "seed": 7,
        "stream_options": {"include_usage": True},
        "store": True,
        "metadata": {"k": "v"},
        "service_tier": "auto",
        "reasoning_effort": "low",
        "prompt_cache_key": "k",
        "modalities": ["text"],
    }

    assert translate(body) == translate({"messages": [user("hi")]})


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (None, "messages"),
        ([], "messages"),
        ("hi", "messages"),
        (["hi"], "messages[0]"),
        ([{"content": "hi"}], "messages[0].role"),
        ([{"role": "robot", "content": "hi"}], "messages[0].role"),
        ([{"role": "function", "name": "f", "content": "x"}], "messages[0].role"),
        ([user("hi"), {"role": "user"}, user("x")], "messages[1].content"),
        ([user("hi"), user("x"), user(42)], "messages[2].content"),
        ([user([{"type": "text", "text": 1}])], "messages[0].content[0].text"),
        ([{"role": "system", "content": [{"type": "image_url"}]}], "messages[0].content[0]"),
        ([{"role": "system"}, user("x")], "messages[0].content"),
        ([user("x"), {"role": "assistant"}], "messages[1].content"),
        ([user("x"), {"role": "assistant", "content": 3}], "messages[1].content"),
        (
            [user("x"), {"role": "assistant", "content": [{"type": "image_url"}]}],
            "messages[1].content[0]",
        ),
        ([user("x"), {"role": "assistant", "tool_calls": "f"}], "messages[1].tool_calls"),
        (
            [
                user("x"),
                {"role": "assistant", "tool_calls": [{"type": "function", "function": {}}]},
            ],
            "messages[1].tool_calls[0].id",
        ),
        ([{"role": "tool", "content": "r"}], "messages[0].tool_call_id"),
        ([{"role": "tool", "tool_call_id": "c"}], "messages[0].content"),
    ],
)
def test_malformed_messages_name_the_offending_field(messages: Any, param: str) -> None:
    assert rejected({"messages": messages}).param == param


# --- request: SDK conformance ---------------------------------------------------------------

RICH_BODY: dict[str, Any] = {
    "model": "my-route",
    "messages": [
        {"role": "system", "content": "Be brief."},
        user(
            [
                text("Weather here?"),
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/sky.jpg"}},
                {
                    "type": "file",
                    "file": {"filename": "f.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                },
            ]
        ),
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [assistant_call('{"city": "Oslo"}')],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [text("-3C")]},
        {"role": "developer", "content": "Use Celsius."},
    ],
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "max_completion_tokens": 300,
    "temperature": 0.3,
    "top_p": 0.8,
    "stop": ["###"],
    "user": "u-1",
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "w", "schema": {"type": "object"}},
    },
}


def test_request_conforms_to_the_anthropic_sdk_params() -> None:
    request = translate(RICH_BODY, api_version="2026-10-21")

    assert conforms(request, MessageCreateParamsNonStreaming)
    streaming = translate({**RICH_BODY, "stream": True}, api_version="2026-10-21")
    assert conforms(streaming, MessageCreateParamsStreaming)


def test_under_2023_06_01_only_the_sampling_parameters_are_outside_the_current_sdk_types() -> None:
    # anthropic SDK 2.x types follow API version 2026-10-21, which removed them.
    request = translate(RICH_BODY)

    assert {"temperature", "top_p"} <= set(request)
    without = {k: v for k, v in request.items() if k not in ("temperature", "top_p")}
    assert conforms(without, MessageCreateParamsNonStreaming)


def test_conformance_check_catches_bad_shapes() -> None:
    request = translate({"messages": [user("hi")]})

    assert not conforms({**request, "bogus": 1}, MessageCreateParamsNonStreaming)
    bad_image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/bmp", "data": ""},
    }
    bad = {**request, "messages": [{"role": "user", "content": [bad_image]}]}
    assert not conforms(bad, MessageCreateParamsNonStreaming)


# --- whole responses ------------------------------------------------------------------------


def anthropic_message(content: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }
    message.update(fields)
    Message.model_validate(message)  # the fixture is a real Anthropic shape
    return message


def test_text_message_becomes_chat_completion() -> None:
    resp = anthropic_message([text("Hello"), text(" there!")])

    chat = messages_to_chat(resp, model="my-route", created=1700000000)

    assert chat == {
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "my-route",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there!", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 6,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        },
    }
    ChatCompletion.model_validate(chat)


def test_tool_use_becomes_tool_calls_and_thinking_is_left_out() -> None:
    resp = anthropic_message(
        [
            {"type": "thinking", "thinking": "User wants weather.", "signature": "sig"},
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {"city": "Paris"},
            },
            {"type": "tool_use", "id": "toolu_01B", "name": "now", "input": {}},
        ],
        stop_reason="tool_use",
    )

    chat = messages_to_chat(resp, model="m", created=1)

    choice = chat["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "id": "toolu_01A",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {"id": "toolu_01B", "type": "function", "function": {"name": "now", "arguments": "{}"}},
        ],
    }
    parsed = ChatCompletion.model_validate(chat)
    assert parsed.choices[0].message.tool_calls is not None


def test_text_with_tool_use_keeps_the_text() -> None:
    resp = anthropic_message(
        [text("Let me check."), {"type": "tool_use", "id": "t", "name": "f", "input": {"é": 1}}],
        stop_reason="tool_use",
    )

    message = messages_to_chat(resp, model="m", created=1)["choices"][0]["message"]

    assert message["content"] == "Let me check."
    assert message["tool_calls"][0]["function"]["arguments"] == '{"é": 1}'


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_stop_reasons_map_to_finish_reasons(stop_reason: str | None, finish_reason: str) -> None:
    resp = {"id": "msg_1", "content": [text("x")], "stop_reason": stop_reason, "usage": {}}

    chat = messages_to_chat(resp, model="m", created=1)

    assert chat["choices"][0]["finish_reason"] == finish_reason
    ChatCompletion.model_validate(chat)


def test_usage_counts_cache_reads_and_writes_as_prompt_tokens() -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 200,
        "cache_read_input_tokens": 1000,
        "output_tokens": 50,
        "output_tokens_details": {"thinking_tokens": 30},
    }
    resp = anthropic_message([text("ok")], usage=usage)

    chat = messages_to_chat(resp, model="m", created=1)

    assert chat["usage"] == {
        "prompt_tokens": 1210,
        "completion_tokens": 50,
        "total_tokens": 1260,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 200},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    ChatCompletion.model_validate(chat)


# --- errors ---------------------------------------------------------------------------------


def anthropic_error(kind: str, message: str = "Something happened", **extra: Any) -> bytes:
    error = {"type": kind, "message": message, **extra}
    return json.dumps({"type": "error", "error": error, "request_id": "req_011"}).encode()


@pytest.mark.parametrize(
    ("status", "kind", "type_", "code"),
    [
        (400, "invalid_request_error", "invalid_request_error", None),
        (401, "authentication_error", "authentication_error", "authentication_error"),
        (402, "billing_error", "insufficient_quota", "billing_error"),
        (403, "permission_error", "permission_error", "permission_error"),
        (404, "not_found_error", "invalid_request_error", "not_found"),
        (413, "request_too_large", "invalid_request_error", "request_too_large"),
        (429, "rate_limit_error", "rate_limit_error", "rate_limit_exceeded"),
        (500, "api_error", "api_error", "upstream_error"),
        (504, "timeout_error", "api_error", "upstream_timeout"),
        (529, "overloaded_error", "api_error", "overloaded"),
        (409, "conflict_error", "invalid_request_error", "conflict_error"),
        (503, "brand_new_error", "api_error", "brand_new_error"),
    ],
)
def test_anthropic_errors_become_openai_errors(
    status: int, kind: str, type_: str, code: str | None
) -> None:
    body = error_to_openai(status, anthropic_error(kind, "max_tokens: too large"))

    assert body == {
        "error": {"message": "max_tokens: too large", "type": type_, "param": None, "code": code}
    }


def test_error_details_code_is_more_precise_than_the_type() -> None:
    payload = anthropic_error(
        "rate_limit_error",
        "Spend limit reached",
        details={"error_code": "enforced_spend_limit_reached"},
    )

    error = error_to_openai(429, payload)["error"]

    assert (error["type"], error["code"]) == ("rate_limit_error", "enforced_spend_limit_reached")


def test_non_json_error_body_is_quoted_short_and_printable() -> None:
    html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\x00\x1b[31m" + b"x" * 5000

    error = error_to_openai(502, html)["error"]

    assert error["type"] == "api_error"
    assert error["message"].startswith("upstream returned HTTP 502: <html> <head><title>502 Bad")
    assert len(error["message"]) < 260
    assert all(ch.isprintable() for ch in error["message"])


@pytest.mark.parametrize(
    ("status", "payload", "message", "type_", "code"),
    [
        (529, b"", "upstream returned HTTP 529 with an empty body", "api_error", "overloaded"),
        (
            429,
            b"slow down",
            "upstream returned HTTP 429: slow down",
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        (
            418,
            b'{"detail": "teapot"}',
            'upstream returned HTTP 418: {"detail": "teapot"}',
            "invalid_request_error",
            None,
        ),
        (
            500,
            b'{"type": "error", "error": {"type": "api_error"}}',
            "upstream returned HTTP 500",
            "api_error",
            "upstream_error",
        ),
        (
            400,
            b"\xff\xfe bad bytes",
            "upstream returned HTTP 400: \ufffd\ufffd bad bytes",
            "invalid_request_error",
            None,
        ),
    ],
)
def test_errors_without_an_anthropic_error_object(
    status: int, payload: bytes, message: str, type_: str, code: str | None
) -> None:
    assert error_to_openai(status, payload) == {
        "error": {"message": message, "type": type_, "param": None, "code": code}
    }


def test_a_final_assistant_prefill_loses_trailing_whitespace() -> None:
    # Anthropic rejects a prefill ending in whitespace; cut streams often end on a space.
    body = {
        "model": "claude",
        "messages": [
            {"role": "user", "content": "count"},
            {"role": "assistant", "content": "one two \n"},
        ],
    }
    out = chat_to_messages(body, "claude-x", default_max_tokens=64)
    assert out["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "one two"}],
    }
    body["messages"][-1]["content"] = "  "
    out = chat_to_messages(body, "claude-x", default_max_tokens=64)
    assert [m["role"] for m in out["messages"]] == ["user"]
