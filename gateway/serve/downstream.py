"""The client side of one request: the only code that writes a response body to the client.

Created by ``failover`` for each request and handed to every attempt (``attempt``, ``relay``).
A whole answer becomes one ``WholeAnswer`` (``whole``; the app's errors and ``/healthz`` use it
too): a ``web.Response`` whose status line, headers and body leave in one transport write. A
stream is committed once, by the first attempt that has client-visible bytes (``commit``: the
status line and headers), then written event by event (``send``, or ``write`` which awaits it;
each one also given to the recorder that keeps a transcript for continuation) and ended exactly
once: ``finish`` (the end-of-stream bytes, e.g. ``[DONE]``) or ``fail`` (one well-formed OpenAI
error event). The headers leave with the first events and the end-of-stream bytes with the end
of the body, so a stream sends twice, or once when ``finish`` is given the last events too; for
the usual request an ``EventStream`` (a client format's too: ``inbound.writer.TranslatedStream``
rewrites what it is sent) frames and writes its chunks itself (one transport write each,
waiting only while the client's transport asks to pause); to an
HTTP/1.0 client a stream has no framing, and the connection closes at its end. Once
committed, nothing else may reach the client: every later outcome is an SSE event, never a
second HTTP response. Errors before the commit are raised and turned into JSON responses by the
app's front (``app.Front``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.client_exceptions import ClientConnectionResetError
from aiohttp.compression_utils import MAX_SYNC_CHUNK_SIZE
from aiohttp.helpers import EMPTY_BODY_STATUS_CODES, rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from aiohttp.http_writer import StreamWriter, _serialize_headers
from multidict import CIMultiDict

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
    _events: EventStream | None = None  # the response, when it writes its own chunks

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

        The status line and headers leave with the first bytes (``write``, ``finish`` or
        ``fail``, one of which every caller does at once, never with nothing): one send to the
        client, not two. A client format's response (an ``EventStream`` too, for the usual
        request: ``inbound.writer.TranslatedStream``) may rewrite a chunk into nothing; then
        the head leaves alone, as early as before.
        """
        if self.response is not None:
            return
        headers = {**headers, **_EVENT_STREAM}
        format = self.format
        response = EventStream(headers) if format is None else format.stream_response(headers)
        close_unframed(self.request, response)
        writer = await response.prepare(self.request)
        if isinstance(response, EventStream) and response.chunks:
            self._events = response  # (a client format's rewrites the events in its ``send``)
        elif format is not None:
            self._send = response.write  # which rewrites the events into the client's format
        else:  # aiohttp's own framing: straight to its payload writer (StreamResponse.write's)
            assert writer is not None
            self._send = writer.write
        self.response = response

    def send(self, data: bytes) -> Awaitable[None] | None:
        """Send events; what to await before the next send (a client reading slowly; or
        aiohttp's writer, or a client format's), or None. A client that went away raises
        ``ConnectionResetError``, here or from the awaitable."""
        if self.ended:  # (StreamResponse.write would refuse too; the payload writer does not)
            raise RuntimeError("a write after the stream ended")
        events = self._events
        if events is None:
            return self._written(data)
        wait = events.send(data)
        if self.recorder is not None:
            self.recorder.add(data)
        return wait

    async def write(self, data: bytes) -> None:
        """``send``, awaited."""
        wait = self.send(data)
        if wait is not None:
            await wait

    async def _written(self, data: bytes) -> None:
        assert self._send is not None, "write before commit"
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
            wait = self._end(last + tail)
            if wait is not None:
                await wait
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
            wait = self._end(encode(json.dumps(error.body()).encode()))
            if wait is not None:
                await wait
        except ConnectionResetError:
            return CLIENT_CLOSED
        return reason

    def _end(self, last: bytes) -> Awaitable[None] | None:
        """``last`` and the end of the body, in one send on an ``EventStream`` (what to await
        then, if anything; a client format's rewrites ``last`` in its ``end``); otherwise a
        client format's own response rewrites ``last`` in its ``write`` (which ``write_eof``
        would bypass)."""
        if self._events is not None:
            return self._events.end(last)
        assert self.response is not None
        if self.format is None:
            return self.response.write_eof(last)
        return self._rewritten(self.response, last)

    @staticmethod
    async def _rewritten(response: web.StreamResponse, last: bytes) -> None:
        if last:
            await response.write(last)
        await response.write_eof()

    def whole(self, payload: bytes, headers: dict[str, str]) -> web.Response:
        """A whole (non-streamed) JSON answer, in the client's format."""
        if self.format is not None:
            payload = self.format.whole(payload)
        return WholeAnswer(payload, headers)


