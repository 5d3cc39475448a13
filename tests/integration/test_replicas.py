"""One upstream, three replicas (``discovery.static`` of three simulators): picking and health.

A real gateway (``start_gateway``) in front of simulators; which replica served a request is read
from the ``x-switchman-upstream`` header and the simulators' ``/admin/requests``, prefix-cache
effectiveness from their vLLM metrics (``vllm:prefix_cache_hits_total`` /
``vllm:prefix_cache_queries_total``). Clients are the official ``openai`` SDK. Scenario matrix:

- least-loaded spreads 30 concurrent requests evenly over the three replicas, and sends a
  replica whose requests pile up (slow to answer) far fewer than its share
- ``health_check`` with a short interval: a replica set ``down`` turns unhealthy
  (``/readyz``, ``switchman_endpoint_up`` 0) and gets no attempt at all; cleared, it turns
  healthy and takes requests again
- a shared-prefix workload (six system prompts, six questions each): ``least-loaded`` with
  ``prefix_affinity`` keeps each prefix on one replica and the replicas' prefix-cache hit rate
  well above ``random``'s, which scatters each prefix over several replicas
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import openai
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from switchman.sim.runner import RunningSim

Launch = Callable[..., Awaitable[RunningSim]]


# Defaults of the `launch` fixture (conftest) for this module's simulators.
SIM_DEFAULTS = {"ttft_s": 0.005, "itl_s": 0.001}


def address(sim: RunningSim) -> str:
    return f"127.0.0.1:{sim.port}"


def config(replicas: list[RunningSim], **upstream: Any) -> dict[str, Any]:
    """Model ``pool`` on upstream ``pool``, whose replicas are the simulators."""
    return {
        "version": 1,
        "upstreams": [
            {
                "name": "pool",
                "base_url": f"{replicas[0].url}/v1",
                "discovery": {"static": [address(sim) for sim in replicas]},
                **upstream,
            }
        ],
        "models": [{"name": "pool", "upstream": "pool", "upstream_model": "tiny"}],
    }


def sdk(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="sk-client", max_retries=0, timeout=20)


async def ask(
    client: openai.AsyncOpenAI, messages: list[ChatCompletionMessageParam], delay: float = 0.0
) -> str:
    """One chat completion; the replica (host:port) that served it."""
    await asyncio.sleep(delay)  # pacing the load generator, not waiting for the gateway
    raw = await client.chat.completions.with_raw_response.create(model="pool", messages=messages)
    assert raw.headers["x-switchman-attempts"] == "1"
    upstream, replica = raw.headers["x-switchman-upstream"].split()
    assert upstream == "pool"
    return replica


def question(index: int) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": f"question {index} about load balancing"}]


async def eventually(condition: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# --- Least-loaded -----------------------------------------------------------------------------


async def test_least_loaded_spreads_concurrent_requests_evenly(
    start_gateway: Any, launch: Launch
) -> None:
    replicas = [await launch(itl_s=0.005) for _ in range(3)]
    balance = {"policy": "least-loaded", "prefix_affinity": False}
    gateway = await start_gateway(config(replicas, balance=balance))

    async with sdk(gateway.base_url) as client:
        served = await asyncio.gather(*(ask(client, question(i)) for i in range(30)))

    counts = [served.count(address(sim)) for sim in replicas]
    assert sum(counts) == 30
    assert min(counts) >= 8, counts
    assert [len(sim.state.recorder.entries()) for sim in replicas] == counts


async def test_least_loaded_sends_a_slow_replica_less_than_its_share(
    start_gateway: Any, launch: Launch
) -> None:
    slow = await launch(ttft_s=1.0)
    replicas = [slow, await launch(), await launch()]
    balance = {"policy": "least-loaded", "prefix_affinity": False}
    gateway = await start_gateway(config(replicas, balance=balance))
    served: list[str] = []
    indexes = iter(range(30))  # shared by the workers: 30 requests in all

    async def worker(client: openai.AsyncOpenAI) -> None:
        """A closed loop: the next request once the previous one is answered."""
        for index in indexes:
            served.append(await ask(client, question(index)))

    async with sdk(gateway.base_url) as client:
        await asyncio.gather(*(worker(client) for _ in range(3)))

    # While a request waits on the slow replica, one of the other two always has fewer (three
    # workers: at most two other requests in flight), so it gets another only once that is done.
    counts = [served.count(address(sim)) for sim in replicas]
    assert sum(counts) == 30
    assert counts[0] < min(counts[1:]), counts
    assert counts[0] <= 4, counts  # random would give it about 10


# --- Health checks ----------------------------------------------------------------------------


async def test_health_check_takes_a_down_replica_out_of_rotation_and_back(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    replicas = [await launch() for _ in range(3)]
    down = replicas[1]
    check = {"interval_s": 0.2, "timeout_s": 2.0, "unhealthy_after": 1, "healthy_after": 1}
    balance = {"policy": "least-loaded", "prefix_affinity": False}
    gateway = await start_gateway(config(replicas, health_check=check, balance=balance))

    async def healthy(sim: RunningSim) -> bool | None:
        async with http.get(gateway.url + "/readyz") as response:
            rows = (await response.json())["upstreams"]["pool"]["endpoints"]
        return {row["address"]: row["healthy"] for row in rows}.get(address(sim))

    async def endpoint_up(sim: RunningSim) -> float:
        async with http.get(gateway.url + "/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "switchman_endpoint_up" and sample.labels["endpoint"] == (
                    address(sim)
                ):
                    return sample.value
        raise AssertionError("no switchman_endpoint_up series for the replica")

    async def is_down() -> bool:
        return await healthy(down) is False

    async def is_up() -> bool:
        return await healthy(down) is True

    async with http.post(down.url + "/admin/faults", json={"down": True}) as response:
        assert response.status == 200
    await eventually(is_down)
    assert await endpoint_up(down) == 0

    async with sdk(gateway.base_url) as client:
        served = await asyncio.gather(*(ask(client, question(i)) for i in range(12)))
        assert address(down) not in served  # and every request took one attempt (ask)
        async with http.get(gateway.url + "/debug/decisions") as response:
            entries = (await response.json())["data"]
        endpoints = {a["endpoint"] for entry in entries for a in entry["attempts"]}
        assert address(down) not in endpoints

        async with http.post(down.url + "/admin/faults", json={"down": False}) as response:
            assert response.status == 200
        await eventually(is_up)
        assert await endpoint_up(down) == 1
        served = await asyncio.gather(*(ask(client, question(i)) for i in range(12)))

    assert address(down) in served
    assert len(down.state.recorder.entries()) == served.count(address(down))


# --- Prefix affinity --------------------------------------------------------------------------

WORDS = ("cache", "block", "prefix", "replica", "token", "model", "query", "answer", "system",
         "prompt", "route", "load")  # fmt: skip


def system_prompt(seed: int) -> str:
    """200 words that differ from every other seed's from the first word on."""
    return " ".join(f"{WORDS[(seed * 7 + i * 5) % len(WORDS)]}{seed}" for i in range(200))


