"""Load generation shared by the benchmarks: free ports, readiness waits, a closed-loop client.

``load`` runs ``concurrency`` workers that each send the same request back to back for
``seconds`` and reports requests/s and latency percentiles; it counts non-200 answers as errors.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import time

import aiohttp

BODY = json.dumps(
    {"model": "m", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 8}
).encode()
STREAM_BODY = json.dumps(
    {
        "model": "m",
        "messages": [{"role": "user", "content": "hello there"}],
        "max_tokens": 8,
        "stream": True,
    }
).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_ready(url: str, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < end:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {deadline}s")


async def load(
    url: str,
    body: bytes,
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    sent = {"content-type": "application/json", **(headers or {})}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                started = time.perf_counter()
                async with session.post(url, data=body, headers=sent) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - started)

        begun = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begun
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }
