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

from switchman.gateway.tenancy.ledger import Ask, Bill, Grant, Period, usage_fields

BookKey = tuple[str, str]  # period kind, id
UsageKey = tuple[str, str, str]  # day, route, model


def monotonic_ms() -> float:
    return time.monotonic() * 1000.0


@dataclass(slots=True)
class Delta:
    """What one process took from a tenant since a point in time."""

    requests: int = 0
    tokens: int = 0  # taken at admission, less what settling gave back
    spent: dict[BookKey, int] = field(default_factory=dict)  # nano-dollars
    keep: dict[BookKey, int] = field(default_factory=dict)  # seconds the period's record is kept
    usage: dict[UsageKey, list[int]] = field(default_factory=dict)  # usage_fields order
    usage_keep: dict[str, int] = field(default_factory=dict)  # per day

    def empty(self) -> bool:
        return not (self.requests or self.tokens or self.spent or self.usage)


@dataclass(slots=True)
class View:
    """One tenant: the shared state as last seen, this process's own takes, its batches."""

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

    def level(self, kind: str, now: float) -> float:
        cap = self.rpm if kind == "rpm" else self.tpm
        held = self.requests if kind == "rpm" else self.tokens
        if not cap:
            return 0.0
        if held is None:
            return float(cap)
        return min(float(cap), held + max(now - self.stamp, 0.0) * cap / 60_000)

    def used(self, key: BookKey) -> int:
        own = self.pending.spent.get(key, 0) + self.reserved.get(key, 0)
        if self.inflight is not None:
            own += self.inflight.spent.get(key, 0)
        return self.shared.get(key, 0) + own


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

    def admit_now(self, ask: Ask) -> Grant:
        now = self.clock_ms()
        view = self.views.get(ask.tenant)
        if view is None:
            view = self.views[ask.tenant] = View()
        view.rpm, view.tpm, view.periods, view.active = ask.rpm, ask.tpm, ask.periods, now
        requests = view.level("rpm", now)
        tokens = view.level("tpm", now)
        keys = [(p.kind, p.id) for p in ask.periods]
        used = [view.used(k) for k in keys]
        reason, retry = "", 0
        if ask.rpm and requests < 1:
            reason, retry = "rpm", wait(1 - requests, ask.rpm)
        elif ask.tpm and tokens < min(ask.tokens, ask.tpm):
            reason, retry = "tpm", wait(min(ask.tokens, ask.tpm) - tokens, ask.tpm)
        else:
            for period, spent in zip(ask.periods, used, strict=True):
                if period.hard and spent + ask.amount > period.hard:
                    reason = period.kind
                    break
        if not reason:
            view.stamp = now
            view.requests = requests if ask.rpm else None
            view.tokens = tokens if ask.tpm else None
            if ask.rpm:
                view.requests = requests = requests - 1
                view.pending.requests += 1
            if ask.tpm:
                view.tokens = tokens = tokens - ask.tokens
                view.pending.tokens += ask.tokens
            if ask.amount:
                for key in keys:
                    view.reserved[key] = view.reserved.get(key, 0) + ask.amount
                used = [u + ask.amount for u in used]
        return Grant(
            ok=not reason,
            reason=reason,
            requests_left=max(int(requests), 0),
            requests_reset_ms=wait(ask.rpm - requests, ask.rpm),
            tokens_left=max(int(tokens), 0),
            tokens_reset_ms=wait(ask.tpm - tokens, ask.tpm),
            retry_ms=retry,
            used=tuple(used),
        )

    def settle_now(self, bill: Bill) -> None:
        ask = bill.ask
        view = self.views.get(ask.tenant)
        if view is None:
            view = self.views[ask.tenant] = View(rpm=ask.rpm, tpm=ask.tpm, periods=ask.periods)
        pending = view.pending
        for period in ask.periods:
            key = (period.kind, period.id)
            if ask.amount:
                view.reserved[key] = view.reserved.get(key, 0) - ask.amount
            if bill.actual:
                pending.spent[key] = pending.spent.get(key, 0) + bill.actual
                pending.keep[key] = period.keep_s
        back = ask.tokens - bill.tokens
        if ask.tpm and back:
            now = self.clock_ms()
            view.requests = view.level("rpm", now) if view.rpm else view.requests
            view.tokens = min(view.level("tpm", now) + back, float(ask.tpm))
            view.stamp = now
            pending.tokens -= back
        row = pending.usage.get((bill.day, bill.route, bill.model))
        if row is None:
            row = pending.usage[(bill.day, bill.route, bill.model)] = [0] * 5
            pending.usage_keep[bill.day] = bill.keep_s
        for i, (_, value) in enumerate(usage_fields(bill)):
            row[i] += value

    def cut(self) -> list[Batch]:
        """The batches of the next sync: a tenant's unacknowledged batch again, else its pending
        deltas under a new number, else (recently active) a read."""
        now = self.clock_ms()
        batches: list[Batch] = []
        for tenant, view in self.views.items():
            if view.inflight is None and not view.pending.empty():
                view.inflight, view.pending = view.pending, Delta()
                view.seq += 1
            if view.inflight is None and now - view.active > self.recent_ms:
                continue
            delta = view.inflight if view.inflight is not None else Delta()
            books = {(p.kind, p.id): p.keep_s for p in view.periods}
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
        current = {(p.kind, p.id) for p in view.periods}
        for key in [k for k in view.shared if k not in current]:
            del view.shared[key]  # a period that ended
        for key in [k for k, v in view.reserved.items() if not v and k not in current]:
            del view.reserved[key]

    def owed(self) -> bool:
        """Whether any tenant has deltas Redis has not acknowledged."""
        return any(v.inflight is not None or not v.pending.empty() for v in self.views.values())

    def adopt(self, other: SharedBooks) -> None:
        """Start from another store's view of the shared state (a reload), not its deltas: those
        are flushed by that store."""
        for tenant, old in other.views.items():
            self.views[tenant] = View(
                rpm=old.rpm,
                tpm=old.tpm,
                requests=old.requests,
                tokens=old.tokens,
                stamp=old.stamp,
                shared={(p.kind, p.id): old.used((p.kind, p.id)) for p in old.periods},
                periods=old.periods,
                active=old.active,
            )


def wait(missing: float, cap: int) -> int:
    """Milliseconds until a bucket of ``cap`` per minute refills ``missing`` (0: no limit)."""
    if not cap or missing <= 0:
        return 0
    return max(int(-(-missing * 60_000 // cap)), 0)
