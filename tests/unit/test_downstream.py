"""ClientStream: what one streamed answer puts on the client's connection.

Through aiohttp's real response and payload writer onto a transport that records each send:

- OpenAI's format: the status line and headers leave with the first events (one send), the
  end-of-stream events with the end of the chunked body (one send); the bytes are exactly the
  events given, each write recorded for continuation, the tail not; ``finish`` given the last
  events too sends the whole stream at once (recorded, and rewritten by a client format)
- committed once: a second commit sends nothing and keeps the first headers; nothing is written
  after the end
- ``fail``: one OpenAI error event and the end of the body, also as the first bytes after the
  commit; nothing after an end
- a client format's response rewrites the tail in its own ``write`` (never bypassed)
- a client gone: ``finish`` and ``fail`` report ``client_closed``, ``write`` raises
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.http_writer import StreamWriter
from aiohttp.test_utils import make_mocked_request
from client_transport import Transport

from switchman.gateway.errors import UpstreamUnavailable
from switchman.gateway.providers.sse import DONE, SSEParser
from switchman.gateway.serve.downstream import ClientStream
from switchman.gateway.serve.hangup import CLIENT_CLOSED
from switchman.gateway.upstreams.client import Provider, StreamDecoder

EVENTS = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"choices":[]}\n\n'
HEADERS = {"x-switchman-model": "small"}


class Protocol:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._paused = False

    async def _drain_helper(self) -> None:
        return None


class Recorder:
    def __init__(self) -> None:
        self.added: list[bytes] = []

    def add(self, data: bytes) -> None:
        self.added.append(data)


def client(transport: Transport, **kwargs: Any) -> ClientStream:
    writer = StreamWriter(Protocol(transport), asyncio.get_running_loop())  # type: ignore[arg-type]
    request = make_mocked_request(
        "POST", "/v1/chat/completions", writer=writer, transport=transport
    )
    return ClientStream(request, False, **kwargs)


def body(sends: list[bytes]) -> tuple[bytes, bytes]:
    """(the head, the de-chunked body) of what was sent."""
    head, _, chunked = b"".join(sends).partition(b"\r\n\r\n")
    out = b""
    while True:
        size, _, rest = chunked.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            assert rest == b"\r\n"
            return head, out
        out += rest[:length]
        assert rest[length : length + 2] == b"\r\n"
        chunked = rest[length + 2 :]


async def test_openai_stream_sends_headers_with_the_first_events_and_the_tail_with_the_end() -> (
    None
):
    transport, recorder = Transport(), Recorder()
    stream = client(transport, recorder=recorder)

    await stream.commit(HEADERS)
    assert transport.sends == []  # held for the first bytes
    await stream.write(EVENTS)
    assert len(transport.sends) == 1
    assert await stream.finish(DONE) == "ok"

    assert len(transport.sends) == 2
    head, sent = body(transport.sends)
    assert sent == EVENTS + DONE
    assert transport.sends[1].endswith(b"0\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    for header in (
        "x-switchman-model: small",
        "Content-Type: text/event-stream",
        "Cache-Control: no-cache",
        "X-Accel-Buffering: no",
        "Transfer-Encoding: chunked",
    ):
        assert header in lines
    assert recorder.added == [EVENTS]


async def test_a_stream_is_committed_once() -> None:
    transport = Transport()
    stream = client(transport)
    await stream.commit(HEADERS)
    first = stream.response

    await stream.commit({"x-switchman-model": "other"})
    await stream.write(EVENTS)
    await stream.finish(DONE)

    assert stream.response is first
    head, _ = body(transport.sends)
    assert b"small" in head
    assert b"other" not in head
    assert head.count(b"HTTP/1.1") == 1


async def test_fail_ends_with_one_error_event_and_nothing_after_it() -> None:
    transport = Transport()
    stream = client(transport)
    await stream.commit(HEADERS)
    await stream.write(EVENTS)

    assert await stream.fail("stream_broken", UpstreamUnavailable("upstream 'a' broke off")) == (
        "stream_broken"
    )
    assert await stream.finish(DONE) == "ok"
    assert await stream.fail("other", UpstreamUnavailable("x")) == "other"

    _, sent = body(transport.sends)
    assert sent.startswith(EVENTS)
    [error] = SSEParser().feed(sent[len(EVENTS) :])
    assert json.loads(error.data)["error"]["message"] == "upstream 'a' broke off"


async def test_fail_right_after_the_commit_sends_the_headers_with_the_error() -> None:
    transport = Transport()
    stream = client(transport)
    await stream.commit(HEADERS)

    await stream.fail("stream_broken", UpstreamUnavailable("gone"))

    assert len(transport.sends) == 1
    head, sent = body(transport.sends)
    assert head.startswith(b"HTTP/1.1 200 OK")
    [error] = SSEParser().feed(sent)
    assert json.loads(error.data)["error"]["message"] == "gone"


class Upper(web.StreamResponse):
    """A client format's response: rewrites what it is given."""

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        await super().write(bytes(data).upper())


class Format:
    def decoder(self, provider: Provider, model_id: str) -> StreamDecoder | None:
        return None

    def native(self, provider: Provider) -> bool:
        return False

    def stream_response(self, headers: dict[str, str]) -> web.StreamResponse:
        return Upper(headers=headers)

    def whole(self, payload: bytes) -> bytes:
        return payload


async def test_a_client_format_rewrites_the_tail_in_its_own_write() -> None:
    transport = Transport()
    stream = client(transport, format=Format())
    await stream.commit(HEADERS)
    await stream.write(EVENTS)
    await stream.finish(DONE)

    head, sent = body(transport.sends)
    assert sent == (EVENTS + DONE).upper()
    assert b"Content-Type: text/event-stream" in head


@pytest.mark.parametrize("end", ["finish", "fail"])
async def test_a_client_gone_is_client_closed(end: str) -> None:
    transport = Transport()
    stream = client(transport)
    await stream.commit(HEADERS)
    transport.closing = True

    with pytest.raises(ConnectionResetError):
        await stream.write(EVENTS)
    if end == "finish":
        assert await stream.finish(DONE) == CLIENT_CLOSED
    else:
        assert await stream.fail("x", UpstreamUnavailable("x")) == CLIENT_CLOSED


async def test_finish_with_the_last_events_sends_the_whole_stream_once() -> None:
    transport, recorder = Transport(), Recorder()
    stream = client(transport, recorder=recorder)
    await stream.commit(HEADERS)

    assert await stream.finish(DONE, EVENTS) == "ok"

    assert len(transport.sends) == 1
    head, sent = body(transport.sends)
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert sent == EVENTS + DONE
    assert recorder.added == [EVENTS]


async def test_a_client_format_rewrites_the_last_events_too() -> None:
    transport = Transport()
    stream = client(transport, format=Format())
    await stream.commit(HEADERS)

    await stream.finish(DONE, EVENTS)

    _, sent = body(transport.sends)
    assert sent == (EVENTS + DONE).upper()


async def test_nothing_is_written_after_the_end() -> None:
    transport = Transport()
    stream = client(transport)
    await stream.commit(HEADERS)
    await stream.finish(DONE, EVENTS)

    with pytest.raises(RuntimeError):
        await stream.write(EVENTS)
    assert len(transport.sends) == 1
