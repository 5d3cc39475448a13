"""Relays one upstream SSE stream to the client as it arrives.

Used by ``attempt``: ``first()`` reads until the first client-visible bytes exist (a failure before
that is a ``Failure``: nothing reached the client, the next attempt starts afresh); ``rest()``
writes them and everything after through the request's ``downstream.ClientStream``, event by
event (``send``), awaiting what a send asks to wait for (a client that reads slowly) before the
next read, so a slow client slows the upstream read (backpressure) instead of growing a buffer.
A client that disconnects ends the relay and the attempt closes the upstream connection, which
cancels the generation.

An upstream that breaks off, stalls, sends a chunk that is not JSON or an in-band error event
after the client saw data raises ``Cut``: never relayed, always the attempt's failure, which
``failover`` continues on another attempt or ends with one error event. An EOF after a
``finish_reason`` is a clean end (the missing ``[DONE]`` is written for the upstream). Past
``max_bytes`` read from the upstream the relay breaks off with ``stream_too_large`` (never
continued). Every event passes ``redactor`` before the decoder sees it, so no credential an
upstream echoes is relayed, wrapped into an error or logged. A decoder that takes a read's whole
events at once (``OpenAIStream.feed_block``) gets them as one block when no credential is in it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from switchman.gateway.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from switchman.gateway.providers.sse import Event, SSEParser, block_events
from switchman.gateway.serve.continuation import JoinUnverified
from switchman.gateway.serve.deadlines import Deadlines
from switchman.gateway.serve.downstream import ClientStream
from switchman.gateway.serve.failures import STREAM_TOO_LARGE, Failure
from switchman.gateway.serve.hangup import CLIENT_CLOSED
from switchman.gateway.upstreams.client import StreamDecoder
from switchman.gateway.upstreams.credentials import Redactor
from switchman.gateway.upstreams.wire import WireError


class Body(Protocol):
    """An upstream response's body as it arrives (``upstreams.wire.Response``)."""

    async def read(self) -> bytes:
        """The next bytes; b"" at the end; ``WireError`` when cut off or malformed."""
        ...

    def ready(self) -> bytes | None:
        """What ``read`` would return now, or None when it would have to wait."""
        ...


class _Broken(Exception):
    def __init__(self, reason: str, error: GatewayError) -> None:
        super().__init__(error.message)
        self.reason = reason
        self.error = error


class Cut(Failure):
    """The upstream broke off after the client saw data; the transcript can be continued."""


def _broke(name: str, exc: WireError) -> _Broken:
    """The upstream's body was cut off, reset or malformed, or the pool closed underneath."""
    return _Broken("stream_broken", UpstreamUnavailable(f"upstream '{name}' broke off: {exc}"))


ERROR_BODY_BYTES = 64 * 1024
_KEY_MARGIN = 1024  # read past the limit so a credential straddling it is redacted whole


async def read_error(resp: Body, idle: float, redactor: Redactor | None = None) -> bytes:
    """The (redacted) body of an upstream error response, bounded in time and size."""
    data = b""
    try:
        async with asyncio.timeout(idle):
            while len(data) < ERROR_BODY_BYTES + _KEY_MARGIN:
                chunk = await resp.read()
                if not chunk:
                    break
                data += chunk
    except (TimeoutError, WireError):
        return b""
    return (redactor or Redactor()).data(data)[:ERROR_BODY_BYTES]


class Relay:
    """One upstream stream being relayed; see the module docstring."""

    __slots__ = (
        "_block",
        "_cap",
        "_deadline",
        "_deadlines",
        "_decoder",
        "_eof",
        "_first_write",
        "_idle",
        "_last_write",
        "_left",
        "_loop",
        "_parser",
        "_redactor",
        "_upstream",
        "_writes",
    )

    def __init__(
        self,
        upstream: Body,
        decoder: StreamDecoder,
        *,
        idle: float,
        deadline: float,
        redactor: Redactor | None = None,
        max_bytes: int | None = None,
        deadlines: Deadlines,
    ) -> None:
        self._upstream = upstream
        self._deadlines = deadlines
        self._redactor = redactor if redactor is not None else Redactor()
        self._cap = max_bytes
        self._left = max_bytes
        self._decoder = decoder
        # A decoder that takes a read's events at once (``OpenAIStream.feed_block``: the same
        # bytes and state as ``feed`` on each) is given them so: no event objects.
        self._block: Callable[[bytes], bytes] | None = getattr(decoder, "feed_block", None)
        self._parser = SSEParser()
        self._idle = idle
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()
        self._eof = False
        self._writes = 0
        self._first_write = 0.0
        self._last_write = 0.0

    @property
    def ended(self) -> bool:
        """The upstream finished its answer (``[DONE]``, or an EOF after a finish reason)."""
        return self._decoder.done or self._eof

    def mean_gap(self) -> float | None:
        """Mean seconds between chunks written to the client (inter-token latency)."""
        if self._writes < 2:
            return None
        return (self._last_write - self._first_write) / (self._writes - 1)

    def _wrote(self) -> None:
        now = self._loop.time()
        if not self._writes:
            self._first_write = now
        self._last_write = now
        self._writes += 1

    def _ready(self, name: str) -> bytes | None:
        """What already arrived (no timer, no coroutine); None when the read must wait."""
        try:
            chunk = self._upstream.ready()
        except WireError as exc:
            raise _broke(name, exc) from exc
        return None if chunk is None else self._count(chunk, name)

    async def _wait(self, name: str) -> bytes:
        """The next bytes, once they arrive (at most ``idle`` and the generation's deadline)."""
        timeout = min(self._idle, self._deadline - self._loop.time())
        try:
            if timeout <= 0:
                raise TimeoutError
            # No timer of its own per read; ``async with``'s calls without its coroutines.
            deadline = self._deadlines.after(timeout).enter()
            try:
                chunk = await self._upstream.read()
            except BaseException as exc:
                deadline.exit(type(exc), exc)  # a TimeoutError in its place when time was up
                raise
            deadline.exit(None, None)
        except TimeoutError as exc:
            raise _Broken(
                "stalled", UpstreamTimeout(f"upstream '{name}' stalled for over {timeout:.3g}s")
            ) from exc
        except WireError as exc:
            raise _broke(name, exc) from exc
        return self._count(chunk, name)

    def _count(self, chunk: bytes, name: str) -> bytes:
        if self._left is not None:
            self._left -= len(chunk)
            if self._left < 0:
                message = (
                    f"upstream '{name}' streamed over {self._cap} bytes "
                    "(server.edge.max_stream_bytes)"
                )
                raise _Broken(STREAM_TOO_LARGE, UpstreamUnavailable(message))
        return chunk

    def _events(self, events: list[Event]) -> list[Event]:
        if not self._redactor:
            return events
        clean = self._redactor.data
        return [
            e if clean(e.raw) is e.raw else Event(clean(e.raw), e.event, clean(e.data))
            for e in events
        ]

    def _decode(self, chunk: bytes, name: str) -> bytes:
        """Client-visible bytes from one upstream read; b"" at a clean end."""
        decoder = self._decoder
        try:
            if chunk:
                if self._block is not None and (block := self._parser.complete(chunk)) is not None:
                    # A credential in the read: redacted event by event, as any other read.
                    if not self._redactor or self._redactor.data(block) is block:
                        return self._block(block)
                    events = self._events(block_events(block))
                else:
                    events = self._events(self._parser.feed(chunk))
                return b"".join([decoder.feed(event) for event in events])
            out = b"".join([decoder.feed(event) for event in self._events(self._parser.flush())])
            if not decoder.done and not decoder.finish_reasons:
                raise _Broken(
                    "stream_broken",
                    UpstreamUnavailable(f"upstream '{name}' ended the stream before finishing"),
                )
            self._eof = True  # finished, then EOF without [DONE]: a clean end
            return out
        except JoinUnverified as exc:
            raise _Broken("join_unverified", exc) from exc
        except GatewayError as exc:  # an error event inside the upstream stream
            raise _Broken("upstream_error", exc) from exc
        except (ValueError, KeyError, TypeError) as exc:  # a chunk that is not the protocol
            raise _Broken(
                "malformed_chunk", UpstreamUnavailable(f"upstream '{name}' sent a malformed chunk")
            ) from exc

    def first_ready(self, name: str) -> bytes | None:
        """``first`` when the bytes already in hand settle it, without a coroutine (the common
        start: the upstream's first events came with its response head); None: await ``first``
        (what was in hand, if anything, gave nothing to send)."""
        try:
            chunk = self._ready(name)
            out = b"" if chunk is None else self._decode(chunk, name)
        except _Broken as broken:
            raise Failure(broken.reason, broken.error) from broken
        return out if out or self.ended else None

    async def first(self, name: str) -> bytes:
        """Read until there is something to send; raise Failure if the stream dies first."""
        try:
            while True:
                chunk = self._ready(name)
                out = self._decode(chunk if chunk is not None else await self._wait(name), name)
                if out or self.ended:
                    return out
        except _Broken as broken:
            raise Failure(broken.reason, broken.error) from broken

    def rest(self, client: ClientStream, first: bytes, name: str) -> Coroutine[Any, Any, str]:
        """Send ``first`` and the rest of the stream; return the outcome label.

        A break raises ``Cut``; a client that went away ends it as ``client_closed``. When the
        answer ended with ``first``, the client's ``finish`` is all there is (no frame here).
        """
        if not self.ended:
            return self._rest(client, first, name)
        if first:
            self._wrote()
        return client.finish(self._decoder.finish(), first)

    async def _rest(self, client: ClientStream, first: bytes, name: str) -> str:
        try:
            out = first
            while not self.ended:
                if out:  # (no coroutine per chunk unless the client must be waited for)
                    wait = client.send(out)
                    if wait is not None:
                        await wait
                    self._wrote()
                chunk = self._ready(name)
                out = self._decode(chunk if chunk is not None else await self._wait(name), name)
            # The read that ended the answer goes out with its end: one send, not two.
            outcome = await client.finish(self._decoder.finish(), out)
            if out:
                self._wrote()
            return outcome
        except _Broken as broken:
            # A join that cannot be verified is not the replica's fault: no breaker counts it.
            if broken.reason == "join_unverified":
                raise Cut(broken.reason, broken.error, scope="continuation") from broken
            raise Cut(broken.reason, broken.error) from broken
        except ConnectionResetError:
            return CLIENT_CLOSED
