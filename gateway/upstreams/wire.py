"""One HTTP/1.1 connection to an upstream: the request written, the response parsed as it arrives.

Used by ``pool`` (which opens, reuses and closes connections) for the proxied request path; the
``Response`` it hands out is read by ``serve.attempt`` and ``serve.relay``. Responses are parsed by
llhttp (``httptools``): status and case-insensitive headers, then a Content-Length, chunked or
close-delimited body read incrementally. Interim 1xx responses are skipped. Reading pauses while
more than ``HIGH_WATER`` body bytes wait for the reader, so a slow client slows the upstream.

Every failure of the exchange (a malformed response, an EOF or reset before the response ended)
is a ``WireError``; ``ConnectFailed`` says no request was sent at all.
"""

from __future__ import annotations

import asyncio
import select
from collections.abc import Callable
from typing import Any, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

HIGH_WATER = 2**17  # buffered body bytes at which the socket stops being read until drained
LINGER_S = 1.0  # how long a finished reader's connection waits for the rest of its body


class _Stray(Exception):
    """Bytes after the end of the response: the connection is not reused."""


class WireError(Exception):
    """The exchange with an upstream failed at the HTTP level (the message says how)."""


class ConnectFailed(WireError):
    """No connection could be had (DNS, refused, TLS, ``connect_s``, a closed client): the request
    was never sent."""


class ResponseBroken(WireError):
    """The request was sent, and the response was malformed or ended early."""


