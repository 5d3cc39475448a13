"""TranslatedStream: a client format's stream (Anthropic Messages, Responses) framed and written
by ``EventStream``.

Each stream is written once through ``ClientStream`` with a client format whose response is a
``TranslatedStream`` and once the way it was written before it was an ``EventStream``: aiohttp's
own ``web.StreamResponse`` given the same headers, sending them at ``prepare``, then one
``write`` per chunk that rewrites into something and ``write_eof``. Onto a transport that
records each send. Scenario matrix:

- the usual request (HTTP/1.1 keep-alive), for events then the end, the whole answer in the end,
  the end only, an error first or after events, empty writes, a first chunk rewritten into
  nothing: the same bytes but for ``Date``; ``EventStream``'s own path (``chunks``); nothing
  sent at the commit; the head with the first send (alone when that send rewrites into
  nothing); one send per chunk that rewrites into something, the end's rewritten data with the
  end of the body
- HTTP/1.0 (anything unusual): aiohttp's own path, its headers sent at the commit as before;
  the same bytes
- after the end nothing more is sent and a write is refused
"""

from __future__ import annotations

import json
import re
from typing import Any

import client_transport
import pytest
from aiohttp import web
from aiohttp.http import HttpVersion10, HttpVersion11
from client_transport import Transport

from switchman.gateway.errors import UpstreamUnavailable
from switchman.gateway.inbound.writer import TranslatedStream
from switchman.gateway.providers.sse import DONE, encode
from switchman.gateway.serve.downstream import ClientStream
from switchman.gateway.upstreams.client import Provider, StreamDecoder

E1 = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
E2 = b'data: {"choices":[{"delta":{"content":"' + b"b" * 300 + b'"}}]}\n\n'
QUIET = b'data: {"choices":[]}\n\n'  # rewritten into nothing
ERROR = UpstreamUnavailable("upstream 'a' broke off")
HEADERS = {"x-switchman-route": "m; direct", "x-switchman-model": "m"}
EVENT_STREAM = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
DATE = re.compile(rb"\r\nDate: [^\r]*")

SCRIPTS: dict[str, list[tuple[Any, ...]]] = {
    "events": [("write", E1), ("write", E2), ("finish", DONE, b"")],
    "whole": [("finish", DONE, E1 + E2)],
    "end-only": [("finish", DONE, b"")],
    "fail-first": [("fail",)],
    "fail-later": [("write", E1), ("write", E2), ("fail",)],
    "empty-writes": [("write", b""), ("write", E1), ("write", b""), ("finish", b"", b"")],
    "quiet-first": [("write", QUIET), ("write", E1), ("write", QUIET), ("finish", DONE, QUIET)],
}


class Encoder:
    """A client format's events: one per chat chunk with choices, none for one without."""

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if not chunk.get("choices"):
            return b"event: error\n\n" if "error" in chunk else b""
        text = chunk["choices"][0]["delta"]["content"]
        return b"event: delta\ndata: %b\n\n" % json.dumps({"text": text}).encode()

    def native(self, name: str, data: dict[str, Any]) -> bytes:
        return b"event: %b\n\n" % name.encode()

    def done(self) -> bytes:
        return b"event: stop\ndata: {}\n\n"


class Format:
    def decoder(self, provider: Provider, model_id: str) -> StreamDecoder | None:
        return None

    def native(self, provider: Provider) -> bool:
        return False

    def stream_response(self, headers: dict[str, str]) -> web.StreamResponse:
        return TranslatedStream(Encoder(), headers=headers)

    def whole(self, payload: bytes) -> bytes:
        return payload


def mocked(transport: Transport, version: str) -> web.Request:
    http = HttpVersion10 if version == "1.0" else HttpVersion11
    return client_transport.mocked(transport, "/v1/messages", http)[0]


