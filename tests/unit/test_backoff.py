"""Retry timing and limits: backoff with full jitter, Retry-After parsing, the retry budget.

Scenario matrix:
- backoff: within [0, min(cap, base * 2**attempt)); the ceiling doubles per attempt up to the
  cap; spread (not constant); zero base gives zero; huge attempts do not overflow; negative
  attempt rejected
- Retry-After: delta-seconds (integer and decimal), HTTP-date in the future / past (clamped to
  0), whitespace, absent, empty, negative, garbage, non-finite
- budget: min_per_s * window_s retries with no traffic; ratio of first attempts on top; retries
  and requests expire with the window (fake clock); zero budget refuses
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from switchman.gateway.serve.backoff import RetryBudget, backoff_delay, retry_after_seconds


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.5), (9, 0.5)])
def test_backoff_stays_under_the_doubling_ceiling(attempt: int, ceiling: float) -> None:
    rng = random.Random(7)
    delays = [backoff_delay(attempt, 0.1, 0.5, rng) for _ in range(2000)]
    assert all(0.0 <= delay < ceiling for delay in delays)
    assert max(delays) > 0.9 * ceiling  # full jitter covers the range
    assert min(delays) < 0.1 * ceiling
    assert len(set(delays)) > 1000


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    first = [backoff_delay(n, 0.025, 1.0, random.Random(3)) for n in range(5)]
    second = [backoff_delay(n, 0.025, 1.0, random.Random(3)) for n in range(5)]
    assert first == second


def test_backoff_edge_cases() -> None:
    rng = random.Random(1)
    assert backoff_delay(4, 0.0, 1.0, rng) == 0.0
    assert 0.0 <= backoff_delay(10_000, 0.025, 1.0, rng) < 1.0
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, 0.1, 1.0, rng)


NOW = 1_800_000_000.0


def http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, tz=UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (http_date(30), 30.0),
        (http_date(-30), 0.0),
    ],
)
def test_retry_after_reads_seconds_and_dates(value: str, expected: float) -> None:
    assert retry_after_seconds(value, NOW) == pytest.approx(expected)


@pytest.fixture
def local_time_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A local zone other than UTC, so a date read as local time would be hours off."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_time_not_utc")
def test_retry_after_takes_a_zoneless_date_as_gmt() -> None:
    now = datetime(2027, 1, 15, 7, 59, tzinfo=UTC).timestamp()
    assert retry_after_seconds("Fri, 15 Jan 2027 08:00:00 -0000", now) == pytest.approx(60.0)
    assert retry_after_seconds("Friday, 15-Jan-27 08:00:30 GMT", now) == pytest.approx(90.0)


@pytest.mark.parametrize(
    "value", [None, "", "  ", "-5", "soon", "1e3", "inf", "nan", "1_000", "Mon, 99 Foo 2026"]
)
def test_retry_after_rejects_absent_and_invalid_values(value: str | None) -> None:
    assert retry_after_seconds(value, NOW) is None


def test_budget_allows_the_floor_with_no_traffic_then_refuses() -> None:
    clock = Clock()
    budget = RetryBudget(0.2, 0.5, window_s=10.0, clock=clock)  # floor: 5 retries
    assert [budget.try_retry() for _ in range(6)] == [True] * 5 + [False]


def test_budget_grows_with_first_attempts() -> None:
    clock = Clock()
    budget = RetryBudget(0.5, 0.0, window_s=10.0, clock=clock)
    assert not budget.try_retry()
    for _ in range(10):
        budget.request()
    assert [budget.try_retry() for _ in range(6)] == [True] * 5 + [False]


def test_budget_recovers_as_retries_leave_the_window() -> None:
    clock = Clock()
    budget = RetryBudget(0.0, 0.2, window_s=10.0, clock=clock)  # floor: 2 retries
    assert budget.try_retry()
    clock.now += 5.0
    assert budget.try_retry()
    assert not budget.try_retry()
    clock.now += 5.0  # the first retry expired
    assert budget.try_retry()
    assert not budget.try_retry()


def test_requests_outside_the_window_earn_nothing() -> None:
    clock = Clock()
    budget = RetryBudget(1.0, 0.0, window_s=10.0, clock=clock)
    for _ in range(3):
        budget.request()
    clock.now += 10.0
    assert not budget.try_retry()
    budget.request()
    assert budget.try_retry()
    assert not budget.try_retry()


def test_zero_budget_never_retries_and_negative_knobs_are_rejected() -> None:
    clock = Clock()
    budget = RetryBudget(0.0, 0.0, clock=clock)
    budget.request()
    assert not budget.try_retry()
    with pytest.raises(ValueError, match="negative"):
        RetryBudget(-0.1, 1.0)
