"""Notices a client that went away and cancels the work still being done for it.

Used by ``proxy.handle`` around one request: ``hangups.watch(request.protocol)`` registers the
request's connection with the process's ``Hangups``, which checks every ``POLL_S`` seconds
whether the connections it watches are gone and, for each one that is, cancels the task serving
that request. The cancellation reaches whatever that task awaits: the upstream request in flight
(its connection is closed, which stops the generation: vLLM aborts a request whose client left),
a retry's backoff, a continuation not yet sent. So a departed client stops costing within a
second, streamed or not, whatever the server runner: aiohttp cancels handlers on a lost
connection only with ``handler_cancellation=True`` (its test server), and ``web.run_app`` leaves
it off. ``fired`` tells the caller that the cancellation was this watcher's, to be recorded as
outcome ``client_closed`` rather than propagated.

One timer serves every request in flight (a timer per request, armed and cancelled each time,
showed in the request path's profile); it runs only while something is watched.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

POLL_S = 0.25  # a departed client is noticed within this (the guarantee: within a second)
CLIENT_CLOSED = "client_closed"  # the outcome label of a request whose client went away


class Connection(Protocol):
    """What the watcher reads of aiohttp's request handler protocol."""

    @property
    def transport(self) -> asyncio.Transport | None: ...


class Hangups:
    """The requests in flight of one process, polled together; see the module docstring."""

    __slots__ = ("_handle", "_loop", "_poll_s", "_watched")

    def __init__(self, poll_s: float = POLL_S) -> None:
        self._poll_s = poll_s
        self._watched: set[Hangup] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, protocol: Connection | None) -> Hangup:
        """Watch the connection of the request the current task serves, until ``close``."""
        hangup = Hangup(self, protocol, asyncio.current_task())
        if protocol is not None and hangup._task is not None:
            self._watched.add(hangup)
            loop = asyncio.get_running_loop()
            if self._handle is None or self._loop is not loop:  # (a timer of a closed loop)
                self._loop = loop
                self._handle = loop.call_later(self._poll_s, self._check)
        return hangup

    def _check(self) -> None:
        self._handle = None
        for hangup in [h for h in self._watched if h.gone()]:
            self._watched.discard(hangup)
            hangup.fire()
        if self._watched and self._loop is not None:
            self._handle = self._loop.call_later(self._poll_s, self._check)

    def forget(self, hangup: Hangup) -> None:
        self._watched.discard(hangup)


class Hangup:
    """The watch on one request's client connection (``Hangups.watch``)."""

    __slots__ = ("_hangups", "_protocol", "_task", "fired")

    def __init__(
        self, hangups: Hangups, protocol: Connection | None, task: asyncio.Task[Any] | None
    ) -> None:
        self._hangups = hangups
        self._protocol = protocol
        self._task = task
        self.fired = False

    def gone(self) -> bool:
        """Whether the client's connection is closed (or closing) now."""
        protocol = self._protocol
        if protocol is None:
            return False
        transport = protocol.transport
        return transport is None or transport.is_closing()

    def fire(self) -> None:
        """The client is gone: cancel the task serving it."""
        self.fired = True
        assert self._task is not None
        self._task.cancel("client closed the connection")

    def absorb(self) -> bool:
        """After a CancelledError: True if it was this watcher's (then the task is no longer
        cancelling and the caller records the request as closed by the client)."""
        if not self.fired or self._task is None:
            return False
        self._task.uncancel()
        return True

    def close(self) -> None:
        """Stop watching (the request is over)."""
        self._hangups.forget(self)
