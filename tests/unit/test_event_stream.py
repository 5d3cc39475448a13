"""EventStream: OpenAI's event stream framed and written by ``ClientStream`` itself.

Each stream is written once through ``ClientStream`` (OpenAI's format: its ``EventStream``) and
once through aiohttp's own ``web.StreamResponse`` given the same headers and the same writes
(``write`` for each event block, ``write_eof`` with the last ones), and what reaches the
client must be the same bytes but for ``Date``. Scenario matrix:

- through a real aiohttp server whose app adds a header as each response is prepared (the
  ``on_response_prepare`` receivers the gateway's request hook runs too), over raw sockets:
  - the usual request (HTTP/1.1 keep-alive), aiohttp's header building never run: events then
    the end; the whole answer in the end's send; nothing but the end; an error event first or
    after events; empty writes; pipelined streams (each its own answer, in order, the
    connection kept); aiohttp's access log line (status and bytes sent)
  - anything unusual is aiohttp's own (its header building runs): HTTP/1.0 with and without
    keep-alive (but the connection always closes at the end of the stream, where aiohttp's own
    keeps a keep-alive one open), ``Connection: close``
- the sends, on a transport that records each one: the same sends as aiohttp's writer (the
  head with the first chunk, one send per chunk, the last data with the end)
- a client reading slowly: a send on a transport that asked to pause is waited for before the
  next (nothing is sent meanwhile), and so is the end
- a client gone: a send raises ``ConnectionResetError`` as aiohttp's writer does
- after the end aiohttp's ``prepare`` and ``write_eof`` (its ``finish_response``) send nothing,
  and the response is prepared, kept alive, and counts the bytes sent

These fail if aiohttp changes what the class leans on (its docstring lists it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from client_transport import Transport, mocked

from switchman.gateway.errors import UpstreamUnavailable
from switchman.gateway.providers.sse import DONE, encode
from switchman.gateway.serve.downstream import ClientStream, EventStream

E1 = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
E2 = b'data: {"choices":[{"delta":{"content":"' + b"b" * 300 + b'"}}]}\n\n'
ERROR = UpstreamUnavailable("upstream 'a' broke off")
HEADERS = {"x-switchman-route": "m; direct", "x-switchman-model": "m"}
DATE = re.compile(rb"\r\nDate: [^\r]*")

# What each kind of stream does after its commit: ("write", data), ("finish", tail, last),
# ("fail",).
SCRIPTS: dict[str, list[tuple[Any, ...]]] = {
    "events": [("write", E1), ("write", E2), ("finish", DONE, b"")],
    "whole": [("finish", DONE, E1 + E2)],
    "last-with-end": [("write", E1), ("finish", DONE, E2)],
    "end-only": [("finish", DONE, b"")],
    "fail-first": [("fail",)],
    "fail-later": [("write", E1), ("write", E2), ("fail",)],
    "empty-writes": [("write", b""), ("write", E1), ("write", b""), ("finish", b"", b"")],
}


async def ours(request: web.BaseRequest, script: list[tuple[Any, ...]]) -> web.StreamResponse:
    client = ClientStream(request, False)  # type: ignore[arg-type]
    await client.commit(HEADERS)
    for step in script:
        if step[0] == "write":
            await client.write(step[1])
        elif step[0] == "finish":
            await client.finish(step[1], step[2])
        else:
            await client.fail("stream_broken", ERROR)
    assert client.response is not None
    return client.response


async def aiohttps(request: web.BaseRequest, script: list[tuple[Any, ...]]) -> web.StreamResponse:
    """The same stream through aiohttp's own response and payload writer."""
    response = web.StreamResponse(
        headers={
            **HEADERS,
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    response._send_headers_immediately = False
    await response.prepare(request)
    for step in script:
        if step[0] == "write":
            await response.write(step[1])
        elif step[0] == "finish":
            await response.write_eof(step[2] + step[1])
        else:
            await response.write_eof(encode(json.dumps(ERROR.body()).encode()))
    return response


def app() -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        script = SCRIPTS[request.match_info["kind"]]
        mine = request.match_info["class"] == "ours"
        return await (ours if mine else aiohttps)(request, script)

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["x-prepared"] = request.method

    application = web.Application()
    application.router.add_route("*", "/{class}/{kind}", handle)
    application.on_response_prepare.append(stamp)
    return application


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    server = TestServer(app())
    await server.start_server()
    yield server
    await server.close()


def request(path: str, version: str = "1.1", extra: str = "") -> bytes:
    return f"POST {path} HTTP/{version}\r\nHost: t\r\n{extra}Content-Length: 2\r\n\r\n{{}}".encode()


async def exchange(server: TestServer, raw: bytes, answers: int = 1) -> bytes:
    """What the server sends for ``raw``: ``answers`` chunked answers (read to their last
    chunk), then ``<EOF>`` where the connection was to close (and it did), else it is kept.
    HTTP/1.0 has no chunks: what came until the connection closed or went quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw)
    out = b""
    closes = b"Connection: close" in raw
    async with asyncio.timeout(5):
        if b"HTTP/1.0" in raw:
            while data := await _quiet(reader):
                out += data
            out += b"<EOF>" if reader.at_eof() else b"<open>"
        else:
            for _ in range(answers):
                out += await reader.readuntil(b"\r\n0\r\n\r\n")
            if closes:
                out += await reader.read() + b"<EOF>"  # (fails if more than the answers came)
            else:
                with pytest.raises(TimeoutError):  # kept open
                    await asyncio.wait_for(reader.read(1), 0.05)
    writer.close()
    return DATE.sub(b"\r\nDate: *", out)


async def _quiet(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(1 << 16), 0.2)
    except TimeoutError:
        return b""


@pytest.mark.parametrize("kind", list(SCRIPTS))
async def test_the_usual_request_gets_aiohttps_bytes(
    server: TestServer, header_building: list[int], kind: str
) -> None:
    mine = await exchange(server, request(f"/ours/{kind}"))
    assert header_building == [0]  # not aiohttp's header building: this class's own path
    theirs = await exchange(server, request(f"/aiohttp/{kind}"))
    assert header_building == [1]
    assert mine.replace(b"/ours/", b"/aiohttp/") == theirs
    assert b"\r\nx-prepared: POST\r\n" in mine  # the app's prepare receivers ran
    assert b"\r\nTransfer-Encoding: chunked\r\n" in mine


async def test_pipelined_streams_are_each_answered_in_order(
    server: TestServer, header_building: list[int]
) -> None:
    raw = request("/ours/events") + request("/ours/fail-first") + request("/ours/whole")
    mine = await exchange(server, raw, answers=3)
    assert header_building == [0]
    theirs = await exchange(server, raw.replace(b"/ours/", b"/aiohttp/"), answers=3)
    assert mine == theirs
    assert mine.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert mine.count(b"\r\n0\r\n\r\n") == 3


@pytest.mark.parametrize(
    "raw",
    [
        request("/{}/events", version="1.0"),
        request("/{}/events", version="1.0", extra="Connection: keep-alive\r\n"),
        request("/{}/events", extra="Connection: close\r\n"),
        request("/{}/fail-later", extra="Connection: close\r\n"),
    ],
    ids=["http10", "http10-keep-alive", "close", "fail-close"],
)
async def test_anything_unusual_is_aiohttps_own(
    server: TestServer, header_building: list[int], raw: bytes
) -> None:
    mine = await exchange(server, raw.replace(b"{}", b"ours", 1))
    assert header_building == [1]
    theirs = await exchange(server, raw.replace(b"{}", b"aiohttp", 1))
    if b"HTTP/1.0" in raw:  # an unframed body: ours always ends with the close (aiohttp's
        assert mine.endswith(b"<EOF>")  # own keeps a keep-alive one open: the client hangs)
        theirs = theirs.removesuffix(b"<open>").removesuffix(b"<EOF>") + b"<EOF>"
    assert mine.replace(b"/ours/", b"/aiohttp/") == theirs


async def test_aiohttps_access_log_line_is_the_same(caplog: pytest.LogCaptureFixture) -> None:
    server = TestServer(app())
    await server.start_server(access_log_format="%r %s %b")
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            await exchange(server, request("/ours/events"))
            await exchange(server, request("/aiohttp/events"))
    finally:
        await server.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 2
    assert lines[0].replace("/ours/", "/aiohttp/") == lines[1]
    assert int(lines[1].rsplit(" ", 1)[1]) > len(E1 + E2 + DONE)  # the head and the body


@pytest.mark.parametrize("kind", list(SCRIPTS))
async def test_the_sends_are_aiohttps(kind: str) -> None:
    mine, theirs = Transport(), Transport()
    request, _ = mocked(mine)
    response = await ours(request, SCRIPTS[kind])
    assert isinstance(response, EventStream)
    assert response.chunks  # this class's own path
    request, _ = mocked(theirs)
    await aiohttps(request, SCRIPTS[kind])
    assert [DATE.sub(b"", send) for send in mine.sends] == [
        DATE.sub(b"", send) for send in theirs.sends
    ]
    script = SCRIPTS[kind]
    writes = sum(1 for step in script if step[0] == "write" and step[1])
    alone = script[0] == ("write", b"")  # (an empty first write sends the head alone)
    assert len(mine.sends) == writes + 1 + alone  # one send per chunk, the end with the last data


async def test_after_the_end_aiohttp_finds_nothing_left_to_send() -> None:
    transport = Transport()
    request, _ = mocked(transport)
    response = await ours(request, SCRIPTS["events"])
    sent = list(transport.sends)

    assert await response.prepare(request) is None  # what aiohttp's finish_response calls
    await response.write_eof()
    await request.writer.write_eof(b"x")  # the payload writer is ended too
    assert transport.sends == sent
    assert response.prepared
    assert response.keep_alive
    assert response.body_length == len(b"".join(sent)) == request.writer.output_size
    with pytest.raises(RuntimeError):
        await response.write(E1)


async def test_a_slow_client_is_waited_for_before_the_next_send() -> None:
    transport = Transport()
    request, protocol = mocked(transport)
    client = ClientStream(request, False)
    await client.commit(HEADERS)
    await client.write(E1)
    protocol.pause_writing()  # the transport's buffer is full

    written = asyncio.ensure_future(client.write(E2))
    await asyncio.sleep(0.01)
    assert not written.done()
    assert len(transport.sends) == 2  # E2 is in the transport: nothing more until it drains
    protocol.resume_writing()
    await asyncio.wait_for(written, 1)

    protocol.pause_writing()
    finished = asyncio.ensure_future(client.finish(DONE))
    await asyncio.sleep(0.01)
    assert not finished.done()
    protocol.resume_writing()
    assert await asyncio.wait_for(finished, 1) == "ok"
    assert transport.sends[1:] == [
        b"%x\r\n%b\r\n" % (len(E2), E2),
        b"e\r\n" + DONE + b"\r\n0\r\n\r\n",
    ]


async def test_a_send_waits_only_while_the_transport_is_paused() -> None:
    request, protocol = mocked(Transport())
    response = EventStream(HEADERS)
    await response.prepare(request)
    assert response.send(E1) is None
    protocol.pause_writing()
    wait = response.send(E2)
    assert wait is not None
    protocol.resume_writing()
    await wait


async def test_a_client_gone_raises_connection_reset_as_aiohttps() -> None:
    for build in (ours, aiohttps):
        transport = Transport()
        request, _ = mocked(transport)
        transport.closing = True
        with pytest.raises(ConnectionResetError):
            await build(request, [("write", E1)])
        assert transport.sends == []


async def test_a_client_gone_at_the_end_is_client_closed() -> None:
    transport = Transport()
    request, _ = mocked(transport)
    client = ClientStream(request, False)
    await client.commit(HEADERS)
    await client.write(E1)
    transport.closing = True
    assert await client.finish(DONE, E2) == "client_closed"
    assert len(transport.sends) == 1
