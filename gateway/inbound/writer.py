"""The client's stream response for inbound formats: chat chunks written in, the client's own events
sent out.

The serve pipeline writes OpenAI chat chunks (relayed or translated from the upstream, relabelled
by ``serve.continuation`` after a cut, ``data: [DONE]`` at the end, or one OpenAI error event) to
the response it was given, or, from an upstream that speaks the client's format, that upstream's
own named events (``native``), which are passed on as they are. ``TranslatedStream`` is that
response for ``/v1/messages`` and ``/v1/responses``: it parses what is written, event by event, and
writes what its ``Encoder`` makes of it. Created by ``translation`` when the pipeline commits to a
stream; because it lives as long as the client's response, a stream continued on another upstream
stays one stream.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from switchman.gateway.providers.sse import SSEParser


class Encoder(Protocol):
    """Turns chat chunks into one client format's events (one per client stream)."""

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def native(self, name: str, data: dict[str, Any]) -> bytes: ...

    def done(self) -> bytes: ...


class TranslatedStream(web.StreamResponse):
    """A ``web.StreamResponse`` whose ``write`` takes chat chunks; see the module docstring."""

    def __init__(self, encoder: Encoder, *, headers: dict[str, str]) -> None:
        super().__init__(headers=headers)
        self._encoder = encoder
        self._parser = SSEParser()

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        out = []
        for event in self._parser.feed(bytes(data)):
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
        payload = b"".join(out)
        if payload:
            await super().write(payload)
