"""Accepting client connections: every pending one, each time the listening socket is readable.

uvloop (libuv) accepts one connection per event-loop iteration while the loop is busy. Under load
an iteration serves many ready connections, so new ones wait in the kernel's accept queue for
seconds. Measured on a 2-core box with a server spending 300 µs of CPU per request and 256 new
connections from wrk: p99 1.21 s with uvloop's own accept, 0.12 s with asyncio's. The accept
queue drained at about 50 connections a second. With the 128-entry backlog of aiohttp's
``TCPSite``, a burst of 256 connects also overflowed the queue.

``AcceptorSite`` is aiohttp's ``TCPSite`` with its own accept loop, ``Acceptor``:
- the listening sockets have a 4096-entry backlog (the kernel caps it at
  ``net.core.somaxconn``);
- at each readiness the acceptor accepts up to ``ACCEPT_BATCH`` connections and hands each to
  the loop's ``connect_accepted_socket`` with the runner's protocol factory. So aiohttp's
  request handling, keep-alive and shutdown are unchanged, and so are the connection guards of
  ``listener.GatewayRunner``;
- out of file descriptors (``EMFILE``/``ENFILE``) or socket buffers, it stops accepting for
  ``PAUSE_S`` and logs it once per pause, as asyncio's own server does. The connections already
  open keep being served.

``switchman gateway`` (``listener.serve``) and ``switchman demo`` listen through it. With
``--workers N`` every worker has its own ``SO_REUSEPORT`` socket.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger("switchman.gateway.acceptor")

BACKLOG = 4096  # the kernel caps it at net.core.somaxconn
ACCEPT_BATCH = 1024  # connections accepted per readiness, so a connect storm cannot stall requests
PAUSE_S = 1.0  # no accepting for this long when the process is out of descriptors or buffers
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Acceptor:
    """Accepts the connections of ``sockets`` for ``factory`` (see the module docstring)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sockets: list[socket.socket],
        factory: Callable[[], asyncio.Protocol],
    ) -> None:
        self.sockets = sockets
        self._loop = loop
        self._factory = factory
        self._connecting: set[asyncio.Task[None]] = set()
        self._paused: asyncio.TimerHandle | None = None
        self._closed = False
        self._resume()

    def _resume(self) -> None:
        self._paused = None
        if not self._closed:
            for sock in self.sockets:
                self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while queued: nothing to serve
            except OSError as exc:
                if exc.errno in _EXHAUSTED:
                    self._pause(exc)
                else:  # not this connection's to fix: the next readiness tries again
                    log.warning("accepting a connection failed: %s", exc.strerror)
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._connect(conn))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError as exc:  # the client left before its transport was made
            log.debug("an accepted connection failed before serving: %s", exc)
            conn.close()

    def _pause(self, exc: OSError) -> None:
        log.error(
            "cannot accept connections (%s): paused for %.0f s; raise the process's open-file "
            "limit or the pod's resources, or run more replicas",
            exc.strerror,
            PAUSE_S,
        )
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
        self._paused = self._loop.call_later(PAUSE_S, self._resume)

    def close(self) -> None:
        """Stop accepting and close the listening sockets; open connections are not touched."""
        self._closed = True
        if self._paused is not None:
            self._paused.cancel()
        for sock in self.sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()


def listening(host: str | None, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Non-blocking sockets listening on every address of ``host`` (all interfaces when None or
    empty), like ``loop.create_server``: ``SO_REUSEADDR``, IPv6 sockets IPv6-only, and
    ``SO_REUSEPORT`` when asked. Raises ``OSError`` when an address cannot be bound."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class AcceptorSite(web.BaseSite):
    """aiohttp's ``TCPSite`` (plain HTTP) whose connections are accepted by an ``Acceptor``."""

    __slots__ = ("_acceptor", "_host", "_port", "_reuse_port")  # _port: the bound one once started

    def __init__(
        self, runner: web.BaseRunner, host: str | None, port: int, *, reuse_port: bool = False
    ) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port
        self._acceptor: Acceptor | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host or '0.0.0.0'}:{self.port}"

    @property
    def port(self) -> int:
        """The port: once started, the bound one (the kernel's pick for port 0)."""
        return self._port

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        sockets = listening(self._host, self._port, reuse_port=self._reuse_port)
        self._port = int(sockets[0].getsockname()[1])
        self._acceptor = Acceptor(asyncio.get_running_loop(), sockets, server)

    async def stop(self) -> None:
        self._runner._check_site(self)
        if self._acceptor is not None:
            self._acceptor.close()
        self._runner._unreg_site(self)