class Connection(asyncio.Protocol):
    """One keep-alive connection; at most one exchange at a time (no pipelining)."""

    __slots__ = (
        "_body", "_buffered", "_busy", "_complete", "_error", "_head", "_interim", "_keep_alive",
        "_linger", "_loop", "_parser", "_paused", "_poll", "_raw", "_received", "_response",
        "_settled", "_until_eof", "_waiter", "idle_since", "key", "lost", "transport",
    )  # fmt: skip

    def __init__(self, key: str) -> None:
        self.key = key  # the pool's origin key
        self.transport: asyncio.Transport | None = None
        self.lost = False
        self.idle_since = 0.0
        self._poll: select.poll | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._loop = asyncio.get_running_loop()
        self._busy = False
        self._reset()

    def _reset(self) -> None:
        self._received = 0
        self._interim = False
        self._raw: list[tuple[str, str]] = []
        self._head: asyncio.Future[Response] | None = None
        self._response: Response | None = None
        self._until_eof = False
        self._body: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._complete = False
        self._keep_alive = False
        self._error: WireError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._settled: Callable[[Connection], None] | None = None
        self._linger: asyncio.TimerHandle | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:  # poll, not select: descriptors past 1024 are common here
            self._poll = select.poll()
            self._poll.register(sock.fileno(), select.POLLIN | select.POLLPRI | select.POLLRDHUP)

    def data_received(self, data: bytes) -> None:
        if not self._busy or self._complete:  # bytes nobody asked for: never reuse it
            self.close()
            return
        self._received += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ResponseBroken("the upstream switched protocols"))
        except httptools.HttpParserCallbackError as exc:
            reason = "sent bytes past its response" if isinstance(exc.__context__, _Stray) else exc
            self._fail(ResponseBroken(f"malformed response from the upstream ({reason})"))
        except httptools.HttpParserError as exc:
            self._fail(ResponseBroken(f"malformed response from the upstream ({exc})"))

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost decides what the EOF means

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self._busy or self._complete or self._error is not None:
            return
        if self._response is not None and self._until_eof and exc is None:
            self.on_message_complete()  # a close-delimited body ends at EOF
            self._keep_alive = False
            return
        if self._response is None and not self._received:
            reason = "closed the connection before answering"
        else:
            reason = "closed the connection before its response ended"
        self._fail(ResponseBroken(f"the upstream {reason}" + (f": {exc}" if exc else "")))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._complete:
            raise _Stray

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue, 103 Early Hints: the real response follows
            self._interim = True
            self._raw = []
            return
        headers = CIMultiDictProxy(CIMultiDict(self._raw))
        length = headers.get("Content-Length")
        chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self._until_eof = not chunked and length is None and status not in (204, 304)
        self._response = Response(self, status, headers, length)
        if self._head is not None and not self._head.done():
            self._head.set_result(self._response)

    def on_body(self, body: bytes) -> None:
        self._buffered += len(body)
        if self._settled is not None:  # nobody reads it any more
            if self._buffered > HIGH_WATER:
                self.close()
            return
        self._body.append(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        if self._waiter is not None:  # (``_wake`` has work: a reader waits)
            self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self._complete = True
        self._keep_alive = self._parser.should_keep_alive()
        if self._waiter is not None or self._settled is not None:  # (``_wake`` has work)
            self._wake()

    # the exchange

    def alive(self, now: float, keepalive_s: float) -> bool:
        """Can it carry another request: not closed by either side, not idle too long, and
        nothing (an EOF, a reset, stray bytes) waiting unread on its socket."""
        if self.lost or self.transport is None or self.transport.is_closing():
            return False
        if now - self.idle_since > keepalive_s:
            return False
        try:
            return self._poll is None or not self._poll.poll(0)
        except OSError:
            return False

    def exchange(self, head: bytes, body: bytes) -> asyncio.Future[Response]:
        """Send one request; the future of its response's status and headers (awaited by the
        caller: a plain method, no coroutine frame on the way of its result)."""
        if self.transport is None or self._busy:
            raise ConnectFailed("the connection is not ready for a request")
        self._reset()
        self._busy = True
        self._head = head_future = self._loop.create_future()
        if len(body) < 65536:
            self.transport.write(head + body)
        else:
            self.transport.write(head)
            self.transport.write(body)
        if self._error is not None:
            raise self._error
        return head_future

    def finished(self) -> bool:
        """The response was read to its end and the upstream keeps the connection open."""
        return self._complete and self._keep_alive and not self.lost

    def done(self, now: float) -> None:
        """The exchange is over (the pool takes the connection back or closes it)."""
        self._busy = False
        self.idle_since = now
        if self._paused and not self.lost and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    def settle(self, linger_s: float, ended: Callable[[Connection], None]) -> None:
        """The reader has all it needs: drop the rest of the body as it arrives and call
        ``ended`` once it has (reusable), or after ``linger_s`` or ``HIGH_WATER`` bytes (closed)."""
        self._body = []
        self._buffered = 0
        if self._paused and not self.lost and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        if self._complete or self._error is not None or self.lost:
            ended(self)
            return
        self._settled = ended
        self._linger = self._loop.call_later(linger_s, self.close)

    def close(self) -> None:
        self.lost = True
        if self.transport is not None:
            self.transport.close()
        if self._busy and not self._complete:
            self._fail(ResponseBroken("the connection to the upstream was closed"))

    def ready(self) -> bytes | None:
        """The body bytes buffered now; b"" once the body has ended; None: nothing yet."""
        if self._body:
            data = self._body[0] if len(self._body) == 1 else b"".join(self._body)
            self._body = []
            self._buffered = 0
            if self._paused and not self.lost and self.transport is not None:
                self._paused = False
                self.transport.resume_reading()
            return data
        if self._complete:
            return b""
        if self._error is not None:
            raise self._error
        return None

    async def read(self) -> bytes:
        """The body bytes buffered so far (waiting for some); b"" once the body has ended."""
        while True:
            data = self.ready()
            if data is not None:
                return data
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _fail(self, error: WireError) -> None:
        if self._error is None:
            self._error = error
        self.lost = True
        if self.transport is not None:
            self.transport.close()
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
        if self._settled is not None and (self._complete or self._error is not None):
            ended, self._settled = self._settled, None
            if self._linger is not None:
                self._linger.cancel()
            ended(self)


class Response:
    """An upstream response: status and headers now, the body as it arrives (``read``).

    ``release()`` (or leaving ``async with``) ends it: a body read to its end on a keep-alive
    connection gives the connection back for reuse; anything else closes it, which is how an
    abandoned stream stops the upstream's generation. ``close()`` always closes it.
    """

    __slots__ = ("_conn", "_ended", "content_length", "headers", "status")

    def __init__(
        self,
        conn: Connection,
        status: int,
        headers: CIMultiDictProxy[str],
        length: str | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        # the Content-Length header's value (``length``, read once by the connection) as a
        # number; None when absent or not a plain count
        self.content_length = int(length) if length is not None and length.isdigit() else None
        self._conn = conn
        self._ended: Callable[[Connection], None] | None = None

    def bind(self, ended: Callable[[Connection], None]) -> None:
        """Who takes the connection back when the response ends (the pool)."""
        self._ended = ended

    async def read(self) -> bytes:
        """The next body bytes (all that are buffered); b"" once the body has ended. Raises
        ``ResponseBroken`` when the body is cut off or malformed."""
        return await self._conn.read()

    def ready(self) -> bytes | None:
        """What ``read`` would return without waiting, or None when it would wait: a reader that
        bounds its waits arms a timer only when there is something to wait for."""
        return self._conn.ready()

    def release(self) -> None:
        ended, self._ended = self._ended, None
        if ended is not None:
            ended(self._conn)

    def finish(self, linger_s: float = LINGER_S) -> None:
        """End it when the reader has all it needs though the body may not have ended (a
        stream's last event read, its terminating chunk still on the way): the rest is dropped
        as it arrives, and the connection is reused if the body ends within ``linger_s``."""
        ended, self._ended = self._ended, None
        if ended is not None:
            self._conn.settle(linger_s, ended)

    def close(self) -> None:
        if self._ended is not None:
            self._conn.close()
        self.release()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.release()
