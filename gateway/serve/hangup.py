"""Notices a client that went away and cancels the work still being done for it.

Used by ``proxy.handle`` around one request: ``Hangup(request)`` checks every ``POLL_S`` seconds
whether the client's connection is gone and, when it is, cancels the task serving the request.
The cancellation reaches whatever that task awaits: the upstream request in flight (its
connection is closed, which stops the generation: vLLM aborts a request whose client left), a
retry's backoff, a continuation not yet sent. So a departed client stops costing within a
second, streamed or not, whatever the server runner: aiohttp cancels handlers on a lost
connection only with ``handler_cancellation=True`` (its test server), and ``web.run_app`` leaves
it off. ``fired`` tells the caller that the cancellation was this watcher's, to be recorded as
outcome ``client_closed`` rather than propagated.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

POLL_S = 0.25  # a departed client is noticed within this (the guarantee: within a second)
CLIENT_CLOSED = "client_closed"  # the outcome label of a request whose client went away


class Connection(Protocol):
    """What the watcher reads of aiohttp's request handler protocol."""

    @property
    def transport(self) -> asyncio.Transport | None: ...


class Hangup:
    """Watches one request's client connection; see the module docstring."""

    __slots__ = ("_handle", "_loop", "_protocol", "_task", "fired")

    def __init__(self, protocol: Connection | None, poll_s: float = POLL_S) -> None:
        self._protocol = protocol
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self.fired = False
        self._handle: asyncio.TimerHandle | None = None
        if protocol is not None and self._task is not None:
            self._handle = self._loop.call_later(poll_s, self._check, poll_s)

    def gone(self) -> bool:
        """Whether the client's connection is closed (or closing) now."""
        protocol = self._protocol
        if protocol is None:
            return False
        transport = protocol.transport
        return transport is None or transport.is_closing()

    def _check(self, poll_s: float) -> None:
        if self.gone():
            self._handle = None
            self.fired = True
            assert self._task is not None
            self._task.cancel("client closed the connection")
            return
        self._handle = self._loop.call_later(poll_s, self._check, poll_s)

    def absorb(self) -> bool:
        """After a CancelledError: True if it was this watcher's (then the task is no longer
        cancelling and the caller records the request as closed by the client)."""
        if not self.fired or self._task is None:
            return False
        self._task.uncancel()
        return True

    def close(self) -> None:
        """Stop watching (the request is over)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