class WholeAnswer(web.Response):
    """A whole answer (JSON unless told): for the usual request, its status line, headers and
    body serialized once and written with one transport write, in one coroutine.

    The bytes are aiohttp's own for a ``web.Response(body=, content_type=, headers=)``: the
    same headers in the same order (the given ones, ``Content-Type``, ``Content-Length``,
    ``Date``, ``Server``, then what the request's prepare hook adds: ``app._Request``'s request
    id, tenant and edge headers, and the app's ``on_response_prepare``). "Usual" is a GET or POST
    over HTTP/1.1 that keeps the connection alive, a status with a body, nothing asked of the
    response that aiohttp would act on (compression, chunking, cookies, a forced close, framing
    headers of its own) and a fresh payload writer without callbacks; anything else is
    aiohttp's own ``prepare`` (HTTP/1.0, ``Connection: close``, HEAD, ...), and as this object
    is built with exactly ``web.Response``'s state, that is aiohttp's answer. After it,
    ``write_eof`` has nothing left to do, and aiohttp's access log and keep-alive read the
    state its own ``write_eof`` leaves.

    This leans on aiohttp's ``StreamResponse.__init__(_real_headers=)``, the state
    ``Response.__init__`` sets (``_body``, ``_compressed_body``, ``_zlib_executor_size``,
    ``_zlib_executor``), the response's ``_payload_writer``, ``_eof_sent``, ``_keep_alive``,
    ``_cookies``, ``_req``, ``_must_be_empty_body``, ``_body_length``, ``_headers`` and
    ``_reason``, the payload writer's ``_on_chunk_sent``, ``_on_headers_sent``, ``_compress``,
    ``_headers_buf`` and ``_write``, the request's ``_prepare_hook`` and
    ``http_writer._serialize_headers``; tests/unit/test_whole_answer.py fails if one of them
    changes (the state against ``web.Response``'s, the bytes against aiohttp's for each kind of
    request).
    """

    def __init__(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        status: int = 200,
        content_type: str = "application/json",
    ) -> None:
        real: CIMultiDict[str] = CIMultiDict(headers) if headers else CIMultiDict()
        real[hdrs.CONTENT_TYPE] = content_type
        # Response.__init__'s checks are for arguments this class does not take.
        web.StreamResponse.__init__(self, status=status, _real_headers=real)
        self._body = body
        self._compressed_body = None
        self._zlib_executor_size = MAX_SYNC_CHUNK_SIZE
        self._zlib_executor = None

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent:  # (aiohttp's finish_response asks again: aiohttp's own answers)
            return None
        if self._payload_writer is not None:
            return self._payload_writer
        body: bytes = self._body  # type: ignore[assignment]  # as __init__ set it
        writer = _taken(self, request, hdrs.CONTENT_LENGTH, str(len(body)))
        if writer is None:
            return await super().prepare(request)
        await request._prepare_hook(self)
        status_line = f"HTTP/1.1 {self._status} {self._reason}"
        writer._write(_serialize_headers(status_line, self._headers) + body)
        writer.set_eof()
        self._eof_sent = True
        self._req = None
        self._body_length = writer.output_size
        self._payload_writer = None
        if writer.protocol.writing_paused:
            await writer.drain()
        return writer


