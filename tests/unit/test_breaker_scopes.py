"""Breakers scoped by failure class, recovery by health check, holds and panic picks (fake clock).

Scenario matrix:
- a 429 of one model holds that (replica, model) pair for exactly its Retry-After: the other
  models of the same replica and the same model on another replica keep serving; no doubling
- error statuses of one model open that pair's breaker only; connection errors and timeouts
  (blame replica) open the replica's breaker, which keeps every model off it
- a passing active health check turns an open breaker half-open at once (replica and model
  breakers; not a 429 hold), and the next real request is the probe that closes it
- a health check round calls it for passing, healthy replicas only
- panic: with no replica available ``pick(panic=True)`` still returns one (in turn, outside
  ``exclude``); ``admit(force=True)`` admits it as the breakers' probe, so its success closes them
- defaults: max_open_s <= 30 s, so a replica without health checks is probed within 30 s
- ``/readyz`` rows carry each model breaker that is not closed
- failure classes: 429s and error statuses blame the (replica, model) pair (a 429 held for its
  Retry-After, 1 s without one, then closed with no probe gate); unreachable, timeouts, stalls
  and cut streams the replica; context length, content filter and an unsent continuation neither
"""

from __future__ import annotations

import random
from typing import Any

import aiohttp
import pytest

from switchman.api.gatewayconfig import Upstream
from switchman.api.resilience import CircuitBreaker, HealthCheck
from switchman.gateway.errors import UpstreamUnavailable
from switchman.gateway.replicas.breaker import Breaker
from switchman.gateway.replicas.endpoints import EndpointSet
from switchman.gateway.replicas.healthcheck import HealthStreak, check_round
from switchman.gateway.serve.failures import Failure, status_failure


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replicas(count: int, clock: Clock, **breaker: Any) -> EndpointSet:
    spec = Upstream.model_validate(
        {
            "name": "pool",
            "base_url": "http://model.ns.svc:8000/v1",
            "discovery": {"static": [f"10.0.0.{i}:8000" for i in range(1, count + 1)]},
            "circuit_breaker": {"consecutive_failures": 2, "open_s": 10.0, **breaker},
        }
    )
    return EndpointSet(spec, clock=clock, rng=random.Random(1))


def test_a_429_of_one_model_holds_only_that_model_on_that_replica() -> None:
    clock = Clock()
    endpoints = replicas(2, clock)
    a, b = endpoints.endpoints
    assert a.admit("big")
    a.failed("big", "model", hold_s=7.0)

    assert not a.serves("big")
    assert a.serves("small")  # same replica, other model: untouched
    assert b.serves("big")  # same model, other replica: untouched
    assert a.breaker.state == "closed"
    assert {endpoints.pick(None, model="big") for _ in range(4)} == {b}
    assert {endpoints.pick(None, model="small") for _ in range(4)} == {a, b}
    assert endpoints.available("big")
    assert endpoints.available("small")

    clock.now += 6.9
    assert not a.serves("big")
    clock.now += 0.2  # exactly the Retry-After, not a doubled open time
    assert a.serves("big")
    assert a.admit("big")
    a.succeeded("big")
    assert a.model_breaker("big").state == "closed"


def test_error_statuses_open_the_model_breaker_and_connection_errors_the_replica() -> None:
    clock = Clock()
    endpoints = replicas(1, clock)
    (a,) = endpoints.endpoints
    for _ in range(2):
        assert a.admit("big")
        a.failed("big", "model")
    assert a.model_breaker("big").state == "open"
    assert a.breaker.state == "closed"
    assert a.serves("small")
    assert not a.serves("big")
    assert endpoints.pick(None, model="big") is None
    assert endpoints.pick(None, model="small") is a

    for _ in range(2):
        assert a.admit("small")
        a.failed("small", "replica")
    assert a.breaker.state == "open"
    assert not a.serves("small")
    assert not a.serves("other")
    assert not endpoints.available("other")


def test_a_request_the_client_got_wrong_counts_for_neither() -> None:
    clock = Clock()
    (a,) = replicas(1, clock).endpoints
    for _ in range(5):
        assert a.admit("m")
        a.failed("m", "none")
    assert (a.breaker.state, a.model_breaker("m").state) == ("closed", "closed")


def test_a_passing_health_check_half_opens_at_once_and_the_next_request_closes() -> None:
    clock = Clock()
    (a,) = replicas(1, clock, max_open_s=30.0).endpoints
    for _ in range(2):
        assert a.admit("m")
        a.failed("m", "replica")
    assert a.breaker.state == "open"
    assert not a.admit("m")

    a.health_passed()  # no clock movement: the backend is back, so is the replica
    assert a.breaker.state == "half_open"
    assert a.admit("m")  # the probe is a real request
    assert not a.admit("m")  # one probe at a time
    a.succeeded("m")
    assert a.breaker.state == "closed"
    assert a.admit("m")


def test_a_health_check_half_opens_model_breakers_but_not_a_429_hold() -> None:
    clock = Clock()
    (a,) = replicas(1, clock).endpoints
    for _ in range(2):
        assert a.admit("broken")
        a.failed("broken", "model")
    assert a.admit("limited")
    a.failed("limited", "model", hold_s=60.0)

    a.health_passed()
    assert a.model_breaker("broken").state == "half_open"
    assert a.model_breaker("limited").state == "open"  # the quota is spent, not the replica
    assert a.breakers() == {"limited": "open", "broken": "half_open"}


class Checked:
    def __init__(self, address: str, healthy: bool) -> None:
        self.address = address
        self.healthy = healthy
        self.streak = HealthStreak()
        self.passed = 0

    def health_passed(self) -> None:
        self.passed += 1


