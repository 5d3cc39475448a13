"""Relays one upstream SSE stream to the client as it arrives.

Used by ``proxy``: ``first()`` reads until the first client-visible bytes exist (a failure before
that is a ``Failure`` the proxy recovers from by trying the next candidate); ``rest()`` writes
them and everything after, event by event, awaiting each write so a slow client slows the upstream
read (backpressure) instead of growing a buffer. A client that disconnects ends the relay and the
proxy closes the upstream connection, which cancels the generation. An upstream that breaks off or
stalls after the client saw data raises ``Cut`` when the route continues streams on another
upstream (``continuation``), and otherwise ends the stream with a well-formed OpenAI error event.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

from switchman.gateway.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from switchman.gateway.providers.sse import SSEParser, encode
from switchman.gateway.serve.continuation import Transcript
from switchman.gateway.serve.failures import Failure
from switchman.gateway.upstreams.client import StreamDecoder


class _Broken(Exception):
    def __init__(self, reason: str, error: GatewayError) -> None:
        super().__init__(error.message)
        self.reason = reason
        self.error = error


class Cut(Failure):
    """The upstream broke off after the client saw data; the transcript can be continued."""


async def read_error(resp: aiohttp.ClientResponse, idle: float) -> bytes:
    """The body of an upstream error response, bounded in time."""
    try:
        async with asyncio.timeout(idle):
            return await resp.read()
    except (TimeoutError, aiohttp.ClientError):
        return b""


class Relay:
    """One upstream stream being relayed; see the module docstring."""

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        decoder: StreamDecoder,
        *,
        idle: float,
        deadline: float,
        transcript: Transcript | None = None,
    ) -> None:
        self._upstream = upstream
        self._transcript = transcript
        self._decoder = decoder
        self._parser = SSEParser()
        self._idle = idle
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()
        self._writes = 0
        self._first_write = 0.0
        self._last_write = 0.0

    def mean_gap(self) -> float | None:
        """Mean seconds between chunks written to the client (inter-token latency)."""
        if self._writes < 2:
            return None
        return (self._last_write - self._first_write) / (self._writes - 1)

    async def _write(self, response: web.StreamResponse, data: bytes) -> None:
        await response.write(data)
        if self._transcript is not None:
            self._transcript.add(data)
        now = self._loop.time()
        if not self._writes:
            self._first_write = now
        self._last_write = now
        self._writes += 1

    async def _next(self, name: str) -> bytes:
        """Client-visible bytes from the next upstream read; b"" at a clean end."""
        timeout = min(self._idle, self._deadline - self._loop.time())
        try:
            async with asyncio.timeout(max(timeout, 0)):
                chunk = await self._upstream.content.readany()
        except TimeoutError as exc:
            raise _Broken(
                "stalled", UpstreamTimeout(f"upstream '{name}' stalled for over {timeout:.3g}s")
            ) from exc
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            # RuntimeError: aiohttp's "Connection closed." when the pool closed underneath.
            raise _Broken(
                "stream_broken", UpstreamUnavailable(f"upstream '{name}' broke off: {exc}")
            ) from exc
        decoder = self._decoder
        try:
            if not chunk:
                out = b"".join(decoder.feed(event) for event in self._parser.flush())
                if not decoder.done:
                    raise _Broken(
                        "stream_broken",
                        UpstreamUnavailable(f"upstream '{name}' ended the stream before finishing"),
                    )
                return out
            return b"".join(decoder.feed(event) for event in self._parser.feed(chunk))
        except GatewayError as exc:  # an error event inside the upstream stream
            raise _Broken("upstream_error", exc) from exc

    async def first(self, name: str) -> bytes:
        """Read until there is something to send; raise Failure if the stream dies first."""
        try:
            while True:
                out = await self._next(name)
                if out or self._decoder.done:
                    return out
        except _Broken as broken:
            raise Failure(broken.reason, broken.error) from broken

    async def rest(self, response: web.StreamResponse, first: bytes, name: str) -> str:
        """Send ``first`` and the rest of the stream; return the outcome label.

        With a transcript, a break raises ``Cut`` (the caller continues the stream elsewhere or
        calls ``terminate``); without one the stream ends here with an error event.
        """
        decoder = self._decoder
        try:
            if first:
                await self._write(response, first)
            while not decoder.done:
                out = await self._next(name)
                if out:
                    await self._write(response, out)
            await response.write(decoder.finish())
            await response.write_eof()
            return "ok"
        except _Broken as broken:
            if self._transcript is not None:
                raise Cut(broken.reason, broken.error) from broken
            return await terminate(response, broken.reason, broken.error)
        except ConnectionResetError:
            return "client_disconnected"


async def terminate(response: web.StreamResponse, reason: str, error: GatewayError) -> str:
    """End a stream the client already reads with an OpenAI-style error event."""
    payload = json.dumps(error.body()).encode()
    try:
        await response.write(encode(payload))
        await response.write_eof()
    except ConnectionResetError:
        return "client_disconnected"
    return reason
