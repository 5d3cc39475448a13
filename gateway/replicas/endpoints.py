"""The replicas of one upstream: discovery, per-replica live state, and picking one per attempt.

``upstreams.UpstreamClient`` owns one ``EndpointSet`` per upstream and starts its background
tasks with the upstream's pooled session; ``proxy`` calls ``pick`` before each attempt (then
``breaker.acquire`` and ``inflight`` itself), ``served`` once a replica accepted a request, and
routing reads ``load``/``queue_depth``; ``/readyz`` and ``/debug/decisions`` read ``snapshot``.

Replicas come from DNS (all A/AAAA records of ``discovery.dns``, re-resolved every
``refresh_s``), a static list, or base_url's own host:port. ``Endpoint`` objects live as long as
their address stays in the set, so a replica's breaker, health streak and load survive refreshes.
Picking logic is in ``balancer`` (pure), keys in ``affinity``, scraping in ``loadscrape``,
checks in ``healthcheck``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from switchman.api.gatewayconfig import Upstream
from switchman.gateway.replicas import balancer
from switchman.gateway.replicas.affinity import AffinityKey
from switchman.gateway.replicas.breaker import Breaker
from switchman.gateway.replicas.healthcheck import HealthStreak, check_forever
from switchman.gateway.replicas.loadscrape import scrape_forever

logger = logging.getLogger(__name__)

Resolve = Callable[[str, int], Awaitable[list[str]]]

PREFIX_INDEX_SIZE = 16384  # block hashes remembered per upstream (~1.5 MB at most)
DNS_TIMEOUT_S = 5.0
# load_value weights: a queued request counts twice (it waits, then takes a slot), and KV-cache
# use past the knee adds up to KV_WEIGHT requests (vLLM starts preempting as it fills).
QUEUE_WEIGHT = 1.0
KV_KNEE = 0.8
KV_WEIGHT = 4.0


@dataclass(slots=True)
class ReplicaLoad:
    """One scrape of a replica's vLLM scheduler gauges, taken at ``at`` (the set's clock)."""

    running: float
    waiting: float
    kv_usage: float
    at: float


class Endpoint:
    """One replica: its address and URL, the gateway's view of its health, load and breaker."""

    __slots__ = (
        "_clock",
        "_inflight_at_scrape",
        "_load",
        "_stale_after",
        "address",
        "base",
        "breaker",
        "healthy",
        "inflight",
        "streak",
    )

    def __init__(
        self,
        address: str,
        base: str,
        breaker: Breaker,
        *,
        stale_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.address = address
        self.base = base
        self.breaker = breaker
        self.inflight = 0  # the proxy's own requests to this replica, counted by the proxy
        self.healthy = True
        self.streak = HealthStreak()
        self._load: ReplicaLoad | None = None
        self._inflight_at_scrape = 0
        self._stale_after = stale_after_s
        self._clock = clock

    def __repr__(self) -> str:
        return f"<Endpoint {self.address} inflight={self.inflight} healthy={self.healthy}>"

    @property
    def load(self) -> ReplicaLoad | None:
        """The latest scrape, or None when there is none younger than ``stale_after_s``."""
        load = self._load
        if load is None or self._clock() - load.at > self._stale_after:
            return None
        return load

    def record_load(self, running: float, waiting: float, kv_usage: float) -> None:
        self._load = ReplicaLoad(running, waiting, kv_usage, self._clock())
        self._inflight_at_scrape = self.inflight

    def available(self) -> bool:
        return self.healthy and self.breaker.available()

    def load_value(self) -> float:
        """Estimated requests on the replica, plus penalties for queueing and a full KV cache.

        Without a fresh scrape: the gateway's own in-flight count. With one: the scraped
        ``running + waiting`` (which already includes this gateway's requests of that moment)
        moved by how much our own in-flight count changed since, never below our own count; plus
        ``QUEUE_WEIGHT * waiting`` and ``KV_WEIGHT * (kv - KV_KNEE) / (1 - KV_KNEE)`` above the
        knee.
        """
        own = self.inflight
        load = self.load
        if load is None:
            return float(own)
        busy = load.running + load.waiting + (own - self._inflight_at_scrape)
        if busy < own:
            busy = own
        value = busy + QUEUE_WEIGHT * load.waiting
        if load.kv_usage > KV_KNEE:
            value += KV_WEIGHT * (load.kv_usage - KV_KNEE) / (1.0 - KV_KNEE)
        return value


async def getaddrinfo(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, resolved off the event loop's thread."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class EndpointSet:
    """The replicas of one upstream; owned by gateway/upstreams/client.py's UpstreamClient."""

    def __init__(
        self,
        spec: Upstream,
        *,
        clock: Callable[[], float] = time.monotonic,
        resolve: Resolve | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.spec = spec
        self._clock = clock
        self._resolve = resolve or getaddrinfo
        self._rng = rng or random.Random()
        self._balance = spec.balance
        self._prefix = spec.balance.prefix_affinity and spec.balance.policy == "least-loaded"
        self._stale_after = spec.scrape.stale_after_s if spec.scrape is not None else 0.0
        self._origin_base = str(spec.base_url).rstrip("/")
        parts = urlsplit(self._origin_base)
        self._scheme = parts.scheme
        self._path = parts.path
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._origin = _address(parts.hostname or "", port)
        discovery = spec.discovery
        self._dns = discovery.dns if discovery is not None else None
        self._dns_port = (discovery.port if discovery is not None else None) or port
        self._problem: str | None = None
        self._turn = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._index = balancer.PrefixIndex(PREFIX_INDEX_SIZE)
        self._by_address: dict[str, Endpoint] = {}
        self._ring: balancer.HashRing[Endpoint] = balancer.HashRing(())
        self.endpoints: list[Endpoint] = []
        static = list(dict.fromkeys(discovery.static)) if discovery is not None else []
        self._apply(static or [self._origin])

    def _endpoint(self, address: str) -> Endpoint:
        base = self._origin_base if address == self._origin else self._scheme + "://" + address
        if address != self._origin:
            base += self._path
        breaker = Breaker(self.spec.circuit_breaker, clock=self._clock)
        return Endpoint(address, base, breaker, stale_after_s=self._stale_after, clock=self._clock)

    def _apply(self, addresses: list[str]) -> None:
        if [e.address for e in self.endpoints] == addresses:
            return
        known = self._by_address
        fresh = [known.get(a) or self._endpoint(a) for a in addresses]
        by_address = {e.address: e for e in fresh}
        if self.endpoints:
            logger.info("upstream %s replicas: %s", self.spec.name, ", ".join(addresses))
        # Replaced whole, never mutated: a pick in progress keeps iterating the old list.
        self._by_address = by_address
        self._ring = balancer.HashRing(fresh)
        self.endpoints = fresh
        for address in known.keys() - by_address.keys():
            self._index.forget(address)

    async def refresh(self) -> bool:
        """Re-resolve the DNS name; False (keeping the last set) when it fails or finds nothing."""
        if self._dns is None:
            return True
        problem: str | None = None
        found: list[str] = []
        try:
            async with asyncio.timeout(DNS_TIMEOUT_S):
                found = await self._resolve(self._dns, self._dns_port)
        except Exception as exc:  # resolver errors vary (gaierror, timeouts, a test's fake)
            problem = f"cannot resolve {self._dns}: {exc!r}"
        if problem is None and not found:
            problem = f"{self._dns} resolved to no addresses"
        if problem is not None:
            if problem != self._problem:
                name = self.spec.name
                logger.warning("upstream %s: %s; keeping the last replicas", name, problem)
                self._problem = problem
            return False
        if self._problem is not None:
            logger.info("upstream %s: %s resolves again", self.spec.name, self._dns)
            self._problem = None
        self._apply(sorted({_address(a, self._dns_port) for a in found}))
        return True

    async def _refresh_forever(self, interval_s: float) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(interval_s)

    def start(self, session: Callable[[], aiohttp.ClientSession]) -> None:
        """Start discovery, scraping and health checks on the running loop (idempotent)."""
        if self._tasks:
            return
        spec = self.spec
        loop = asyncio.get_running_loop()
        current = self._current
        if self._dns is not None and spec.discovery is not None:
            refresh = self._refresh_forever(spec.discovery.refresh_s)
            self._tasks.append(loop.create_task(refresh, name=f"{spec.name} dns"))
        if spec.scrape is not None:
            scrape = scrape_forever(session, current, spec.scrape, self._scheme)
            self._tasks.append(loop.create_task(scrape, name=f"{spec.name} scrape"))
        if spec.health_check is not None:
            check = check_forever(session, current, spec.health_check, self._scheme)
            self._tasks.append(loop.create_task(check, name=f"{spec.name} health"))

    def _current(self) -> list[Endpoint]:
        return self.endpoints

    async def close(self) -> None:
        """Cancel the background tasks and wait for them to end."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def pick(self, key: AffinityKey | None, exclude: Collection[Endpoint] = ()) -> Endpoint | None:
        """An available replica not in ``exclude`` by the balance policy; None when none is.

        least-loaded with a key: the session's ring position, else the replica holding the
        longest prefix, else the first block's ring position, each only within the load bound;
        then the least loaded (ties rotate). Reserves nothing: the proxy acquires the breaker.
        """
        candidates = balancer.eligible(self.endpoints, exclude)
        if len(candidates) <= 1:
            return candidates[0] if candidates else None
        self._turn += 1
        policy = self._balance.policy
        if policy == "round-robin":
            return balancer.round_robin(candidates, self._turn)
        if policy == "random":
            return balancer.random_choice(candidates, self._rng)
        loads = [c.load_value() for c in candidates]
        if key is not None:
            bound = balancer.load_bound(loads, self._balance.load_factor)
            chosen = self._affine(key, bound, exclude)
            if chosen is not None:
                return chosen
        return balancer.least_loaded(candidates, loads, self._turn)

    def _affine(
        self, key: AffinityKey, bound: float, exclude: Collection[Endpoint]
    ) -> Endpoint | None:
        if key.session is not None:
            return self._ring.pick(key.session, bound, exclude)
        if not key.blocks or not self._prefix:
            return None
        by_address = self._by_address
        for address in self._index.matches(key.blocks):
            endpoint = by_address.get(address)
            if (
                endpoint is not None
                and endpoint.available()
                and endpoint not in exclude
                and endpoint.load_value() <= bound
            ):
                return endpoint
        return self._ring.pick(key.blocks[0], bound, exclude)

    def served(self, endpoint: Endpoint, key: AffinityKey | None) -> None:
        """Remember that ``endpoint`` now holds the key's prompt prefix in its cache."""
        if key is not None and key.blocks and self._prefix:
            self._index.record(key.blocks, endpoint.address)

    def available(self) -> bool:
        return any(e.available() for e in self.endpoints)

    def load(self) -> float:
        """Mean ``load_value`` over the available replicas; 0 when none is available."""
        loads = [e.load_value() for e in self.endpoints if e.available()]
        return sum(loads) / len(loads) if loads else 0.0

    def queue_depth(self) -> float | None:
        """Requests waiting in the replicas' vLLM queues (fresh scrapes only); None: unknown."""
        depth: float | None = None
        for endpoint in self.endpoints:
            load = endpoint.load
            if load is not None:
                depth = (depth or 0.0) + load.waiting
        return depth

    def snapshot(self) -> list[dict[str, Any]]:
        """Per replica: address, verdicts, in-flight count and the last scrape with its age."""
        now = self._clock()
        rows: list[dict[str, Any]] = []
        for e in self.endpoints:
            scraped = e._load
            rows.append(
                {
                    "address": e.address,
                    "healthy": e.healthy,
                    "breaker": e.breaker.state,
                    "inflight": e.inflight,
                    "load_value": round(e.load_value(), 3),
                    "scraped": None
                    if scraped is None
                    else {
                        "running": scraped.running,
                        "waiting": scraped.waiting,
                        "kv_usage": scraped.kv_usage,
                        "age_s": round(now - scraped.at, 3),
                        "stale": now - scraped.at > self._stale_after,
                    },
                }
            )
        return rows
