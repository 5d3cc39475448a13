"""Active health checks of an upstream's replicas: the verdict's state machine and the loop.

``endpoints.EndpointSet`` runs ``check_forever`` every ``health_check.interval_s`` when the
upstream configures ``health_check``. A 2xx answer passes; a timeout, a connection error or any
other status fails. ``unhealthy_after`` failures in a row take a healthy replica out of picking;
``healthy_after`` passes in a row bring it back. Until the first verdict a replica counts as
healthy, so a gateway starting next to a working model does not refuse traffic while it checks.
A pass with a healthy verdict also turns the replica's open breakers half-open at once
(``health_passed``): the next real request probes it, instead of waiting out the open time while
the backend is already back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from switchman.api.resilience import HealthCheck

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class HealthStreak:
    """Consecutive passes and failures of one replica's checks."""

    passes: int = 0
    failures: int = 0

    def observe(self, passed: bool, healthy: bool, spec: HealthCheck) -> bool:
        """Count one check; returns the new verdict given the current one."""
        if passed:
            self.passes += 1
            self.failures = 0
            return healthy or self.passes >= spec.healthy_after
        self.failures += 1
        self.passes = 0
        return healthy and self.failures < spec.unhealthy_after


class Checked(Protocol):
    """What a check round reads and writes on an endpoint."""

    address: str
    healthy: bool
    streak: HealthStreak

    def health_passed(self) -> None: ...


async def probe(session: aiohttp.ClientSession, url: str, timeout_s: float) -> bool:
    """One check: True on a 2xx answer within ``timeout_s``."""
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout_s), allow_redirects=False
        ) as response:
            await response.read()
            return 200 <= response.status < 300
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        logger.debug("health check %s failed: %r", url, exc)
        return False


async def check_round(
    session: aiohttp.ClientSession, endpoints: Sequence[Checked], spec: HealthCheck, scheme: str
) -> None:
    """Check every endpoint concurrently and update its verdict (changes logged)."""
    urls = [f"{scheme}://{endpoint.address}{spec.path}" for endpoint in endpoints]
    results = await asyncio.gather(*(probe(session, url, spec.timeout_s) for url in urls))
    for endpoint, passed in zip(endpoints, results, strict=True):
        verdict = endpoint.streak.observe(passed, endpoint.healthy, spec)
        if verdict != endpoint.healthy:
            logger.warning(
                "replica %s is now %s", endpoint.address, "healthy" if verdict else "unhealthy"
            )
            endpoint.healthy = verdict
        if passed and verdict:
            endpoint.health_passed()


async def check_forever(
    session: Callable[[], aiohttp.ClientSession],
    endpoints: Callable[[], Sequence[Checked]],
    spec: HealthCheck,
    scheme: str,
) -> None:
    """Check rounds every ``spec.interval_s`` until cancelled."""
    while True:
        try:
            await check_round(session(), endpoints(), spec, scheme)
        except Exception:  # a bug here must not freeze the verdicts for good
            logger.exception("health check round failed")
        await asyncio.sleep(spec.interval_s)
