"""Which ledger answers: Redis when configured and reachable, else this process's own, or none.

``Store`` sends each admission to the Redis ledger while Redis answers. When a command fails
(connection refused, timeout) Redis is marked down, logged once, counted in
``switchman_tenancy_store_errors_total`` and shown in ``/readyz``; until a probe (every second)
finds it back, admissions go to the process's ``LocalLedger`` (``on_redis_down: open``) or are
refused with a 503 (``closed``) without waiting on Redis again. A request is settled in the
ledger that admitted it. Used by ``admission``.
"""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger("switchman.gateway.tenancy.store")

PROBE_EVERY_S = 1.0


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
        self.up = True
        self.last_error: str | None = None
        self._probe: asyncio.Task[None] | None = None
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

    def status(self) -> dict[str, object]:
        if self.redis is None:
            return {"store": "local"}
        return {
            "store": "redis",
            "redis": "up" if self.up else "unreachable",
            "on_redis_down": self.on_down,
            "last_error": self.last_error,
        }

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        if self.redis is not None:
            await self.redis.client.aclose()

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
        if self._probe is None or self._probe.done():
            self._probe = asyncio.create_task(self._wait_for_redis(), name="redis-probe")

    async def _wait_for_redis(self) -> None:
        assert self.redis is not None
        while True:
            await asyncio.sleep(PROBE_EVERY_S)
            try:
                await self.redis.ping()
            except (RedisError, OSError):
                continue
            self.up = True
            self.metrics.tenancy_store_up.set(1)
            log.warning("redis reachable again; shared limits resume")
            return
