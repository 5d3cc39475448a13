"""A circuit breaker, configured by ``CircuitBreaker``: one per replica, one per (replica, model).

``replica.Endpoint`` keeps one ``Breaker`` for the replica (connection errors, timeouts, broken
streams) and one per model it served (429s and error statuses of that model), so one model's
trouble never ejects the others. Routing asks ``available()`` while choosing, the failover loop
admits an attempt with ``acquire()`` (or ``force()`` in panic mode) and reports exactly one of
``success()``, ``failure()``, ``hold()`` or ``release()`` after it; the active health check calls
``health_passed()``. Metrics and logging subscribe with ``on_change``. Pure and clock-injected: no
asyncio, no I/O.

States: *closed* lets everything through and counts outcomes; it opens on
``consecutive_failures`` failures in a row, or when the sliding window (``window_s``, ten
buckets) holds at least ``min_requests`` outcomes of which ``error_ratio`` or more failed.
*open* refuses everything for ``open_s``, doubled on each re-open in a row up to ``max_open_s``;
it reads *half_open* once that time has passed (reported to ``on_change`` when first observed).
*half_open* admits up to ``half_open_requests`` acquired requests at a time: a success closes it
(window, counts and open time reset), a failure re-opens it.

Recovery is as fast as the backend's: a passing active health check turns an open breaker
half-open at once (``health_passed``), so the next real request is the probe; ``force()`` (panic
mode: every candidate is out) turns it half-open and admits the request whatever the limit.
``hold(seconds)`` opens it for exactly that long (a 429's Retry-After) and closes it after: no
doubling, no streak, no probe, and a health check does not end it early (the replica is up, it
is the quota that is spent).

Outcomes reported while open are ignored (they belong to requests started before it opened).
Such a late outcome reported while half-open is taken as the probe's: a success is evidence the
replica answers again, a failure that it does not. The sliding window is
``switchman.gateway.replicas.window.WindowCounts``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from switchman.api.resilience import CircuitBreaker
from switchman.gateway.replicas.window import WindowCounts

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"

StateCallback = Callable[[str, str], None]


class Breaker:
    """Closed / open / half-open state of one replica (see the module docstring)."""

    __slots__ = (
        "_callback",
        "_clock",
        "_consecutive",
        "_enabled",
        "_held",
        "_max_consecutive",
        "_max_open_s",
        "_min_requests",
        "_open_s",
        "_probe_limit",
        "_probes",
        "_ratio",
        "_reopens",
        "_state",
        "_until",
        "_window",
        "opened",
    )

    def __init__(
        self, spec: CircuitBreaker, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._enabled = spec.enabled
        self._max_consecutive = spec.consecutive_failures
        self._ratio = spec.error_ratio
        self._min_requests = spec.min_requests
        self._open_s = spec.open_s
        self._max_open_s = spec.max_open_s
        self._probe_limit = spec.half_open_requests
        self._clock = clock
        self._window = WindowCounts(spec.window_s)
        self._state = CLOSED
        self._consecutive = 0
        self._reopens = 0  # re-opens in a row since the last close: the open time's doubling
        self._until = 0.0  # when an open breaker turns half-open
        self._probes = 0  # acquired, unfinished requests while half-open
        self._held = False  # open by hold(): ends only when its time is up
        self._callback: StateCallback | None = None
        self.opened = 0

    def on_change(self, callback: StateCallback | None) -> None:
        """Call ``callback(old, new)`` on every state transition (None: stop)."""
        self._callback = callback

    @property
    def state(self) -> str:
        if self._state == OPEN:
            self._expire()
        return self._state

    @property
    def held(self) -> bool:
        """Open by ``hold`` (a 429) and not yet past its time."""
        return self.state == OPEN and self._held

    def available(self) -> bool:
        """Whether a request could be admitted now; reserves nothing."""
        state = self._state
        if state == CLOSED:
            return True
        if state == OPEN and not self._expire():
            return False
        return self._probes < self._probe_limit

    def acquire(self) -> bool:
        """Admit a request (taking a half-open probe slot); False: do not send it here now."""
        state = self._state
        if state == CLOSED:
            return True
        if state == OPEN and not self._expire():
            return False
        if self._state == CLOSED:
            return True
        if self._probes >= self._probe_limit:
            return False
        self._probes += 1
        return True

    def force(self) -> None:
        """Admit a request whatever the state (panic mode); an open breaker turns half-open."""
        if self._state == OPEN:
            self._until = 0.0
            self._held = False
            self._expire()
        if self._state == HALF_OPEN:
            self._probes += 1

    def hold(self, seconds: float) -> None:
        """Refuse requests for ``seconds`` (rate limited), then probe; no doubling, no streak."""
        until = self._clock() + seconds
        if self._state == OPEN and self._until >= until:
            return
        self._until = until
        self._probes = 0
        self._held = True
        if self._state != OPEN:
            self.opened += 1
            self._set(OPEN)

    def health_passed(self) -> None:
        """An active health check passed: an open breaker (not a hold) turns half-open now."""
        if self._state == OPEN and not self._held:
            self._until = 0.0
            self._expire()

    def success(self) -> None:
        state = self._state
        if state == CLOSED:
            if self._enabled:
                self._consecutive = 0
                self._window.add_event(self._clock())
        elif state == HALF_OPEN:
            self._close()

    def failure(self) -> None:
        state = self._state
        if state == CLOSED:
            if not self._enabled:
                return
            self._consecutive += 1
            window = self._window
            window.add(self._clock(), 1, 1)
            if self._consecutive >= self._max_consecutive or (
                window.events >= self._min_requests and window.marked >= self._ratio * window.events
            ):
                self._open()
        elif state == HALF_OPEN:
            self._reopens += 1
            self._open()

    def release(self) -> None:
        """An acquired request ended without an outcome (e.g. the client went away)."""
        if self._state == HALF_OPEN and self._probes:
            self._probes -= 1

    def _expire(self) -> bool:
        """Once an open breaker's time is up, turn it half-open (closed after a hold: the wait
        a 429 asked for is over); whether it admits requests now."""
        if self._clock() < self._until:
            return False
        if self._held:
            self._close()
            return True
        self._probes = 0
        self._set(HALF_OPEN)
        return True

    def _open(self) -> None:
        duration = min(self._open_s * 2.0 ** min(self._reopens, 62), self._max_open_s)
        self._until = self._clock() + duration
        self._probes = 0
        self._held = False
        self.opened += 1
        self._set(OPEN)

    def _close(self) -> None:
        self._consecutive = 0
        self._reopens = 0
        self._probes = 0
        self._window.clear()
        self._set(CLOSED)

    def _set(self, new: str) -> None:
        old, self._state = self._state, new
        if self._callback is not None:
            self._callback(old, new)
