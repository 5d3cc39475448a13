"""The client side of one request: the only code that writes a response body to the client.

Created by ``failover`` for each request and handed to every attempt (``attempt``, ``relay``).
A whole answer becomes one ``web.Response`` (``whole``). A stream is committed once, by the first
attempt that has client-visible bytes (``commit``: the status line and headers), then written
event by event (``write``, each one also given to the recorder that keeps a transcript for
continuation) and ended exactly once: ``finish`` (the end-of-stream bytes, e.g. ``[DONE]``) or
``fail`` (one well-formed OpenAI error event). In OpenAI's format the headers leave with the
first events and the end-of-stream bytes with the end of the body, so a stream sends twice, or
once when ``finish`` is given the last events too. Once committed, nothing else may reach the
client: every later outcome is an SSE event, never a second HTTP response. Errors before the
commit are raised and turned into JSON responses by the app's front (``app.Front``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from switchman.gateway.errors import GatewayError
from switchman.gateway.providers.exchange import Operation
from switchman.gateway.providers.sse import encode
from switchman.gateway.serve.hangup import CLIENT_CLOSED
from switchman.gateway.upstreams.client import Provider, StreamDecoder

# X-Accel-Buffering: an nginx in front relays each event as it comes
_EVENT_STREAM = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}


class Presentation(Protocol):
    """The client's own API format (``inbound``): its stream response, which takes the chat
    chunks written here and sends that API's events, and a whole chat answer in that format;
    for an upstream that speaks that format, a decoder keeping its events as they are."""

    def decoder(self, provider: Provider, model_id: str) -> StreamDecoder | None: ...

    def native(self, provider: Provider) -> bool: ...

    def stream_response(self, headers: dict[str, str]) -> web.StreamResponse: ...

    def whole(self, payload: bytes) -> bytes: ...


class Recorder(Protocol):
    """Keeps what the client was sent (``continuation.Transcript``)."""

    def add(self, data: bytes) -> None: ...


@dataclass(slots=True)
class ClientStream:
    """One request's client connection; see the module docstring."""

    request: web.Request
    wants_usage: bool
    recorder: Recorder | None = None  # kept when a cut stream may be continued
    response: web.StreamResponse | None = None  # set once committed
    ended: bool = False
    gaps: list[float] = field(default_factory=list)
    format: Presentation | None = None  # None: the client speaks OpenAI's chat/completions
    _send: Callable[[bytes], Awaitable[None]] | None = None  # where ``write`` puts events

    def native(self, provider: Provider) -> bool:
        """Whether the client speaks ``provider``'s format, so its answers go to it as they are."""
        return self.format is not None and self.format.native(provider)

    def decoder(self, provider: Provider, op: Operation, model_id: str) -> StreamDecoder:
        """How an attempt that starts the answer reads its stream: the client format's own
        decoder for an upstream speaking it, else the provider's."""
        native = self.format.decoder(provider, model_id) if self.format is not None else None
        return native or provider.stream(op, model_id, self.wants_usage)

    @property
    def committed(self) -> bool:
        return self.response is not None

    async def commit(self, headers: dict[str, str]) -> None:
        """Start the client's event stream with ``headers`` (once).

        In OpenAI's format the status line and headers leave with the first bytes (``write``,
        ``finish`` or ``fail``, one of which every caller does at once, never with nothing):
        one send to the client, not two. A client format's response may write nothing for a
        chunk, so it sends them at once.
        """
        if self.response is not None:
            return
        headers = {**headers, **_EVENT_STREAM}
        if self.format is not None:
            response = self.format.stream_response(headers)
        else:
            response = web.StreamResponse(headers=headers)
            # aiohttp (3.12+) then holds the headers for the next write, as for a web.Response.
            response._send_headers_immediately = False
        writer = await response.prepare(self.request)
        # OpenAI's events go straight to the payload writer (what StreamResponse.write calls);
        # a client format's through its response, which rewrites them.
        self._send = writer.write if self.format is None and writer is not None else response.write
        self.response = response

    async def write(self, data: bytes) -> None:
        """Send events; a client that went away raises ``ConnectionResetError``."""
        assert self._send is not None, "write before commit"
        if self.ended:  # (StreamResponse.write would refuse too; the payload writer does not)
            raise RuntimeError("a write after the stream ended")
        await self._send(data)
        if self.recorder is not None:
            self.recorder.add(data)

    async def finish(self, tail: bytes, last: bytes = b"") -> str:
        """End the stream well: ``last`` (events not yet written, recorded like a ``write``:
        an answer whose end came in the same upstream read goes out in one send), ``tail`` (the
        end-of-stream events), then the end of the body."""
        assert self.response is not None, "finish before commit"
        if self.ended:
            return "ok"
        self.ended = True
        try:
            await self._end(last + tail)
        except ConnectionResetError:
            return CLIENT_CLOSED
        if last and self.recorder is not None:
            self.recorder.add(last)
        return "ok"

    async def fail(self, reason: str, error: GatewayError) -> str:
        """End the stream with one OpenAI-style error event; returns the outcome label."""
        assert self.response is not None, "fail before commit"
        if self.ended:
            return reason
        self.ended = True
        try:
            await self._end(encode(json.dumps(error.body()).encode()))
        except ConnectionResetError:
            return CLIENT_CLOSED
        return reason

    async def _end(self, last: bytes) -> None:
        """``last`` and the end of the body, in one send for OpenAI's format; a client format's
        own response rewrites ``last`` in its ``write`` (which ``write_eof`` would bypass)."""
        assert self.response is not None
        if self.format is None:
            await self.response.write_eof(last)
            return
        if last:
            await self.response.write(last)
        await self.response.write_eof()

    def whole(self, payload: bytes, headers: dict[str, str]) -> web.Response:
        """A whole (non-streamed) JSON answer, in the client's format."""
        if self.format is not None:
            payload = self.format.whole(payload)
        return web.Response(body=payload, content_type="application/json", headers=headers)
