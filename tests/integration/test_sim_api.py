"""The simulator's OpenAI API, driven by the official ``openai`` SDK and raw HTTP.

Scenario matrix:
- chat: non-streaming (deterministic text, usage, alias echoed as model, finish "stop"/"length");
  streaming with and without ``include_usage`` (role chunk, content, finish_reason on the last
  token, usage chunk with no choices, ``[DONE]``), exact chunk keys on the wire
- completions: non-streaming and streaming, same text for the same prompt
- embeddings: float and base64 (the SDK's default), deterministic vectors, usage
- models list in vLLM's shape; /health 200 with an empty body
- errors in vLLM's shape: unknown model 404, malformed JSON 400
- x-request-id echoed (JSON and SSE) and used in the response id
- /admin/requests shows what was sent (traceparent header, stream_options), clears on DELETE
- prefix cache reported as usage.prompt_tokens_details.cached_tokens
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings
from switchman.sim.text import embedding

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture
async def sim() -> AsyncIterator[RunningSim]:
    settings = SimSettings(
        model="org/sim-a",
        served_model_names=("sim-a", "alias"),
        max_model_len=1024,
        ttft_s=0.0,
        prefill_s_per_token=0.0,
        itl_s=0.0,
        embedding_dims=6,
    )
    async with await start(settings) as running:
        yield running


@pytest.fixture
async def client(sim: RunningSim) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=sim.url + "/v1", api_key="x", max_retries=0) as client:
        yield client


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_chat_completion_is_deterministic_with_usage(client: AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model="alias", messages=QUESTION)
    second = await client.chat.completions.create(model="alias", messages=QUESTION)
    assert first.object == "chat.completion"
    assert first.model == "alias"
    choice = first.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == second.choices[0].message.content
    assert choice.finish_reason == "stop"
    assert first.usage is not None
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (3, 16)
    assert first.usage.total_tokens == 19
    assert first.id.startswith("chatcmpl-")
    assert first.id != second.id


async def test_max_tokens_caps_the_answer(client: AsyncOpenAI) -> None:
    full = await client.chat.completions.create(model="sim-a", messages=QUESTION)
    short = await client.chat.completions.create(model="sim-a", messages=QUESTION, max_tokens=4)
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None
    assert short.usage.completion_tokens == 4
    full_words = (full.choices[0].message.content or "").split()
    assert (short.choices[0].message.content or "").split() == full_words[:4]


async def test_chat_stream_with_usage(client: AsyncOpenAI) -> None:
    expected = await client.chat.completions.create(model="sim-a", messages=QUESTION, max_tokens=5)
    stream = await client.chat.completions.create(
        model="sim-a",
        messages=QUESTION,
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    content_chunks = chunks[1:-1]
    assert len(content_chunks) == 5
    text = "".join(chunk.choices[0].delta.content or "" for chunk in content_chunks)
    assert text == expected.choices[0].message.content
    assert [chunk.choices[0].finish_reason for chunk in content_chunks] == [None] * 4 + ["length"]
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk.id for chunk in chunks}) == 1
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        3,
        5,
        8,
    )


async def test_chat_stream_wire_format(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    body = {"model": "sim-a", "messages": QUESTION, "max_tokens": 2, "stream": True}
    async with http.post(sim.url + "/v1/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        raw = (await response.read()).decode()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-2]]
    assert len(chunks) == 3  # role, two tokens, and no usage chunk without include_usage
    for chunk in chunks:
        assert set(chunk) == {"id", "object", "created", "model", "choices"}
        assert set(chunk["choices"][0]) == {"index", "delta", "logprobs", "finish_reason"}
        assert chunk["choices"][0]["logprobs"] is None
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[2]["choices"][0]["finish_reason"] == "length"


async def test_text_completion_streaming_and_not(client: AsyncOpenAI) -> None:
    whole = await client.completions.create(model="sim-a", prompt="Once upon a time", max_tokens=6)
    assert whole.object == "text_completion"
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None
    assert whole.usage.prompt_tokens == 4
    stream = await client.completions.create(
        model="sim-a",
        prompt="Once upon a time",
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(chunk.choices[0].text for chunk in chunks if chunk.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 6


async def test_embeddings_float_and_base64(sim: RunningSim, client: AsyncOpenAI) -> None:
    decoded = await client.embeddings.create(model="sim-a", input=["red fox", "blue"])
    as_floats = await client.embeddings.create(
        model="sim-a", input=["red fox", "blue"], encoding_format="float"
    )
    assert [item.index for item in decoded.data] == [0, 1]
    assert as_floats.data[0].embedding == pytest.approx(embedding("red fox", 6))
    assert decoded.data[0].embedding == pytest.approx(embedding("red fox", 6), abs=1e-6)
    assert decoded.usage.prompt_tokens == 3
    recorded = sim.state.recorder.entries()
    assert recorded[0]["body"]["encoding_format"] == "base64"  # what the SDK asks by default


async def test_models_list_in_vllm_shape(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    async with http.get(sim.url + "/v1/models") as response:
        listing = await response.json()
    assert listing["object"] == "list"
    assert [card["id"] for card in listing["data"]] == ["sim-a", "alias"]
    card = listing["data"][0]
    assert card["object"] == "model"
    assert card["owned_by"] == "vllm"
    assert card["root"] == "org/sim-a"
    assert card["parent"] is None
    assert card["max_model_len"] == 1024
    assert isinstance(card["created"], int)


async def test_health_is_200_with_empty_body(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    async with http.get(sim.url + "/health") as response:
        assert response.status == 200
        assert await response.read() == b""


async def test_unknown_model_is_vllm_404(client: AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await client.chat.completions.create(model="nope", messages=QUESTION)
    assert caught.value.status_code == 404
    assert caught.value.response.json() == {
        "error": {
            "message": "The model `nope` does not exist.",
            "type": "NotFoundError",
            "param": "model",
            "code": 404,
        }
    }


async def test_malformed_json_is_vllm_400(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    async with http.post(
        sim.url + "/v1/chat/completions",
        data=b'{"model": "sim-a",',
        headers={"content-type": "application/json"},
    ) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["type"] == "BadRequestError"
    assert error["code"] == 400
    assert error["param"] is None
    assert error["message"].startswith("JSON decode error")
    assert sim.state.recorder.entries()[-1]["body"] == '{"model": "sim-a",'


async def test_request_id_is_echoed_and_names_the_response(
    sim: RunningSim, http: aiohttp.ClientSession
) -> None:
    headers = {"x-request-id": "req-123"}
    body = {"model": "sim-a", "messages": QUESTION}
    async with http.post(sim.url + "/v1/chat/completions", json=body, headers=headers) as response:
        assert response.headers["x-request-id"] == "req-123"
        assert (await response.json())["id"] == "chatcmpl-req-123"
    streamed = {**body, "stream": True}
    async with http.post(
        sim.url + "/v1/chat/completions", json=streamed, headers=headers
    ) as response:
        assert response.headers["x-request-id"] == "req-123"
    async with http.post(sim.url + "/v1/chat/completions", json={"model": "x"}) as response:
        assert "x-request-id" not in response.headers


async def test_admin_requests_show_what_was_sent(
    sim: RunningSim, client: AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    stream = await client.chat.completions.create(
        model="sim-a",
        messages=QUESTION,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"traceparent": traceparent},
    )
    async for _ in stream:
        pass
    async with http.get(sim.url + "/admin/requests") as response:
        recorded = (await response.json())["data"]
    assert len(recorded) == 1
    entry = recorded[0]
    assert (entry["method"], entry["path"]) == ("POST", "/v1/chat/completions")
    assert entry["headers"]["traceparent"] == traceparent
    assert entry["body"]["stream_options"] == {"include_usage": True}
    async with http.delete(sim.url + "/admin/requests") as response:
        assert response.status == 200
    async with http.get(sim.url + "/admin/requests") as response:
        assert (await response.json())["data"] == []


async def test_repeated_system_prompt_reports_cached_tokens(client: AsyncOpenAI) -> None:
    system: ChatCompletionMessageParam = {
        "role": "system",
        "content": " ".join(f"rule{i}" for i in range(40)),
    }
    usages = []
    for question in ("first question", "second question"):
        messages: list[ChatCompletionMessageParam] = [
            system,
            {"role": "user", "content": question},
        ]
        response = await client.chat.completions.create(model="sim-a", messages=messages)
        usages.append(response.usage)
    cold, warm = usages
    assert cold is not None
    assert warm is not None
    assert cold.prompt_tokens_details is not None
    assert warm.prompt_tokens_details is not None
    assert cold.prompt_tokens_details.cached_tokens == 0
    assert warm.prompt_tokens_details.cached_tokens == 32  # two whole 16-token blocks
