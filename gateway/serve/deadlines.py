"""Time limits of the requests in flight, on one loop timer: ``asyncio.timeout`` without a timer
per request.

Used by ``attempt`` for a whole answer's generation timeout (``timeouts.total_s``) and a stream's
wait for its response headers (``timeouts.first_byte_s``), and by ``relay`` for each wait for a
stream's next bytes (``timeouts.idle_s``); owned by the proxy (one per process).
``async with deadlines.after(seconds)`` behaves as ``asyncio.timeout(seconds)``: when the time
is up the task that entered the block is cancelled, and the block raises ``TimeoutError`` in
place of that cancellation (a cancellation that is not the deadline's propagates as it is;
``None`` sets no limit). The difference is the cost: on uvloop a timer armed and cancelled per
request cost about 4.5 µs; here one timer is armed for the earliest deadline in flight, and a
request pays a heap push and a flag.

Deadlines that ended before their time stay in the heap, skipped when reached; the heap is
rebuilt without them once they are over half of it, so it holds at most about twice the
requests in flight.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from types import TracebackType
from typing import Any

_EARLY_S = 0.001  # a loop timer may run this much early (clock resolution): those are due
_REBUILD_MIN = 64  # ended deadlines kept in the heap before a rebuild is considered


class Deadlines:
    """The deadlines of one process (one event loop); see the module docstring."""

    __slots__ = ("_armed", "_ended", "_handle", "_heap", "_loop", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._ended = 0  # entries of the heap whose block ended before their time
        self._seq = 0  # ties in time are taken in order
        self._handle: asyncio.TimerHandle | None = None
        self._armed = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def after(self, seconds: float | None) -> Deadline:
        """``asyncio.timeout(seconds)`` on this process's timer."""
        return Deadline(self, seconds)

    def _add(self, deadline: Deadline, when: float, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:  # (a new loop: what the old one held is gone with it)
            self._loop, self._heap, self._ended = loop, [], 0
            self._handle, self._armed = None, math.inf
        self._seq += 1
        heapq.heappush(self._heap, (when, self._seq, deadline))
        if when < self._armed:
            self._arm(when)

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        assert self._loop is not None
        self._armed = when
        self._handle = self._loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._handle, self._armed = None, math.inf
        assert self._loop is not None
        due = self._loop.time() + _EARLY_S
        heap = self._heap
        while heap and (heap[0][2].ended or heap[0][0] <= due):
            deadline = heapq.heappop(heap)[2]
            if deadline.ended:
                self._ended -= 1
            else:
                deadline._fire()
        if heap:
            self._arm(heap[0][0])

    def _end(self) -> None:
        """A block still in the heap ended before its time."""
        self._ended += 1
        if self._ended > _REBUILD_MIN and 2 * self._ended > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[2].ended]
            heapq.heapify(self._heap)
            self._ended = 0


class Deadline:
    """One block's time limit (``Deadlines.after``)."""

    __slots__ = ("_cancelling", "_deadlines", "_seconds", "_task", "ended", "expired")

    def __init__(self, deadlines: Deadlines, seconds: float | None) -> None:
        self._deadlines = deadlines
        self._seconds = seconds
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0
        self.ended = False  # the block is over (or its time was up): skipped in the heap
        self.expired = False  # its time was up: the task was cancelled

    async def __aenter__(self) -> Deadline:
        return self.enter()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.exit(kind, value)

    def enter(self) -> Deadline:
        """``async with``'s entry as a plain call, for a caller that saves the coroutines:
        ``enter()``, then ``exit(type(exc), exc)`` for an exception that leaves the block (it
        raises ``TimeoutError`` in its place when the time was up) or ``exit(None, None)``."""
        if self._seconds is None:
            self.ended = True
            return self
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline must be entered inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        loop = asyncio.get_running_loop()
        self._deadlines._add(self, loop.time() + self._seconds, loop)
        return self

    def _fire(self) -> None:
        self.ended = self.expired = True
        assert self._task is not None
        self._task.cancel()

    def exit(self, kind: type[BaseException] | None, value: BaseException | None) -> None:
        """The block ended (see ``enter``)."""
        if not self.ended:
            self.ended = True
            self._task = None  # (the heap may hold this entry a while: not the task with it)
            self._deadlines._end()
            return
        if self.expired:
            assert self._task is not None
            # As asyncio.timeout: the cancellation was ours unless another one is pending.
            if self._task.uncancel() <= self._cancelling and kind is asyncio.CancelledError:
                raise TimeoutError from value
