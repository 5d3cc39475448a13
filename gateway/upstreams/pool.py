"""The keep-alive connection pool of one upstream, for the proxied request path.

Owned by ``client.UpstreamClient`` (its ``wire``), used by ``serve.attempt`` (and ``serve.shadow``)
to send each attempt's request to a replica; the ``wire.Response`` it returns is read by
``serve.attempt`` and ``serve.relay``. Health checks, load scraping, passthrough and token counting
stay on the client's aiohttp session: they are off the hot path and use its richer API.

- At most ``size`` (``max_connections``) connections are in use at once, over all of the
  upstream's replicas; requests past that wait in FIFO order, each for at most ``connect_s``.
  Opening a connection (DNS, TCP, TLS) is bounded by ``connect_s`` too. Both are ``ConnectFailed``.
- DNS answers are cached for ``dns_ttl_s``; certificates are verified against ``tls`` (the
  default trust store when None) with the URL's host as SNI and expected name.
- A connection is reused only when its last response was read to its end and the upstream kept
  it alive; an idle one is dropped after ``keepalive_s`` or as soon as it shows anything to read
  (an EOF, a reset, stray bytes), checked just before it is reused.
- A request is never sent twice. If a reused connection dies after the request was written and
  before any response byte (the upstream closing it in the same instant), that is a
  ``ResponseBroken`` like any other: the failover loop records it as the attempt's failure and
  decides, so a possible double generation is never silent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from switchman.gateway.upstreams.wire import ConnectFailed, Connection, Response, WireError

KEEPALIVE_S = 15.0  # as aiohttp's connector: idle connections older than this are not reused
DNS_TTL_S = 5.0  # as aiohttp's ttl_dns_cache=5
_SKIPPED = {"host", "content-length", "transfer-encoding", "connection"}  # the pool's own
_SPECIAL = frozenset((*_SKIPPED, "accept"))  # names the head does not take as they are
_SAFE = "/:@!$&'()*+,;=-._~%?"  # a target already in URL form stays as it is
_TARGETS = 1024  # cached request targets before the cache starts over
_SWEEP_EVERY = 1024  # responses between sweeps of dead and expired idle connections


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a base URL's connections go."""

    key: str  # scheme://host:port, the idle connections' key
    host: str  # resolved, and the TLS server name
    port: int
    tls: bool
    authority: str  # the Host header: host, with the port when not the scheme's default
    prefix: str  # the base URL's path


def origin(base: str) -> tuple[Origin, str]:
    """The origin of a base URL (``http(s)://host[:port]/prefix``) and its path prefix."""
    parts = urlsplit(base)
    tls = parts.scheme == "https"
    host = parts.hostname or ""
    default = 443 if tls else 80
    port = parts.port or default
    named = f"[{host}]" if ":" in host else host
    authority = named if port == default else f"{named}:{port}"
    key = f"{parts.scheme}://{named}:{port}"
    prefix = parts.path.rstrip("/")
    return Origin(key, host, port, tls, authority, prefix), prefix


