"""A store retired by a reload closes once drained, against a real Redis.

A reload that changes the ``tenancy.redis`` block retires the old ``Store``: the tickets it
admitted still settle there, and once the last one has (or the reservation TTL has passed) its
deltas go to Redis and its client and loops are closed, not kept until shutdown:

- synced mode: the old store closes within a bounded time after its last ticket settles, and the
  bills settled after the reload are in Redis before shutdown, each once
- strict mode: a ticket admitted before the reload and settled after it is billed once (its
  reservation released once, its spend and usage counted once), then the old store closes
- a ticket still open when the TTL passes: the store closes anyway and the late bill lands once
  in the current store's books
- shutdown right after a reload closes both stores and leaves no task or connection behind
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redisproc
from redis.asyncio import Redis

from switchman.api.gatewayconfig import Model, Price
from switchman.api.tenancy import Budget, Limits, Tenant
from switchman.api.tenancy import Redis as RedisSettings
from switchman.api.tenancy import Tenancy as TenancySettings
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy.admission import Tenancy, Ticket
from switchman.gateway.tenancy.keys import hash_key, new_key
from switchman.gateway.tenancy.store import Store

MODEL = Model(name="small", upstream="u", price=Price(input_per_mtok=1, output_per_mtok=2))
USAGE = Usage(prompt_tokens=10, completion_tokens=10)
COST = 3e-5  # 10 x 1 + 10 x 2 per million tokens: 30_000 nano-dollars
DEADLINE_S = 5.0

Block = Callable[..., TenancySettings]


@pytest.fixture
def block(tmp_path: Path, redis: redisproc.RedisProcess) -> Block:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "t", "sha256": hash_key(new_key())}]}))

    def make(sync_s: float, timeout_s: float = 0.25, ttl_s: float = 900) -> TenancySettings:
        return TenancySettings(
            keys_file=str(keys),
            tenants=[
                Tenant(
                    name="t",
                    limits=Limits(requests_per_minute=100),
                    daily=Budget(hard_usd=100.0),
                )
            ],
            redis=RedisSettings(url=redis.url, prefix="s", sync_s=sync_s, timeout_s=timeout_s),
            reservation_ttl_s=ttl_s,
        )

    return make


async def admit(tenancy: Tenancy) -> Ticket:
    ticket, _ = await tenancy.admit("t", "auto", False, [MODEL], (10, 10))
    return ticket


def settle(ticket: Ticket) -> None:
    ticket.settle("auto", MODEL, USAGE, COST)


def connected(store: Store) -> int:
    """The store's Redis connections still open."""
    assert store.redis is not None
    pool = store.redis.client.connection_pool
    return sum(c.is_connected for c in (*pool._available_connections, *pool._in_use_connections))


async def until_retired_closed(tenancy: Tenancy) -> float:
    """Seconds until no retired store is left (fails after ``DEADLINE_S``)."""
    start = time.monotonic()
    while tenancy._retired:
        assert time.monotonic() - start < DEADLINE_S, "the retired store was not closed"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def redis_hash(redis: redisproc.RedisProcess, *parts: str) -> dict[str, Any]:
    client = Redis.from_url(redis.url, decode_responses=True)
    try:
        return dict(await client.hgetall(":".join(("s", "{t}", *parts))))
    finally:
        await client.aclose()


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


