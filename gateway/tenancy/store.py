"""Which ledger answers: this process's books synced with Redis, Redis per request, or none.

Without ``redis`` the process's ``LocalLedger`` answers alone. With it, and ``sync_s`` above 0
(the default), ``SharedBooks`` admits and bills in memory and a background task (``syncer``)
exchanges the deltas with Redis every ``sync_s``; nothing on the request path awaits Redis. When
a sync fails (connection refused, timeout) Redis is marked down, logged once per outage, counted
in ``switchman_tenancy_store_errors_total`` (operation ``sync``) and shown in ``/readyz``; the
deltas are kept and sent when it answers again (exactly once: see ``syncer``). Meanwhile
``on_redis_down: open`` goes on counting in this process, and ``closed`` refuses with a 503 once
the last successful sync is older than ``stale_s`` (ten intervals, at least twice the command
timeout). ``close`` flushes the last deltas.

With ``sync_s: 0`` (strict) each admission and each bill is a script in Redis (``redisledger``):
when a command fails Redis is marked down the same way and, until a probe (every second) finds it
back, admissions go to the ``LocalLedger`` (``open``) or are refused with a 503 (``closed``)
without waiting on Redis again; a request is settled in the ledger that admitted it. Used by
``admission``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from switchman.api.tenancy import Redis as RedisSettings
from switchman.gateway.errors import LimitsUnavailable
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy.ledger import Ask, Bill, Grant, LocalLedger
from switchman.gateway.tenancy.redisledger import RedisLedger
from switchman.gateway.tenancy.shared import SharedBooks, View
from switchman.gateway.tenancy.syncer import Syncer

log = logging.getLogger("switchman.gateway.tenancy.store")

PROBE_EVERY_S = 1.0
FLUSH_TRIES = 3


class Ledger(Protocol):
    async def admit(self, ask: Ask) -> Grant: ...
    async def settle(self, bill: Bill) -> None: ...
    async def ping(self) -> None: ...


def password(settings: RedisSettings, environ: Mapping[str, str]) -> str | None:
    if settings.password_env is not None:
        return environ.get(settings.password_env)
    if settings.password_file is not None:
        try:
            return Path(settings.password_file).read_text().strip()
        except OSError as exc:
            log.error("redis password file %s: %s", settings.password_file, exc.strerror)
    return None


class Store:
    """The ledgers of one tenancy config (see the module docstring)."""

    def __init__(
        self,
        settings: RedisSettings | None,
        on_down: str,
        metrics: Metrics,
        environ: Mapping[str, str],
        local: LocalLedger | None = None,
    ) -> None:
        self.settings = settings
        self.on_down = on_down
        self.metrics = metrics
        self.local = local or LocalLedger()
        self.redis: RedisLedger | None = None
        self.shared: SharedBooks | None = None
        self.syncer: Syncer | None = None
        self.up = True
        self.last_error: str | None = None
        self.last_sync = time.monotonic()
        self.stale_s = 0.0
        self.open = 0  # tickets admitted here and not yet settled (``admission``)
        self.closed = False
        self.drained: asyncio.Event | None = None  # set when ``open`` drops to 0 (once retired)
        self._probe: asyncio.Task[None] | None = None
        self._sync: asyncio.Task[None] | None = None
        if settings is not None:
            client = Redis.from_url(
                settings.url,
                password=password(settings, environ),
                socket_timeout=settings.timeout_s,
                socket_connect_timeout=settings.timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            self.redis = RedisLedger(client, settings.prefix)
            metrics.tenancy_store_up.set(1)
            if settings.sync_s > 0:
                self.shared = SharedBooks(recent_ms=max(1000.0, 20_000 * settings.sync_s))
                replica = uuid.uuid4().hex[:16]
                self.syncer = Syncer(client, settings.prefix, replica, self.shared)
                self.stale_s = max(10 * settings.sync_s, 2 * settings.timeout_s)
                self._start_sync()

    def take(self, ask: Ask) -> View | None:
        """``SharedBooks.take`` (the synced books' usual admission: no ``Grant`` built), or None:
        ``admit_now`` answers."""
        shared = self.shared
        if shared is None:
            return None
        if self._sync is None or self.on_down == "closed":
            self._synced()
        return shared.take(ask)

    def admit_now(self, ask: Ask) -> tuple[Grant, SharedBooks | LocalLedger] | None:
        """Admit without awaiting (this process's books), or None: ask Redis (strict mode)."""
        if self.shared is None:
            return None if self.redis is not None else (self.local.admit_now(ask), self.local)
        self._synced()
        return self.shared.admit_now(ask), self.shared

    def _synced(self) -> None:
        """Before the synced books admit: the sync runs, and ``on_redis_down: closed`` refuses
        once the last sync is older than ``stale_s``."""
        if self._sync is None:
            self._start_sync()
        if self.on_down == "closed" and time.monotonic() - self.last_sync > self.stale_s:
            raise LimitsUnavailable(
                "the gateway cannot reach its limits store and is configured to refuse requests "
                "until it can; try again shortly"
            )

    async def admit(self, ask: Ask) -> tuple[Grant, Ledger]:
        if self.redis is not None and self.up:
            try:
                return await self.redis.admit(ask), self.redis
            except (RedisError, OSError) as exc:
                self._down("admit", exc)
        if self.redis is not None and self.on_down == "closed":
            raise LimitsUnavailable(
                "the gateway cannot reach its limits store and is configured to refuse requests "
                "until it can; try again shortly"
            )
        return await self.local.admit(ask), self.local

    async def settle(self, ledger: Ledger, bill: Bill) -> None:
        try:
            await ledger.settle(bill)
        except (RedisError, OSError) as exc:
            self._down("settle", exc)
            # Counted here at least, so this replica's own limits see the spend.
            await self.local.settle(bill)

    def release(self, tickets: int = 1) -> None:
        """``tickets`` admitted here settled (or were refused)."""
        self.open -= tickets
        if not self.open and self.drained is not None:
            self.drained.set()

    def status(self) -> dict[str, object]:
        if self.redis is None:
            return {"store": "local"}
        synced = self.settings is not None and self.shared is not None
        return {
            "store": "redis",
            "mode": "synced" if synced else "strict",
            "sync_s": self.settings.sync_s if self.settings is not None else 0,
            "redis": "up" if self.up else "unreachable",
            "on_redis_down": self.on_down,
            "last_error": self.last_error,
        }

    async def close(self) -> None:
        """Stop the probe and the sync, send the last deltas (a few tries), close Redis."""
        self.closed = True
        for task in (self._probe, self._sync):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self.shared is not None:
            for _ in range(FLUSH_TRIES):
                if not self.shared.owed() or not await self.sync():
                    break
            if self.shared.owed():
                log.error("tenancy deltas not sent to redis at shutdown (it did not answer)")
        if self.redis is not None:
            await self.redis.client.aclose()

    async def sync(self) -> bool:
        """One sync with Redis (see ``syncer``); whether it answered."""
        assert self.syncer is not None
        try:
            await self.syncer.sync()
        except (RedisError, OSError) as exc:
            self._down("sync", exc)
            return False
        self.last_sync = time.monotonic()
        if not self.up:
            self._back()
        return True

    def _start_sync(self) -> None:
        """Sync from now on (idle: a PING each interval, so ``/readyz`` stays right); later, on
        first use, when built outside the event loop."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._sync = asyncio.create_task(self._sync_forever(), name="tenancy-sync")

    async def _sync_forever(self) -> None:
        assert self.settings is not None
        while True:
            await asyncio.sleep(self.settings.sync_s)
            try:
                await self.sync()
            except Exception:  # a bug must not end the syncing for good
                log.exception("tenancy sync failed")

    def _down(self, operation: str, exc: BaseException) -> None:
        self.metrics.tenancy_store_errors.labels(operation).inc()
        self.last_error = f"{operation}: {type(exc).__name__}"
        if self.up:
            self.up = False
            self.metrics.tenancy_store_up.set(0)
            log.error(
                "redis unreachable (%s: %s); %s until it answers",
                operation,
                type(exc).__name__,
                "counting limits in this process"
                if self.on_down == "open"
                else "refusing requests (on_redis_down: closed)",
            )
        probing = self._probe is not None and not self._probe.done()
        if self.shared is None and not probing and not self.closed:
            self._probe = asyncio.create_task(self._wait_for_redis(), name="redis-probe")

    def _back(self) -> None:
        self.up = True
        self.metrics.tenancy_store_up.set(1)
        log.warning("redis reachable again; shared limits resume")

    async def _wait_for_redis(self) -> None:
        assert self.redis is not None
        while True:
            await asyncio.sleep(PROBE_EVERY_S)
            try:
                await self.redis.ping()
            except (RedisError, OSError):
                continue
            self._back()
            return
