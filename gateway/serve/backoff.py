"""How long to wait before a retry, and whether a route may retry at all.

Used by the retry loop, ``failover`` (``Retry`` in ``switchman.api.resilience`` holds the knobs):

- ``backoff_delay``: exponential backoff with full jitter (uniform in ``[0, min(cap,
  base * 2**attempt))``), so retries from many clients spread out instead of arriving together.
- ``retry_after_seconds``: an HTTP ``Retry-After`` value (delta-seconds or an HTTP-date) as
  seconds from now, or None when absent or unreadable.
- ``RetryBudget``: one per route (Finagle's budget, Envoy's retry budget): retries in the last
  ``window_s`` may not exceed ``ratio`` times the first attempts in it plus ``min_per_s *
  window_s``, so a failing upstream sees a bounded extra load instead of a retry storm.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from datetime import UTC
from email.utils import parsedate_to_datetime

from switchman.gateway.replicas.window import WindowCounts

_DELTA = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = the first retry), full jitter."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = cap if attempt >= 64 else min(cap, base * (1 << attempt))
    return rng.random() * ceiling if ceiling > 0 else 0.0


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait per a ``Retry-After`` header, never negative; None if absent or invalid.

    ``now`` is the wall clock (``time.time()``), against which an HTTP-date is compared. Decimal
    delta-seconds (``"1.5"``) are accepted too: some APIs send them.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    try:
        return max(0.0, when.timestamp() - now)
    except (OverflowError, ValueError, OSError):
        return None


class RetryBudget:
    """Retries allowed per route over a sliding window (bucketed; O(1) per call)."""

    __slots__ = ("_clock", "_floor", "_ratio", "_window")

    def __init__(
        self,
        ratio: float,
        min_per_s: float,
        *,
        window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ratio < 0 or min_per_s < 0:
            raise ValueError("ratio and min_per_s must not be negative")
        self._ratio = ratio
        self._floor = min_per_s * window_s
        self._clock = clock
        self._window = WindowCounts(window_s)  # events: first attempts; marked: retries

    def request(self) -> None:
        """Record a request's first attempt (it earns ``ratio`` of a retry)."""
        self._window.add_event(self._clock())

    def try_retry(self) -> bool:
        """Spend one retry if the budget allows it now; False: do not retry."""
        window = self._window
        now = self._clock()
        window.advance(now)
        if window.marked >= self._ratio * window.events + self._floor:
            return False
        window.add(now, 0, 1)
        return True
