"""Tenancy across processes: two ``switchman gateway`` processes share one real Redis, and two
``switchman demo --tenants --redis URL`` share their tenants' limits; ``switchman usage`` reads
the spend back.

Two gateway processes (one config) in front of one simulator, clients spread over both, 16 at a
time, half of the requests streamed. Strict mode (``sync_s: 0``, every request checked in Redis):

    tenant  | limit                    | sent | expect (across both gateways)
    --------|--------------------------|------|---------------------------------------------
    rpm     | 12 requests per minute   | 32   | 12 admitted (+ what refills while it runs)
    tpm     | 600 tokens per minute    | 32   | admitted tokens <= 600 + one reservation
    budget  | $0.002 a day (hard)      | 48   | spend <= the limit, some refused, books exact

Synchronised mode (the default, every 50 ms): a burst on both before either synced the tenant
admits at most what each saw (2 x 12); once both have synced, a second burst admits what refilled
meanwhile, within replicas x rate x sync_s; the usage counters in Redis are exact after both stop.

The gateways stop as a pod does (SIGTERM, then a grace period), so the settles of the last
answers reach Redis before the books are read. Every SDK client is closed before the next burst
(``clients``): an unclosed one is closed from its ``__del__`` after the garbage collector has
already closed its sockets, and that late close unregistered whichever new connection had
reused the descriptor number, so a later request waited on a socket nobody read.

Demo: two demos on one Redis print the same ``key team-a:`` / ``key team-b:`` lines; team-a's
five requests a minute are shared (three on one, two on the other, a sync apart, the sixth
refused on either);
``switchman usage`` prints team-a's five requests.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import openai
import processes
import redisproc
from redis.asyncio import Redis

from switchman.gateway.tenancy.keys import hash_key, new_key
from switchman.sim.runner import RunningSim

PROMPT = [{"role": "user", "content": "Say something short"}]
PRICE = {"input_per_mtok": 5.0, "output_per_mtok": 20.0}
MAX_TOKENS = 20
GRACE = 20  # seconds a stopping gateway gets after SIGTERM, as a pod's grace period


def gateway_config(
    sim: RunningSim, keys: Path, redis_url: str, sync_s: float = 0
) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [{"name": "sim", "base_url": f"{sim.url}/v1"}],
        "models": [{"name": "m", "upstream": "sim", "upstream_model": "tiny", "price": PRICE}],
        "routes": [{"name": "auto", "candidates": ["m"]}],
        "tenancy": {
            "keys_file": str(keys),
            "redis": {"url": redis_url, "prefix": "p", "sync_s": sync_s},
            "tenants": [
                {"name": "rpm", "limits": {"requests_per_minute": 12}},
                {"name": "tpm", "limits": {"tokens_per_minute": 600}},
                {"name": "budget", "daily": {"hard_usd": 0.002}},
            ],
        },
    }


async def one(client: openai.AsyncOpenAI, stream: bool) -> int:
    """Send one request; the tokens it used, or -1 when it was refused with a 429."""
    try:
        if not stream:
            reply = await client.chat.completions.create(
                model="auto",
                messages=PROMPT,  # type: ignore[arg-type]
                max_tokens=MAX_TOKENS,
            )
            assert reply.usage is not None
            return reply.usage.total_tokens
        chunks = await client.chat.completions.create(
            model="auto",
            messages=PROMPT,  # type: ignore[arg-type]
            max_tokens=MAX_TOKENS,
            stream=True,
            stream_options={"include_usage": True},
        )
        total = 0
        async for chunk in chunks:
            if chunk.usage is not None:
                total = chunk.usage.total_tokens
        return total
    except openai.RateLimitError:
        return -1


@asynccontextmanager
async def clients(ports: list[int], key: str) -> AsyncIterator[list[openai.AsyncOpenAI]]:
    """One SDK client per gateway, all closed on the way out."""
    made = [
        openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=90
        )
        for port in ports
    ]
    try:
        yield made
    finally:
        for client in made:
            await client.close()


async def burst(clients: list[openai.AsyncOpenAI], count: int) -> list[int]:
    gate = asyncio.Semaphore(16)

    async def send(i: int) -> int:
        async with gate:
            return await one(clients[i % len(clients)], stream=i % 4 >= 2)

    return await asyncio.gather(*(send(i) for i in range(count)))


async def test_two_gateway_processes_share_limits_and_budgets(
    tmp_path: Path, start_sim: Any, redis: redisproc.RedisProcess
) -> None:
    sim = await start_sim()
    keys = {name: new_key() for name in ("rpm", "tpm", "budget")}
    keys_path = tmp_path / "keys.json"
    keys_path.write_text(
        json.dumps({"keys": [{"tenant": t, "sha256": hash_key(k)} for t, k in keys.items()]})
    )
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(gateway_config(sim, keys_path, redis.url)))
    ports = [processes.free_port(), processes.free_port()]
    async with (
        processes.gateway(config, ports[0], "--access-log", "off", grace=GRACE) as first,
        processes.gateway(config, ports[1], "--access-log", "off", grace=GRACE) as second,
    ):
        for port, proc in zip(ports, (first, second), strict=True):
            await processes.wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)

        started = time.monotonic()
        async with clients(ports, keys["rpm"]) as sdks:
            rpm = await burst(sdks, 32)
        refill = (time.monotonic() - started) * 12 / 60
        admitted = sum(r >= 0 for r in rpm)
        assert 12 <= admitted <= 12 + int(refill) + 1

        started = time.monotonic()
        async with clients(ports, keys["tpm"]) as sdks:
            tpm = await burst(sdks, 32)
        refill = (time.monotonic() - started) * 600 / 60
        used = sum(r for r in tpm if r >= 0)
        reservation = 100 + MAX_TOKENS  # a prompt estimate (body bytes / 4) plus max_tokens
        assert any(r < 0 for r in tpm)
        assert used <= 600 + reservation + refill

        async with clients(ports, keys["budget"]) as sdks:
            budget = await burst(sdks, 48)
        assert any(r < 0 for r in budget)
        assert any(r >= 0 for r in budget)
    client = Redis.from_url(redis.url, decode_responses=True)
    try:
        spent = 0
        async for key in client.scan_iter(match="p:{budget}:budget:daily:*"):
            books = await client.hgetall(key)
            spent += int(books["spent"])
            assert int(books["reserved"]) == 0
    finally:
        await client.aclose()
    assert 0 < spent <= 0.002 * 1e9


def write_keys(tmp_path: Path, names: tuple[str, ...]) -> tuple[dict[str, str], Path]:
    keys = {name: new_key() for name in names}
    path = tmp_path / "keys.json"
    path.write_text(
        json.dumps({"keys": [{"tenant": t, "sha256": hash_key(k)} for t, k in keys.items()]})
    )
    return keys, path


async def test_two_synchronised_gateways_converge_within_a_sync(
    tmp_path: Path, start_sim: Any, redis: redisproc.RedisProcess
) -> None:
    sim = await start_sim()
    keys, keys_path = write_keys(tmp_path, ("rpm", "tpm", "budget"))
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(gateway_config(sim, keys_path, redis.url, sync_s=0.05)))
    ports = [processes.free_port(), processes.free_port()]
    async with (
        processes.gateway(config, ports[0], "--access-log", "off", grace=GRACE) as first,
        processes.gateway(config, ports[1], "--access-log", "off", grace=GRACE) as second,
    ):
        for port, proc in zip(ports, (first, second), strict=True):
            await processes.wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
        started = time.monotonic()
        async with clients(ports, keys["rpm"]) as sdks:
            cold = sum(r >= 0 for r in await burst(sdks, 32))
            assert 12 <= cold <= 2 * 12 + 1  # each admitted at most what it saw: a full bucket
            await asyncio.sleep(0.3)  # both synced: each sees the debt of the other's takes
            warm = sum(r >= 0 for r in await burst(sdks, 32))
        refill = (time.monotonic() - started) * 12 / 60
        assert cold + warm <= 2 * 12 + int(refill) + 1 + 2  # + replicas x rate x sync_s (< 1)
    client = Redis.from_url(redis.url, decode_responses=True)
    try:
        usage: dict[str, str] = {}
        async for key in client.scan_iter(match="p:{rpm}:usage:*"):
            usage = await client.hgetall(key)
    finally:
        await client.aclose()
    assert int(usage["auto|m|requests"]) == cold + warm  # flushed exactly at shutdown


async def _keys(proc: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    while len(found) < 2:
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line, "the demo ended before printing its keys"
        if line.startswith("key "):
            tenant, key = line[4:].strip().split(": ")
            found[tenant] = key
    return found


async def test_two_demos_share_tenant_limits_through_redis(redis: redisproc.RedisProcess) -> None:
    ports = [processes.free_port(), processes.free_port()]
    argv = ("demo", "--tenants", "--redis", redis.url, "--port")
    async with (
        processes.switchman(*argv, str(ports[0]), stdout=processes.PIPE) as one_demo,
        processes.switchman(*argv, str(ports[1]), stdout=processes.PIPE) as two_demo,
    ):
        keys = [await _keys(one_demo), await _keys(two_demo)]
        assert keys[0] == keys[1]
        assert set(keys[0]) == {"team-a", "team-b"}
        for port, proc in zip(ports, (one_demo, two_demo), strict=True):
            await processes.wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
        async with clients(ports, keys[0]["team-a"]) as demos:
            for i in range(5):
                assert await one(demos[i % 2], stream=False) >= 0
                await asyncio.sleep(0.3)  # the demos sync every 50 ms: each sees the other's
            assert await one(demos[1], stream=False) == -1
            assert await one(demos[0], stream=True) == -1
    async with processes.switchman(
        "usage", "--redis", redis.url, stdout=processes.PIPE, stderr=processes.PIPE
    ) as usage:
        out, err = await asyncio.wait_for(usage.communicate(), 30)
    assert usage.returncode == 0, err.decode()
    rows = [line.split() for line in out.decode().splitlines()]
    assert ["team-a", "(all)", "(all)", "5"] in [row[:4] for row in rows]
