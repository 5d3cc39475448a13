"""The simulator's ``/metrics``: vLLM's names and labels, with values that follow the load.

Scenario matrix:
- exposition: every vLLM metric the gateway reads is present, labelled with the first served
  model name and engine "0"; counters carry ``_total``; two simulators in one process keep
  separate registries
- running / KV: num_requests_running and kv_cache_usage_perc rise while a slow stream runs and
  return to 0 after it
- waiting: with max_num_seqs=1 a second request shows in num_requests_waiting
- prefix cache: repeated system prompts raise prefix_cache_hits_total (tokens, whole blocks);
  queries_total counts every prompt token
- TTFT histogram: one observation per request, at least the configured TTFT
- legacy_kv_metric: the KV gauge takes vLLM's pre-0.9 name vllm:gpu_cache_usage_perc
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "count to ten"}]
Launch = Callable[..., Awaitable[RunningSim]]


@pytest.fixture
async def launch() -> AsyncIterator[Launch]:
    running: list[RunningSim] = []

    async def launch_one(**overrides: Any) -> RunningSim:
        values: dict[str, Any] = {
            "model": "org/model",
            "served_model_names": ("metered", "alias"),
            "ttft_s": 0.0,
            "itl_s": 0.0,
            "prefill_s_per_token": 0.0,
        }
        values.update(overrides)
        sim = await start(SimSettings.model_validate(values), shutdown_timeout=0.2)
        running.append(sim)
        return sim

    yield launch_one
    for sim in running:
        await sim.close()


async def scrape(sim: RunningSim) -> dict[str, float]:
    """Sample name → value, for samples labelled with this simulator's model."""
    async with aiohttp.ClientSession() as http, http.get(sim.url + "/metrics") as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            assert sample.labels["model_name"] == "metered"
            assert sample.labels["engine"] == "0"
            if "le" not in sample.labels:
                samples[sample.name] = sample.value
    return samples


def sdk(sim: RunningSim) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=sim.url + "/v1", api_key="x", max_retries=0)


async def wait_for(sim: RunningSim, name: str, predicate: Callable[[float], bool]) -> float:
    for _ in range(100):
        value = (await scrape(sim))[name]
        if predicate(value):
            return value
        await asyncio.sleep(0.01)
    raise AssertionError(f"{name} never matched")


async def test_exposes_vllm_metric_names(launch: Launch) -> None:
    sim = await launch()
    other = await launch(served_model_names=("other",))
    async with sdk(other) as client:
        await client.chat.completions.create(model="other", messages=QUESTION)
    samples = await scrape(sim)
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "vllm:time_to_first_token_seconds_count",
        "vllm:time_to_first_token_seconds_sum",
    ):
        assert samples[name] == 0.0, name  # the other simulator's traffic is not counted here


async def test_running_and_kv_usage_follow_a_slow_stream(launch: Launch) -> None:
    sim = await launch(itl_s=0.02, kv_cache_tokens=1000)
    async with sdk(sim) as client:

        async def consume() -> None:
            stream = await client.chat.completions.create(
                model="metered", messages=QUESTION, max_tokens=10, stream=True
            )
            async for _ in stream:
                pass

        task = asyncio.create_task(consume())
        assert await wait_for(sim, "vllm:num_requests_running", lambda v: v == 1.0) == 1.0
        usage = await wait_for(sim, "vllm:kv_cache_usage_perc", lambda v: v > 0.005)
        assert usage <= (4 + 10) / 1000  # prompt + tokens generated so far
        await task
    samples = await scrape(sim)
    assert samples["vllm:num_requests_running"] == 0.0
    assert samples["vllm:kv_cache_usage_perc"] == 0.0


async def test_waiting_requests_are_counted(launch: Launch) -> None:
    sim = await launch(max_num_seqs=1, ttft_s=0.1)
    async with sdk(sim) as client:
        calls = [
            asyncio.create_task(client.chat.completions.create(model="alias", messages=QUESTION))
            for _ in range(2)
        ]
        assert await wait_for(sim, "vllm:num_requests_waiting", lambda v: v == 1.0) == 1.0
        assert (await scrape(sim))["vllm:num_requests_running"] == 1.0
        await asyncio.gather(*calls)
    assert (await scrape(sim))["vllm:num_requests_waiting"] == 0.0


async def test_prefix_cache_counters_in_tokens(launch: Launch) -> None:
    sim = await launch()
    system: ChatCompletionMessageParam = {
        "role": "system",
        "content": " ".join(f"policy{i}" for i in range(63)),
    }
    async with sdk(sim) as client:
        for question in ("one", "two", "three"):
            messages: list[ChatCompletionMessageParam] = [
                system,
                {"role": "user", "content": question},
            ]
            await client.chat.completions.create(model="metered", messages=messages)
    samples = await scrape(sim)
    prompt_tokens = 64 + 2  # system marker + 63 words, user marker + 1 word
    assert samples["vllm:prefix_cache_queries_total"] == 3 * prompt_tokens
    assert samples["vllm:prefix_cache_hits_total"] == 2 * 64  # four whole blocks, twice


async def test_ttft_histogram_observes_each_request(launch: Launch) -> None:
    sim = await launch(ttft_s=0.03)
    async with sdk(sim) as client:
        await client.chat.completions.create(model="metered", messages=QUESTION)
        stream = await client.completions.create(model="metered", prompt="x", stream=True)
        async for _ in stream:
            pass
    samples = await scrape(sim)
    assert samples["vllm:time_to_first_token_seconds_count"] == 2.0
    assert samples["vllm:time_to_first_token_seconds_sum"] >= 0.06


async def test_legacy_kv_metric_name(launch: Launch) -> None:
    sim = await launch(legacy_kv_metric=True)
    samples = await scrape(sim)
    assert "vllm:gpu_cache_usage_perc" in samples
    assert "vllm:kv_cache_usage_perc" not in samples
