"""The request path's upstream client (``upstreams.pool``, ``upstreams.wire``) on real sockets.

Small scripted HTTP servers (asyncio, or a thread where the client's event loop must not run)
answer with exact bytes. Scenario matrix:

- the request: POST line with the base path and query, Host with the port, Content-Length, the
  caller's headers; no User-Agent, no Accept-Encoding;
- bodies: Content-Length, chunked (read as it arrives), close-delimited; 1xx interim responses
  skipped; a 3xx is just a status;
- reuse: a fully read keep-alive response gives its connection back (one connection for two
  requests); ``Connection: close``, a close-delimited body, ``release()`` before the end and
  ``close()`` close it; an idle connection the server closed is never handed out, whether the
  loop has seen the EOF yet or not;
- the cap: at most ``size`` connections in use, waiters served first come first served, a waiter
  gives up after ``connect_s`` (``ConnectFailed``), a cancelled waiter or request leaks nothing;
- failures, all ``WireError``: refused connection, malformed status line and header, EOF or
  reset mid-body, the server closing without answering (never sent twice);
- backpressure: a reader that stops reading stops the socket being read (the server stalls);
- TLS: a private CA verified through ``tls.ca_file``'s context, refused by the default one;
- ``Pool.close()`` closes idle connections and refuses later requests.

Every test runs on asyncio's event loop and on uvloop's, the gateway's (``conftest``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from switchman.gateway.upstreams.pool import Pool
from switchman.gateway.upstreams.wire import HIGH_WATER, ConnectFailed, ResponseBroken

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One request (head and Content-Length body); b"" at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return b""
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


class Server:
    """Runs ``script`` on each accepted connection; counts connections and requests."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.closed = asyncio.Event()  # a connection saw the client's EOF
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the loop ends with a pooled connection still open
            pass
        finally:
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        request = await read_request(reader)
        if request:
            self.requests.append(request)
        else:
            self.closed.set()
        return request


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[Server]]]:
    servers: list[asyncio.Server] = []

    async def start(
        script: Callable[[Server], Script], tls: ssl.SSLContext | None = None
    ) -> Server:
        holder = Server(lambda r, w: script(holder)(r, w))
        server = await asyncio.start_server(holder._serve, "127.0.0.1", 0, ssl=tls)
        holder.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return holder

    yield start
    for server in servers:
        server.close()


def answering(*answers: bytes) -> Callable[[Server], Script]:
    """Each connection answers its requests with ``answers`` in turn (the last one repeats)."""

    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            index = 0
            while await server.request(reader):
                writer.write(answers[min(index, len(answers) - 1)])
                await writer.drain()
                index += 1

        return run

    return script


def pool(size: int = 4, connect_s: float = 1.0, tls: ssl.SSLContext | None = None) -> Pool:
    return Pool(size=size, connect_s=connect_s, tls=tls)


async def body(resp: object) -> bytes:
    chunks = []
    while chunk := await resp.read():  # type: ignore[attr-defined]
        chunks.append(chunk)
    return b"".join(chunks)


