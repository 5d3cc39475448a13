"""The gateway's listener: aiohttp's app runner whose connections are guarded at the edge.

``serve`` runs an application until SIGTERM/SIGINT, then closes the listener at once and lets
in-flight requests and streams finish within the grace period (a second signal meanwhile exits at
once, cutting them off); ``switchman gateway`` (``cli``)
calls it, and a port it cannot bind is a ``ListenError`` (one line, no traceback). The edge tests
use ``GatewayRunner`` in place of ``web.AppRunner``. Connections are accepted by
``acceptor.AcceptorSite`` (every pending one at each readiness, where uvloop accepts one). Each
connection is a ``GuardedHandler`` (aiohttp's ``RequestHandler``) that adds, from the live
config's ``server.edge``:

- a connection cap: above ``max_connections`` open connections a new one is answered with a short
  JSON 503 and closed, before any of its bytes are read;
- a header-read timeout: a request line and headers must be complete within
  ``header_timeout_s`` of their first byte (or of the connection opening, so a connection that
  never speaks is closed too): a slow-loris client gets a 408 and the connection is closed;
- protocol errors (a malformed request line, oversized headers, a bare LF, Content-Length with
  Transfer-Encoding, ...) answered with a short OpenAI-shaped JSON 400 that never echoes the
  offending bytes, logged as one DEBUG line without a traceback;
- aiohttp's own answers given before any route's handler runs (a target no route matches, such
  as ``OPTIONS *``) as OpenAI-shaped JSON too (``routing_error``).

Idle keep-alive connections are closed by aiohttp itself after ``keepalive_timeout_s`` (read at
start-up); a body that never completes is the request reader's (``serve.request``) 408.
This leans on five attributes of aiohttp's ``RequestHandler`` (``_request_count``,
``_request_in_progress``, ``_messages``, and ``_reading_paused``/``_buffer_paused``, read by
``resume_reading``); the edge tests pin the behaviour they provide.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import uvloop
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from switchman.api.edge import Edge
from switchman.gateway.acceptor import AcceptorSite
from switchman.gateway.errors import openai_error_body
from switchman.gateway.handlers import GATEWAY

log = logging.getLogger("switchman.gateway.listener")


@dataclass(slots=True, frozen=True)
class Guard:
    """What the guarded connections read and report: the live edge settings, and a counter of
    refused connections by reason (``connection_limit``, ``header_timeout``)."""

    edge: Callable[[], Edge]
    refused: Callable[[str], None]

    @classmethod
    def of(cls, app: web.Application) -> Guard:
        """The guard of a gateway application: its config's ``server.edge``, its metrics."""
        gateway = app[GATEWAY]
        default = Edge()

        def edge() -> Edge:
            current = gateway.watcher.current
            return current.config.server.edge if current is not None else default

        def refused(reason: str) -> None:
            gateway.metrics.connections_refused.labels(reason).inc()

        return cls(edge, refused)


def error_body(status: int, code: str, message: str) -> dict[str, Any]:
    """The OpenAI-shaped body of an error the listener answers itself (``api_error`` for a 5xx,
    else ``invalid_request_error``)."""
    kind = "api_error" if status >= 500 else "invalid_request_error"
    return openai_error_body(message, type_=kind, code=code)


