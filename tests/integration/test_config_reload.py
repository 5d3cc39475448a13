"""Hot reload under load: config rewrites never fail or truncate an in-flight stream.

The acceptance test for config hot reload. Fake OpenAI-compatible upstreams (aiohttp apps on
127.0.0.1) stream ``CHUNKS`` content chunks a few ms apart, then a finish chunk, a usage chunk and
``[DONE]``. Clients are the official ``AsyncOpenAI`` SDK with retries off, so any error counts.

The configs cycle A -> B -> C -> A ...:
  A: one upstream ``primary``; route ``auto`` -> [small]
  B: adds an equivalent upstream ``secondary``; ``auto`` -> [twin (on secondary), small]
     (``primary`` unchanged, so its client and connection pool are kept)
  C: drops ``secondary``; ``primary`` with other timeouts (a new client); an extra route; fewer
     attempts

Scenario matrix:

- 50 concurrent streams while the file is atomically replaced 20 times: zero failures, every
  stream complete, generation 21, 21 successful loads counted, both upstreams served traffic, and
  every client dropped along the way has its connection pool closed once its requests drained
- the same under a Kubernetes ConfigMap layout (``config.json -> ..data/config.json``,
  ``..data -> ..<timestamp>`` swapped with ``os.replace``), on a second gateway
- a client kept by one reload and dropped by the next stays open for a stream still running on
  the generation before both (a reload must not close what an older generation still uses)
- an upstream removed while one of its streams is in flight: the stream completes, then the
  removed client's connection pool is closed; the kept upstream's stays open
- an invalid config: the last good one keeps serving, ``/readyz`` is 200 and shows the error,
  ``result="invalid"`` counted and last-reload-successful 0; a valid config clears the error
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai import AsyncOpenAI

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.client import UpstreamClient
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.gateway.upstreams.pool import Pool
from switchman.gateway.upstreams.runtime import Runtime

CHUNKS = 20
EXPECTED_TEXT = "".join(f"t{i} " for i in range(CHUNKS))
USAGE = {"prompt_tokens": 5, "completion_tokens": CHUNKS, "total_tokens": 5 + CHUNKS}

AiohttpServer = Callable[..., Awaitable[TestServer]]


class FakeUpstream:
    """An OpenAI-compatible chat endpoint streaming CHUNKS chunks, finish, usage, [DONE].

    The gap between chunks is ``delay``, or the request's own ``pace`` field (an unknown field
    the gateway must pass through). Set ``gate`` to hold every stream after its first chunk
    until the gate opens; ``holding`` is set once a stream waits there.
    """

    def __init__(self, delay: float = 0.002) -> None:
        self.delay = delay
        self.started = 0
        self.finished = 0
        self.gate: asyncio.Event | None = None
        self.holding = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("stream") is not True or body["stream_options"]["include_usage"] is not True:
            return web.json_response({"error": {"message": "fake streams only"}}, status=400)
        self.started += 1
        model = body["model"]
        pace = body.get("pace", self.delay)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(CHUNKS):
            delta = {"role": "assistant", "content": f"t{i} "} if i == 0 else {"content": f"t{i} "}
            await response.write(_sse(_chunk(model, [{"index": 0, "delta": delta}])))
            if i == 0 and self.gate is not None:
                self.holding.set()
                await self.gate.wait()
            await asyncio.sleep(pace)
        finish = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        await response.write(_sse(_chunk(model, finish)))
        await response.write(_sse({**_chunk(model, []), "usage": USAGE}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        self.finished += 1
        return response


def _chunk(model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": choices,
    }


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


class Configs:
    """The A/B/C configs over the two fake upstreams' URLs."""

    def __init__(self, primary: str, secondary: str) -> None:
        self.primary = primary
        self.secondary = secondary

    def a(self) -> dict[str, Any]:
        return {
            "version": 1,
            "upstreams": [{"name": "primary", "base_url": self.primary}],
            "models": [{"name": "small", "upstream": "primary"}],
            "routes": [{"name": "auto", "candidates": ["small"]}],
        }

    def b(self) -> dict[str, Any]:
        return {
            "version": 1,
            "upstreams": [
                {"name": "primary", "base_url": self.primary},
                {"name": "secondary", "base_url": self.secondary},
            ],
            "models": [
                {"name": "small", "upstream": "primary"},
                {"name": "twin", "upstream": "secondary", "upstream_model": "small"},
            ],
            "routes": [{"name": "auto", "candidates": ["twin", "small"]}],
        }

    def c(self) -> dict[str, Any]:
        primary = {
            "name": "primary",
            "base_url": self.primary,
            "timeouts": {"first_byte_s": 20, "idle_s": 10},
        }
        return {
            "version": 1,
            "server": {"retry": {"max_attempts": 2}},
            "upstreams": [primary],
            "models": [{"name": "small", "upstream": "primary"}],
            "routes": [
                {"name": "auto", "candidates": ["small"]},
                {"name": "fast", "candidates": ["small"]},
            ],
        }

    def cycle(self, count: int) -> list[dict[str, Any]]:
        """``count`` configs following A (the initial one): B, C, A, B, C, ..."""
        order = [self.b, self.c, self.a]
        return [order[i % 3]() for i in range(count)]