class EventStream(web.StreamResponse):
    """OpenAI's event stream (``ClientStream`` without a client format): for the usual request
    (``WholeAnswer``'s), its chunked body framed and written here, each send one transport write.

    The bytes and the sends are aiohttp's own for a ``web.StreamResponse(headers=)`` that holds
    its headers for the first write (``_send_headers_immediately = False``) and is written
    through its payload writer: the headers in the same order (the given ones,
    ``Transfer-Encoding``, ``Date``, ``Server``, then the request's prepare hook's), serialized
    once by ``prepare`` and held (nothing is sent yet); ``send`` writes one chunk
    (``%x\\r\\n``, the data, ``\\r\\n``), with the held head before the first; ``end`` the
    last data, if any, as one chunk and the last chunk (``0\\r\\n\\r\\n``), with the head if
    it is still held, and leaves the state aiohttp's ``write_eof`` leaves, so that its
    ``finish_response``, access log and keep-alive read the same. ``send`` and ``end`` are plain
    calls returning what to await when the client's transport asked to pause (its protocol's
    drain, checked at every send: at most one chunk past the transport's high-water mark is
    buffered, where aiohttp's writer checks every 64 KiB), else None. A transport that is
    gone or closing raises ``ConnectionResetError`` as aiohttp's writer does. For anything
    unusual ``prepare`` is aiohttp's and ``chunks`` is False: the caller writes through aiohttp.
    A subclass may rewrite what it is given in ``send`` and ``end`` (a client format's events).

    Leans on what ``WholeAnswer`` does and the payload writer's ``_protocol``, ``chunked``,
    ``output_size``, ``set_eof`` and ``drain``, and the protocol's ``transport`` and
    ``_paused``; tests/unit/test_event_stream.py fails if they change (the bytes and the sends
    against aiohttp's for each kind of request).
    """

    _send_headers_immediately = False  # aiohttp's own: the headers go with the first write
    chunks = False  # True once prepared by this class's own path: use ``send`` and ``end``
    _head: bytes | None = None  # the status line and headers, until the first send

    def __init__(self, headers: Mapping[str, str]) -> None:
        web.StreamResponse.__init__(self, _real_headers=CIMultiDict(headers))

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent:  # (aiohttp's finish_response asks again: aiohttp's own answers)
            return None
        if self._payload_writer is not None:
            return self._payload_writer
        writer = _taken(self, request, hdrs.TRANSFER_ENCODING, "chunked")
        if writer is None:
            return await super().prepare(request)
        writer.enable_chunking()
        await request._prepare_hook(self)
        self._head = _serialize_headers(f"HTTP/1.1 {self._status} {self._reason}", self._headers)
        self.chunks = True
        return writer

    def send(self, data: bytes) -> Awaitable[None] | None:
        """``data`` as one chunk (nothing for no data, but the held head); see the class."""
        if self._eof_sent:
            raise RuntimeError("Cannot call write() after write_eof()")
        head = self._head
        if head is not None:
            frame = b"%b%x\r\n%b\r\n" % (head, len(data), data) if data else head
        elif data:
            frame = b"%x\r\n%b\r\n" % (len(data), data)
        else:
            return None
        wait = self._out(frame)
        self._head = None
        return wait

    def end(self, data: bytes = b"") -> Awaitable[None] | None:
        """``data`` as the last chunk, then the end of the body; see the class."""
        if self._eof_sent:
            return None
        head = self._head or b""
        if data:
            frame = b"%b%x\r\n%b\r\n0\r\n\r\n" % (head, len(data), data)
        else:
            frame = head + b"0\r\n\r\n"
        wait = self._out(frame)
        writer = self._payload_writer
        assert isinstance(writer, StreamWriter)
        writer.set_eof()
        self._eof_sent = True
        self._req = None
        self._body_length = writer.output_size
        self._payload_writer = None
        return wait

    def _out(self, frame: bytes) -> Awaitable[None] | None:
        writer = self._payload_writer
        assert isinstance(writer, StreamWriter), "write before prepare"
        writer.output_size += len(frame)
        protocol = writer._protocol
        transport = protocol.transport
        if transport is None or transport.is_closing():
            raise ClientConnectionResetError("Cannot write to closing transport")
        transport.write(frame)
        return writer.drain() if protocol._paused else None

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.chunks:
            return await super().write(data)
        wait = self.send(bytes(data))
        if wait is not None:
            await wait

    async def write_eof(self, data: bytes = b"") -> None:
        if self._eof_sent:  # (aiohttp's finish_response calls it again)
            return
        if not self.chunks:
            return await super().write_eof(data)
        wait = self.end(data)
        if wait is not None:
            await wait


def close_unframed(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Before ``prepare`` of a response without a length (a stream; ``passthrough``'s relay):
    to an HTTP/1.0 client its body has no framing and ends only when the connection closes, so
    the connection is closed at its end, keep-alive asked or not. (aiohttp leaves out
    ``Connection: keep-alive`` then, but keeps the connection open: the client would wait for
    the end forever.) The bytes sent are aiohttp's own: with no ``Connection`` header an
    HTTP/1.0 response is not persistent."""
    if request.version < HttpVersion11:
        response.force_close()


def _taken(
    response: web.StreamResponse, request: web.BaseRequest, framing: str, value: str
) -> StreamWriter | None:
    """For the usual request (``_usual``), ``response`` prepared as aiohttp's ``prepare`` would
    up to its prepare hook: bound to the request's writer, kept alive, its headers completed in
    aiohttp's order (the framing header ``framing: value``, the content type's default, the date,
    the server); that writer. None for anything else: aiohttp's own ``prepare`` is needed."""
    writer = request.writer
    if type(writer) is not StreamWriter or not _usual(response, request, writer):
        return None
    headers = response._headers
    response._req = request
    response._payload_writer = writer
    response._must_be_empty_body = False
    response._keep_alive = True
    headers[framing] = value
    headers.setdefault(hdrs.CONTENT_TYPE, "application/octet-stream")
    if hdrs.DATE not in headers:
        headers[hdrs.DATE] = rfc822_formatted_time()
    headers.setdefault(hdrs.SERVER, SERVER_SOFTWARE)
    return writer


def _usual(response: web.StreamResponse, request: web.BaseRequest, writer: StreamWriter) -> bool:
    """Whether aiohttp would only add the framing, date and server headers (``WholeAnswer``'s
    docstring); as its own prepare, once."""
    headers = response._headers
    return not (
        response._payload_writer is not None
        or response._eof_sent
        or request.version != HttpVersion11
        or request.method not in _PLAIN_METHODS
        or not request.keep_alive
        or response._keep_alive is not None
        or response._status in EMPTY_BODY_STATUS_CODES
        or response._compression
        or response._chunked
        or response._cookies
        or hdrs.CONTENT_LENGTH in headers
        or hdrs.CONNECTION in headers
        or hdrs.TRANSFER_ENCODING in headers
        or writer._on_chunk_sent is not None
        or writer._on_headers_sent is not None
        or writer.on_body_write is not None
        or writer._compress is not None
        or writer._headers_buf is not None
        or writer.length is not None
        or writer.chunked
    )


_PLAIN_METHODS = frozenset((hdrs.METH_GET, hdrs.METH_POST))
