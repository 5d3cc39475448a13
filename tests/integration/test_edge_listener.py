"""The listener's guards: slow, idle, excess and garbage connections cannot hold the gateway.

A real gateway served by ``listener.GatewayRunner`` through ``acceptor.AcceptorSite`` (what
``switchman gateway`` runs) in front of a simulator, driven over raw sockets. Scenario matrix
(bounded: each guard's timeout is well under a second here, every wait has a generous deadline):

- header-read timeout: a request line sent one byte every 0.1 s past ``header_timeout_s`` -> a
  408 JSON and the connection closed; a connection that never sends a byte -> closed too; a
  request whose headers arrive in time on a second keep-alive request -> served.
- keep-alive idle timeout: after an answer an idle connection is closed by the gateway.
- pipelining: two chat requests and an unknown path in one write -> three answers in order,
  each with its own ``x-request-id`` (the client's) and ``Server`` header, the 404 included.
- 300 pipelined requests and a chat request in one write: all answered (aiohttp's queue of
  parsed requests fills, reading pauses and resumes).
- a 3 MiB body sent in pieces (a 1 KiB read buffer), then a second request on the same
  connection: reading pauses and resumes (flow control), both are answered.
- connection cap: with ``max_connections`` open, the next connection gets a JSON 503 and is
  closed at once (counted in ``switchman_connections_refused_total``); once one closes, a new
  connection is served again.
- protocol garbage (a bare LF, Content-Length with Transfer-Encoding, an oversized header, a
  non-HTTP line) -> a short JSON 400 that does not echo the bytes, no traceback logged.
- a target no route can match (``OPTIONS *``) -> a JSON 404, not aiohttp's text/plain one.
- ``switchman gateway`` on a busy port -> exit code 2, one line on stderr, "listening" never
  printed, no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import processes
import pytest
from aiohttp import web
from conftest import Launch

from switchman.gateway.acceptor import AcceptorSite
from switchman.gateway.app import create_app
from switchman.gateway.listener import GatewayRunner
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher

Serve = Callable[..., Awaitable[tuple[int, Metrics]]]
HELLO = b'{"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}'


def request(body: bytes = HELLO) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


@pytest.fixture
async def serve(tmp_path: Path, launch: Launch) -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(*, read_bufsize: int = 2**16, **edge: Any) -> tuple[int, Metrics]:
        sim = await launch()
        path = tmp_path / f"gateway-{len(runners)}.json"
        config = {
            "version": 1,
            "server": {"edge": edge},
            "upstreams": [{"name": "sim", "base_url": f"{sim.url}/v1"}],
            "models": [{"name": "tiny", "upstream": "sim"}],
        }
        path.write_text(json.dumps(config))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ={})
        watcher.load_initial()
        app = create_app(watcher, metrics)
        runner = GatewayRunner(app, access_log=None, read_bufsize=read_bufsize)
        await runner.setup()
        runners.append(runner)
        site = AcceptorSite(runner, "127.0.0.1", 0)  # as ``listener.serve`` listens
        await site.start()
        return site.port, metrics

    yield start
    for runner in runners:
        await runner.cleanup()


async def read_all(reader: asyncio.StreamReader, within: float = 10.0) -> bytes:
    """Everything until the gateway closes the connection (fails if it never does)."""
    data = b""
    async with asyncio.timeout(within):
        while chunk := await reader.read(65536):
            data += chunk
    return data


def refused(metrics: Metrics, reason: str) -> float | None:
    sample = "switchman_connections_refused_total"
    return metrics.registry.get_sample_value(sample, {"reason": reason})


def status_and_json(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"application/json" in head.lower()
    return int(head.split(b" ")[1]), json.loads(body)


async def test_slow_loris_request_line_gets_a_408_and_is_closed(serve: Serve) -> None:
    port, _ = await serve(header_timeout_s=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for byte in b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n":
        if reader.at_eof() or writer.is_closing():
            break
        writer.write(bytes([byte]))
        await asyncio.sleep(0.1)
        if reader._buffer:  # type: ignore[attr-defined]  # the gateway answered already
            break

    raw = await read_all(reader)

    status, body = status_and_json(raw)
    assert status == 408
    assert body["error"]["code"] == "request_timeout"
    assert loop.time() - started < 5  # closed near header_timeout_s, not held open
    writer.close()


async def test_a_connection_that_never_speaks_is_closed(serve: Serve) -> None:
    port, metrics = await serve(header_timeout_s=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    raw = await read_all(reader)

    assert raw.startswith(b"HTTP/1.1 408")
    assert refused(metrics, "header_timeout") == 1
    writer.close()


async def test_keep_alive_requests_in_time_are_served_and_idle_ones_closed(serve: Serve) -> None:
    port, _ = await serve(header_timeout_s=2, keepalive_timeout_s=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for _ in range(2):
        writer.write(request())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)

    assert await read_all(reader) == b""  # idle past keepalive_timeout_s: closed, no answer
    writer.close()


async def test_pipelined_requests_are_answered_in_order_each_with_its_own_headers(
    serve: Serve,
) -> None:
    port, _ = await serve(header_timeout_s=2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ids = (b"first-1", b"second-2")
    missing = b"GET /v1/nothing-here HTTP/1.1\r\nHost: gw\r\nx-request-id: third-3\r\n\r\n"
    writer.write(
        b"".join(request().replace(b"Host: gw", b"Host: gw\r\nx-request-id: " + i) for i in ids)
        + missing
    )
    await writer.drain()

    heads = []
    for _ in range(3):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        heads.append(head.lower())

    statuses = [head.split(b"\r\n")[0] for head in heads]
    assert statuses == [b"http/1.1 200 ok", b"http/1.1 200 ok", b"http/1.1 404 not found"]
    for head, request_id in zip(heads, (*ids, b"third-3"), strict=True):
        assert b"x-request-id: " + request_id + b"\r\n" in head
        assert b"server: switchman\r\n" in head
    assert b"x-switchman-upstream: sim " in heads[0]  # loopback client: the address is shown
    writer.close()


async def test_a_flood_of_pipelined_requests_is_answered_whole(serve: Serve) -> None:
    port, _ = await serve(header_timeout_s=2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    count = 300  # past aiohttp's queue of parsed requests: it pauses reading, then resumes
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n" * count + request())
    await writer.drain()

    for number in range(count + 1):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200"), number
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    writer.close()


async def test_a_body_past_the_read_buffer_pauses_reading_and_is_read_whole(serve: Serve) -> None:
    port, _ = await serve(header_timeout_s=2, read_bufsize=1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    # Far past the read buffer, so reading pauses until the body is read (white space: the
    # upstream gets the small request the gateway forwards).
    big = HELLO + b" " * (3 * 1024 * 1024)
    data = request(big) + request()
    for at in range(0, len(data), 256 * 1024):  # in pieces, as a client's socket sends it
        writer.write(data[at : at + 256 * 1024])
        await writer.drain()

    for _ in range(2):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        answer = json.loads(await reader.readexactly(length))
        assert answer["object"] == "chat.completion"
    writer.close()


async def test_connections_above_the_cap_get_a_503_and_are_closed(serve: Serve) -> None:
    port, metrics = await serve(max_connections=3, header_timeout_s=30)
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    await asyncio.sleep(0.1)

    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status, body = status_and_json(await read_all(reader))

    assert status == 503
    assert body["error"]["code"] == "too_many_connections"
    assert refused(metrics, "connection_limit") == 1
    writer.close()
    _, held_writer = held.pop()
    held_writer.close()
    await held_writer.wait_closed()
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request())
    assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 200")
    writer.close()
    for _, w in held:
        w.close()


GARBAGE = {
    "bare-lf": b"POST /v1/chat/completions HTTP/1.1\nHost: gw\nX-Secret-Echo: zzz\n\n",
    "cl-and-te": b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n"
    b"Transfer-Encoding: chunked\r\nX-Secret-Echo: zzz\r\n\r\n0\r\n\r\n",
    "huge-header": b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-Secret-Echo: "
    + b"z" * 20_000
    + b"\r\n\r\n",
    "not-http": b"\x16\x03\x01\x02\x00 X-Secret-Echo zzz\r\n\r\n",
}


@pytest.mark.parametrize("garbage", list(GARBAGE))
async def test_protocol_garbage_gets_a_short_json_400_without_echo(
    serve: Serve, garbage: str, caplog: pytest.LogCaptureFixture
) -> None:
    port, _ = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    caplog.set_level(logging.DEBUG)
    writer.write(GARBAGE[garbage])

    status, body = status_and_json(await read_all(reader))

    assert status == 400
    assert body["error"]["code"] == "bad_http_request"
    assert len(body["error"]["message"]) < 80
    assert "zzz" not in json.dumps(body)
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO]
    writer.close()


async def test_a_target_no_route_can_match_gets_a_json_404(serve: Serve) -> None:
    # ``OPTIONS *`` is valid HTTP, and no path route matches it: aiohttp answers it itself,
    # before any handler, so only the connection's handler can shape that answer.
    port, _ = await serve()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"OPTIONS * HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")

    status, body = status_and_json(await read_all(reader))

    assert status == 404
    assert body["error"]["code"] == "not_found"
    assert body["error"]["type"] == "invalid_request_error"
    writer.close()


async def test_busy_port_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "upstreams": [{"name": "u", "base_url": "http://127.0.0.1:9/v1"}],
                "models": [{"name": "m", "upstream": "u"}],
            }
        )
    )
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        async with processes.switchman(
            "gateway",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            stdout=processes.PIPE,
            stderr=processes.PIPE,
        ) as proc:
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)

    assert proc.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert lines == [
        f"switchman gateway: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert "listening" not in stdout.decode()
