"""The client's stream response for inbound formats: chat chunks written in, the client's own events
sent out.

The serve pipeline writes OpenAI chat chunks (relayed or translated from the upstream, relabelled
by ``serve.continuation`` after a cut, ``data: [DONE]`` at the end, or one OpenAI error event) to
the response it was given, or, from an upstream that speaks the client's format, that upstream's
own named events (``native``), which are passed on as they are. ``TranslatedStream`` is that
response for ``/v1/messages`` and ``/v1/responses``: it parses what is sent or written, event by
event, and sends what its ``Encoder`` makes of it, framed as ``serve.downstream.EventStream``
frames OpenAI's stream. Created by ``translation`` when the pipeline commits to a
stream; because it lives as long as the client's response, a stream continued on another upstream
stays one stream.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any, Protocol

from aiohttp import web

from switchman.gateway.providers.sse import SSEParser
from switchman.gateway.serve.downstream import EventStream


class Encoder(Protocol):
    """Turns chat chunks into one client format's events (one per client stream)."""

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def native(self, name: str, data: dict[str, Any]) -> bytes: ...

    def done(self) -> bytes: ...


class TranslatedStream(EventStream):
    """An ``EventStream`` whose sends take chat chunks; see the module docstring.

    For the usual request (``EventStream``'s own path) each ``send`` / ``end`` is rewritten and
    then framed and written by ``EventStream``: the head leaves with the first send, even one
    rewritten into nothing. Otherwise aiohttp's own response (``chunks`` False), its headers
    sent at ``prepare`` and each ``write`` rewritten.
    """

    _send_headers_immediately = True  # aiohttp's default, for aiohttp's own path

    def __init__(self, encoder: Encoder, *, headers: dict[str, str]) -> None:
        super().__init__(headers)
        self._encoder = encoder
        self._parser = SSEParser()

    def send(self, data: bytes) -> Awaitable[None] | None:
        return super().send(self._rewritten(data))

    def end(self, data: bytes = b"") -> Awaitable[None] | None:
        if self._eof_sent:
            return None
        return super().end(self._rewritten(data) if data else b"")

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.chunks:
            return await super().write(data)  # (``send``: rewritten there)
        payload = self._rewritten(bytes(data))
        if payload:
            await web.StreamResponse.write(self, payload)

    def _rewritten(self, data: bytes) -> bytes:
        out = []
        for event in self._parser.feed(data):
            if event.is_done:
                out.append(self._encoder.done())
                continue
            try:
                chunk = json.loads(event.data)
            except ValueError:
                continue  # the pipeline writes only JSON chunks; nothing else has a meaning here
            if not isinstance(chunk, dict):
                continue
            if event.event:  # an upstream's own event in the client's format (``native``)
                out.append(self._encoder.native(event.event, chunk))
            else:
                out.append(self._encoder.chunk(chunk))
        return b"".join(out)