async def ours(request: web.Request, script: list[tuple[Any, ...]], sends: list[bytes]) -> int:
    """The stream through ``ClientStream``; how many sends its commit made."""
    client = ClientStream(request, False, format=Format())
    await client.commit(HEADERS)
    at_commit = len(sends)
    response = client.response
    assert isinstance(response, TranslatedStream)
    assert response.chunks == (request.version.minor == 1)  # EventStream's own path, or not
    for step in script:
        if step[0] == "write":
            await client.write(step[1])
        elif step[0] == "finish":
            assert await client.finish(step[1], step[2]) == "ok"
        else:
            await client.fail("stream_broken", ERROR)
    return at_commit


async def before(request: web.Request, script: list[tuple[Any, ...]]) -> None:
    """The same stream as it was written before: aiohttp's response, headers at ``prepare``."""
    rewrite = TranslatedStream(Encoder(), headers={})._rewritten  # (the rewriting, unchanged)
    response = web.StreamResponse(headers={**HEADERS, **EVENT_STREAM, "X-Accel-Buffering": "no"})
    await response.prepare(request)
    for step in script:
        if step[0] == "finish" or step[0] == "write":
            data = step[1] if step[0] == "write" else step[2] + step[1]
            if payload := rewrite(data):
                await response.write(payload)
        else:
            await response.write(rewrite(encode(json.dumps(ERROR.body()).encode())))
        if step[0] != "write":
            await response.write_eof()


@pytest.mark.parametrize("version", ["1.1", "1.0"])
@pytest.mark.parametrize("kind", list(SCRIPTS))
async def test_the_bytes_are_the_same_as_before(kind: str, version: str) -> None:
    mine, theirs = Transport(), Transport()
    request = mocked(mine, version)
    at_commit = await ours(request, SCRIPTS[kind], mine.sends)
    await before(mocked(theirs, version), SCRIPTS[kind])

    assert DATE.sub(b"", b"".join(mine.sends)) == DATE.sub(b"", b"".join(theirs.sends))
    if version == "1.0":  # aiohttp's own path: the headers at the commit, as before
        assert at_commit == 1
        assert mine.sends[0].startswith(b"HTTP/1.0 200 OK\r\n")
        assert mine.sends[0].endswith(b"\r\n\r\n")
    else:
        assert at_commit == 0  # the head waits for the first send


@pytest.mark.parametrize("kind", list(SCRIPTS))
async def test_one_send_per_rewritten_chunk_the_head_with_the_first(kind: str) -> None:
    transport = Transport()
    await ours(mocked(transport, "1.1"), SCRIPTS[kind], transport.sends)

    script = SCRIPTS[kind]
    first_write = script[0][0] == "write"
    assert transport.sends[0].startswith(b"HTTP/1.1 200 OK\r\n")
    if first_write and script[0][1] in (b"", QUIET):  # rewritten into nothing: the head alone
        assert transport.sends[0].endswith(b"\r\n\r\n")
    writes = [s[1] for s in script if s[0] == "write" and s[1] not in (b"", QUIET)]
    alone = first_write and script[0][1] in (b"", QUIET)
    assert len(transport.sends) == len(writes) + 1 + alone  # the end: one send
    assert transport.sends[-1].endswith(b"0\r\n\r\n")
    rewrite = TranslatedStream(Encoder(), headers={})._rewritten
    for send, data in zip(transport.sends[alone:], writes, strict=False):
        assert send.endswith(b"\r\n" + rewrite(data) + b"\r\n")


async def test_nothing_is_sent_after_the_end() -> None:
    transport = Transport()
    request = mocked(transport, "1.1")
    client = ClientStream(request, False, format=Format())
    await client.commit(HEADERS)
    await client.finish(DONE, E1)
    sent = list(transport.sends)
    response = client.response
    assert isinstance(response, TranslatedStream)

    assert await response.prepare(request) is None  # what aiohttp's finish_response calls
    await response.write_eof()
    assert response.end(E2) is None
    with pytest.raises(RuntimeError):
        await response.write(E2)
    assert transport.sends == sent
    assert response.body_length == len(b"".join(sent))
