"""This process's view of the limits and budgets its replicas share, and what it owes Redis.

``SharedBooks`` admits and bills in memory, with ``LocalLedger``'s semantics (buckets per minute,
budgets reserved at the worst case and billed at the actual cost), and keeps per tenant what it
took since the last sync (``Delta``: requests and tokens taken, spend per budget period, usage
counters per day, route and model). ``syncer.Syncer`` cuts those deltas into numbered batches
(``cut``), sends them to Redis and hands the shared state back (``applied``): bucket levels and
the spend (plus any strict-mode reservations) per period, from which this process's view restarts,
minus what it took meanwhile. A batch Redis did not acknowledge stays in flight and is resent with
its number (Redis applies a number once per replica: exactly once); new deltas wait for the next.
A tenant is synced while it has deltas or was active within ``recent_ms`` (so a replica keeps
seeing what the others take). Used by ``store``; nothing here awaits.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from switchman.gateway.tenancy.ledger import (
    USAGE_KEEP_S,
    Ask,
    Bill,
    BookKey,
    Grant,
    Period,
    grant,
    verdict,
)

UsageKey = tuple[str, str, str]  # day, route, model

_NO_LIMIT = float("inf")


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


@dataclass(slots=True)
class Delta:
    """What one process took from a tenant since a point in time."""

    requests: int = 0
    tokens: int = 0  # taken at admission, less what settling gave back
    spent: dict[BookKey, int] = field(default_factory=dict)  # nano-dollars
    keep: dict[BookKey, int] = field(default_factory=dict)  # seconds the period's record is kept
    usage: dict[UsageKey, list[int]] = field(default_factory=dict)  # ledger.USAGE order
    usage_keep: dict[str, int] = field(default_factory=dict)  # per day

    def empty(self) -> bool:
        return not (self.requests or self.tokens or self.spent or self.usage)


@dataclass(slots=True)
class View:
    """One tenant: the shared state as last seen, this process's own takes, its batches.

    What admissions reserve and bills spend against ``periods`` (the same amount for each) is
    summed in ``reserving`` and ``spending`` and folded into ``reserved`` and ``pending.spent``
    by the next ``cut`` (``fold``), or before anything else changes those; ``base`` is each
    period's spend and reservations in the dicts (``used``) and ``room`` the least headroom
    under a hard limit, so admitting a request needs neither a dict nor a loop (``take``)."""

    rpm: int = 0
    tpm: int = 0
    requests: float | None = None  # bucket levels; None: full (never seen)
    tokens: float | None = None
    stamp: float = 0.0
    shared: dict[BookKey, int] = field(default_factory=dict)  # spent + reserved, all replicas
    reserved: dict[BookKey, int] = field(default_factory=dict)  # this process, in flight
    periods: tuple[Period, ...] = ()
    pending: Delta = field(default_factory=Delta)
    inflight: Delta | None = None
    seq: int = 0
    active: float = 0.0
    reserving: int = 0  # not yet in ``reserved``: per period of ``periods``
    spending: int = 0  # not yet in ``pending.spent``
    base: list[int] = field(default_factory=list)  # per period: ``used``, without the two above
    room: float = _NO_LIMIT  # min(hard - base) over the periods with a hard limit

    def used(self, key: BookKey) -> int:
        """A period's spend and reservations in the dicts (``fold`` first for all of them)."""
        own = self.pending.spent.get(key, 0) + self.reserved.get(key, 0)
        if self.inflight is not None:
            own += self.inflight.spent.get(key, 0)
        return self.shared.get(key, 0) + own

    def fold(self) -> None:
        """Move ``reserving`` and ``spending`` into the dicts (each period's use is the same)."""
        reserving, spending = self.reserving, self.spending
        if not (reserving or spending):
            return
        reserved, spent, keep = self.reserved, self.pending.spent, self.pending.keep
        for period in self.periods:
            key = period.key
            if reserving:
                reserved[key] = reserved.get(key, 0) + reserving
            if spending:
                spent[key] = spent.get(key, 0) + spending
                keep[key] = period.keep_s
        self.reserving = self.spending = 0
        self.rebase()

    def rebase(self) -> None:
        """``base`` and ``room`` again, after the dicts or ``periods`` changed."""
        self.base = base = [self.used(p.key) for p in self.periods]
        room: float = _NO_LIMIT
        for period, used in zip(self.periods, base, strict=True):
            if period.hard and period.hard - used < room:
                room = period.hard - used
        self.room = room

    def use(self) -> list[int]:
        """Each period's spend and reservations (``Grant.used``)."""
        own = self.reserving + self.spending
        return [used + own for used in self.base]


