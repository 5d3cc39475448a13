"""The two ledgers (this process's own, and Redis's Lua scripts) keep the same books.

Each scenario runs against ``LocalLedger`` and against ``RedisLedger`` on a real redis-server:

- requests per minute: the bucket admits ``rpm`` requests, refuses the next with a retry time
  near 60 s / rpm, and refills with time
- tokens per minute: the estimate is taken at admission; settling a smaller actual usage gives
  the difference back
- budgets: a reservation is the worst case; admission refuses a request whose reservation does
  not fit under the hard limit; settling moves it from reserved to spent (actual cost)
- a reservation never settled (a dead gateway) is released after its TTL
- Redis only: two ledgers on two connections (two replicas) racing 40 admissions for a budget
  that fits 7 never admit an eighth
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redisproc
from redis.asyncio import Redis

from switchman.gateway.tenancy.ledger import Ask, Bill, LocalLedger, Period
from switchman.gateway.tenancy.redisledger import RedisLedger

DAY = Period("daily", "20261206", 0, 3600)
MONTH = Period("monthly", "202612", 0, 3600)


def ask(tenant: str = "t", **fields: Any) -> Ask:
    values: dict[str, Any] = {
        "tenant": tenant,
        "rpm": 0,
        "tpm": 0,
        "tokens": 10,
        "amount": 0,
        "periods": (DAY, MONTH),
        "member": uuid.uuid4().hex,
        "ttl_ms": 60_000,
        **fields,
    }
    return Ask(**values)


def bill(a: Ask, actual: int, tokens: int = 0) -> Bill:
    return Bill(a, "auto", "small", actual, tokens, tokens, 0, 0, "20261206")


@pytest.fixture(params=["local", "redis"])
async def ledger(
    request: pytest.FixtureRequest, redis: redisproc.RedisProcess
) -> AsyncIterator[LocalLedger | RedisLedger]:
    if request.param == "local":
        yield LocalLedger()
        return
    client = Redis.from_url(redis.url)
    yield RedisLedger(client, "test")
    await client.aclose()


async def test_requests_per_minute_bucket(ledger: LocalLedger | RedisLedger) -> None:
    grants = [await ledger.admit(ask(rpm=3)) for _ in range(4)]
    assert [g.ok for g in grants] == [True, True, True, False]
    assert [g.requests_left for g in grants[:3]] == [2, 1, 0]
    refused = grants[3]
    assert refused.reason == "rpm"
    assert 15_000 <= refused.retry_ms <= 20_000  # one request refills in 60 s / 3
    assert grants[0].requests_reset_ms > 0


async def test_token_bucket_takes_the_estimate_and_settles_the_difference(
    ledger: LocalLedger | RedisLedger,
) -> None:
    first = ask(tpm=1000, tokens=800)
    assert (await ledger.admit(first)).ok
    refused = await ledger.admit(ask(tpm=1000, tokens=800))
    assert (refused.ok, refused.reason) == (False, "tpm")
    await ledger.settle(bill(first, 0, tokens=100))  # 700 tokens come back
    again = await ledger.admit(ask(tpm=1000, tokens=800))
    assert again.ok
    assert again.tokens_left < 200


async def test_budget_reserves_worst_case_and_settles_actual(
    ledger: LocalLedger | RedisLedger,
) -> None:
    day = Period("daily", "20261206", 1000, 3600)
    first = ask(amount=600, periods=(day, MONTH))
    grant = await ledger.admit(first)
    assert grant.ok
    assert grant.used == (600, 600)
    refused = await ledger.admit(ask(amount=600, periods=(day, MONTH)))
    assert (refused.ok, refused.reason) == (False, "daily")
    assert refused.used == (600, 600)
    await ledger.settle(bill(first, 150))
    second = await ledger.admit(ask(amount=600, periods=(day, MONTH)))
    assert second.ok
    assert second.used == (750, 750)


async def test_unsettled_reservation_expires(ledger: LocalLedger | RedisLedger) -> None:
    day = Period("daily", "20261206", 1000, 3600)
    assert (await ledger.admit(ask(amount=900, periods=(day, MONTH), ttl_ms=200))).ok
    assert not (await ledger.admit(ask(amount=900, periods=(day, MONTH)))).ok
    await asyncio.sleep(0.3)
    assert (await ledger.admit(ask(amount=900, periods=(day, MONTH)))).ok


async def test_two_replicas_never_overshoot_a_shared_budget(redis: redisproc.RedisProcess) -> None:
    clients = [Redis.from_url(redis.url) for _ in range(2)]
    ledgers = [RedisLedger(c, "test") for c in clients]
    day = Period("daily", "20261206", 7_000, 3600)
    try:
        grants = await asyncio.gather(
            *(ledgers[i % 2].admit(ask(amount=1_000, periods=(day, MONTH))) for i in range(40))
        )
    finally:
        for client in clients:
            await client.aclose()
    assert sum(g.ok for g in grants) == 7
    assert max(max(g.used) for g in grants) == 7_000
