"""Admission and billing of one tenant's request: the request path's two tenancy hooks.

``Tenancy`` is the per-process state (the key ring, the store, the settle tasks of strict mode),
rebuilt from the current config's ``tenancy`` block when it changes. ``gate`` asks it who a key
belongs to; ``serve.proxy`` calls ``admit`` once a request is planned (the tenant may use the
route and the models; its buckets and budgets take the request, all or nothing, else a 429 with
``Retry-After``) and hands the returned ``Ticket`` to the request's ``Observation``, whose
``finish`` (the one place a request is accounted) bills it once: ``Ticket.settle`` with the
actual cost of the response that reached the client, streams and continued streams included.
Failed attempts, retries and shadows never reach a ticket. With this process's own books (no
Redis, or Redis synced every ``sync_s``) admission and billing are plain calls; in strict mode
(``sync_s: 0``) admission awaits Redis and the bill is written by a background task. A store
a reload replaces is retired: the tickets it admitted settle there, then it closes (``_drain``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from switchman.api.gatewayconfig import Model
from switchman.api.tenancy import Tenancy as TenancySettings
from switchman.api.tenancy import Tenant
from switchman.gateway.errors import Forbidden
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.telemetry.series import CounterChild
from switchman.gateway.tenancy import pricing
from switchman.gateway.tenancy.keys import KeyRing
from switchman.gateway.tenancy.ledger import Ask, Bill, Period
from switchman.gateway.tenancy.limits import GrantHeaders, limits_end, periods, refusal
from switchman.gateway.tenancy.store import Ledger, Store

log = logging.getLogger("switchman.gateway.tenancy")


class Books(Protocol):
    """Books that bill without awaiting (``LocalLedger``, ``SharedBooks``)."""

    def settle_now(self, bill: Bill) -> None: ...


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(slots=True)
class Terms:
    """What admitting a tenant's requests needs that is fixed until its UTC day ends or the
    config changes: its caps, today's and this month's periods, its headers."""

    until: float  # time.time() when the periods end
    rpm: int  # 0: no limit
    tpm: int
    periods: tuple[Period, ...]
    headers: GrantHeaders
    open: bool  # no route nor model restriction: every candidate is allowed


@dataclass(slots=True)
class Ticket(Ask):
    """An admitted request: the ``Ask`` it reserved (one object, not two: it lives as long as
    the request, and each such object is one more for the garbage collector to visit), and how
    to bill it once."""

    tenancy: Tenancy
    store: Store  # the store that admitted it: kept open until its tickets settle
    # The route's candidates (the plan's list, which nothing changes): the saving is against the
    # priciest.
    prices: Sequence[Model]
    headers: Mapping[str, str]  # the admitted request's (``GrantHeaders``), once admitted
    ledger: Ledger | None = None  # strict mode: billed in Redis by a background task
    books: Books | None = None  # else: billed in this process's books
    settled: bool = False

    @property
    def ask(self) -> Ask:
        return self

    def settle(self, route: str, model: Model | None, usage: Usage | None, cost: float) -> None:
        """Bill the response (once; later calls do nothing); ``cost`` is what ``model`` charged
        for ``usage`` (``pricing.cost``)."""
        if self.settled:
            return
        self.settled = True
        actual = pricing.nanos(cost)
        name = model.name if model is not None else "none"
        if usage is None:
            if model is not None:
                actual = self.amount  # served, but no usage came back: bill the reservation
            prompt = completion = saving = 0
        else:
            worst = 0.0  # what the route's priciest candidate would have cost
            for candidate in self.prices:
                # The served model's cost is known (``cost``): the others are priced here.
                price = cost if candidate is model else pricing.usage_cost(candidate.price, usage)
                if price > worst:
                    worst = price
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
            # ``actual`` is ``nanos(cost)``: nothing saved unless a candidate costs more.
            saving = pricing.nanos(worst) - actual if worst > cost else 0
        if actual:
            tenancy = self.tenancy
            counter = tenancy._spend.get((self.tenant, route, name))
            if counter is None:
                counter = tenancy.spend(self.tenant, route, name)
            counter.inc(actual / pricing.NANOS_PER_USD)
        store, books = self.store, self.books
        # The usage record's day is the daily period's id: the admission's UTC day.
        day = self.periods[0].id
        shared = store.shared
        if books is shared and shared is not None and not store.closed:
            # The synced books (the usual case): the bill's parts, no ``Bill`` built.
            tokens = prompt + completion
            shared.give(self, actual, tokens, (day, route, name), prompt, completion, saving)
            store.open -= 1
            if store.drained is not None:  # retired: ``release`` without a call on the hot path
                store.release(0)
            return
        bill = Bill(self, route, name, actual, prompt + completion, prompt, completion, saving, day)
        if store.closed:  # retired, and closed once its reservations had expired
            self.tenancy.late(self, bill)
        elif books is not None:
            books.settle_now(bill)
            store.open -= 1
            if store.drained is not None:
                store.release(0)
        else:
            assert self.ledger is not None
            self.tenancy.bill(store, self.ledger, bill)


def estimate(
    settings: TenancySettings, route: str, body: Mapping[str, Any], size: int, generates: bool
) -> tuple[int, int]:
    """Prompt and completion tokens a request may use at most: the body's bytes / 4, and its
    ``max_tokens`` (else the route's or the tenancy's default; 0 for embeddings)."""
    prompt = -(-size // pricing.BYTES_PER_TOKEN)  # ``pricing.prompt_tokens`` without a call
    if not generates:
        return prompt, 0
    default = settings.route_max_tokens.get(route, settings.default_max_tokens)
    return prompt, pricing.max_tokens(body, default)


class Tenancy:
    """Per-process tenancy state for the config's current ``tenancy`` block."""

    def __init__(
        self,
        metrics: Metrics,
        environ: Mapping[str, str],
        wall: Callable[[], float] = time.time,  # seconds since the epoch: the budget periods
    ) -> None:
        self.metrics = metrics
        self.environ = environ
        self.wall = wall
        self.settings: TenancySettings | None = None
        self.keys: KeyRing | None = None
        self.store: Store | None = None
        self.tenants: dict[str, Tenant] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._retired: list[Store] = []  # replaced by a reload: closed once drained
        self._drains: set[asyncio.Task[None]] = set()
        self._terms: dict[str, Terms] = {}  # per tenant
        self._spend: dict[tuple[str, str, str], CounterChild] = {}  # (tenant, route, model)
        self._ttl_ms = 0
        self._member = uuid.uuid4().hex[:12] + "-"
        self._serial = itertools.count()

    def configure(self, settings: TenancySettings | None) -> None:
        """Follow the config: rebuilt only when the ``tenancy`` block changed."""
        if settings is self.settings or settings == self.settings:
            self.settings = settings
            return
        old = self.settings
        self.settings = settings
        ttl_s = self._ttl_ms / 1000  # the retired store's tickets reserved with this TTL
        if settings is None:
            self.keys, self.tenants = None, {}
            if self.store is not None:
                self._retire(self.store, ttl_s)
                self.store = None
            return
        self.tenants = {t.name: t for t in settings.tenants}
        self._terms = {}
        self._ttl_ms = int(settings.reservation_ttl_s * 1000)
        if self.keys is None or old is None or old.keys_file != settings.keys_file:
            self.keys = KeyRing(settings.keys_file)
        if (
            old is None
            or old.redis != settings.redis
            or old.on_redis_down != settings.on_redis_down
        ):
            previous = self.store
            self.store = Store(settings.redis, settings.on_redis_down, self.metrics, self.environ)
            if previous is not None:
                # Reservations already made there are settled there (a retired store keeps
                # syncing its deltas until ``close``): keep its local books, start from its view.
                self.store.local = previous.local
                if self.store.shared is not None and previous.shared is not None:
                    self.store.shared.adopt(previous.shared)
                self._retire(previous, ttl_s)

    def bearer(self, authorization: str | None) -> str | None:
        """The tenant of a known key by the ``Authorization`` value it came in before
        (``KeyRing.bearer``), else None: ``tenant_of`` answers."""
        assert self.keys is not None
        tenant = self.keys.bearer(authorization)
        return tenant if tenant is not None and tenant in self.tenants else None

    def remember(self, authorization: str, key: str) -> None:
        assert self.keys is not None
        self.keys.remember(authorization, key)

    def tenant_of(self, key: str) -> str | None:
        assert self.keys is not None
        tenant = self.keys.lookup(key)
        return tenant if tenant in self.tenants else None

    async def admit(
        self,
        tenant_name: str,
        route: str,
        direct: bool,
        candidates: list[Model],
        estimate: tuple[int, int],
    ) -> tuple[Ticket, list[Model]]:
        """Admit one request or raise ``Forbidden``/``LimitExceeded``; returns the ticket and the
        candidates the tenant may be served by (``estimate``: prompt and completion tokens)."""
        store = self.store
        assert store is not None
        terms = self._terms.get(tenant_name)
        if terms is None or self.wall() >= terms.until:
            terms = self._terms_of(self.tenants[tenant_name])
        allowed = candidates
        if not terms.open:
            allowed = self._allowed(self.tenants[tenant_name], route, direct, candidates)
        prompt, completion = estimate
        ticket = Ticket(
            tenant_name,
            terms.rpm,
            terms.tpm,
            prompt + completion,
            pricing.nanos(pricing.worst_case(allowed, prompt, completion)),
            terms.periods,
            # The reservation's id: the local and strict ledgers release it by id; the synced
            # books keep reservations as sums and never read it.
            "" if store.shared is not None else self._member + str(next(self._serial)),
            self._ttl_ms,
            self,
            store,
            candidates,
            _NO_HEADERS,
        )
        store.open += 1  # before the await: a reload meanwhile must not close it under us
        try:
            view = store.take(ticket)
            if view is None:
                answer = store.admit_now(ticket)
                if answer is None:
                    grant, ticket.ledger = await store.admit(ticket)
                else:
                    grant, ticket.books = answer
        except Exception:
            store.release()
            self.metrics.tenant_rejections.labels(tenant_name, "store_down").inc()
            raise
        if view is not None:  # the synced books' usual case: the levels, no Grant built
            ticket.books = store.shared
            ticket.headers = terms.headers.admitted(
                view.requests, view.tokens, view.base, view.reserving + view.spending
            )
            return ticket, allowed
        if not grant.ok:
            store.release()
            self.metrics.tenant_rejections.labels(tenant_name, grant.reason).inc()
            raise refusal(self.tenants[tenant_name], ticket, grant, datetime.now(UTC))
        ticket.headers = terms.headers.render(grant)
        return ticket, allowed

    def bill(self, store: Store, ledger: Ledger, bill: Bill) -> None:
        """Write a strict-mode bill of a ticket ``store`` admitted in the background."""
        task = asyncio.create_task(_settle(store, ledger, bill), name="tenancy-settle")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def late(self, ticket: Ticket, bill: Bill) -> None:
        """Bill a ticket whose retired store closed first (its reservation had expired: see
        ``_drain``): in the local books it reserved in (every store shares them), else as a plain
        charge (nothing reserved, no tokens back) in the current store."""
        old = ticket.store
        if ticket.books is old.local or ticket.ledger is old.local:
            old.local.settle_now(bill)
            return
        store = self.store
        if store is None:
            log.warning("a bill of tenant %s settled after tenancy was removed", ticket.tenant)
            return
        ask = dataclasses.replace(bill.ask, tokens=bill.tokens, amount=0)
        bill = dataclasses.replace(bill, ask=ask)
        if store.shared is not None:
            store.shared.settle_now(bill)
        elif store.redis is None:
            store.local.settle_now(bill)
        else:
            store.open += 1
            self.bill(store, store.redis if store.up else store.local, bill)

    def spend(self, tenant: str, route: str, model: str) -> CounterChild:
        """The tenant's spend counter for a route and model (kept: one lookup per bill)."""
        child = self._spend.get((tenant, route, model))
        if child is None:
            child = self._spend[(tenant, route, model)] = self.metrics.tenant_spend.labels(
                tenant, route, model
            )
        return child

    def _terms_of(self, tenant: Tenant) -> Terms:
        """The tenant's ``Terms``, computed once a day (and again after a config change)."""
        now = self.wall()
        terms = self._terms.get(tenant.name)
        if terms is not None and now < terms.until:
            return terms
        today = datetime.fromtimestamp(now, UTC)
        found = periods(tenant, today)
        rpm = tenant.limits.requests_per_minute or 0
        tpm = tenant.limits.tokens_per_minute or 0
        headers = GrantHeaders(tenant, rpm, tpm, [p.kind for p in found])
        unrestricted = tenant.routes is None and tenant.models is None
        terms = Terms(limits_end(today)[0].timestamp(), rpm, tpm, found, headers, unrestricted)
        self._terms[tenant.name] = terms
        return terms

    def status(self) -> dict[str, object] | None:
        if self.settings is None or self.keys is None or self.store is None:
            return None
        return {
            "tenants": len(self.tenants),
            "keys": self.keys.count,
            "keys_file": str(self.keys.path),
            "keys_error": self.keys.last_error,
            **self.store.status(),
        }

    async def close(self) -> None:
        """Wait for bills still being written, then close the stores (retired ones not yet
        drained too)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=5)
        for task in self._drains:
            task.cancel()
        await asyncio.gather(*self._drains, return_exceptions=True)
        for store in [*self._retired, *([self.store] if self.store else [])]:
            await store.close()
        self._retired = []

    def _allowed(
        self, tenant: Tenant, route: str, direct: bool, candidates: list[Model]
    ) -> list[Model]:
        if direct:  # a model named directly: listed, or nothing is restricted at all
            names = tenant.models if tenant.models is not None or tenant.routes is None else []
        else:
            names = tenant.routes
        if names is not None and route not in names:
            self.metrics.tenant_rejections.labels(tenant.name, "forbidden").inc()
            kind = "model" if direct else "route"
            raise Forbidden(f"tenant '{tenant.name}' may not use the {kind} '{route}'")
        if tenant.models is None:
            return candidates
        allowed = [m for m in candidates if m.name in tenant.models]
        if not allowed:
            self.metrics.tenant_rejections.labels(tenant.name, "forbidden").inc()
            raise Forbidden(f"tenant '{tenant.name}' may use none of the models behind '{route}'")
        return allowed

    def _retire(self, store: Store, ttl_s: float) -> None:
        """Keep ``store`` until its tickets settle, then close it (``_drain``); without a running
        loop (never on a reload) ``close`` does."""
        self._retired.append(store)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        task = asyncio.create_task(self._drain(store, ttl_s), name="tenancy-retire")
        self._drains.add(task)
        task.add_done_callback(self._drains.discard)

    async def _drain(self, store: Store, ttl_s: float) -> None:
        """Close a retired store once no ticket it admitted is open, or once their reservations
        have expired (``ttl_s`` after retirement: later bills go to ``late``); ``close`` sends
        its last deltas."""
        store.drained = asyncio.Event()
        if store.open > 0:
            try:
                async with asyncio.timeout(ttl_s):
                    await store.drained.wait()
            except TimeoutError:
                pass
        left = store.open
        await store.close()
        self._retired.remove(store)
        log.info(
            "retired tenancy store closed (%s)",
            f"{left} tickets still open past the reservation TTL" if left else "drained",
        )


async def _settle(store: Store, ledger: Ledger, bill: Bill) -> None:
    try:
        await store.settle(ledger, bill)
    finally:
        store.release()
