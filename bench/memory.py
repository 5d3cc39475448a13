"""Memory with many open streams: RSS of one gateway worker holding N streams at once.

``python -m bench memory [--streams N] [--out DIR]`` (default 1,000). A slow upstream of our own
(``python -m bench.memory upstream PORT``) answers each streamed chat request with its first
chunk at once and the rest only when told to (``POST /release``), so every stream stays open
as long as wanted. The client opens N streams through the target, waits until each has its
first chunk, lets it settle, reads the target's RSS (the whole process tree, as
``bench.procs``), releases the upstream, checks every stream finished with ``[DONE]``, and reads
the RSS again. Targets: ``switchman-1`` with the production features of ``bench.compare`` and
the minimal relay, side by side. Switchman's tenancy here keeps its limits in-process (no
Redis), and each upstream's pool is as large as the streams it must hold.
Results: ``bench/results/memory.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import procs, targets
from bench.compare import _ready, machine
from bench.load import free_port

RESULTS = Path(__file__).parent / "results"


class _Gate:
    """Held streams wait on ``event``; ``/rearm`` puts a fresh one in place."""

    def __init__(self) -> None:
        self.event = asyncio.Event()


RELEASE = web.AppKey("release", _Gate)


async def _chat(request: web.Request) -> web.StreamResponse:
    await request.read()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m"}
    first = {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]}
    await response.write(f"data: {json.dumps(first)}\n\n".encode())
    await request.app[RELEASE].event.wait()
    done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    usage = {**chunk, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}
    await response.write(f"data: {json.dumps(done)}\n\ndata: {json.dumps(usage)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def _release(request: web.Request) -> web.Response:
    request.app[RELEASE].event.set()
    return web.Response(text="released")


async def _rearm(request: web.Request) -> web.Response:
    request.app[RELEASE].event = asyncio.Event()
    return web.Response(text="armed")


def upstream_app() -> web.Application:
    app = web.Application()
    app[RELEASE] = _Gate()
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_post("/release", _release)
    app.router.add_post("/rearm", _rearm)
    app.router.add_get("/health", _ok)
    return app


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def hold(target: targets.Target, upstream: int, streams: int) -> dict[str, Any]:
    """Open ``streams`` streams through ``target``; RSS while all are open, and after."""
    pids = procs.tree(target.pid("chat-stream"))
    idle = procs.rss_bytes(pids)
    body = {
        "model": "m-stream",
        "messages": [{"role": "user", "content": "hello"}],
        "stream": True,
    }
    firsts = 0
    everyone = asyncio.Event()
    finished: list[bool] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one() -> None:
            nonlocal firsts
            async with session.post(
                target.url("chat-stream"), json=body, headers=target.headers
            ) as resp:
                resp.raise_for_status()
                await resp.content.readany()
                firsts += 1
                if firsts == streams:
                    everyone.set()
                rest = await resp.read()
                finished.append(b"[DONE]" in rest)

        tasks = [asyncio.create_task(one()) for _ in range(streams)]
        started = time.monotonic()
        waiter = asyncio.create_task(everyone.wait())
        await asyncio.wait([waiter, *tasks], timeout=240, return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"a stream failed: {failed[0].exception()!r}")
        opened_s = time.monotonic() - started
        await asyncio.sleep(2.0)  # settle: buffers, lazily grown pools
        pids = procs.tree(target.pid("chat-stream"))
        held = procs.rss_bytes(pids)
        async with session.post(f"http://127.0.0.1:{upstream}/release") as resp:
            await resp.read()
        await asyncio.gather(*tasks)
        async with session.post(f"http://127.0.0.1:{upstream}/rearm") as resp:
            await resp.read()
    await asyncio.sleep(1.0)
    after = procs.rss_bytes(procs.tree(target.pid("chat-stream")))
    return {
        "target": target.name,
        "streams": streams,
        "opened_in_s": round(opened_s, 2),
        "all_done": len(finished) == streams and all(finished),
        "rss_idle_mb": idle / 2**20,
        "rss_open_mb": held / 2**20,
        "rss_after_mb": after / 2**20,
        "kib_per_stream": (held - idle) / streams / 1024,
    }


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench memory")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # children inherit it
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    workdir = Path(tempfile.mkdtemp(prefix="switchman-memory-"))
    port = free_port()
    upstream = targets.Target(
        "upstream",
        {"chat": port},
        [[sys.executable, "-m", "bench.memory", "upstream", str(port)]],
        "/health",
    )
    collector = free_port()
    tenancy, key = targets.tenancy_block(workdir, None)
    config: dict[str, Any] = targets.switchman_config([port, port], [port, port], tenancy)
    for spec in config["upstreams"]:  # a pool as large as the streams it must hold
        spec["max_connections"] = args.streams
    path = workdir / "gateway.json"
    path.write_text(json.dumps(config))
    gateway = targets.switchman("switchman-1", free_port(), path, 1, collector, workdir, key)
    col = targets.Target(
        "collector",
        {"stats": collector},
        [[sys.executable, "-m", "bench.collector", str(collector)]],
        "/stats",
    )
    relay = targets.relay(port, port, (free_port(), free_port()), workdir)
    started = [upstream, col, gateway, relay]
    results: dict[str, Any] = {"machine": machine(), "points": []}
    try:
        for target in started:
            target.start()
        for target in started:
            await _ready(target)
        for target in (gateway, relay):
            point = await hold(target, port, args.streams)
            print(point, flush=True)
            results["points"].append(point)
    finally:
        for target in started:
            target.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    _write(results, args.out)


def _write(results: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "memory.json").write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]
    lines = [
        "# Memory with open streams (bench/memory.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores; RSS of the target's whole process tree. "
        "Switchman runs one worker with every production feature of bench/compare.py (metrics, "
        "JSON access log, 10% OTLP tracing, a two-candidate route); the budget is 150 MB with "
        "1,000 open streams.",
        "",
        "| target | streams | all ended with [DONE] | RSS idle MB | RSS with streams open MB "
        "| KiB per stream | RSS after MB | opened in s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in results["points"]:
        lines.append(
            f"| {p['target']} | {p['streams']} | {'yes' if p['all_done'] else '**no**'} "
            f"| {p['rss_idle_mb']:.0f} | {p['rss_open_mb']:.0f} | {p['kib_per_stream']:.1f} "
            f"| {p['rss_after_mb']:.0f} | {p['opened_in_s']} |"
        )
    (out / "memory.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'memory.md'}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["upstream"]:
        web.run_app(
            upstream_app(),
            host="127.0.0.1",
            port=int(sys.argv[2]),
            print=None,
            access_log=None,
            backlog=4096,
        )
    else:
        asyncio.run(main(sys.argv[1:]))