def request_head(
    method: str, origin: Origin, target: str, headers: Mapping[str, str], length: int
) -> bytes:
    """The request line and headers: Host, the caller's headers, Accept, Content-Length."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.authority}"]
    accept = True
    if _SPECIAL.isdisjoint(map(str.lower, headers)):  # the common case, without a Python loop
        lines.extend(map(": ".join, headers.items()))
    else:
        for name, value in headers.items():
            lower = name.lower()
            if lower in _SKIPPED:
                continue
            accept = accept and lower != "accept"
            lines.append(f"{name}: {value}")
    if accept:
        lines.append("Accept: */*")
    lines.append(f"Content-Length: {length}")
    text = "\r\n".join(lines) + "\r\n\r\n"
    if text.count("\n") != len(lines) + 1 or text.count("\r") != len(lines) + 1:
        raise ConnectFailed("a request header holds a line break; the request was not sent")
    return text.encode("utf-8")


class Pool:
    """Connections to one upstream's replicas; see the module docstring."""

    def __init__(
        self,
        *,
        size: int,
        connect_s: float,
        tls: ssl.SSLContext | None = None,
        keepalive_s: float = KEEPALIVE_S,
        dns_ttl_s: float = DNS_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.size = size
        self._connect_s = connect_s
        self._tls = tls
        self._keepalive_s = keepalive_s
        self._dns_ttl_s = dns_ttl_s
        self._clock = clock
        self._used = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._idle: dict[str, list[Connection]] = {}
        self._open: set[Connection] = set()
        self._dns: dict[tuple[str, int], tuple[float, list[str]]] = {}
        self._targets: dict[tuple[str, str], tuple[Origin, str]] = {}
        self._responses = 0
        self.closed = False

    @property
    def in_use(self) -> int:
        """Connections handed out now (counted against ``size``)."""
        return self._used

    def idle(self) -> int:
        """Idle connections kept for reuse (some may have died since)."""
        return sum(len(conns) for conns in self._idle.values())

    async def request(
        self,
        base: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        params: Mapping[str, str] | None = None,
    ) -> Response:
        """POST ``body`` to ``base + path`` (``params`` as the query) and return the response
        once its status and headers are in. Raises ``WireError``."""
        origin, target = self._target(base, path)
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        head = request_head("POST", origin, target, headers, len(body))
        # An idle connection under the cap (the common case) is taken without a coroutine.
        conn = self._reuse_free(origin) or await self._acquire(origin)
        try:
            response = await conn.exchange(head, body)
        except BaseException:
            conn.close()
            self._ended(conn)
            raise
        response.bind(self._ended)
        return response

    def close(self) -> None:
        """Close every connection, idle or in use; later requests fail with ``ConnectFailed``."""
        self.closed = True
        for conn in list(self._open):
            conn.close()
        self._open.clear()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectFailed("the upstream's connection pool is closed"))

    def _target(self, base: str, path: str) -> tuple[Origin, str]:
        found = self._targets.get((base, path))
        if found is None:
            if len(self._targets) >= _TARGETS:
                self._targets.clear()
            where, prefix = origin(base)
            found = self._targets[(base, path)] = (where, quote(prefix + path, safe=_SAFE))
        return found

    def _reuse_free(self, origin: Origin) -> Connection | None:
        """An idle connection to ``origin`` when a slot is free and nobody waits for one (its
        slot taken); None: ``_acquire`` decides."""
        if self.closed or self._used >= self.size or self._waiters:
            return None
        self._used += 1
        try:
            conn = self._reuse(origin)
        except BaseException:
            self._free()
            raise
        if conn is None:
            self._free()
        return conn

    async def _acquire(self, origin: Origin) -> Connection:
        if self.closed:
            raise ConnectFailed("the upstream's connection pool is closed")
        if self._used < self.size and not self._waiters:
            self._used += 1
        else:
            await self._wait()
        try:
            conn = self._reuse(origin)
            if conn is None:
                conn = await self._connect(origin)
        except BaseException:
            self._free()
            raise
        return conn

    async def _wait(self) -> None:
        """Wait, first come first served, until a connection is given up (``_free``)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._connect_s):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._free()  # handed a connection just as it gave up: the next waiter's
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                message = (
                    f"all {self.size} connections (max_connections) stayed in use "
                    f"for {self._connect_s}s (timeouts.connect_s)"
                )
                raise ConnectFailed(message) from exc
            raise

    def _free(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes to the longest waiter as it is
                return
        self._used -= 1

    def _reuse(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin.key)
        now = self._clock()
        while idle:
            conn = idle.pop()
            if conn.alive(now, self._keepalive_s):
                return conn
            conn.close()
            self._open.discard(conn)
        return None

    def _ended(self, conn: Connection) -> None:
        """A response ended: keep its connection for reuse or close it; free its slot."""
        now = self._clock()
        conn.done(now)
        self._responses += 1
        if self._responses % _SWEEP_EVERY == 0:
            self._sweep(now)
        if conn.finished() and not self.closed:
            idle = self._idle.setdefault(conn.key, [])
            idle.append(conn)
            if len(idle) > self.size or idle[0].lost:
                oldest = idle.pop(0)
                oldest.close()
                self._open.discard(oldest)
        else:
            conn.close()
            self._open.discard(conn)
        self._free()

    def _sweep(self, now: float) -> None:
        """Close idle connections that died or expired; forget replicas and names gone by."""
        for key, idle in list(self._idle.items()):
            for conn in [c for c in idle if c.lost or now - c.idle_since > self._keepalive_s]:
                idle.remove(conn)
                conn.close()
                self._open.discard(conn)
            if not idle:
                del self._idle[key]
        self._dns = {key: entry for key, entry in self._dns.items() if entry[0] > now}

    async def _connect(self, origin: Origin) -> Connection:
        try:
            async with asyncio.timeout(self._connect_s):
                addresses = await self._resolve(origin)
                conn = await self._open_one(origin, addresses)
        except TimeoutError as exc:
            message = (
                f"could not connect to {origin.authority} within {self._connect_s}s "
                "(timeouts.connect_s)"
            )
            raise ConnectFailed(message) from exc
        self._open.add(conn)
        return conn

    async def _resolve(self, origin: Origin) -> list[str]:
        key = (origin.host, origin.port)
        now = self._clock()
        cached = self._dns.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            ipaddress.ip_address(origin.host)
            return [origin.host]  # a replica's address: nothing to resolve or cache
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ConnectFailed(f"cannot resolve {origin.host}: {exc}") from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        self._dns[key] = (now + self._dns_ttl_s, addresses)
        return addresses

    async def _open_one(self, origin: Origin, addresses: list[str]) -> Connection:
        """A connection to the first address that accepts (TLS verified when https)."""
        loop = asyncio.get_running_loop()
        context = None
        if origin.tls:
            context = self._tls = self._tls or ssl.create_default_context()
        error: Exception = ConnectFailed(f"{origin.host} resolved to no address")
        for address in addresses:
            try:
                _, conn = await loop.create_connection(
                    lambda: Connection(origin.key),
                    address,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
                return conn
            except OSError as exc:
                error = exc
        if isinstance(error, WireError):
            raise error
        raise ConnectFailed(f"cannot connect to {origin.authority}: {error}") from error
