"""Streaming backpressure: a slow client slows the upstream read instead of growing a buffer.

Scenarios:
- an upstream that streams ~48 MB as fast as it can, a client that reads one chunk and then
  stops reading: the upstream's writes stall well before it has sent everything (socket buffers
  and aiohttp's bounded read buffer hold at most a few MB each), and the gateway's memory
  stays bounded; once the client resumes, the whole stream arrives intact and in order.
"""

from __future__ import annotations

import asyncio
import json
import resource
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

CHUNKS = 48_000
PADDING = "x" * 960  # ~1 KB per SSE event


class FloodUpstream:
    """An OpenAI-compatible upstream that writes chunks as fast as TCP lets it."""

    def __init__(self) -> None:
        self.written = 0

    async def chat(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        await response.prepare(request)
        for index in range(CHUNKS):
            chunk = {
                "id": "flood",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "flood",
                "choices": [{"index": 0, "delta": {"content": f"{index} {PADDING}"}}],
            }
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            self.written += 1
        usage = {"prompt_tokens": 1, "completion_tokens": CHUNKS, "total_tokens": CHUNKS + 1}
        final = {"id": "flood", "object": "chat.completion.chunk", "created": 1, "model": "flood"}
        await response.write(
            b"data: " + json.dumps({**final, "choices": [], "usage": usage}).encode() + b"\n\n"
        )
        await response.write(b"data: [DONE]\n\n")
        return response


async def test_slow_client_stalls_the_upstream_and_then_gets_everything(
    start_gateway: Any,
) -> None:
    upstream = FloodUpstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.chat)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    gateway = await start_gateway(
        {
            "version": 1,
            "upstreams": [{"name": "flood", "base_url": f"http://127.0.0.1:{server.port}/v1"}],
            "models": [{"name": "flood", "upstream": "flood"}],
        }
    )
    body = {"model": "flood", "stream": True, "messages": [{"role": "user", "content": "go"}]}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        async with (
            aiohttp.ClientSession(read_bufsize=2**16) as session,
            session.post(f"{gateway.base_url}/chat/completions", json=body) as resp,
        ):
            assert resp.status == 200
            await resp.content.readline()  # the first event: the stream is flowing
            await asyncio.sleep(1.0)  # the client stops reading
            stalled_at = upstream.written
            await asyncio.sleep(0.5)
            assert upstream.written == stalled_at, "upstream kept writing while nobody read"
            assert stalled_at < CHUNKS * 0.5, f"{stalled_at} of {CHUNKS} chunks were buffered"

            seen = 0
            async for line in resp.content:
                if not line.startswith(b"data: {"):
                    continue
                chunk = json.loads(line[6:])
                assert int(chunk["choices"][0]["delta"]["content"].split()[0]) == seen + 1
                seen += 1
        assert seen + 1 == CHUNKS  # the first was read before the pause; all arrived, in order
        assert upstream.written == CHUNKS
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert grown_mb < 40, f"the test process grew by {grown_mb:.0f} MB relaying 48 MB"
    finally:
        await server.close()