class ConfigMapDir:
    """A directory laid out the way the kubelet mounts a ConfigMap, updated the same way."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = root / "config.json"
        self._versions = 0

    def publish(self, doc: dict[str, Any]) -> None:
        self._versions += 1
        version = f"..2026_01_01_00_00_{self._versions:02d}.000000001"
        (self.root / version).mkdir()
        (self.root / version / "config.json").write_text(json.dumps(doc))
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        staging = self.root / "..data_tmp"
        staging.symlink_to(version)
        os.replace(staging, data)
        if old is not None:
            shutil.rmtree(self.root / old)
        if not self.path.is_symlink():
            self.path.symlink_to("..data/config.json")


async def until(predicate: Callable[[], bool], what: str, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def sdk(base_url: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base_url, api_key="sk-client", max_retries=0, timeout=5)


async def stream_chat(
    client: AsyncOpenAI, wants_usage: bool = False, pace: float | None = None
) -> None:
    """One streamed chat; raises unless every chunk, the finish and (if asked) usage arrive."""
    stream = await client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "count"}],
        stream=True,
        stream_options={"include_usage": True} if wants_usage else None,
        extra_body={"pace": pace} if pace is not None else None,
    )
    text, finish, usage = "", None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage.total_tokens
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == EXPECTED_TEXT, f"truncated stream: {text!r}"
    assert finish == "stop", f"stream without finish: {finish!r}"
    assert usage == (USAGE["total_tokens"] if wants_usage else None), f"usage {usage!r}"


async def traffic(base_url: str, stop: asyncio.Event, workers: int = 50) -> tuple[int, list[str]]:
    """``workers`` concurrent streaming clients, each looping until ``stop`` (at least once).

    A third of them stream slowly (~1.6 s) and the rest faster (~0.6 s), so streams of older
    generations outlive those of newer ones, as long and short generations do in production.
    """
    client = sdk(base_url)
    failures: list[str] = []
    completed = 0

    async def worker(n: int) -> None:
        nonlocal completed
        await asyncio.sleep(n * 0.015)  # staggered, so streams keep starting all the time
        while True:
            try:
                pace = 0.08 if n % 3 == 0 else 0.03
                await stream_chat(client, wants_usage=n % 2 == 0, pace=pace)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            else:
                completed += 1
            if stop.is_set():
                return

    try:
        await asyncio.gather(*(worker(n) for n in range(workers)))
    finally:
        await client.close()
    return completed, failures


async def reload(watcher: ConfigWatcher, write: Callable[[], None]) -> Runtime:
    """Apply one config change and wait until the watcher serves it."""
    assert watcher.current is not None
    before = watcher.current.generation
    write()
    await until(
        lambda: watcher.current is not None and watcher.current.generation > before,
        f"reload after generation {before}",
    )
    assert watcher.current is not None
    return watcher.current


Pools = dict[UpstreamClient, Pool]


def pools_of(runtime: Runtime) -> Pools:
    """The connection pools of a freshly swapped-in runtime's clients."""
    return {client: client.wire for client in runtime.upstreams.values()}


