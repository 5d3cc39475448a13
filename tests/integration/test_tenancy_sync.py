"""Synchronised tenancy: replicas admit in memory and exchange deltas with a real Redis.

Two ``Store``s (two replicas: their own connections and replica ids) share one redis-server.
Syncs are called by the test (``sync_s`` is set long so the background loop stays out of the way)
except where the loop itself is under test:

- a replica sees what another took within one sync of each (requests, budget spent)
- a budget exhausted through one replica refuses on the other after a sync; before it, the other
  may admit its own reservations (the documented overshoot)
- a rate limit under concurrent load from both, each syncing every 50 ms, holds within the
  documented bound (rate x time + replicas x rate x sync_s, twice for the push/pull lag)
- usage counters and spend are exact in Redis after ``close`` (the flush)
- a batch whose reply was lost is resent and applied once
- ``on_redis_down: closed`` refuses once the last sync is older than its bound, and serves again
  after Redis answers; ``open`` keeps serving and sends its deltas once Redis is back
- a reload (a new store adopting the old one's view) keeps the books right, and through
  ``Tenancy.configure``: tickets of the old store settle there and reach Redis at ``close``
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redisproc
from redis.asyncio import Redis

from switchman.api.gatewayconfig import Model, Price
from switchman.api.tenancy import Limits, Tenant
from switchman.api.tenancy import Redis as RedisSettings
from switchman.api.tenancy import Tenancy as TenancySettings
from switchman.gateway.errors import LimitsUnavailable
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy.admission import Tenancy
from switchman.gateway.tenancy.keys import hash_key, new_key
from switchman.gateway.tenancy.ledger import Ask, Bill, Grant, Period
from switchman.gateway.tenancy.store import Store

DAY = "20261206"


def ask(rpm: int = 0, amount: int = 0, hard: int = 0, tenant: str = "t") -> Ask:
    periods = (Period("daily", DAY, hard, 3600), Period("monthly", "202612", 0, 3600))
    return Ask(tenant, rpm, 0, 10, amount, periods, "m", 60_000)


def bill(a: Ask, actual: int) -> Bill:
    return Bill(a, "auto", "small", actual, 10, 7, 3, 1, DAY)


Make = Callable[..., Store]


@pytest.fixture
async def make(redis: redisproc.RedisProcess) -> AsyncIterator[Make]:
    stores: list[Store] = []

    def make_one(on_down: str = "open", sync_s: float = 10.0) -> Store:
        settings = RedisSettings(url=redis.url, prefix="s", sync_s=sync_s)
        stores.append(Store(settings, on_down, Metrics(), {}))
        return stores[-1]

    yield make_one
    for store in stores:
        await store.close()


def admit(store: Store, a: Ask) -> Grant:
    answer = store.admit_now(a)
    assert answer is not None
    return answer[0]


def settle(store: Store, b: Bill) -> None:
    assert store.shared is not None
    store.shared.settle_now(b)


async def hash_of(redis: redisproc.RedisProcess, *parts: str) -> dict[str, Any]:
    client = Redis.from_url(redis.url, decode_responses=True)
    try:
        return dict(await client.hgetall(":".join(("s", "{t}", *parts))))
    finally:
        await client.aclose()


async def test_a_replica_sees_what_another_took_after_a_sync_of_each(make: Make) -> None:
    one, two = make(), make()
    for _ in range(3):
        assert admit(one, ask(rpm=10)).ok
    assert admit(two, ask(rpm=10)).requests_left == 9  # not synced yet: its own view
    assert await one.sync()
    assert await two.sync()
    assert admit(two, ask(rpm=10)).requests_left == 5  # 10 - 3 - 1 - 1
    assert await two.sync()
    assert await one.sync()
    assert admit(one, ask(rpm=10)).requests_left == 4


async def test_budget_exhausted_on_one_replica_refuses_on_the_other(
    make: Make, redis: redisproc.RedisProcess
) -> None:
    one, two = make(), make()
    first = ask(amount=600, hard=1000)
    assert admit(one, first).ok
    settle(one, bill(first, 900))
    assert admit(two, ask(amount=200, hard=1000)).ok  # before a sync: the documented overshoot
    assert await one.sync()
    assert await two.sync()
    refused = admit(two, ask(amount=200, hard=1000))
    assert (refused.ok, refused.reason) == (False, "daily")
    assert refused.used[0] == 900 + 200  # one's spend, and two's own reservation in flight
    assert await hash_of(redis, "budget", "daily", DAY) == {"spent": "900"}


async def test_rate_limit_holds_within_the_bound_under_concurrent_load(make: Make) -> None:
    sync_s, rpm = 0.05, 6000
    rate = rpm / 60
    one, two = make(sync_s=sync_s), make(sync_s=sync_s)
    while admit(one, ask(rpm=rpm)).ok:  # drain the bucket through one replica
        pass
    assert await one.sync()
    assert await two.sync()
    admitted = [0, 0]

    async def drive(i: int, store: Store, until: float) -> None:
        while time.monotonic() < until:
            if admit(store, ask(rpm=rpm)).ok:
                admitted[i] += 1
            await asyncio.sleep(0.0005)

    started = time.monotonic()
    until = started + 1.5
    await asyncio.gather(drive(0, one, until), drive(1, two, until))
    elapsed = time.monotonic() - started
    bound = rate * elapsed + 2 * (2 * rate * sync_s) + 2
    assert sum(admitted) <= bound
    assert sum(admitted) >= rate * elapsed * 0.5  # both kept serving
    assert min(admitted) > 0


async def test_usage_counters_and_spend_are_exact_after_close(
    make: Make, redis: redisproc.RedisProcess
) -> None:
    one, two = make(), make()
    for i in range(30):
        store = (one, two)[i % 2]
        a = ask(amount=50)
        assert admit(store, a).ok
        settle(store, bill(a, 40))
    await one.close()
    await two.close()
    usage = await hash_of(redis, "usage", DAY)
    assert usage["auto|small|requests"] == "30"
    assert usage["auto|small|cost"] == str(30 * 40)
    assert usage["auto|small|input"] == str(30 * 7)
    assert usage["auto|small|output"] == str(30 * 3)
    assert usage["auto|small|saving"] == "30"
    assert (await hash_of(redis, "budget", "daily", DAY))["spent"] == str(30 * 40)


async def test_a_batch_whose_reply_was_lost_is_applied_once(
    make: Make, redis: redisproc.RedisProcess
) -> None:
    store = make()
    assert store.syncer is not None
    assert store.shared is not None
    a = ask(amount=50)
    assert admit(store, a).ok
    settle(store, bill(a, 40))
    batches = store.shared.cut()
    await store.syncer._run([store.syncer.command(b) for b in batches])  # applied, answer lost
    assert store.shared.owed()
    assert await store.sync()  # resent with the same number
    assert not store.shared.owed()
    assert await store.sync()
    assert (await hash_of(redis, "usage", DAY))["auto|small|requests"] == "1"
    assert (await hash_of(redis, "budget", "daily", DAY))["spent"] == "40"
    # The mark of what this replica applied is a key of its own that expires with it (a restart
    # is a new replica id: the marks of the old ones must not pile up).
    mark = store.syncer.key(a.tenant, "applied", store.syncer.replica)
    client = Redis.from_url(redis.url)
    try:
        assert await client.get(mark) == b"1"
        assert 0 < await client.ttl(mark) <= 2 * 86400
    finally:
        await client.aclose()


async def test_closed_refuses_once_the_last_sync_is_older_than_the_bound(
    make: Make, redis: redisproc.RedisProcess
) -> None:
    store = make(on_down="closed", sync_s=0.05)
    assert store.stale_s == 0.5
    assert admit(store, ask()).ok
    await redis.stop()
    assert admit(store, ask()).ok  # within the bound: served from the process's books
    await asyncio.sleep(0.7)
    with pytest.raises(LimitsUnavailable):
        store.admit_now(ask())
    assert store.status()["redis"] == "unreachable"
    await redis.start()
    await asyncio.sleep(0.3)
    assert store.status()["redis"] == "up"
    assert admit(store, ask()).ok


async def test_open_keeps_serving_and_sends_its_deltas_once_redis_is_back(
    make: Make, redis: redisproc.RedisProcess
) -> None:
    store = make(sync_s=0.05)
    a = ask()
    assert admit(store, a).ok
    settle(store, bill(a, 5))
    await asyncio.sleep(0.2)
    assert (await hash_of(redis, "usage", DAY))["auto|small|requests"] == "1"
    await redis.stop()
    for _ in range(3):
        b = ask()
        assert admit(store, b).ok
        settle(store, bill(b, 5))
    await asyncio.sleep(0.3)
    assert store.status()["redis"] == "unreachable"
    await redis.start()  # an empty Redis: it must get the outage's 3 requests, once
    await asyncio.sleep(0.4)
    assert store.status()["redis"] == "up"
    assert (await hash_of(redis, "usage", DAY))["auto|small|requests"] == "3"


async def test_a_reload_adopts_the_view_and_the_old_store_flushes(
    make: Make, redis: redisproc.RedisProcess
) -> None:
    old = make()
    for _ in range(4):
        a = ask(rpm=10)
        assert admit(old, a).ok
        settle(old, bill(a, 5))
    new = make()
    assert new.shared is not None
    assert old.shared is not None
    new.shared.adopt(old.shared)
    assert admit(new, ask(rpm=10)).requests_left == 5
    await old.close()
    assert await new.sync()
    assert admit(new, ask(rpm=10)).requests_left == 4
    await new.close()
    assert (await hash_of(redis, "usage", DAY))["auto|small|requests"] == "4"


async def test_a_reload_that_changes_the_redis_block_keeps_the_books(
    tmp_path: Path, redis: redisproc.RedisProcess
) -> None:
    key = new_key()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "t", "sha256": hash_key(key)}]}))
    model = Model(name="small", upstream="u", price=Price(input_per_mtok=1, output_per_mtok=2))
    usage = Usage(prompt_tokens=10, completion_tokens=10)

    def block(sync_s: float) -> TenancySettings:
        return TenancySettings(
            keys_file=str(keys),
            tenants=[Tenant(name="t", limits=Limits(requests_per_minute=10))],
            redis=RedisSettings(url=redis.url, prefix="s", sync_s=sync_s),
        )

    tenancy = Tenancy(Metrics(), {})
    tenancy.configure(block(5.0))
    first = [await tenancy.admit("t", "auto", False, [model], (10, 10)) for _ in range(3)]
    tenancy.configure(block(4.0))  # a new store; the old one keeps what it owes
    ticket, _ = await tenancy.admit("t", "auto", False, [model], (10, 10))
    assert ticket.headers["x-ratelimit-remaining-requests"] == "6"  # the view went on
    for t, _ in [*first, (ticket, None)]:
        t.settle("auto", model, usage, 3e-5)  # the first three in the old store's books
    await tenancy.close()
    usage_row = await hash_of(redis, "usage", datetime.now(UTC).strftime("%Y%m%d"))
    assert usage_row["auto|small|requests"] == "4"
    assert usage_row["auto|small|cost"] == str(4 * 30_000)
