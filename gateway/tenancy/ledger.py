"""The ledger's vocabulary, and the ledger one process keeps on its own.

A ledger answers two questions atomically: ``admit`` (take one request from the requests-per-
minute bucket, the token estimate from the tokens-per-minute bucket, and reserve the worst-case
cost against each budget period, all or nothing) and ``settle`` (release the reservation, add the
actual cost and usage, return unused tokens to the bucket). ``LocalLedger`` does it in this
process: the store without Redis, and the fallback when Redis is down and ``on_redis_down`` is
``open``. ``redisledger.RedisLedger`` does the same in Redis for every replica (strict mode,
``sync_s: 0``), and ``shared.SharedBooks`` in memory against Redis's state synced every
``sync_s``. All are used by ``store``; their semantics are the same so the tests of one hold for
the others. ``admit_now``/``settle_now`` are the same calls without an await.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

MINUTE_MS = 60_000
USAGE = ("cost", "requests", "input", "output", "saving")  # a usage record's counters, in order

BookKey = tuple[str, str]  # period kind, id
USAGE_KEEP_S = 400 * 86400  # how long a usage record is kept


@dataclass(slots=True, frozen=True)
class Period:
    """A budget period: ``daily``/``monthly``, its UTC id (``20261206``/``202612``), the hard
    limit in nano-dollars (0: none) and how long its record is kept; ``key`` is ``(kind, id)``."""

    kind: str
    id: str
    hard: int
    keep_s: int
    key: BookKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", (self.kind, self.id))


# Ask and Bill are built for every request: plain slots classes (a frozen dataclass's __init__
# costs about four times as much). Nothing changes them once built.


@dataclass(slots=True)
class Ask:
    """What admitting one request takes from its tenant."""

    tenant: str
    rpm: int  # 0: no request limit
    tpm: int  # 0: no token limit
    tokens: int  # the request's token estimate
    amount: int  # worst-case cost, nano-dollars
    periods: tuple[Period, ...]
    member: str  # this reservation's unique id
    ttl_ms: int  # released after this when never settled


@dataclass(slots=True)
class Grant:
    """The answer to an ``Ask``: admitted or why not, and the state for the response headers."""

    ok: bool
    reason: str  # "", "rpm", "tpm", or a period kind ("daily", "monthly")
    requests_left: int
    requests_reset_ms: int
    tokens_left: int
    tokens_reset_ms: int
    retry_ms: int
    used: tuple[int, ...]  # per period: spent + reserved, nano-dollars


def grant(
    reason: str, requests: float, rpm: int, tokens: float, tpm: int, retry: int, used: list[int]
) -> Grant:
    """The ``Grant`` of a verdict (``reason``, "" when admitted) from what is left in the
    tenant's buckets (``requests`` and ``tokens``, fractional, of caps ``rpm`` and ``tpm``)."""
    return Grant(
        not reason,
        reason,
        int(requests) if requests > 0 else 0,
        wait(rpm - requests, rpm),
        int(tokens) if tokens > 0 else 0,
        wait(tpm - tokens, tpm),
        retry,
        tuple(used),
    )


@dataclass(slots=True)
class Bill:
    """What settling one admitted request adds to its tenant's books."""

    ask: Ask
    route: str
    model: str
    actual: int  # nano-dollars
    tokens: int  # actual prompt + completion tokens
    input_tokens: int
    output_tokens: int
    saving: int  # nano-dollars against the route's priciest candidate
    day: str  # the usage record's UTC day
    keep_s: int = USAGE_KEEP_S


def refill(level: float, stamp_ms: int, now_ms: int, cap: int) -> float:
    """A token bucket of ``cap`` per minute, ``now_ms - stamp_ms`` after it held ``level``."""
    return min(float(cap), level + max(now_ms - stamp_ms, 0) * cap / MINUTE_MS)


@dataclass(slots=True)
class _Bucket:
    level: float
    stamp: int


@dataclass(slots=True)
class _Books:
    spent: int = 0
    reserved: int = 0