def reloads(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("switchman_config_reloads_total", {"result": result})
    return value or 0.0


@pytest.fixture
async def upstreams(aiohttp_server: AiohttpServer) -> tuple[FakeUpstream, FakeUpstream, Configs]:
    primary, secondary = FakeUpstream(), FakeUpstream()
    servers = [await aiohttp_server(f.app(), host="127.0.0.1") for f in (primary, secondary)]
    urls = [f"http://127.0.0.1:{s.port}/v1" for s in servers]
    return primary, secondary, Configs(*urls)


async def churn_under_traffic(
    base_url: str,
    watcher: ConfigWatcher,
    writes: list[Callable[[], None]],
    fakes: tuple[FakeUpstream, FakeUpstream],
) -> tuple[int, list[str], Pools]:
    """Run 50 streaming clients while applying ``writes`` one reload at a time.

    The clients start 15 ms apart and their streams last 0.6-1.6 s, so streams start during
    most generations and each one straddles many reloads.
    """
    assert watcher.current is not None
    pools = pools_of(watcher.current)
    stop = asyncio.Event()
    clients = asyncio.create_task(traffic(base_url, stop))

    def started() -> int:
        return sum(f.started for f in fakes)

    await until(lambda: started() >= 5, "streams to be in flight")
    for write in writes:
        pools |= pools_of(await reload(watcher, write))
        await asyncio.sleep(0.03)
    stop.set()
    completed, failures = await clients
    return completed, failures, pools


async def assert_dropped_pools_close(watcher: ConfigWatcher, pools: Pools, expected: int) -> None:
    """Every client the current config no longer uses is closed; the ones it uses are open.

    ``expected`` dropped clients: one per reload, as B keeps A's ``primary`` and adds one.
    """
    assert watcher.current is not None
    live = set(watcher.current.upstreams.values())
    dropped = [pool for client, pool in pools.items() if client not in live]
    assert len(dropped) == expected
    await until(lambda: all(s.closed for s in dropped), "dropped clients' pools to close")
    assert not any(pools[client].closed for client in live), "a live client was closed"


async def test_fifty_streams_survive_twenty_atomic_rewrites(
    start_gateway: Any, upstreams: tuple[FakeUpstream, FakeUpstream, Configs]
) -> None:
    primary, secondary, configs = upstreams
    gw = await start_gateway(configs.a(), interval=0.01)
    writes = [lambda doc=doc: gw.write_config(doc) for doc in configs.cycle(20)]

    completed, failures, pools = await churn_under_traffic(
        gw.base_url, gw.watcher, writes, (primary, secondary)
    )

    assert failures == [], f"{len(failures)} failed of {completed + len(failures)}: {failures[:3]}"
    assert completed >= 50
    assert primary.finished > 0
    assert secondary.finished > 0  # route changes took effect mid-traffic
    assert gw.watcher.current.generation == 21
    assert reloads(gw.metrics, "success") == 21  # the initial load and 20 reloads
    assert reloads(gw.metrics, "invalid") == 0
    await assert_dropped_pools_close(gw.watcher, pools, expected=20)


async def test_configmap_symlink_swaps_reload_without_failing_streams(
    tmp_path: Path,
    aiohttp_server: AiohttpServer,
    upstreams: tuple[FakeUpstream, FakeUpstream, Configs],
) -> None:
    primary, secondary, configs = upstreams
    mount = ConfigMapDir(tmp_path / "configmap")
    mount.root.mkdir()
    mount.publish(configs.a())
    metrics = Metrics()
    watcher = ConfigWatcher(mount.path, metrics, environ={}, interval=0.01)
    watcher.load_initial()
    gateway = await aiohttp_server(create_app(watcher, metrics), host="127.0.0.1")
    writes = [lambda doc=doc: mount.publish(doc) for doc in configs.cycle(6)]

    completed, failures, pools = await churn_under_traffic(
        f"http://127.0.0.1:{gateway.port}/v1", watcher, writes, (primary, secondary)
    )

    assert failures == [], f"{len(failures)} failed of {completed + len(failures)}: {failures[:3]}"
    assert secondary.finished > 0
    assert watcher.current is not None
    assert watcher.current.generation == 7
    assert reloads(metrics, "success") == 7
    assert mount.path.is_symlink()
    assert len(list(mount.root.glob("..2026_*"))) == 1  # old versions really were removed
    await assert_dropped_pools_close(watcher, pools, expected=6)


async def test_client_kept_by_one_reload_stays_open_for_older_generations(
    start_gateway: Any, upstreams: tuple[FakeUpstream, FakeUpstream, Configs]
) -> None:
    primary, _, configs = upstreams
    gw = await start_gateway(configs.a(), interval=0.01)
    first_client = gw.watcher.current.upstreams["primary"]
    first_pool = first_client.wire
    primary.gate = asyncio.Event()
    client = sdk(gw.base_url)
    in_flight = asyncio.create_task(stream_chat(client))  # leases generation 1

    try:
        await until(primary.holding.is_set, "a stream held mid-way on generation 1")
        kept = await reload(gw.watcher, lambda: gw.write_config(configs.b()))
        assert kept.upstreams["primary"] is first_client  # unchanged spec: pool kept
        changed = await reload(gw.watcher, lambda: gw.write_config(configs.c()))
        assert changed.upstreams["primary"] is not first_client
        await asyncio.sleep(0.05)  # give a premature close time to happen
        assert not first_pool.closed, "closed by generation 2 while generation 1 streams on it"
        primary.gate.set()
        await in_flight
    finally:
        in_flight.cancel()
        await client.close()
    await until(lambda: first_pool.closed, "the replaced client to close once drained")


async def test_removed_upstream_is_closed_only_after_its_stream_drains(
    start_gateway: Any, upstreams: tuple[FakeUpstream, FakeUpstream, Configs]
) -> None:
    _, secondary, configs = upstreams
    gw = await start_gateway(configs.b(), interval=0.01)
    old = gw.watcher.current
    removed, kept = old.upstreams["secondary"], old.upstreams["primary"]
    removed_pool, kept_pool = removed.wire, kept.wire
    secondary.gate = asyncio.Event()
    client = sdk(gw.base_url)
    in_flight = asyncio.create_task(stream_chat(client, wants_usage=True))  # auto -> twin first

    try:
        await until(secondary.holding.is_set, "a stream held mid-way on 'secondary'")
        new = await reload(gw.watcher, lambda: gw.write_config(configs.a()))
        await asyncio.sleep(0.05)
        assert "secondary" not in new.upstreams
        assert new.upstreams["primary"] is kept
        assert not removed_pool.closed, "closed while its stream was still in flight"
        secondary.gate.set()
        await in_flight
    finally:
        in_flight.cancel()
        await client.close()
    await until(lambda: removed_pool.closed, "the removed upstream's pool to close")
    await old.wait_closed()
    assert not kept_pool.closed
    assert secondary.finished == 1


async def test_invalid_config_keeps_the_last_good_one_and_readyz_reports_it(
    start_gateway: Any, upstreams: tuple[FakeUpstream, FakeUpstream, Configs]
) -> None:
    primary, secondary, configs = upstreams
    gw = await start_gateway(configs.a(), interval=0.01)
    serving = gw.watcher.current
    invalid = configs.b()
    invalid["routes"] = [{"name": "auto", "candidates": ["twin", "ghost"]}]
    client = sdk(gw.base_url)

    try:
        gw.write_config(invalid)
        await until(lambda: gw.watcher.last_error is not None, "the invalid config to be seen")

        await asyncio.gather(*(stream_chat(client) for _ in range(5)))
        assert gw.watcher.current is serving
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{gw.url}/readyz") as resp:
                assert resp.status == 200
                ready = await resp.json()
            async with http.get(f"{gw.url}/metrics") as resp:
                exposition = await resp.text()
        assert ready["status"] == "ready"
        assert ready["config"]["generation"] == 1
        assert "route 'auto': unknown models ['ghost']" in ready["config"]["last_reload_error"]
        assert str(gw.config_path) in ready["config"]["last_reload_error"]
        assert 'switchman_config_reloads_total{result="invalid"} 1.0' in exposition
        assert "switchman_config_last_reload_successful 0.0" in exposition

        await reload(gw.watcher, lambda: gw.write_config(configs.b()))
        await stream_chat(client)
        async with aiohttp.ClientSession() as http, http.get(f"{gw.url}/readyz") as resp:
            ready = await resp.json()
    finally:
        await client.close()
    assert ready["config"]["last_reload_error"] is None
    assert ready["config"]["generation"] == 2
    assert set(ready["upstreams"]) == {"primary", "secondary"}
    assert reloads(gw.metrics, "success") == 2
    assert reloads(gw.metrics, "invalid") == 1
    assert gw.metrics.registry.get_sample_value("switchman_config_last_reload_successful") == 1
    assert primary.finished == 5
    assert secondary.finished == 1
