"""The inbound APIs (Anthropic Messages, OpenAI Responses, model lookup) in front of real vLLM.

The session's vLLM server and gateway (``e2e/conftest.py``); the official ``anthropic`` and
``openai`` SDKs as clients. The tiny random-weight model's text is nonsense but greedy decoding
(temperature 0) is deterministic, so answers through a translated API are compared with what
vLLM itself answers over chat for the same conversation. Scenario matrix:

    API                          | via        | stream | expect
    -----------------------------|------------|--------|------------------------------------------
    messages.create              | route auto | no     | text and usage equal vLLM's chat answer
    messages.stream              | route auto | yes    | same text; final usage; stop reason
    messages.count_tokens        | route auto | -      | vLLM's /tokenize count (header upstream)
    messages.create, bad model   | unknown    | no     | anthropic.NotFoundError, not_found_error
    responses.create             | route auto | no     | output_text and usage equal vLLM's
    responses.create             | model tiny | yes    | created ... completed, deltas = text
    models.retrieve              | auto, tiny | -      | owned_by, context window, endpoints
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

pytestmark = pytest.mark.vllm

SYSTEM = "You are terse."
TURNS: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Say hello."}]
MAX_TOKENS = 8
# Greedy decoding, so vLLM answers the same twice. The anthropic SDK has no temperature argument
# any more (the current API version removed it); the gateway still translates the field.
GREEDY = {"temperature": 0}
MAX_MODEL_LEN = 512  # the session's vLLM --max-model-len (e2e/conftest.py)
VllmJson = Callable[[str, dict[str, object]], tuple[int, dict[str, object]]]


@pytest.fixture
def claude(gateway: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=gateway.url, api_key="unused", max_retries=0, timeout=60
    ) as sdk:
        yield sdk


def vllm_chat(vllm_json: VllmJson) -> dict[str, object]:
    status, body = vllm_json(
        "/chat/completions",
        {
            "model": "tiny",
            "messages": [{"role": "system", "content": SYSTEM}, *TURNS],
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
        },
    )
    assert status == 200
    return body


def test_messages_create_equals_vllms_chat_answer(
    claude: anthropic.Anthropic, vllm_json: VllmJson
) -> None:
    raw = claude.messages.with_raw_response.create(
        model="auto", system=SYSTEM, messages=TURNS, max_tokens=MAX_TOKENS, extra_body=GREEDY
    )
    message = raw.parse()
    chat = vllm_chat(vllm_json)
    choice = chat["choices"][0]  # type: ignore[index]
    usage = chat["usage"]
    assert raw.headers["x-switchman-model"] == "tiny"
    assert message.type == "message"
    assert message.content[0].type == "text"
    assert message.content[0].text == choice["message"]["content"]
    assert message.usage.input_tokens == usage["prompt_tokens"]  # type: ignore[index]
    assert message.usage.output_tokens == usage["completion_tokens"]  # type: ignore[index]
    assert message.stop_reason in ("end_turn", "max_tokens")


def test_messages_stream(claude: anthropic.Anthropic, vllm_json: VllmJson) -> None:
    with claude.messages.stream(
        model="auto", system=SYSTEM, messages=TURNS, max_tokens=MAX_TOKENS, extra_body=GREEDY
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    chat = vllm_chat(vllm_json)
    assert text == chat["choices"][0]["message"]["content"]  # type: ignore[index]
    assert final.usage.output_tokens == chat["usage"]["completion_tokens"]  # type: ignore[index]
    assert final.usage.input_tokens == chat["usage"]["prompt_tokens"]  # type: ignore[index]


def test_count_tokens_is_vllms_tokenizer(claude: anthropic.Anthropic, vllm: Any) -> None:
    raw = claude.messages.with_raw_response.count_tokens(
        model="auto", system=SYSTEM, messages=TURNS
    )
    request = urllib.request.Request(
        f"{vllm.url}/tokenize",
        data=json.dumps(
            {"model": "tiny", "messages": [{"role": "system", "content": SYSTEM}, *TURNS]}
        ).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        expected = json.loads(response.read())["count"]
    assert raw.headers["x-switchman-token-count"] == "upstream"
    assert raw.parse().input_tokens == expected


def test_unknown_model_is_an_anthropic_not_found(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", messages=TURNS, max_tokens=MAX_TOKENS)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_responses_create_equals_vllms_chat_answer(
    client: openai.OpenAI, vllm_json: VllmJson
) -> None:
    response = client.responses.create(
        model="auto",
        instructions=SYSTEM,
        input="Say hello.",
        max_output_tokens=MAX_TOKENS,
        temperature=0,
    )
    chat = vllm_chat(vllm_json)
    assert response.output_text == chat["choices"][0]["message"]["content"]  # type: ignore[index]
    assert response.usage is not None
    assert response.usage.input_tokens == chat["usage"]["prompt_tokens"]  # type: ignore[index]
    assert response.status in ("completed", "incomplete")


def test_responses_stream(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="tiny", input="Say hello.", max_output_tokens=MAX_TOKENS, stream=True
        )
    )
    types = [e.type for e in events]
    assert types[0] == "response.created"
    assert types[-1] in ("response.completed", "response.incomplete")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == text
    assert final.usage is not None
    assert 0 < final.usage.output_tokens <= MAX_TOKENS


def test_models_retrieve(client: openai.OpenAI) -> None:
    route = client.models.retrieve("auto")
    model = client.models.retrieve("tiny")
    assert route.owned_by == "switchman"
    assert (model.owned_by, (model.model_extra or {})["context_window"]) == (
        "vllm-tiny",
        MAX_MODEL_LEN,
    )
    assert "/v1/messages" in (route.model_extra or {})["endpoints"]