def raw_error(status: int, code: str, message: str) -> bytes:
    """A whole HTTP/1.1 error response (OpenAI-shaped JSON body) that closes the connection."""
    body = json.dumps(error_body(status, code, message)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def routing_error(request: BaseRequest, exc: web.HTTPException) -> web.Response:
    """aiohttp's own error answer, given before any route's handler ran (a request target no
    route can match, such as ``OPTIONS *``), as the OpenAI-shaped JSON of every other error;
    the routes' errors are shaped by ``app.Front``."""
    status = exc.status
    if status == 404:
        code, message = "not_found", f"no such endpoint: {request.method} {request.path}"
    else:
        code, message = "bad_http_request", HTTPStatus(status).phrase
    return web.json_response(error_body(status, code, message), status=status)


class GuardedHandler(RequestHandler):
    """One client connection with the guards of the module docstring."""

    def __init__(self, manager: web.Server, *, guard: Guard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._header_timer: asyncio.TimerHandle | None = None
        self._rejected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        edge = self._guard.edge()
        manager = self._manager
        if manager is not None and len(manager.connections) >= edge.max_connections:
            self._rejected = True
            self._guard.refused("connection_limit")
            log.warning("connection refused: %d open connections", edge.max_connections)
            message = "the gateway is at its connection limit; retry shortly"
            assert isinstance(transport, asyncio.Transport)
            transport.write(raw_error(503, "too_many_connections", message))
            transport.close()
            return
        super().connection_made(transport)
        self._arm(edge.header_timeout_s)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        if not self._rejected:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a request line and headers are complete
            if self._header_timer is not None:
                self._disarm()
        elif self._header_timer is None and not self._busy() and not self._force_close:
            # The first bytes of a request whose headers are not all here yet (a whole request
            # in one read, the common case, never starts a timer).
            self._arm(self._guard.edge().header_timeout_s)

    def resume_reading(self, resume_parser: bool = True) -> None:
        """aiohttp's, only when reading is paused (by the body's flow control, or a full queue
        of pipelined requests). The body reader asks on every read (``read_nowait``, once more
        at its end), and aiohttp's would then re-run the parser on no bytes (``data_received``)
        and resume a transport that is reading: nothing is left unparsed but by a pause."""
        if self._reading_paused or self._buffer_paused:
            super().resume_reading(resume_parser)

    def _busy(self) -> bool:
        return self._request_in_progress or bool(self._messages)

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._header_timer = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _expire(self) -> None:
        self._header_timer = None
        if self._busy() or self.transport is None:
            return
        log.debug("closing a connection whose request headers did not arrive in time")
        self._guard.refused("header_timeout")
        message = "the request line and headers did not arrive in time"
        self.transport.write(raw_error(408, "request_timeout", message))
        self.force_close()
        self.transport.close()

    def finish_response(
        self, request: BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> Coroutine[Any, Any, tuple[web.StreamResponse, bool]]:
        """aiohttp's, for the response shaped as ours (a plain call returning aiohttp's
        coroutine, which aiohttp awaits: no coroutine of its own per response). The status is
        read first: an isinstance check against a response class is ABCMeta's, in Python."""
        if resp.status >= 400 and isinstance(resp, web.HTTPException):
            resp = routing_error(request, resp)
        return super().finish_response(request, resp, start_time)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A short JSON error for a request aiohttp could not parse or serve; never its bytes."""
        log.debug("bad request from %s: %s %s", request.remote, status, type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already started; the connection is dropped")
        if status >= 500:
            code, text = "internal_error", "internal error in the gateway"
        else:
            code, text = "bad_http_request", f"malformed HTTP request ({HTTPStatus(status).phrase})"
        response = web.json_response(error_body(status, code, text), status=status)
        response.force_close()
        return response


class _GuardedServer(web.Server):
    def __init__(self, *args: Any, guard: Guard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, guard=self._guard, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections are ``GuardedHandler``s of ``Guard.of(app)``; the
    keep-alive timeout is the config's ``keepalive_timeout_s`` when the runner is made."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        self._guard = Guard.of(app)
        kwargs.setdefault("keepalive_timeout", self._guard.edge().keepalive_timeout_s)
        super().__init__(app, **kwargs)

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        return _GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            guard=self._guard,
            **plain._kwargs,
        )


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run the serving coroutine on uvloop: libuv's event loop, whose transports, timers and
    callbacks are C where asyncio's selector loop is Python (a large share of each request's
    cost in the profiles, bench/results/profile-*.txt)."""
    uvloop.run(main)


class ListenError(Exception):
    """The listen address cannot be bound (in use, not permitted, not local)."""


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_grace: float,
    ready: Callable[[], None] = lambda: None,
    reuse_port: bool = False,
) -> None:
    """Serve ``app`` until SIGTERM or SIGINT (see the module docstring); ``reuse_port`` for the
    workers of ``switchman gateway --workers N``, which share the port."""
    runner = GatewayRunner(app, access_log=None, shutdown_timeout=shutdown_grace)
    await runner.setup()
    try:
        try:
            await AcceptorSite(runner, host, port, reuse_port=reuse_port).start()
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(f"cannot listen on {host}:{port}: {reason}") from None
        ready()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        for signum in (signal.SIGINT, signal.SIGTERM):  # while in-flight requests drain
            loop.add_signal_handler(signum, _stop_now, signum)
    finally:
        await runner.cleanup()


def _stop_now(signum: int) -> None:
    """A second SIGTERM or SIGINT while draining: exit at once with 128 + the signal's number
    (a person's second Ctrl-C, or an operator who will not wait out the grace period). What is
    still in flight is cut off: its clients see the connection close."""
    name = signal.Signals(signum).name
    log.warning("%s again while draining: stopping now; requests in flight are cut off", name)
    os._exit(128 + signum)
