"""The gateway in front of a real vLLM OpenAI server, driven by the official OpenAI SDK.

One vLLM server (CPU, the tiny random-weight Llama from ``e2e/vllm``, ``--max-model-len 512``)
and one gateway serve the whole session; requests stay small so the tier takes about a minute
once vLLM is up. The model's text is nonsense, so tests check shapes, headers and counts, never
wording (except vLLM's own error messages).

Scenario matrix:

    endpoint             | via         | client | stream                   | expect
    ---------------------|-------------|--------|--------------------------|-----------------------
    /v1/chat/completions | route auto  | sync   | no                       | choices, usage, headers
    /v1/chat/completions | model tiny  | sync   | no                       | choices, usage, headers
    /v1/chat/completions | route auto  | sync   | yes, include_usage       | deltas, final usage
    /v1/chat/completions | route auto  | sync   | yes, no stream_options   | no usage-only chunk
    /v1/chat/completions | route auto  | async  | yes, include_usage       | deltas, final usage
    /v1/chat/completions | route auto  | async  | no, 4 concurrent         | all answered
    /v1/completions      | model tiny  | sync   | no                       | text, usage, headers
    /v1/completions      | route auto  | async  | yes                      | text chunks
    /v1/models           | -           | sync   | -                        | auto and tiny listed
    /v1/chat/completions | route auto  | sync   | no, prompt > 512 tokens  | vLLM's 400, unchanged
    /v1/chat/completions | route auto  | sync   | yes, prompt > 512 tokens | vLLM's 400, unchanged
    /v1/chat/completions | unknown     | sync   | no                       | gateway's 404
    /v1/chat/completions | route auto  | sync   | no, client x-request-id  | id echoed
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

pytestmark = pytest.mark.vllm

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello."}]
MAX_TOKENS = 8
# Short in characters but long in tokens (the tiny tokenizer spends 3 byte tokens on each "€"),
# so it reaches vLLM whatever length estimate the gateway might make; the limit is vLLM's.
TOO_LONG = "€" * 200
TOO_LONG_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": TOO_LONG}]

VllmJson = Callable[[str, dict[str, object]], tuple[int, dict[str, object]]]


def assert_switchman_headers(headers: Mapping[str, str], *, route: str) -> None:
    assert headers.get("x-switchman-model") == "tiny"
    assert headers.get("x-switchman-route", "").startswith(route)
    assert headers.get("x-switchman-upstream", "").startswith("vllm-tiny")
    assert headers.get("x-switchman-attempts") == "1"
    assert headers.get("x-request-id")


@pytest.mark.parametrize("model", ["auto", "tiny"])
def test_chat_completion_is_served_by_vllm_through_route_or_model(
    client: openai.OpenAI, model: str
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=0
    )
    completion = raw.parse()

    assert raw.status_code == 200
    assert_switchman_headers(raw.headers, route=model)
    assert completion.object == "chat.completion"
    assert completion.model == "tiny"
    assert len(completion.choices) == 1
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in {"length", "stop"}
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= MAX_TOKENS
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_streamed_chat_ends_with_usage_when_the_client_asks(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert_switchman_headers(raw.headers, route="auto")
    chunks = list(raw.parse())

    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_chat_has_no_usage_chunk_when_the_client_did_not_ask(
    client: openai.OpenAI,
) -> None:
    stream = client.chat.completions.create(
        model="auto", messages=MESSAGES, max_tokens=MAX_TOKENS, temperature=0, stream=True
    )
    chunks = list(stream)

    assert len(chunks) > 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in {"length", "stop"}


async def test_async_streamed_chat_delivers_deltas_and_usage(
    async_client: openai.AsyncOpenAI,
) -> None:
    stream = await async_client.chat.completions.create(
        model="auto",
        messages=MESSAGES,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    content, usage = [], None
    async for chunk in stream:
        if chunk.choices:
            content.append(chunk.choices[0].delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage

    assert "".join(content)
    assert usage is not None
    assert usage.completion_tokens > 0


async def test_concurrent_async_requests_are_all_answered(
    async_client: openai.AsyncOpenAI,
) -> None:
    completions = await asyncio.gather(
        *(
            async_client.chat.completions.create(
                model="auto",
                messages=[{"role": "user", "content": f"Count to {n}."}],
                max_tokens=4,
                temperature=0,
            )
            for n in range(4)
        )
    )

    assert len({c.id for c in completions}) == 4
    assert all(c.choices[0].message.content for c in completions)


def test_text_completion_returns_text_and_usage(client: openai.OpenAI) -> None:
    raw = client.completions.with_raw_response.create(
        model="tiny", prompt="The quick brown", max_tokens=MAX_TOKENS, temperature=0
    )
    completion = raw.parse()

    assert_switchman_headers(raw.headers, route="tiny")
    assert completion.object == "text_completion"
    assert completion.choices[0].text
    assert completion.usage is not None
    assert completion.usage.prompt_tokens > 0
    assert 0 < completion.usage.completion_tokens <= MAX_TOKENS


async def test_async_streamed_text_completion_delivers_chunks(
    async_client: openai.AsyncOpenAI,
) -> None:
    stream = await async_client.completions.create(
        model="auto", prompt="The quick brown", max_tokens=MAX_TOKENS, temperature=0, stream=True
    )
    texts = [chunk.choices[0].text async for chunk in stream if chunk.choices]

    assert len(texts) > 1
    assert "".join(texts)


def test_models_lists_routes_and_models(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}

    assert {"auto", "tiny"} <= ids


@pytest.mark.parametrize("stream", [False, True])
def test_vllm_context_length_error_reaches_the_client_unchanged(
    client: openai.OpenAI, vllm_json: VllmJson, stream: bool
) -> None:
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": TOO_LONG}],
        "max_tokens": MAX_TOKENS,
        "stream": stream,
    }
    direct_status, direct_body = vllm_json("/chat/completions", body)
    assert direct_status == 400, "vLLM itself should refuse this prompt"

    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="auto",
            messages=TOO_LONG_MESSAGES,
            max_tokens=MAX_TOKENS,
            stream=stream,
        )

    assert caught.value.status_code == 400
    assert "maximum context length is 512 tokens" in caught.value.message
    assert caught.value.body == direct_body["error"]


def test_unknown_model_is_refused_by_the_gateway(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(
            model="no-such-model", messages=MESSAGES, max_tokens=MAX_TOKENS
        )

    assert caught.value.status_code == 404
    assert caught.value.code == "model_not_found"


def test_client_request_id_is_echoed(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=MESSAGES,
        max_tokens=2,
        extra_headers={"x-request-id": "e2e-request-1"},
    )

    assert raw.headers.get("x-request-id") == "e2e-request-1"
