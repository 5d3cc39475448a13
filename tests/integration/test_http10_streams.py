"""An HTTP/1.0 client is never left hanging at the end of a stream.

HTTP/1.0 has no chunked framing: a body without a length ends only when the server closes the
connection. A streamed answer (OpenAI chat, Anthropic Messages, Responses) to an HTTP/1.0 request
that asked for keep-alive must still be closed after its last event, or the client waits forever
for the end of the body. A whole answer has a ``Content-Length`` and may keep the connection.

A real gateway (``start_gateway``) in front of a simulator, spoken to over a raw socket (the bytes
and the close are what matter). Scenario matrix:

- HTTP/1.0 + ``Connection: keep-alive`` stream, each client format -> an unframed body (no
  ``Transfer-Encoding``, no ``Content-Length``, no ``Connection: keep-alive``) ending with the
  format's last event, then the server closes the connection (a generous timeout turns a hang
  into a failure; no timing is asserted).
- the same without keep-alive -> the same.
- HTTP/1.0 + keep-alive whole answer -> ``Content-Length`` and ``Connection: keep-alive``, and a
  second request on the same connection is answered.
- HTTP/1.0 + keep-alive passthrough (rerank, relayed from a fake upstream without a length) ->
  the upstream's body, then the close.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import Launch, StartGateway

HANG_S = 10.0  # far beyond a stream of the simulator's (tens of ms): only a hang reaches it

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
FORMATS: dict[str, tuple[str, dict[str, Any], bytes]] = {
    "chat": ("/v1/chat/completions", CHAT, b"data: [DONE]"),
    "messages": ("/v1/messages", CHAT, b"event: message_stop\n"),
    "responses": ("/v1/responses", {"model": "tiny", "input": "hi"}, b"event: response.completed"),
}


def gateway_config(sim_url: str) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [{"name": "sim", "base_url": f"{sim_url}/v1"}],
        "models": [{"name": "tiny", "upstream": "sim"}],
    }


def request(path: str, body: dict[str, Any], *, keep_alive: bool) -> bytes:
    data = json.dumps(body).encode()
    extra = b"Connection: keep-alive\r\n" if keep_alive else b""
    return (
        f"POST {path} HTTP/1.0\r\nHost: gateway\r\nContent-Type: application/json\r\n".encode()
        + f"Content-Length: {len(data)}\r\n".encode()
        + extra
        + b"\r\n"
        + data
    )


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """All the server sends until it closes the connection; fails if it never does."""
    raw = b""
    try:
        async with asyncio.timeout(HANG_S):
            while chunk := await reader.read(65536):
                raw += chunk
    except TimeoutError:
        pytest.fail(f"the connection was still open {HANG_S} s later; got {raw[-200:]!r}")
    return raw


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "plain"])
@pytest.mark.parametrize("client_format", sorted(FORMATS))
async def test_an_http10_stream_ends_with_the_close(
    start_gateway: StartGateway, launch: Launch, client_format: str, keep_alive: bool
) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url))
    path, body, last = FORMATS[client_format]
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.server.port)
    try:
        writer.write(request(path, {**body, "stream": True}, keep_alive=keep_alive))
        await writer.drain()
        raw = await until_closed(reader)
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"http/1.0 200 ok"
    assert b"content-type: text/event-stream" in lines
    assert not [h for h in lines if h.startswith((b"transfer-encoding", b"content-length"))]
    assert b"connection: keep-alive" not in lines  # the client must not wait for more
    assert payload.endswith(b"\n\n")  # whole events only
    events = payload[:-2].split(b"\n\n")
    assert events[-1].startswith(last)  # the format's last event, once
    assert not [event for event in events[:-1] if event.startswith(last)]


async def test_an_http10_whole_answer_keeps_the_connection(
    start_gateway: StartGateway, launch: Launch
) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url))
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.server.port)
    try:
        for _ in range(2):  # the second on the same connection: the first kept it
            writer.write(request("/v1/chat/completions", CHAT, keep_alive=True))
            await writer.drain()
            async with asyncio.timeout(HANG_S):
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.lower().split(b"\r\n")
                assert lines[0] == b"http/1.0 200 ok"
                assert b"connection: keep-alive" in lines
                sizes = [int(h[15:]) for h in lines if h.startswith(b"content-length:")]
                answer = json.loads(await reader.readexactly(sizes[0]))
            assert answer["object"] == "chat.completion"
    finally:
        writer.close()


async def test_an_http10_passthrough_ends_with_the_close(start_gateway: StartGateway) -> None:
    answer = {"id": "rr", "results": [{"index": 1, "relevance_score": 0.9}]}

    async def rerank(request: web.Request) -> web.Response:
        return web.json_response(answer)

    upstream_app = web.Application()
    upstream_app.router.add_post("/v1/rerank", rerank)
    upstream = TestServer(upstream_app, host="127.0.0.1")
    await upstream.start_server()
    try:
        config = {
            "version": 1,
            "upstreams": [{"name": "up", "base_url": f"http://127.0.0.1:{upstream.port}/v1"}],
            "models": [{"name": "rr", "upstream": "up", "capabilities": {"endpoints": ["rerank"]}}],
        }
        gateway = await start_gateway(config)
        body = {"model": "rr", "query": "q", "documents": ["a", "b"]}
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.server.port)
        try:
            writer.write(request("/v1/rerank", body, keep_alive=True))
            await writer.drain()
            raw = await until_closed(reader)
        finally:
            writer.close()
    finally:
        await upstream.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    assert head.lower().startswith(b"http/1.0 200 ok\r\n")
    assert json.loads(payload) == answer
