"""The simulator's engine: admission queue, KV-cache budget, prefix cache and latency model.

Scenario matrix:
- admission: runs up to max_num_seqs; the rest wait FIFO (num_waiting); release admits in order;
  a cancelled waiter leaves the queue; a long request at the head blocks later small ones
- KV budget: prompt + max_new_tokens must fit; usage counts prompt + generated so far, 0..1;
  a request larger than the whole budget still runs alone
- latency: first token = ttft + prefill * uncached prompt tokens, later tokens = itl each;
  zero latencies never sleep; TTFT includes time spent queued
- prefix cache: a repeated prefix hits whole blocks (never the last prompt token), making the
  first token cheaper; queries and hits are counted in tokens; LRU eviction; disabled with 0
"""

from __future__ import annotations

import asyncio

import pytest

from switchman.sim.engine import Engine
from switchman.sim.prefix_cache import PrefixCache, block_keys
from switchman.sim.settings import SimSettings


class FakeTime:
    """A clock that only moves when the engine sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make_engine(time: FakeTime | None = None, **overrides: object) -> Engine:
    values: dict[str, object] = {"ttft_s": 0.0, "prefill_s_per_token": 0.0, "itl_s": 0.0}
    values.update(overrides)
    settings = SimSettings.model_validate(values)
    if time is None:
        return Engine(settings)
    return Engine(settings, sleep=time.sleep, clock=time.clock)


def words(count: int, word: str = "w") -> list[str]:
    return [f"{word}{i}" for i in range(count)]


async def test_requests_beyond_max_num_seqs_wait_in_fifo_order() -> None:
    engine = make_engine(max_num_seqs=2)
    started: list[int] = []
    gates = [asyncio.Event() for _ in range(5)]

    async def request(index: int) -> None:
        async with engine.sequence(words(4), 4):
            started.append(index)
            await gates[index].wait()

    tasks = []
    for index in range(5):
        tasks.append(asyncio.create_task(request(index)))
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [0, 1]
    assert (engine.num_running, engine.num_waiting) == (2, 3)

    gates[1].set()
    await asyncio.sleep(0.01)
    assert started == [0, 1, 2]
    assert (engine.num_running, engine.num_waiting) == (2, 2)

    for gate in gates:
        gate.set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2, 3, 4]
    assert (engine.num_running, engine.num_waiting, engine.kv_tokens_used) == (0, 0, 0)


async def test_cancelled_waiter_leaves_the_queue_and_frees_nothing() -> None:
    engine = make_engine(max_num_seqs=1)
    holder = engine.sequence(words(2), 2)
    await holder.__aenter__()

    async def wait_then_run() -> None:
        async with engine.sequence(words(2), 2):
            pass

    waiter = asyncio.create_task(wait_then_run())
    await asyncio.sleep(0)
    assert engine.num_waiting == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert engine.num_waiting == 0
    await holder.__aexit__(None, None, None)
    assert (engine.num_running, engine.kv_tokens_used) == (0, 0)
    async with engine.sequence(words(2), 2):
        assert engine.num_running == 1


async def test_request_waits_until_its_kv_reservation_fits() -> None:
    engine = make_engine(kv_cache_tokens=100, prefix_cache_blocks=0)
    first = engine.sequence(words(30), 30)  # reserves 60
    await first.__aenter__()
    assert engine.kv_cache_usage == pytest.approx(0.30)  # prompt only, nothing generated yet

    second = asyncio.create_task(engine.sequence(words(20), 30).__aenter__())  # needs 50
    await asyncio.sleep(0)
    assert (engine.num_running, engine.num_waiting) == (1, 1)

    await first.generate(10)
    assert engine.kv_cache_usage == pytest.approx(0.40)  # prompt + generated so far
    await first.__aexit__(None, None, None)
    admitted = await second
    assert (engine.num_running, engine.num_waiting) == (1, 0)
    assert engine.kv_cache_usage == pytest.approx(0.20)
    await admitted.__aexit__(None, None, None)
    assert engine.kv_cache_usage == 0.0


async def test_waiting_head_blocks_smaller_later_requests() -> None:
    engine = make_engine(kv_cache_tokens=100, prefix_cache_blocks=0)
    running = await engine.sequence(words(40), 20).__aenter__()  # reserves 60
    big = asyncio.create_task(engine.sequence(words(50), 10).__aenter__())  # 60: does not fit
    await asyncio.sleep(0)
    small = asyncio.create_task(engine.sequence(words(5), 5).__aenter__())  # 10 would fit
    await asyncio.sleep(0)
    assert engine.num_waiting == 2  # FIFO: no overtaking
    await running.__aexit__(None, None, None)
    for task in (big, small):
        sequence = await task
        await sequence.__aexit__(None, None, None)
    assert engine.num_running == 0


async def test_request_larger_than_the_budget_runs_alone() -> None:
    engine = make_engine(kv_cache_tokens=10)
    async with engine.sequence(words(50), 50) as sequence:
        await sequence.generate(50)
        assert engine.kv_cache_usage == 1.0  # capped


async def test_first_token_costs_ttft_plus_prefill_then_itl_per_token() -> None:
    time = FakeTime()
    engine = make_engine(time, ttft_s=0.02, prefill_s_per_token=0.001, itl_s=0.005)
    async with engine.sequence(words(10), 8) as sequence:
        await sequence.generate()
        await sequence.generate()
        await sequence.generate(3)
    assert time.sleeps == pytest.approx([0.02 + 10 * 0.001, 0.005, 3 * 0.005])
    assert sequence.ttft == pytest.approx(0.03)
    assert engine.generation_tokens == 5
    assert engine.prompt_tokens == 10


async def test_zero_latency_never_sleeps() -> None:
    time = FakeTime()
    engine = make_engine(time)
    async with engine.sequence(words(10), 16) as sequence:
        for _ in range(16):
            await sequence.generate()
    assert time.sleeps == []
    assert sequence.ttft == 0.0


async def test_ttft_includes_time_spent_queued() -> None:
    time = FakeTime()
    engine = make_engine(time, max_num_seqs=1, ttft_s=0.1)
    blocker = await engine.sequence(words(3), 1).__aenter__()

    async def queued() -> float | None:
        async with engine.sequence(words(3), 1) as sequence:
            await sequence.generate()
            return sequence.ttft

    task = asyncio.create_task(queued())
    await asyncio.sleep(0)
    await blocker.generate()  # the clock moves 0.1 s while the second request waits
    await blocker.__aexit__(None, None, None)
    assert await task == pytest.approx(0.2)


async def test_repeated_prefix_hits_the_cache_and_shortens_ttft() -> None:
    time = FakeTime()
    engine = make_engine(time, ttft_s=0.01, prefill_s_per_token=0.001, block_size=16)
    system = words(40, "sys")
    for question in ("a", "b"):
        async with engine.sequence([*system, *words(5, question)], 4) as sequence:
            await sequence.generate()
    cold, warm = time.sleeps
    assert cold == pytest.approx(0.01 + 45 * 0.001)
    assert warm == pytest.approx(0.01 + (45 - 32) * 0.001)  # two full 16-token blocks hit
    assert sequence.cached_tokens == 32
    assert (engine.prefix_cache_queries, engine.prefix_cache_hits) == (90, 32)


async def test_identical_prompt_never_hits_its_last_token() -> None:
    engine = make_engine(block_size=4)
    prompt = words(8)
    for _ in range(2):
        async with engine.sequence(prompt, 1) as sequence:
            await sequence.generate()
    assert sequence.cached_tokens == 4  # 8 tokens, but at most 7 may hit: one whole block


async def test_prefix_is_inserted_only_once_its_prefill_finished() -> None:
    engine = make_engine(block_size=4)
    prompt = words(9)
    async with engine.sequence(prompt, 1), engine.sequence(prompt, 1) as concurrent:
        assert concurrent.cached_tokens == 0


async def test_prefix_caching_disabled_with_zero_blocks() -> None:
    engine = make_engine(prefix_cache_blocks=0, block_size=4)
    for _ in range(2):
        async with engine.sequence(words(20), 1) as sequence:
            await sequence.generate()
    assert sequence.cached_tokens == 0
    assert (engine.prefix_cache_queries, engine.prefix_cache_hits) == (40, 0)


def test_prefix_cache_chains_blocks_and_evicts_least_recently_used() -> None:
    cache = PrefixCache(block_size=2, max_blocks=3)
    first = block_keys(["a", "b", "c", "d", "e"], 2)
    assert len(first) == 2  # the trailing partial block is not cached
    cache.insert(first)
    assert cache.lookup(block_keys(["a", "b", "c", "d", "x"], 2), 5) == 4
    assert cache.lookup(block_keys(["z", "b", "c", "d", "x"], 2), 5) == 0  # chain broken
    cache.insert(block_keys(["p", "q", "r", "s"], 2))
    assert len(cache) == 3
    assert cache.lookup(first, 5) == 2  # its tail block was the least recently used
