"""A bucketed sliding-window counter of two event kinds, O(1) per event.

Used by ``switchman.gateway.replicas.breaker`` (outcomes of one replica) and by
``switchman.gateway.serve.backoff``'s retry budget (first attempts and retries of one route).
Pure and clock-free: the caller passes ``now``.
"""

from __future__ import annotations


class WindowCounts:
    """Two counts of events over a sliding window, kept in a ring of buckets (O(1) per event).

    ``events`` and ``marked`` are the totals over the buckets still in the window as of the
    last ``add``/``advance``: the window covers between ``window_s - window_s/buckets`` and
    ``window_s`` seconds, depending on where ``now`` falls in the current bucket.
    """

    __slots__ = ("_epoch", "_events", "_marked", "_size", "_width", "events", "marked")

    def __init__(self, window_s: float, buckets: int = 10) -> None:
        if window_s <= 0 or buckets < 1:
            raise ValueError("window_s must be positive and buckets at least 1")
        self._size = buckets
        self._width = window_s / buckets
        self._events = [0] * buckets
        self._marked = [0] * buckets
        self._epoch = 0
        self.events = 0
        self.marked = 0

    def add(self, now: float, events: int = 1, marked: int = 0) -> None:
        epoch = int(now // self._width)
        # Within the current bucket (most calls) there is nothing to drop.
        slot = epoch % self._size if epoch == self._epoch else self.advance(now)
        self._events[slot] += events
        self._marked[slot] += marked
        self.events += events
        self.marked += marked

    def add_event(self, now: float) -> None:
        """``add(now)``: one event, not marked (a breaker's success, a first attempt)."""
        epoch = int(now // self._width)
        slot = epoch % self._size if epoch == self._epoch else self.advance(now)
        self._events[slot] += 1
        self.events += 1

    def advance(self, now: float) -> int:
        """Drop the buckets that left the window by ``now``; the current bucket's index."""
        epoch = int(now // self._width)
        gap = epoch - self._epoch
        if gap:
            if 0 < gap < self._size:
                for step in range(self._epoch + 1, epoch + 1):
                    slot = step % self._size
                    self.events -= self._events[slot]
                    self.marked -= self._marked[slot]
                    self._events[slot] = self._marked[slot] = 0
            else:  # everything expired (or the clock went back): start over
                self.clear()
            self._epoch = epoch
        return epoch % self._size

    def clear(self) -> None:
        for slot in range(self._size):
            self._events[slot] = self._marked[slot] = 0
        self.events = self.marked = 0
