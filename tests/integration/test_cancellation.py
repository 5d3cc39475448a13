"""A client that goes away stops costing: the upstream request is cancelled within a second,
nothing is retried or continued for it, and it is recorded as ``client_closed``, never an error.

A real gateway in front of misbehaving upstreams (``misbehaving``), served two ways: aiohttp's
test server (which cancels a handler when its connection is lost) and an ``AppRunner`` with
``web.run_app``'s defaults (which does not: the gateway's own watcher must notice). Clients are
raw aiohttp (the SDK cannot hang up on purpose). Scenario matrix, each on both servers:

- a whole (non-streamed) answer that takes 30 s to generate: the client hangs up after the
  request reached the upstream -> the upstream connection is closed within 1 s; the backup
  candidate is never asked (no retry); outcome ``client_closed`` (status 499), no error outcome
- a stream that goes silent after three words (a stalled upstream) on a route that continues
  cut streams, or one still flowing: the client hangs up after three words -> the upstream
  connection is closed within 1 s (long before the idle timeout); no continuation is sent
  anywhere
- an upload abandoned half-way (Content-Length 10000, 100 bytes sent, connection closed): outcome
  ``client_closed``; the gateway logs one line for it, at INFO or below, with no traceback
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from misbehaving import Misbehaving, misbehaving
from prometheus_client.parser import text_string_to_metric_families

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher

TIMEOUTS = {"connect_s": 1.0, "first_byte_s": 5.0, "idle_s": 20.0, "total_s": 60.0}
HELLO = [{"role": "user", "content": "hi"}]
Serve = Callable[[dict[str, Any]], Awaitable[str]]


def config(slow: Misbehaving, backup: Misbehaving) -> dict[str, Any]:
    upstreams = {"slow": slow, "backup": backup}
    return {
        "version": 1,
        "upstreams": [
            {"name": n, "base_url": s.base_url, "timeouts": TIMEOUTS} for n, s in upstreams.items()
        ],
        "models": [{"name": n, "upstream": n} for n in upstreams],
        "routes": [{"name": "chat", "candidates": ["slow", "backup"], "mid_stream": "continue"}],
    }


@pytest.fixture(params=["test-server", "run-app-defaults"])
async def serve(
    request: pytest.FixtureRequest, start_gateway: Any, tmp_path: Path
) -> AsyncIterator[Serve]:
    """Start a gateway for a config; returns its base URL (http://host:port)."""
    runners: list[web.AppRunner] = []

    async def start(document: dict[str, Any]) -> str:
        if request.param == "test-server":
            return str((await start_gateway(document)).url)
        path = tmp_path / "production.json"
        path.write_text(json.dumps(document))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ={}, interval=60)
        watcher.load_initial()
        runner = web.AppRunner(create_app(watcher, metrics), shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


@asynccontextmanager
async def upstreams(**slow: Any) -> AsyncIterator[tuple[Misbehaving, Misbehaving]]:
    async with misbehaving(**slow) as first, misbehaving(tokens=5) as backup:
        yield first, backup


async def outcomes(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "switchman_requests_total":
                outcome = sample.labels["outcome"]
                found[outcome] = found.get(outcome, 0.0) + sample.value
    return found


async def until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    end = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


async def closed_outcome(url: str) -> dict[str, float]:
    """The request outcomes once the closed request has been accounted."""
    end = time.monotonic() + 5
    while True:
        found = await outcomes(url)
        if found.get("client_closed") or time.monotonic() > end:
            return found
        await asyncio.sleep(0.02)


async def test_a_client_leaving_a_long_generation_cancels_it_and_nothing_is_retried(
    serve: Serve,
) -> None:
    async with upstreams(headers_delay=30.0) as (slow, backup):
        url = await serve(config(slow, backup))
        body = {"model": "chat", "messages": HELLO}
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(session.post(f"{url}/v1/chat/completions", json=body))
            await until(lambda: len(slow.seen) == 1)
            task.cancel()  # the client gives up: its connection closes
            left = time.monotonic()
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.wait_for(slow.hung_up.wait(), 1.0)
        cancelled_after = time.monotonic() - left
        await asyncio.sleep(0.5)  # a retry, if any, would have been sent by now
        found = await closed_outcome(url)

    assert cancelled_after < 1.0
    assert backup.seen == []
    assert len(slow.seen) == 1
    assert found.get("client_closed") == 1
    assert set(found) == {"client_closed"}


@pytest.mark.parametrize(
    "behaviour",
    [{"stall_after": 3, "tokens": 40}, {"tokens": 400, "delay": 0.02}],
    ids=["silent", "flowing"],
)
async def test_a_client_leaving_a_stream_cancels_it_and_no_continuation_is_sent(
    serve: Serve, behaviour: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with upstreams(**behaviour) as (slow, backup):
        url = await serve(config(slow, backup))
        body = {"model": "chat", "messages": HELLO, "stream": True}
        async with aiohttp.ClientSession() as session:
            resp = await session.post(f"{url}/v1/chat/completions", json=body)
            assert resp.status == 200
            for _ in range(3):
                assert (await resp.content.readline()).startswith(b"data: ")
                await resp.content.readline()  # the blank line ending the event
            resp.close()  # hang up while the upstream is silent
            left = time.monotonic()
        await asyncio.wait_for(slow.hung_up.wait(), 1.0)
        cancelled_after = time.monotonic() - left
        await asyncio.sleep(0.5)
        found = await closed_outcome(url)

    assert cancelled_after < 1.0  # the idle timeout is 20 s
    assert backup.seen == []
    assert slow.continuations == []
    assert found.get("client_closed") == 1
    assert set(found) == {"client_closed"}
    gateway_records = [r for r in caplog.records if r.name.startswith("switchman.gateway")]
    loud = [r for r in gateway_records if r.levelno > logging.INFO or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]
    assert sum("client closed" in r.getMessage() for r in gateway_records) == 1


async def test_an_abandoned_upload_is_client_closed_with_one_quiet_log_line(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with upstreams() as (slow, backup):
        url = await serve(config(slow, backup))
        host, port = url.removeprefix("http://").split(":")
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10000\r\n\r\n" + b"{" + b" " * 99
        )
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        await writer.wait_closed()
        found = await closed_outcome(url)

    assert found == {"client_closed": 1}
    assert slow.seen == []
    assert backup.seen == []
    loud = [r for r in caplog.records if r.levelno > logging.INFO or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]
    lines = [r.getMessage() for r in caplog.records if "client closed" in r.getMessage()]
    assert len(lines) == 1