class Answer:
    def __init__(self, status: int) -> None:
        self.status = status

    async def __aenter__(self) -> Answer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self) -> bytes:
        return b""


class Session:
    """Answers 200 for the addresses in ``up``; refuses the connection for the others."""

    def __init__(self, up: set[str]) -> None:
        self.up = up

    def get(self, url: str, **kwargs: Any) -> Answer:
        if not any(address in url for address in self.up):
            raise aiohttp.ClientConnectionError("refused")
        return Answer(200)


async def test_check_round_reports_passes_of_healthy_replicas_only() -> None:
    up = Checked("10.0.0.1:8000", healthy=True)
    returning = Checked("10.0.0.2:8000", healthy=False)
    down = Checked("10.0.0.3:8000", healthy=True)
    session: Any = Session({up.address, returning.address})
    spec = HealthCheck(healthy_after=2, unhealthy_after=1, timeout_s=1.0)
    await check_round(session, [up, returning, down], spec, "http")
    assert (up.passed, returning.passed, down.passed) == (1, 0, 0)  # 1 of 2 passes: not back
    await check_round(session, [up, returning, down], spec, "http")
    assert (up.passed, returning.passed, down.passed) == (2, 1, 0)
    assert returning.healthy
    assert not down.healthy


def test_panic_pick_returns_a_replica_and_force_admits_it_as_the_probe() -> None:
    clock = Clock()
    endpoints = replicas(2, clock)
    a, b = endpoints.endpoints
    for endpoint in (a, b):
        for _ in range(2):
            assert endpoint.admit("m")
            endpoint.failed("m", "replica")
    b.healthy = False
    assert endpoints.pick(None, model="m") is None
    picked = endpoints.pick(None, model="m", panic=True)
    assert picked in (a, b)
    assert endpoints.pick(None, exclude=(a, b), panic=True) is None
    assert endpoints.pick(None, exclude=(a,), panic=True) is b

    assert not a.admit("m")
    assert a.admit("m", force=True)
    a.succeeded("m")
    assert a.breaker.state == "closed"
    assert a.serves("m")


def test_force_probe_that_fails_reopens() -> None:
    clock = Clock()
    breaker = Breaker(CircuitBreaker(consecutive_failures=1, open_s=4.0), clock=clock)
    assert breaker.acquire()
    breaker.failure()
    breaker.force()
    assert breaker.state == "half_open"
    breaker.failure()
    assert breaker.state == "open"
    assert not breaker.available()


@pytest.mark.parametrize("field", ["max_open_s"])
def test_default_open_time_is_at_most_thirty_seconds(field: str) -> None:
    spec = CircuitBreaker()
    assert getattr(spec, field) <= 30.0
    clock = Clock()
    breaker = Breaker(spec, clock=clock)
    for _ in range(10):  # a replica failing every probe for a long outage
        while breaker.state == "closed":
            assert breaker.acquire()
            breaker.failure()
        clock.now += 30.0
        assert breaker.state == "half_open"
        assert breaker.acquire()
        breaker.failure()
    clock.now += 30.0
    assert breaker.available()  # back to traffic within 30 s of any recovery


def test_snapshot_rows_carry_the_model_breakers() -> None:
    clock = Clock()
    endpoints = replicas(1, clock)
    (a,) = endpoints.endpoints
    assert a.admit("m")
    a.failed("m", "model", hold_s=3.0)
    (row,) = endpoints.snapshot()
    assert row["breaker"] == "closed"
    assert row["model_breakers"] == {"m": "open"}


def test_a_hold_closes_when_its_time_is_up_so_every_waiting_request_goes() -> None:
    clock = Clock()
    breaker = Breaker(CircuitBreaker(half_open_requests=1), clock=clock)
    breaker.hold(2.0)
    assert breaker.held
    assert not breaker.acquire()
    clock.now += 2.0
    assert breaker.state == "closed"
    assert all(breaker.acquire() for _ in range(5))  # no one-probe gate after a Retry-After


@pytest.mark.parametrize(
    ("status", "blame", "hold"),
    [
        (429, "model", 1.0),  # no Retry-After: the default hold
        (500, "model", None),
        (503, "model", None),
        (408, "model", None),
    ],
)
def test_error_statuses_blame_the_model_on_that_replica(
    status: int, blame: str, hold: float | None
) -> None:
    failure = status_failure("u", status, {"error": {"message": "no"}}, {})
    assert isinstance(failure, Failure)
    assert (failure.blame, failure.hold_s) == (blame, hold)


def test_a_429_holds_for_its_retry_after() -> None:
    failure = status_failure("u", 429, {}, {"Retry-After": "7"})
    assert isinstance(failure, Failure)
    assert failure.hold_s == 7.0


@pytest.mark.parametrize(
    ("reason", "scope", "blame"),
    [
        ("unreachable", "endpoint", "replica"),
        ("timeout", "endpoint", "replica"),
        ("stalled", "endpoint", "replica"),
        ("stream_broken", "endpoint", "replica"),
        ("generation_timeout", "endpoint", "replica"),
        ("bad_response", "endpoint", "model"),
        ("upstream_error", "endpoint", "model"),
        ("context_length", "context", "none"),
        ("content_filter", "content", "none"),
        ("not_continuable", "model", "none"),
    ],
)
def test_failure_classes_blame_the_replica_the_model_or_neither(
    reason: str, scope: Any, blame: str
) -> None:
    failure = Failure(reason, UpstreamUnavailable("x"), scope=scope)
    assert failure.blame == blame
    assert failure.hold_s is None