@dataclass(slots=True, frozen=True)
class Batch:
    """One tenant's part of a sync: its deltas (``seq`` 0: nothing new, a read) and caps."""

    tenant: str
    seq: int
    delta: Delta
    rpm: int
    tpm: int
    books: tuple[BookKey, ...]  # the periods whose shared spend comes back, in order
    keep: tuple[int, ...]


@dataclass(slots=True)
class SharedBooks:
    """Admission and billing in memory against the shared state (see the module docstring)."""

    recent_ms: float = 1000.0
    clock_ms: Callable[[], float] = monotonic_ms
    views: dict[str, View] = field(default_factory=dict)

    def take(self, ask: Ask) -> View | None:
        """Admit ``ask`` in the usual case: the tenant's view is on the ask's periods and caps,
        and the rule (``verdict``) admits it. Returns the view (its buckets' levels after the
        admission, ``use`` for the periods), or None, having taken nothing: ``admit_now``
        answers (the view's ``active`` is when this looked)."""
        view = self.views.get(ask.tenant)
        if view is None or view.periods is not ask.periods:
            return None
        rpm, tpm = ask.rpm, ask.tpm
        if rpm != view.rpm or tpm != view.tpm:
            return None
        view.active = now = self.clock_ms()
        elapsed = now - view.stamp if now > view.stamp else 0.0
        # ``level`` and ``verdict``'s admission written out: this is every admitted request's path.
        requests = tokens = 0.0
        if rpm:
            held = view.requests
            requests = float(rpm) if held is None else held + elapsed * rpm / 60_000
            if requests > rpm:
                requests = float(rpm)
            if requests < 1:
                return None
        if tpm:
            held = view.tokens
            tokens = float(tpm) if held is None else held + elapsed * tpm / 60_000
            if tokens > tpm:
                tokens = float(tpm)
            if tokens < (ask.tokens if ask.tokens < tpm else tpm):
                return None
        # Each period's use is ``base + reserving + spending``: under every hard limit at once.
        amount = ask.amount
        if view.reserving + view.spending + amount > view.room:
            return None
        view.stamp = now
        if rpm:
            view.requests = requests - 1
            view.pending.requests += 1
        else:
            view.requests = None
        if tpm:
            view.tokens = tokens - ask.tokens
            view.pending.tokens += ask.tokens
        else:
            view.tokens = None
        view.reserving += amount
        return view

    def admit_now(self, ask: Ask) -> Grant:
        view = self.views.get(ask.tenant)
        if view is None:
            view = self.views[ask.tenant] = View()
        if view.periods is not ask.periods or view.rpm != ask.rpm or view.tpm != ask.tpm:
            view.fold()  # what was reserved and spent until now, against the periods it was for
            view.rpm, view.tpm, view.periods = ask.rpm, ask.tpm, ask.periods
            view.rebase()
        rpm, tpm = ask.rpm, ask.tpm
        if self.take(ask) is not None:
            requests, tokens = view.requests or 0.0, view.tokens or 0.0
            return grant("", requests, rpm, tokens, tpm, 0, view.use())
        # Refused: why, from the levels ``take`` saw (the same arithmetic, at the same time).
        elapsed = view.active - view.stamp if view.active > view.stamp else 0.0
        requests = level(view.requests, rpm, elapsed)
        tokens = level(view.tokens, tpm, elapsed)
        used = view.use()
        reason, retry = verdict(ask, requests, tokens, used)
        assert reason, "take admits whatever verdict admits"
        return grant(reason, requests, rpm, tokens, tpm, retry, used)

    def settle_now(self, bill: Bill) -> None:
        self.give(
            bill.ask,
            bill.actual,
            bill.tokens,
            (bill.day, bill.route, bill.model),
            bill.input_tokens,
            bill.output_tokens,
            bill.saving,
            bill.keep_s,
        )

    def give(
        self,
        ask: Ask,
        actual: int,
        tokens: int,
        usage_key: UsageKey,
        input_tokens: int,
        output_tokens: int,
        saving: int,
        keep_s: int = USAGE_KEEP_S,
    ) -> None:
        """``settle_now`` of a ``Bill`` given as its parts (``Ticket.settle``: no Bill built)."""
        view = self.views.get(ask.tenant)
        if view is None:
            view = self.views[ask.tenant] = View(rpm=ask.rpm, tpm=ask.tpm, periods=ask.periods)
            view.rebase()
        pending = view.pending
        amount = ask.amount
        if ask.periods is view.periods:  # the usual case: summed, folded by the next ``cut``
            view.reserving -= amount
            view.spending += actual
        elif amount or actual:  # admitted against other periods (a day ago, another config)
            view.fold()
            reserved, spent, keep = view.reserved, pending.spent, pending.keep
            for period in ask.periods:
                key = period.key
                if amount:
                    reserved[key] = reserved.get(key, 0) - amount
                if actual:
                    spent[key] = spent.get(key, 0) + actual
                    keep[key] = period.keep_s
            view.rebase()
        back = ask.tokens - tokens
        if ask.tpm and back > 0:
            # Tokens given back: refilling first and adding after, both capped at the bucket,
            # is the same as adding now and refilling at the next look (the stamp stays).
            held = view.tokens
            if held is not None:
                held += back
                view.tokens = held if held < ask.tpm else float(ask.tpm)
            pending.tokens -= back
        elif ask.tpm and back:  # the usage took more than the estimate: take it now
            now = self.clock_ms()
            elapsed = now - view.stamp if now > view.stamp else 0.0
            if view.rpm:
                view.requests = level(view.requests, view.rpm, elapsed)
            view.tokens = min(level(view.tokens, view.tpm, elapsed) + back, float(ask.tpm))
            view.stamp = now
            pending.tokens -= back
        row = pending.usage.get(usage_key)
        if row is None:  # ledger.USAGE's order
            values = [actual, 1, input_tokens, output_tokens, saving]
            pending.usage[usage_key] = values
            pending.usage_keep[usage_key[0]] = keep_s
        else:
            row[0] += actual
            row[1] += 1
            row[2] += input_tokens
            row[3] += output_tokens
            row[4] += saving

    def cut(self) -> list[Batch]:
        """The batches of the next sync: a tenant's unacknowledged batch again, else its pending
        deltas under a new number, else (recently active) a read."""
        now = self.clock_ms()
        batches: list[Batch] = []
        for tenant, view in self.views.items():
            view.fold()
            if view.inflight is None and not view.pending.empty():
                view.inflight, view.pending = view.pending, Delta()
                view.seq += 1
            if view.inflight is None and now - view.active > self.recent_ms:
                continue
            delta = view.inflight if view.inflight is not None else Delta()
            books = {p.key: p.keep_s for p in view.periods}
            for key, keep in delta.keep.items():
                books.setdefault(key, keep)
            batches.append(
                Batch(
                    tenant,
                    view.seq if view.inflight is not None else 0,
                    delta,
                    view.rpm,
                    view.tpm,
                    tuple(books),
                    tuple(books.values()),
                )
            )
        return batches

    def applied(self, batch: Batch, levels: tuple[float, float], spent: tuple[int, ...]) -> None:
        """Redis applied ``batch`` (or had already) and answered the shared state."""
        view = self.views[batch.tenant]
        if batch.seq and batch.seq == view.seq:
            view.inflight = None
        now = self.clock_ms()
        pending = view.pending
        if view.rpm:
            view.requests = min(levels[0], float(view.rpm)) - pending.requests
        if view.tpm:
            view.tokens = min(levels[1], float(view.tpm)) - pending.tokens
        view.stamp = now
        for key, value in zip(batch.books, spent, strict=True):
            view.shared[key] = value
        current = {p.key for p in view.periods}
        for key in [k for k in view.shared if k not in current]:
            del view.shared[key]  # a period that ended
        for key in [k for k, v in view.reserved.items() if not v and k not in current]:
            del view.reserved[key]
        view.rebase()

    def owed(self) -> bool:
        """Whether any tenant has deltas Redis has not acknowledged."""
        return any(
            v.inflight is not None or v.spending or not v.pending.empty()
            for v in self.views.values()
        )

    def adopt(self, other: SharedBooks) -> None:
        """Start from another store's view of the shared state (a reload), not its deltas: those
        are flushed by that store."""
        for tenant, old in other.views.items():
            old.fold()
            view = self.views[tenant] = View(
                rpm=old.rpm,
                tpm=old.tpm,
                requests=old.requests,
                tokens=old.tokens,
                stamp=old.stamp,
                shared={p.key: old.used(p.key) for p in old.periods},
                periods=old.periods,
                active=old.active,
            )
            view.rebase()


def level(held: float | None, cap: int, elapsed: float) -> float:
    """A bucket of ``cap`` per minute ``elapsed`` ms after it held ``held`` (None: full; no cap:
    0)."""
    if not cap:
        return 0.0
    if held is None:
        return float(cap)
    return min(float(cap), held + elapsed * cap / 60_000)