async def test_request_head_and_keep_alive_reuse(serve: Callable[..., Awaitable[Server]]) -> None:
    server = await serve(answering(OK))
    wire = pool()
    base = f"http://127.0.0.1:{server.port}/v1"
    for _ in range(2):
        async with await wire.request(
            base,
            "/chat/completions",
            {"X-Id": "7", "Content-Type": "application/json"},
            b"{}",
            {"api-version": "2024"},
        ) as resp:
            assert resp.status == 200
            assert resp.headers["content-type"] == "application/json"
            assert resp.content_length == 2
            assert await body(resp) == b"{}"
    assert server.connections == 1
    head = server.requests[0].decode()
    assert head.startswith("POST /v1/chat/completions?api-version=2024 HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n" in head
    assert "\r\nX-Id: 7\r\n" in head
    assert "\r\nContent-Length: 2\r\n" in head
    assert "user-agent" not in head.lower()
    assert "accept-encoding" not in head.lower()
    assert wire.in_use == 0
    assert wire.idle() == 1
    wire.close()


async def test_chunked_body_arrives_as_sent(serve: Callable[..., Awaitable[Server]]) -> None:
    second = asyncio.Event()

    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
            await second.wait()
            writer.write(b"6\r\n world\r\n0\r\n\r\n")
            await server.request(reader)

        return run

    server = await serve(script)
    wire = pool()
    resp = await wire.request(f"http://127.0.0.1:{server.port}", "/s", {}, b"x")
    assert await resp.read() == b"hello"  # before the rest was even sent
    second.set()
    assert await body(resp) == b" world"
    resp.release()
    assert wire.idle() == 1
    wire.close()


async def test_close_delimited_body_ends_at_eof_and_is_not_reused(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of it")
            await writer.drain()

        return run

    server = await serve(script)
    wire = pool()
    for _ in range(2):
        async with await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"") as resp:
            assert await body(resp) == b"all of it"
    assert server.connections == 2
    assert wire.idle() == 0


async def test_connection_close_and_interim_responses(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
    closing = b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: 3\r\n\r\nyes"
    server = await serve(answering(interim + closing))
    wire = pool()
    for _ in range(2):
        async with await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"") as resp:
            assert resp.status == 201
            assert "Link" not in resp.headers
            assert await body(resp) == b"yes"
    assert server.connections == 2


async def test_a_redirect_is_just_a_status(serve: Callable[..., Awaitable[Server]]) -> None:
    moved = b"HTTP/1.1 307 Moved\r\nLocation: http://elsewhere/\r\nContent-Length: 0\r\n\r\n"
    server = await serve(answering(moved))
    wire = pool()
    async with await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"") as resp:
        assert resp.status == 307
        assert await body(resp) == b""
    assert len(server.requests) == 1