async def test_a_retired_store_closes_once_its_last_ticket_settles(
    block: Block, redis: redisproc.RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "switchman.gateway.tenancy")
    tenancy = Tenancy(Metrics(), {})
    tenancy.configure(block(5.0))
    old = tenancy.store
    assert old is not None
    tickets = [await admit(tenancy) for _ in range(3)]
    tenancy.configure(block(4.0))  # a new redis block: the old store is retired
    assert tenancy.store is not old
    assert tenancy._retired == [old]
    settle(tickets[0])
    settle(tickets[1])
    await asyncio.sleep(0.3)
    assert tenancy._retired == [old]  # one ticket still open: it stays, syncing
    assert not old.closed
    assert old._sync is not None
    assert not old._sync.done()
    settle(tickets[2])
    assert await until_retired_closed(tenancy) < DEADLINE_S
    assert old.closed
    assert old._sync.done()
    assert connected(old) == 0
    # Its deltas reached Redis before shutdown, the bills settled after the reload included.
    row = await redis_hash(redis, "usage", today())
    assert row["auto|small|requests"] == "3"
    assert row["auto|small|cost"] == str(3 * 30_000)
    assert (await redis_hash(redis, "budget", "daily", today()))["spent"] == str(3 * 30_000)
    assert "retired tenancy store closed (drained)" in caplog.messages
    settle(await admit(tenancy))  # the new store goes on, and counts on top
    await tenancy.close()
    assert (await redis_hash(redis, "usage", today()))["auto|small|requests"] == "4"


async def test_a_strict_ticket_settled_after_a_reload_is_billed_once(
    block: Block, redis: redisproc.RedisProcess
) -> None:
    tenancy = Tenancy(Metrics(), {})
    tenancy.configure(block(0))  # strict: every admission and bill is a script in Redis
    old = tenancy.store
    assert old is not None
    assert old.shared is None
    ticket = await admit(tenancy)
    reserved = await redis_hash(redis, "budget", "daily", today())
    assert int(reserved["reserved"]) > 0
    tenancy.configure(block(0, timeout_s=0.5))
    settle(ticket)
    settle(ticket)  # a second call does nothing
    await until_retired_closed(tenancy)
    assert old.closed
    assert connected(old) == 0
    books = await redis_hash(redis, "budget", "daily", today())
    assert (int(books["spent"]), int(books["reserved"])) == (30_000, 0)
    row = await redis_hash(redis, "usage", today())
    assert (row["auto|small|requests"], row["auto|small|cost"]) == ("1", "30000")
    await tenancy.close()
    assert (await redis_hash(redis, "usage", today()))["auto|small|requests"] == "1"


async def test_a_ticket_open_past_the_ttl_no_longer_holds_the_store_and_bills_once(
    block: Block, redis: redisproc.RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "switchman.gateway.tenancy")
    tenancy = Tenancy(Metrics(), {})
    tenancy.configure(block(5.0, ttl_s=0.2))
    old = tenancy.store
    assert old is not None
    ticket = await admit(tenancy)
    tenancy.configure(block(4.0, ttl_s=0.2))
    new = tenancy.store
    assert new is not None
    assert new.shared is not None
    await until_retired_closed(tenancy)  # the ticket is still open
    assert old.closed
    assert connected(old) == 0
    assert "retired tenancy store closed (1 tickets still open past the reservation TTL)" in (
        caplog.messages
    )
    settle(ticket)  # late: a plain charge in the current store's books
    view = new.shared.views["t"]
    assert all(v == 0 for v in view.reserved.values())  # nothing released that it never held
    await tenancy.close()
    row = await redis_hash(redis, "usage", today())
    assert (row["auto|small|requests"], row["auto|small|cost"]) == ("1", "30000")
    assert (await redis_hash(redis, "budget", "daily", today()))["spent"] == "30000"


async def test_shutdown_right_after_a_reload_closes_everything(
    block: Block, redis: redisproc.RedisProcess
) -> None:
    tenancy = Tenancy(Metrics(), {})
    tenancy.configure(block(5.0))
    old = tenancy.store
    assert old is not None
    settle(await admit(tenancy))
    open_ticket = await admit(tenancy)
    tenancy.configure(block(4.0))
    new = tenancy.store
    assert new is not None
    settle(await admit(tenancy))
    gc.collect()  # what earlier tests left: only what this close leaves counts below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await tenancy.close()
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert old.closed
    assert new.closed
    assert tenancy._retired == []
    assert not tenancy._drains
    assert connected(old) == 0
    assert connected(new) == 0
    pending = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [name for name in pending if name.startswith(("tenancy", "redis"))]
    assert open_ticket.store is old
    assert old.open == 1
    assert (await redis_hash(redis, "usage", today()))["auto|small|requests"] == "2"
