"""Faults toggled at run time through ``/admin/faults``, observed with the ``openai`` SDK.

Scenario matrix:
- admin contract: GET current, POST merges and answers the result, invalid → 400 unchanged,
  ``reset`` key and DELETE restore the start-up faults, ``seed`` replays the same decisions
- error_rate → 500 InternalServerError; rate_limit_rate → 429 with Retry-After
- max_context → 400 with vLLM's context-length message (prompt too long; max_tokens too large)
- cut_after_tokens: a stream ends without [DONE] after N tokens (the client raises);
  a non-streaming request loses its connection
- stall: the first chunk arrives, then nothing until stall_s; a non-streaming request times out
  and its engine slot is freed when the client goes away; stall_after_tokens holds after N
- slow_start_s: /health 503 then 200
- down: 503 everywhere but /admin, or closed connections; back up when cleared
- faults given at start (settings) apply from the first request
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI, AsyncStream
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from switchman.sim.faults import Faults
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me something"}]
Launch = Callable[..., Awaitable[RunningSim]]


@pytest.fixture
async def launch() -> AsyncIterator[Launch]:
    running: list[RunningSim] = []

    async def launch_one(**overrides: Any) -> RunningSim:
        values: dict[str, Any] = {"model": "sim", "ttft_s": 0.0, "itl_s": 0.0}
        values.update(overrides)
        sim = await start(SimSettings.model_validate(values), shutdown_timeout=0.2)
        running.append(sim)
        return sim

    yield launch_one
    for sim in running:
        await sim.close()


@pytest.fixture
async def sim(launch: Launch) -> RunningSim:
    return await launch()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def sdk(sim: RunningSim, timeout: float = 5.0) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=sim.url + "/v1", api_key="x", max_retries=0, timeout=timeout)


async def collect(stream: AsyncStream[ChatCompletionChunk], into: list[str]) -> None:
    """Append each chunk's content to ``into`` until the stream ends or fails."""
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")