async def test_release_before_the_end_and_close_drop_the_connection(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await server.request(reader):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
                await writer.drain()
                if len(server.requests) > 1:
                    writer.write(b"0\r\n\r\n")

        return run

    server = await serve(script)
    wire = pool()
    base = f"http://127.0.0.1:{server.port}"
    resp = await wire.request(base, "/", {}, b"")
    assert await resp.read() == b"ab"
    resp.release()  # mid-body: the upstream sees the connection close
    await asyncio.wait_for(server.closed.wait(), 2)
    assert wire.in_use == 0
    assert wire.idle() == 0
    server.closed.clear()
    resp = await wire.request(base, "/", {}, b"")
    assert await body(resp) == b"ab"
    resp.close()  # read to its end, closed all the same
    await asyncio.wait_for(server.closed.wait(), 2)
    assert server.connections == 2
    assert wire.idle() == 0
    assert wire.in_use == 0


async def test_an_idle_connection_the_server_closed_is_not_handed_out(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(OK)
            await writer.drain()  # then close: a server's keep-alive timeout

        return run

    server = await serve(script)
    wire = pool()
    base = f"http://127.0.0.1:{server.port}"
    for _ in range(3):
        async with await wire.request(base, "/", {}, b"") as resp:
            assert await body(resp) == b"{}"
        await asyncio.sleep(0.05)
    assert server.connections == 3


class ThreadServer:
    """A blocking server in a thread: answers one request per connection, then closes it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.answered = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while not data.endswith(b"\r\n\r\n{}"):
                    data += conn.recv(65536)
                conn.sendall(OK)
            self.answered.set()


async def test_a_closed_idle_connection_is_caught_before_the_loop_sees_the_eof() -> None:
    server = ThreadServer()
    wire = pool()
    base = f"http://127.0.0.1:{server.port}"
    async with await wire.request(base, "/", {}, b"{}") as resp:
        assert await body(resp) == b"{}"
    assert wire.idle() == 1
    server.answered.wait(2)
    # Blocking on purpose: the FIN reaches this socket while the event loop cannot see it.
    time.sleep(0.1)  # noqa: ASYNC251
    async with await wire.request(base, "/", {}, b"{}") as resp:
        assert await body(resp) == b"{}"
    assert server.connections == 2
    server.sock.close()
    wire.close()


async def test_pool_cap_serves_waiters_in_order_and_times_them_out(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(answering(OK))
    wire = pool(size=1, connect_s=0.3)
    base = f"http://127.0.0.1:{server.port}"
    first = await wire.request(base, "/", {}, b"")
    order: list[int] = []

    async def waiter(index: int) -> None:
        async with await wire.request(base, "/", {}, b"") as resp:
            order.append(index)
            await body(resp)

    with pytest.raises(ConnectFailed, match="max_connections"):
        await wire.request(base, "/", {}, b"")
    tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
    await asyncio.sleep(0.05)
    assert wire.in_use == 1
    assert order == []
    await body(first)
    first.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]
    assert server.connections == 1
    assert wire.in_use == 0
    wire.close()


async def test_cancelled_waiters_and_requests_leak_nothing(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            await server.request(reader)  # never answers; sees the client close

        return run

    server = await serve(script)
    wire = pool(size=1, connect_s=5)
    base = f"http://127.0.0.1:{server.port}"
    stuck = asyncio.create_task(wire.request(base, "/", {}, b""))
    queued = asyncio.create_task(wire.request(base, "/", {}, b""))
    await asyncio.sleep(0.05)
    queued.cancel()
    stuck.cancel()
    await asyncio.gather(stuck, queued, return_exceptions=True)
    await asyncio.wait_for(server.closed.wait(), 2)
    assert wire.in_use == 0
    assert wire.idle() == 0
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await wire.request(base, "/", {}, b"")
    assert wire.in_use == 0


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 2OO OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["status-line", "header", "length-and-chunked"],
)
async def test_a_malformed_response_is_response_broken(
    serve: Callable[..., Awaitable[Server]], answer: bytes
) -> None:
    server = await serve(answering(answer))
    wire = pool()
    with pytest.raises(ResponseBroken, match="malformed"):
        await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"")
    assert wire.in_use == 0
    assert wire.idle() == 0


async def test_eof_mid_chunked_body_is_response_broken(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\nonly"
    server = await serve(lambda s: lambda r, w: _answer_once(s, r, w, cut))
    wire = pool()
    resp = await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"")
    with pytest.raises(ResponseBroken, match="before its response ended"):
        await body(resp)
    resp.release()
    assert wire.in_use == 0
    assert wire.idle() == 0


async def test_a_reset_mid_body_is_response_broken(serve: Callable[..., Awaitable[Server]]) -> None:
    async def reset(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await server.request(reader)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await w.drain()
        await asyncio.sleep(0.05)
        sock = w.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()

    server = await serve(lambda s: lambda r, w: reset(s, r, w))
    wire = pool()
    async with await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"") as resp:
        with pytest.raises(ResponseBroken):
            await body(resp)


async def test_closing_without_answering_is_broken_and_never_resent(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            if len(server.requests) == 1:
                writer.write(OK)
                await server.request(reader)  # the second request: close without a byte

        return run

    server = await serve(script)
    wire = pool()
    base = f"http://127.0.0.1:{server.port}"
    async with await wire.request(base, "/", {}, b"") as resp:
        await body(resp)
    with pytest.raises(ResponseBroken, match="before answering"):
        await wire.request(base, "/", {}, b"")
    assert len(server.requests) == 2
    assert server.connections == 1


async def test_refused_connection_is_connect_failed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(ConnectFailed, match="cannot connect"):
            await pool().request(f"http://127.0.0.1:{port}", "/", {}, b"")


async def test_a_reader_that_stops_stalls_the_upstream(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    total = 64 * 1024 * 1024
    written = [0]

    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await server.request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
            piece = b"x" * 65536
            while written[0] < total:
                writer.write(piece)
                await writer.drain()
                written[0] += len(piece)

        return run

    server = await serve(script)
    wire = pool()
    async with await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"") as resp:
        first = await resp.read()
        await asyncio.sleep(0.3)
        stalled = written[0]
        await asyncio.sleep(0.2)
        assert written[0] == stalled < total  # the server's writes wait on this reader
        size = len(first)
        while chunk := await resp.read():
            assert len(chunk) <= HIGH_WATER + 2**16 * 4
            size += len(chunk)
        assert size == total


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    return trustme.CA()


async def test_tls_verified_against_a_private_ca(
    serve: Callable[..., Awaitable[Server]], private_ca: trustme.CA
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    private_ca.issue_cert("127.0.0.1").configure_cert(context)
    server = await serve(answering(OK), tls=context)
    base = f"https://127.0.0.1:{server.port}"
    with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
        await pool().request(base, "/", {}, b"")
    trusted = ssl.create_default_context()
    private_ca.configure_trust(trusted)
    wire = pool(tls=trusted)
    for _ in range(2):
        async with await wire.request(base, "/", {}, b"") as resp:
            assert await body(resp) == b"{}"
    assert f"\r\nHost: 127.0.0.1:{server.port}\r\n" in server.requests[-1].decode()
    assert len(server.requests) == 2
    assert server.connections == 1
    wire.close()


async def test_close_closes_idle_connections_and_refuses_requests(
    serve: Callable[..., Awaitable[Server]],
) -> None:
    server = await serve(answering(OK))
    wire = pool()
    base = f"http://127.0.0.1:{server.port}"
    async with await wire.request(base, "/", {}, b"") as resp:
        await body(resp)
    wire.close()
    await asyncio.wait_for(server.closed.wait(), 2)
    with pytest.raises(ConnectFailed, match="closed"):
        await wire.request(base, "/", {}, b"")


async def _answer_once(
    server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: bytes
) -> None:
    await server.request(reader)
    writer.write(answer)
    await writer.drain()


def streaming(terminator_after: float) -> Callable[[Server], Script]:
    """A chunked stream whose terminating chunk follows its last event after a pause."""

    def script(server: Server) -> Script:
        async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await server.request(reader):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                writer.write(b"e\r\ndata: [DONE]\n\n\r\n")
                await writer.drain()
                await asyncio.sleep(terminator_after)
                writer.write(b"0\r\n\r\n")

        return run

    return script


@pytest.mark.parametrize(("terminator_after", "connections"), [(0.05, 1), (0.5, 2)])
async def test_a_finished_stream_is_reused_if_its_body_ends_soon(
    serve: Callable[..., Awaitable[Server]], terminator_after: float, connections: int
) -> None:
    server = await serve(streaming(terminator_after))
    wire = pool(size=1)
    base = f"http://127.0.0.1:{server.port}"
    for _ in range(2):
        async with await wire.request(base, "/", {}, b"") as resp:
            assert await resp.read() == b"data: [DONE]\n\n"
            resp.finish(linger_s=0.2)  # the reader is done; the last chunk may follow
    assert server.connections == connections
    wire.close()


async def test_names_are_resolved_once_per_ttl(
    serve: Callable[..., Awaitable[Server]], monkeypatch: pytest.MonkeyPatch
) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    server = await serve(answering(closing))
    now = [100.0]
    wire = Pool(size=2, connect_s=1.0, clock=lambda: now[0])
    loop = asyncio.get_running_loop()
    lookups: list[str] = []
    real = loop.getaddrinfo

    async def counted(host: str, *args: object, **kwargs: object) -> object:
        lookups.append(host)
        return await real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "getaddrinfo", counted)
    for advance in (0.0, 1.0, 5.0):
        now[0] += advance
        async with await wire.request(f"http://localhost:{server.port}", "/", {}, b"") as resp:
            assert resp.status == 200
    assert server.connections == 3
    assert lookups == ["localhost", "localhost"]  # cached for 5 s, then asked again


@pytest.mark.parametrize(
    ("connection", "connections"), [(b"Connection: keep-alive\r\n", 1), (b"", 2)]
)
async def test_http_1_0_is_reused_only_with_keep_alive(
    serve: Callable[..., Awaitable[Server]], connection: bytes, connections: int
) -> None:
    answer = b"HTTP/1.0 200 OK\r\n" + connection + b"Content-Length: 2\r\n\r\n{}"
    server = await serve(answering(answer))
    wire = pool()
    for _ in range(2):
        async with await wire.request(f"http://127.0.0.1:{server.port}", "/", {}, b"") as resp:
            assert await body(resp) == b"{}"
    assert server.connections == connections
    wire.close()
