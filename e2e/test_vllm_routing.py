"""Routing features against the real vLLM server: continuation, load scraping, health checks.

The session's vLLM server (see ``conftest``) sits behind an in-process gateway next to a
simulator that cuts its streams after a few tokens. What only real vLLM can prove:

    feature          | how                                         | expect
    -----------------|---------------------------------------------|---------------------------
    mid-stream       | sim streams 3 tokens and cuts; the route    | vLLM accepts
    continuation     | continues on vLLM (continue_final_message)  | continue_final_message:
                     |                                             | one stream, one usage
    load scraping    | scrape vLLM /metrics every 0.2 s            | fresh running/waiting
    health checks    | GET /health every 0.2 s                     | replica healthy
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.sim.faults import Faults
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

pytestmark = pytest.mark.vllm

SERVED_NAME = "tiny"
CUT_AFTER = 3


def routing_config(vllm_url: str, sim: RunningSim) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [
            {"name": "sim", "base_url": f"{sim.url}/v1", "continuation": "vllm"},
            {
                "name": "vllm-tiny",
                "base_url": f"{vllm_url}/v1",
                "continuation": "vllm",
                "scrape": {"interval_s": 0.2, "stale_after_s": 5},
                "health_check": {"interval_s": 0.2},
            },
        ],
        "models": [
            {"name": "flaky", "upstream": "sim", "upstream_model": SERVED_NAME},
            {"name": SERVED_NAME, "upstream": "vllm-tiny", "upstream_model": SERVED_NAME},
        ],
        "routes": [
            {"name": "auto", "candidates": ["flaky", SERVED_NAME], "mid_stream": "continue"}
        ],
    }


@pytest.fixture
async def routing_gateway(vllm: Any, tmp_path: Path) -> AsyncIterator[str]:
    sim = await start(
        SimSettings(
            model=SERVED_NAME, ttft_s=0.0, itl_s=0.0, faults=Faults(cut_after_tokens=CUT_AFTER)
        ),
        shutdown_timeout=0.2,
    )
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(routing_config(vllm.url, sim)))
    metrics = Metrics()
    watcher = ConfigWatcher(path, metrics, environ={})
    watcher.load_initial()
    server = TestServer(create_app(watcher, metrics), host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()
        await sim.close()


async def test_a_cut_stream_is_continued_by_real_vllm_as_one_stream(routing_gateway: str) -> None:
    async with openai.AsyncOpenAI(
        base_url=f"{routing_gateway}/v1", api_key="unused", max_retries=0, timeout=60
    ) as client:
        response = await client.chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": "Say hello."}],
            max_tokens=12,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in response.parse()]

    assert response.headers["x-switchman-model"] == "flaky"  # committed on the simulator
    ids = {chunk.id for chunk in chunks}
    assert len(ids) == 1  # vLLM's chunks carry the original stream's id
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > CUT_AFTER  # the simulator's words, then vLLM's tokens
    usage = chunks[-1].usage
    assert usage is not None
    # One total over both attempts: the simulator's words plus vLLM's tokens, within max_tokens
    # (the continuation asked for max_tokens less what was already sent). vLLM may merge several
    # byte tokens into one chunk, so chunks are not tokens.
    assert CUT_AFTER < usage.completion_tokens <= 12
    assert usage.completion_tokens >= len(texts)
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"]  # one opening role delta, not one per attempt

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{routing_gateway}/debug/decisions?limit=1") as resp,
    ):
        assert resp.status == 200
        (decision,) = (await resp.json())["data"]
    outcomes = [(a["model"], a["outcome"]) for a in decision["attempts"]]
    assert outcomes == [("flaky", "stream_broken"), (SERVED_NAME, "ok")]
    assert decision["continued"] == 1


async def test_vllm_metrics_are_scraped_and_its_health_is_checked(routing_gateway: str) -> None:
    async def tiny_endpoint() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{routing_gateway}/readyz") as resp,
        ):
            (endpoint,) = (await resp.json())["upstreams"]["vllm-tiny"]["endpoints"]
            assert isinstance(endpoint, dict)
            return endpoint

    endpoint = await tiny_endpoint()
    for _ in range(50):  # the first scrape lands within a round or two
        if endpoint["scraped"] and not endpoint["scraped"]["stale"]:
            break
        await asyncio.sleep(0.1)
        endpoint = await tiny_endpoint()
    assert endpoint["healthy"] is True
    scraped = endpoint["scraped"]
    assert scraped is not None, "vLLM's /metrics was never parsed"
    assert not scraped["stale"]
    assert (scraped["running"], scraped["waiting"]) == (0, 0)
    assert 0 <= scraped["kv_usage"] <= 1
    assert endpoint["breaker"] == "closed"