async def set_faults(http: aiohttp.ClientSession, sim: RunningSim, **changes: Any) -> Any:
    async with http.post(sim.url + "/admin/faults", json=changes) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def test_admin_faults_contract(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    async with http.get(sim.url + "/admin/faults") as response:
        assert await response.json() == Faults().model_dump()
    merged = await set_faults(http, sim, error_rate=0.25)
    merged = await set_faults(http, sim, retry_after_s=9)
    assert (merged["error_rate"], merged["retry_after_s"]) == (0.25, 9)
    for bad in ({"error_rate": 3}, {"unknown": 1}, {"reset": "yes"}):
        async with http.post(sim.url + "/admin/faults", json=bad) as response:
            assert response.status == 400
            assert (await response.json())["error"]["type"] == "BadRequestError"
    async with http.get(sim.url + "/admin/faults") as response:
        assert (await response.json())["error_rate"] == 0.25
    assert await set_faults(http, sim, reset=True, stall_s=1) == Faults(stall_s=1).model_dump()
    async with http.delete(sim.url + "/admin/faults") as response:
        assert await response.json() == Faults().model_dump()


async def test_error_rate_answers_500(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    await set_faults(http, sim, error_rate=1.0)
    async with sdk(sim) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(model="sim", messages=QUESTION)
        assert caught.value.response.json() == {
            "error": {
                "message": "Internal server error",
                "type": "InternalServerError",
                "param": None,
                "code": 500,
            }
        }
        await set_faults(http, sim, reset=True)
        await client.chat.completions.create(model="sim", messages=QUESTION)


async def test_rate_limit_answers_429_with_retry_after(
    sim: RunningSim, http: aiohttp.ClientSession
) -> None:
    await set_faults(http, sim, rate_limit_rate=1.0, retry_after_s=7)
    async with sdk(sim) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.completions.create(model="sim", prompt="hi")
        with pytest.raises(openai.RateLimitError):
            await client.embeddings.create(model="sim", input="hi")
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.response.json()["error"]["code"] == 429


async def test_seed_replays_the_same_decisions(
    sim: RunningSim, http: aiohttp.ClientSession
) -> None:
    async def statuses() -> list[int]:
        found = []
        for _ in range(12):
            async with http.post(sim.url + "/v1/completions", json={"prompt": "x"}) as response:
                found.append(response.status)
        return found

    await set_faults(http, sim, error_rate=0.5, seed=42)
    first = await statuses()
    await set_faults(http, sim, seed=42)
    assert await statuses() == first
    assert set(first) == {200, 500}


async def test_max_context_answers_vllm_context_errors(
    sim: RunningSim, http: aiohttp.ClientSession
) -> None:
    await set_faults(http, sim, max_context=20)
    prompt = " ".join(["word"] * 10)
    async with sdk(sim) as client:
        with pytest.raises(openai.BadRequestError) as too_many:
            await client.completions.create(model="sim", prompt=prompt, max_tokens=15)
        with pytest.raises(openai.BadRequestError) as too_long:
            await client.completions.create(model="sim", prompt=" ".join(["word"] * 25))
        fits = await client.completions.create(model="sim", prompt=prompt, max_tokens=10)
    assert too_many.value.response.json()["error"] == {
        "message": "'max_tokens' or 'max_completion_tokens' is too large: 15. This model's "
        "maximum context length is 20 tokens and your request has 10 input tokens "
        "(15 > 20 - 10).",
        "type": "BadRequestError",
        "param": "max_tokens",
        "code": 400,
    }
    assert "maximum context length is 20 tokens. However, your request has 25 input tokens" in (
        too_long.value.message
    )
    assert fits.usage is not None
    assert fits.usage.completion_tokens == 10


async def test_cut_stream_ends_without_done(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    await set_faults(http, sim, cut_after_tokens=3)
    received: list[str] = []
    async with sdk(sim) as client:
        stream = await client.chat.completions.create(model="sim", messages=QUESTION, stream=True)
        with pytest.raises(openai.APIConnectionError):
            await collect(stream, received)
    assert len([piece for piece in received if piece]) == 3
    body = {"model": "sim", "messages": QUESTION, "stream": True}
    async with http.post(sim.url + "/v1/chat/completions", json=body) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_cut_non_streaming_drops_the_connection(
    sim: RunningSim, http: aiohttp.ClientSession
) -> None:
    await set_faults(http, sim, cut_after_tokens=2)
    async with sdk(sim) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="sim", messages=QUESTION)


async def test_stall_holds_after_the_first_chunk(
    sim: RunningSim, http: aiohttp.ClientSession
) -> None:
    await set_faults(http, sim, stall=True, stall_s=0.3)
    body = {"model": "sim", "messages": QUESTION, "stream": True, "max_tokens": 2}
    started = time.monotonic()
    async with http.post(sim.url + "/v1/chat/completions", json=body) as response:
        first = await response.content.readuntil(b"\n\n")
        first_at = time.monotonic() - started
        rest = await response.content.read()
        done_at = time.monotonic() - started
    assert b'"role":"assistant"' in first
    assert first_at < 0.25
    assert done_at >= 0.3
    assert rest.endswith(b"data: [DONE]\n\n")


async def test_stalled_request_times_out_and_frees_its_slot(
    sim: RunningSim, http: aiohttp.ClientSession
) -> None:
    await set_faults(http, sim, stall=True)  # holds for the default 300 s
    async with sdk(sim, timeout=0.2) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="sim", messages=QUESTION)
    for _ in range(50):
        if sim.state.engine.num_running == 0:
            break
        await asyncio.sleep(0.01)
    assert sim.state.engine.num_running == 0


async def test_stall_after_tokens(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    await set_faults(http, sim, stall_after_tokens=2, stall_s=5)
    received: list[str] = []
    async with sdk(sim, timeout=0.3) as client:
        stream = await client.chat.completions.create(model="sim", messages=QUESTION, stream=True)
        with pytest.raises(openai.APITimeoutError):
            await collect(stream, received)
    assert len([piece for piece in received if piece]) == 2


async def test_slow_start_health_503_then_200(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    await set_faults(http, sim, slow_start_s=0.2)
    async with http.get(sim.url + "/health") as response:
        assert response.status == 503
    await asyncio.sleep(0.25)
    async with http.get(sim.url + "/health") as response:
        assert response.status == 200


async def test_slow_start_from_settings(launch: Launch, http: aiohttp.ClientSession) -> None:
    sim = await launch(faults=Faults(slow_start_s=30))
    async with http.get(sim.url + "/health") as response:
        assert response.status == 503


async def test_down_answers_503_except_admin(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    await set_faults(http, sim, down=True)
    for path in ("/health", "/v1/models", "/metrics"):
        async with http.get(sim.url + path) as response:
            assert response.status == 503
    async with sdk(sim) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="sim", messages=QUESTION)
        assert caught.value.status_code == 503
        assert caught.value.response.json()["error"]["type"] == "ServiceUnavailableError"
        await set_faults(http, sim, down=False)
        await client.chat.completions.create(model="sim", messages=QUESTION)


async def test_down_closing_connections(sim: RunningSim, http: aiohttp.ClientSession) -> None:
    await set_faults(http, sim, down=True, down_mode="close")
    async with sdk(sim) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="sim", messages=QUESTION)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(sim.url + "/health") as response:
            await response.read()
    await set_faults(http, sim, down=False)
    async with http.get(sim.url + "/health") as response:
        assert response.status == 200


async def test_faults_from_settings_apply_from_the_start(launch: Launch) -> None:
    sim = await launch(faults=Faults(rate_limit_rate=1.0, retry_after_s=2))
    async with sdk(sim) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="sim", messages=QUESTION)