@dataclass(slots=True)
class LocalLedger:
    """The ledger in this process's memory (see the module docstring)."""

    clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)
    books: dict[str, dict[BookKey, _Books]] = field(default_factory=dict)  # per tenant
    reservations: dict[str, tuple[int, int, Ask]] = field(default_factory=dict)
    usage: dict[tuple[str, str, str, str], dict[str, int]] = field(default_factory=dict)
    soonest: float = float("inf")  # no reservation expires before this (a lower bound)

    async def admit(self, ask: Ask) -> Grant:
        return self.admit_now(ask)

    async def settle(self, bill: Bill) -> None:
        self.settle_now(bill)

    def admit_now(self, ask: Ask) -> Grant:
        now = self.clock_ms()
        if now >= self.soonest:
            self._expire(now)
        tenant, rpm, tpm, amount = ask.tenant, ask.rpm, ask.tpm, ask.amount
        requests = self._level(tenant, "rpm", rpm, now) if rpm else 0.0
        tokens = self._level(tenant, "tpm", tpm, now) if tpm else 0.0
        books = self._books(tenant, ask.periods)
        used = [b.spent + b.reserved for b in books]
        reason, retry = verdict(ask, requests, tokens, used)
        if not reason:
            if rpm:
                requests -= 1
                self._set(tenant, "rpm", requests, now)
            if tpm:
                tokens -= ask.tokens
                self._set(tenant, "tpm", tokens, now)
            if amount:
                for index, book in enumerate(books):
                    book.reserved += amount
                    used[index] += amount
                deadline = now + ask.ttl_ms
                self.reservations[ask.member] = (deadline, amount, ask)
                if deadline < self.soonest:
                    self.soonest = deadline
        return grant(reason, requests, rpm, tokens, tpm, retry, used)

    def settle_now(self, bill: Bill) -> None:
        ask = bill.ask
        held = self.reservations.pop(ask.member, None)
        actual = bill.actual
        for book in self._books(ask.tenant, ask.periods):
            if held is not None:
                book.reserved -= held[1]
            book.spent += actual
        tpm = ask.tpm
        if tpm:
            now = self.clock_ms()
            level = self._level(ask.tenant, "tpm", tpm, now) + ask.tokens - bill.tokens
            self._set(ask.tenant, "tpm", level if level < tpm else float(tpm), now)
        key = (bill.day, ask.tenant, bill.route, bill.model)
        row = self.usage.get(key)
        if row is None:
            row = self.usage[key] = {}
        for name, value in usage_fields(bill):
            row[name] = row.get(name, 0) + value

    async def ping(self) -> None:
        return None

    def _level(self, tenant: str, kind: str, cap: int, now: int) -> float:
        if not cap:
            return 0.0
        bucket = self.buckets.get((tenant, kind))
        if bucket is None:
            return float(cap)
        return refill(bucket.level, bucket.stamp, now, cap)

    def _books(self, tenant: str, periods: tuple[Period, ...]) -> list[_Books]:
        """The tenant's books of ``periods``, in their order (made when new)."""
        found = self.books.get(tenant)
        if found is None:
            found = self.books[tenant] = {}
        books = []
        for period in periods:
            book = found.get(period.key)
            if book is None:
                book = found[period.key] = _Books()
            books.append(book)
        return books

    def _set(self, tenant: str, kind: str, level: float, now: int) -> None:
        bucket = self.buckets.get((tenant, kind))
        if bucket is None:
            self.buckets[(tenant, kind)] = _Bucket(level, now)
        else:
            bucket.level, bucket.stamp = level, now

    def _expire(self, now: int) -> None:
        """Release the reservations past their deadline (``soonest`` has passed)."""
        soonest = float("inf")
        for member, (deadline, amount, ask) in list(self.reservations.items()):
            if deadline <= now:
                del self.reservations[member]
                for book in self._books(ask.tenant, ask.periods):
                    book.reserved -= amount
            else:
                soonest = min(soonest, deadline)
        self.soonest = soonest


def verdict(ask: Ask, requests: float, tokens: float, used: Sequence[int]) -> tuple[str, int]:
    """The admission rule of the in-memory ledgers (``LocalLedger``, ``shared.SharedBooks``; the
    Redis scripts apply it in Lua): why ``ask`` is refused (``rpm``, ``tpm`` or the kind of the
    first budget period it would pass) and the milliseconds a rate limit asks to wait, or
    ``("", 0)`` to admit it; ``requests`` and ``tokens`` are the buckets' levels now, ``used`` the
    spend plus reservations of each of its periods (in the order of ``ask.periods``)."""
    rpm, tpm = ask.rpm, ask.tpm
    if rpm and requests < 1:
        return "rpm", wait(1 - requests, rpm)
    if tpm:
        need = ask.tokens if ask.tokens < tpm else tpm
        if tokens < need:
            return "tpm", wait(need - tokens, tpm)
    amount = ask.amount
    for index, period in enumerate(ask.periods):
        if period.hard and used[index] + amount > period.hard:
            return period.kind, 0
    return "", 0


def wait(missing: float, cap: int) -> int:
    """Milliseconds until a bucket of ``cap`` per minute refills ``missing`` (0: no limit)."""
    if not cap or missing <= 0:
        return 0
    return int(-(-missing * MINUTE_MS // cap))  # at least 1: missing > 0


def usage_fields(bill: Bill) -> tuple[tuple[str, int], ...]:
    """The usage record's counters a bill adds to, in ``USAGE`` order (``RedisLedger`` writes
    the same; ``SharedBooks`` keeps the values in that order)."""
    return (
        ("cost", bill.actual),
        ("requests", 1),
        ("input", bill.input_tokens),
        ("output", bill.output_tokens),
        ("saving", bill.saving),
    )
