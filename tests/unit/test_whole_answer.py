"""WholeAnswer: aiohttp's own answer, its status line, headers and body written at once.

Through a real aiohttp server whose app adds a header as each response is prepared (the
``on_response_prepare`` receivers the gateway's request hook runs too), over raw sockets; each
request is answered once by a ``WholeAnswer`` and once by the ``web.Response`` built from the same
arguments, and the bytes must be the same but for ``Date``. Scenario matrix:

- state: a WholeAnswer holds exactly ``web.Response(body=, content_type=, headers=, status=)``'s
  state (a 200 with headers, a 429 with ``Retry-After``, no headers, another content type)
- the usual request, answered in one write without aiohttp's header building: POST and GET over
  HTTP/1.1 keep-alive, a 4xx with headers of its own, pipelined requests (each its own answer,
  in order, the connection kept)
- aiohttp's own answer (its header building runs): HTTP/1.0 with and without keep-alive,
  ``Connection: close``, HEAD, compression and a cookie asked of the response
- aiohttp's access log line (status and bytes sent) is the same
- a client gone: the write raises ``ConnectionResetError``, as aiohttp's does
- a transport whose buffer is full: the answer waits for it to drain, as aiohttp's does

These fail if aiohttp changes what the class leans on (its docstring lists it).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from client_transport import Transport, mocked

from switchman.gateway.serve.downstream import WholeAnswer

BODY = b'{"id":"x","object":"chat.completion","choices":[]}'
HEADERS = {"x-switchman-route": "m; direct", "x-switchman-model": "m"}
DATE = re.compile(rb"\r\nDate: [^\r]*")

Answer = Callable[[], web.Response]
KINDS: dict[str, tuple[dict[str, Any], Callable[[web.Response], None]]] = {
    "plain": ({"body": BODY, "headers": HEADERS}, lambda response: None),
    "limited": (
        {"body": b'{"error":{}}', "headers": {"retry-after": "3"}, "status": 429},
        lambda response: None,
    ),
    "bare": ({"body": b"{}"}, lambda response: None),
    "compressed": ({"body": BODY * 20}, lambda response: response.enable_compression()),
    "cookie": ({"body": BODY}, lambda response: response.set_cookie("a", "b")),
}


def answers(kind: str) -> tuple[Answer, Answer]:
    """(a WholeAnswer, aiohttp's web.Response) of ``kind``, built from the same arguments."""
    args, then = KINDS[kind]
    body, headers, status = args["body"], args.get("headers"), args.get("status", 200)

    def whole() -> web.Response:
        response = WholeAnswer(body, headers, status=status)
        then(response)
        return response

    def plain() -> web.Response:
        response = web.Response(
            body=body, headers=headers, status=status, content_type="application/json"
        )
        then(response)
        return response

    return whole, plain


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def handle(request: web.Request) -> web.StreamResponse:
        whole, plain = answers(request.match_info["kind"])
        return whole() if request.match_info["class"] == "whole" else plain()

    async def stamp(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["x-prepared"] = request.method

    app = web.Application()
    app.router.add_route("*", "/{class}/{kind}", handle)
    app.on_response_prepare.append(stamp)
    server = TestServer(app)
    await server.start_server()
    yield server
    await server.close()


async def exchange(server: TestServer, raw: bytes, answers: int = 1) -> bytes:
    """What the server sends for ``raw``: ``answers`` whole answers, then ``<EOF>`` when the
    request asked for the connection to close (and it was), else the connection is kept."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw)
    heads = [line for line in raw.split(b"\r\n") if b" HTTP/1." in line]
    out = b""
    async with asyncio.timeout(5):
        for head_line in heads[:answers]:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"Content-Length: (\d+)", head)
            out += head
            if length is not None and not head_line.startswith(b"HEAD "):
                out += await reader.readexactly(int(length.group(1)))
        if b"Connection: close" in raw or (b"HTTP/1.0" in raw and b"keep-alive" not in raw):
            out += await reader.read() + b"<EOF>"  # (fails if more than the answers came)
        else:
            with pytest.raises(TimeoutError):  # kept open
                await asyncio.wait_for(reader.read(1), 0.05)
    writer.close()
    return DATE.sub(b"\r\nDate: *", out)


def request(path: str, method: str = "POST", version: str = "1.1", extra: str = "") -> bytes:
    body = b"{}" if method == "POST" else b""
    head = f"{method} {path} HTTP/{version}\r\nHost: t\r\n{extra}Content-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


def same_state(answer: web.Response, response: web.Response) -> None:
    mine, theirs = dict(vars(answer)), dict(vars(response))
    assert list(mine.pop("_headers").items()) == list(theirs.pop("_headers").items())
    assert mine == theirs


@pytest.mark.parametrize("kind", ["plain", "limited", "bare"])
def test_a_whole_answer_holds_web_responses_state(kind: str) -> None:
    whole, plain = answers(kind)
    same_state(whole(), plain())


def test_another_content_type_is_web_responses_too() -> None:
    answer = WholeAnswer(b"{}", content_type="application/json; charset=utf-8", status=404)
    same_state(answer, web.json_response({}, status=404))


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("plain", request("/{}/plain")),
        ("plain", request("/{}/plain", "GET")),
        ("limited", request("/{}/limited")),
        ("bare", request("/{}/bare", "GET")),
    ],
    ids=["post", "get", "4xx-with-headers", "no-headers"],
)
async def test_the_usual_request_gets_aiohttps_bytes_in_one_write(
    server: TestServer, header_building: list[int], kind: str, raw: bytes
) -> None:
    ours = await exchange(server, raw.replace(b"{}", b"whole", 1))
    assert header_building == [0]  # not aiohttp's header building: the one-write path
    theirs = await exchange(server, raw.replace(b"{}", b"plain", 1))
    assert header_building == [1]
    assert ours == theirs
    assert b"\r\nx-prepared: " in ours  # the app's prepare receivers ran


async def test_pipelined_requests_are_each_answered_in_order(
    server: TestServer, header_building: list[int]
) -> None:
    raw = request("/whole/plain") + request("/whole/limited", "GET") + request("/whole/bare")
    ours = await exchange(server, raw, answers=3)
    assert header_building == [0]
    theirs = await exchange(server, raw.replace(b"/whole/", b"/plain/"), answers=3)
    assert ours == theirs
    assert re.findall(rb"HTTP/1.1 (\d+) ", ours) == [b"200", b"429", b"200"]


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("plain", request("/{}/plain", version="1.0")),
        ("plain", request("/{}/plain", version="1.0", extra="Connection: keep-alive\r\n")),
        ("plain", request("/{}/plain", extra="Connection: close\r\n")),
        ("limited", request("/{}/limited", extra="Connection: close\r\n")),
        ("plain", request("/{}/plain", "HEAD")),
        ("compressed", request("/{}/compressed", extra="Accept-Encoding: gzip\r\n")),
        ("cookie", request("/{}/cookie")),
    ],
    ids=["http10", "http10-keep-alive", "close", "4xx-close", "head", "compressed", "cookie"],
)
async def test_anything_unusual_is_aiohttps_own_answer(
    server: TestServer, header_building: list[int], kind: str, raw: bytes
) -> None:
    ours = await exchange(server, raw.replace(b"{}", b"whole", 1))
    assert header_building == [1]
    theirs = await exchange(server, raw.replace(b"{}", b"plain", 1))
    assert ours == theirs


async def test_aiohttps_access_log_line_is_the_same(caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application()
    app.router.add_get("/{class}", _answer)
    server = TestServer(app)
    await server.start_server(access_log_format="%r %s %b")
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            await exchange(server, request("/whole", "GET"))
            await exchange(server, request("/plain", "GET"))
    finally:
        await server.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 2
    assert lines[0].replace("/whole", "/plain") == lines[1]
    assert lines[1].startswith("GET /plain HTTP/1.1 200 ")
    assert int(lines[1].rsplit(" ", 1)[1]) > len(BODY)  # the head and the body


async def _answer(request: web.Request) -> web.Response:
    whole, plain = answers("plain")
    return whole() if request.match_info["class"] == "whole" else plain()


async def test_a_client_gone_raises_connection_reset_as_aiohttps() -> None:
    request, _ = mocked(Transport(closing=True))
    with pytest.raises(ConnectionResetError):
        await WholeAnswer(BODY, HEADERS).prepare(request)
    request, _ = mocked(Transport(closing=True))
    response = web.Response(body=BODY, headers=HEADERS, content_type="application/json")
    await response.prepare(request)
    with pytest.raises(ConnectionResetError):
        await response.write_eof()


async def test_a_full_transport_buffer_is_waited_for() -> None:
    transport = Transport()
    request, protocol = mocked(transport)
    protocol.pause_writing()
    answer = WholeAnswer(BODY, HEADERS)
    prepared = asyncio.ensure_future(answer.prepare(request))
    await asyncio.sleep(0.01)
    assert not prepared.done()
    assert len(transport.sends) == 1
    assert transport.sends[0].endswith(b"\r\n\r\n" + BODY)
    protocol.resume_writing()
    await asyncio.wait_for(prepared, 1)
    await answer.write_eof()  # nothing left to do
    assert len(transport.sends) == 1
    assert answer.prepared
    assert answer.keep_alive
    assert answer.body_length == len(transport.sends[0])
