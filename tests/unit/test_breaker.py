"""The per-replica circuit breaker, driven by a fake clock.

Scenario matrix:
- closed: admits everything; successes reset the failure streak; opens after
  ``consecutive_failures`` in a row
- error ratio: opens at the ratio once ``min_requests`` outcomes are in the window, not before;
  outcomes older than the window are forgotten
- open: refuses until ``open_s`` passed, then reads half_open (reported once, lazily)
- half-open: admits ``half_open_requests`` concurrent probes; release frees a slot; success closes
  and clears the window (old failures no longer count); failure re-opens with a doubled open
  time, capped at ``max_open_s``, reset after a close
- outcomes reported while open are ignored
- disabled: always closed and available
- callbacks see every transition; ``opened`` counts opens
- the sliding window's buckets expire one by one
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from switchman.api.resilience import CircuitBreaker
from switchman.gateway.replicas.breaker import Breaker
from switchman.gateway.replicas.window import WindowCounts


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **fields: Any) -> tuple[Breaker, list[tuple[str, str]]]:
    spec = {"consecutive_failures": 3, "min_requests": 1000, "open_s": 10.0, **fields}
    breaker = Breaker(CircuitBreaker(**spec), clock=clock)
    changes: list[tuple[str, str]] = []
    breaker.on_change(lambda old, new: changes.append((old, new)))
    return breaker, changes


def fail(breaker: Breaker, times: int = 1) -> None:
    for _ in range(times):
        assert breaker.acquire()
        breaker.failure()


def test_closed_breaker_admits_and_a_success_resets_the_streak() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    fail(breaker, 2)
    assert breaker.acquire()
    breaker.success()
    fail(breaker, 2)
    assert breaker.state == "closed"
    assert breaker.available()
    assert changes == []
    assert breaker.opened == 0


def test_opens_after_consecutive_failures_and_refuses_until_open_time_passed() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    fail(breaker, 3)
    assert breaker.state == "open"
    assert breaker.opened == 1
    assert changes == [("closed", "open")]
    clock.now += 9.99
    assert not breaker.available()
    assert not breaker.acquire()
    assert breaker.state == "open"
    clock.now += 0.01
    assert changes == [("closed", "open")]  # half-open is reported when observed
    assert breaker.state == "half_open"
    assert breaker.available()
    assert changes == [("closed", "open"), ("open", "half_open")]


def test_error_ratio_opens_only_with_enough_requests_in_the_window() -> None:
    clock = Clock()
    breaker, _ = make(clock, consecutive_failures=100, min_requests=10, error_ratio=0.5)
    for _ in range(4):
        breaker.success()
        breaker.failure()
    breaker.success()
    assert breaker.state == "closed"  # 4 failures of 9: below min_requests
    breaker.failure()  # 5 of 10 = 0.5
    assert breaker.state == "open"


def test_error_ratio_below_threshold_stays_closed() -> None:
    clock = Clock()
    breaker, _ = make(clock, consecutive_failures=100, min_requests=10, error_ratio=0.5)
    for _ in range(20):
        breaker.success()
        breaker.success()
        breaker.failure()  # one in three
    assert breaker.state == "closed"


def test_outcomes_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    breaker, _ = make(
        clock, consecutive_failures=100, min_requests=4, error_ratio=0.5, window_s=10.0
    )
    breaker.failure()
    breaker.failure()
    breaker.success()
    clock.now += 11.0  # the two failures leave the window
    breaker.success()
    breaker.success()
    breaker.failure()  # 1 of 3 in the window: too few requests; 3 of 6 would have opened
    assert breaker.state == "closed"


def test_half_open_admits_limited_probes_and_release_frees_one() -> None:
    clock = Clock()
    breaker, _ = make(clock, half_open_requests=2)
    fail(breaker, 3)
    clock.now += 10.0
    assert breaker.acquire()
    assert breaker.acquire()
    assert not breaker.available()
    assert not breaker.acquire()
    breaker.release()
    assert breaker.available()
    assert breaker.acquire()
    assert breaker.state == "half_open"


def test_probe_success_closes_and_clears_the_window() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    fail(breaker, 3)
    clock.now += 10.0
    assert breaker.acquire()
    breaker.success()
    assert breaker.state == "closed"
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    fail(breaker, 2)  # the streak restarted from zero
    assert breaker.state == "closed"
    fail(breaker, 1)
    assert breaker.state == "open"
    assert breaker.opened == 2


def test_close_forgets_the_failures_in_the_window() -> None:
    clock = Clock()
    breaker, _ = make(clock, consecutive_failures=100, min_requests=4, error_ratio=0.5)
    for _ in range(4):
        breaker.failure()
    assert breaker.state == "open"
    clock.now += 10.0
    assert breaker.acquire()
    breaker.success()
    breaker.failure()  # 1 of 1 since the close: too few; with the old window it would reopen
    breaker.success()
    breaker.failure()
    assert breaker.state == "closed"


def test_probe_failure_reopens_with_doubling_open_time_capped() -> None:
    clock = Clock()
    breaker, _ = make(clock, open_s=10.0, max_open_s=35.0)
    fail(breaker, 3)
    expected = [20.0, 35.0, 35.0]  # 10 → 20 → 40 capped to 35
    clock.now += 10.0
    for duration in expected:
        fail(breaker, 1)  # the half-open probe fails
        assert breaker.state == "open"
        clock.now += duration - 0.001
        assert not breaker.available()
        clock.now += 0.001
        assert breaker.state == "half_open"
    assert breaker.opened == 4


def test_open_time_resets_after_a_close() -> None:
    clock = Clock()
    breaker, _ = make(clock, open_s=10.0)
    fail(breaker, 3)
    clock.now += 10.0
    fail(breaker, 1)  # re-open: 20 s
    clock.now += 20.0
    assert breaker.acquire()
    breaker.success()
    fail(breaker, 3)
    clock.now += 10.0
    assert breaker.state == "half_open"  # back to open_s, not 40 s


def test_outcomes_reported_while_open_are_ignored() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    started = [breaker.acquire() for _ in range(5)]
    assert all(started)
    for _ in range(3):
        breaker.failure()
    breaker.success()  # a request started before it opened
    breaker.failure()
    assert breaker.state == "open"
    assert breaker.opened == 1
    clock.now += 10.0  # not extended by the late failure
    assert breaker.state == "half_open"
    assert len(changes) == 2


def test_disabled_breaker_is_always_closed() -> None:
    clock = Clock()
    breaker, changes = make(clock, enabled=False, consecutive_failures=1, min_requests=1)
    fail(breaker, 50)
    assert breaker.state == "closed"
    assert breaker.available()
    assert breaker.acquire()
    assert changes == []
    assert breaker.opened == 0


def test_removing_the_callback_stops_notifications() -> None:
    clock = Clock()
    breaker, changes = make(clock)
    breaker.on_change(None)
    fail(breaker, 3)
    assert breaker.state == "open"
    assert changes == []


def test_window_counts_expire_bucket_by_bucket() -> None:
    window = WindowCounts(10.0, buckets=10)
    window.add(0.5)
    window.add(3.5, 1, 1)
    window.add(9.5, 2, 0)
    assert (window.events, window.marked) == (4, 1)
    window.advance(10.0)  # bucket [0, 1) left
    assert (window.events, window.marked) == (3, 1)
    window.advance(13.9)  # bucket [3, 4) left
    assert (window.events, window.marked) == (2, 0)
    window.advance(100.0)
    assert (window.events, window.marked) == (0, 0)


def test_window_counts_add_event_counts_as_add() -> None:
    """``add_event(now)`` (a success, a first attempt) keeps the same counts as ``add(now)``."""
    rng = random.Random(7)
    plain, fast = WindowCounts(10.0, buckets=10), WindowCounts(10.0, buckets=10)
    now = 0.0
    for _ in range(2000):
        now += rng.choice([0.0, 0.01, 0.3, 1.0, 2.7, 12.0])
        if rng.random() < 0.3:
            plain.add(now, 1, 1)
            fast.add(now, 1, 1)
        else:
            plain.add(now)
            fast.add_event(now)
        assert (fast.events, fast.marked) == (plain.events, plain.marked)
    assert fast.events > 0


def test_window_counts_reject_a_bad_size() -> None:
    with pytest.raises(ValueError, match="window_s"):
        WindowCounts(0.0)