async def prefix_cache(http: aiohttp.ClientSession, sims: list[RunningSim]) -> tuple[float, float]:
    """Hits and queries (tokens) summed over the simulators' vLLM counters."""
    hits = queries = 0.0
    for sim in sims:
        async with http.get(sim.url + "/metrics") as response:
            text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "vllm:prefix_cache_hits_total":
                    hits += sample.value
                elif sample.name == "vllm:prefix_cache_queries_total":
                    queries += sample.value
    return hits, queries


async def shared_prefix_workload(
    start_gateway: Any,
    http: aiohttp.ClientSession,
    replicas: list[RunningSim],
    balance: dict[str, Any],
    seeds: range,
) -> tuple[float, list[int]]:
    """Six questions per system prompt, one at a time; the hit rate over this workload and the
    number of replicas each prefix was served by."""
    gateway = await start_gateway(config(replicas, balance=balance))
    hits_before, queries_before = await prefix_cache(http, replicas)
    spread: list[int] = []
    async with sdk(gateway.base_url) as client:
        for seed in seeds:
            served = set()
            for question_index in range(6):
                messages: list[ChatCompletionMessageParam] = [
                    {"role": "system", "content": system_prompt(seed)},
                    {"role": "user", "content": f"question {question_index}: which replica?"},
                ]
                served.add(await ask(client, messages))
            spread.append(len(served))
    hits, queries = await prefix_cache(http, replicas)
    return (hits - hits_before) / (queries - queries_before), spread


async def test_prefix_affinity_beats_random_on_a_shared_prefix_workload(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    replicas = [await launch() for _ in range(3)]

    random_rate, random_spread = await shared_prefix_workload(
        start_gateway, http, replicas, {"policy": "random"}, range(0, 6)
    )
    affine_rate, affine_spread = await shared_prefix_workload(
        start_gateway,
        http,
        replicas,
        {"policy": "least-loaded", "prefix_affinity": True},
        range(6, 12),  # other prefixes: nothing of the first run is in the caches
    )

    assert affine_spread == [1] * 6  # each prefix stays where its cache is warm
    assert sum(random_spread) > 6
    assert affine_rate > 0.7
    assert affine_rate > random_rate + 0.1, (affine_rate, random_rate)
