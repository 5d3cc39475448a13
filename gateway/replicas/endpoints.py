"""The replicas of one upstream: discovery, per-replica live state, and picking one per attempt.

``upstreams.UpstreamClient`` owns one ``EndpointSet`` per upstream and starts its background
tasks with the upstream's pooled session; the failover loop calls ``pick`` before each attempt
(then ``Endpoint.admit`` and ``inflight`` itself), reports the attempt with ``Endpoint.succeeded``,
``failed`` or ``release``, and ``served`` once a replica accepted a request; routing reads
``available``/``load``; ``/readyz`` and ``/debug/decisions`` read ``snapshot``.
Each replica's live state (health, load, the breakers scoped by failure class) is its
``replica.Endpoint``.

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
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from switchman.api.gatewayconfig import Upstream
from switchman.gateway.replicas import balancer
from switchman.gateway.replicas.affinity import AffinityKey
from switchman.gateway.replicas.breaker import Breaker
from switchman.gateway.replicas.healthcheck import check_forever
from switchman.gateway.replicas.loadscrape import scrape_forever
from switchman.gateway.replicas.replica import Endpoint

logger = logging.getLogger(__name__)

Resolve = Callable[[str, int], Awaitable[list[str]]]

PREFIX_INDEX_SIZE = 16384  # block hashes remembered per upstream (~1.5 MB at most)
DNS_TIMEOUT_S = 5.0


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
        spec = self.spec.circuit_breaker
        breaker = Breaker(spec, clock=self._clock)
        return Endpoint(
            address, base, breaker, stale_after_s=self._stale_after, clock=self._clock, spec=spec
        )

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

    def pick(
        self,
        key: AffinityKey | None,
        exclude: Collection[Endpoint] = (),
        *,
        model: str | None = None,
        panic: bool = False,
    ) -> Endpoint | None:
        """An available replica not in ``exclude`` by the balance policy; None when none is.

        With ``model`` (an upstream model id), replicas whose breaker for that model is open
        are passed over too. With ``panic`` and no replica available, any replica not in
        ``exclude`` (in turn): every candidate is out, so trying one beats failing outright.
        least-loaded with a key: the session's ring position, else the replica holding the
        longest prefix, else the first block's ring position, each only within the load bound;
        then the least loaded (ties rotate). Reserves nothing: the caller admits the attempt.
        """
        tried = exclude
        endpoints = self.endpoints
        if len(endpoints) == 1 and model is not None:  # one replica: no lists to build
            only = endpoints[0]
            if only.serves(model) and only not in exclude:
                return only
            return self._any(tried) if panic else None
        if model is None:
            candidates = balancer.eligible(endpoints, exclude)
        else:  # one pass: serving the model implies available
            serving = [e for e in endpoints if e.serves(model)]
            if len(serving) < len(endpoints):  # the others stay out of affinity picks too
                exclude = [*exclude, *(e for e in endpoints if e not in serving)]
            candidates = [e for e in serving if e not in exclude] if exclude else serving
        if len(candidates) <= 1:
            if candidates:
                return candidates[0]
            return self._any(tried) if panic else None
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

    def _any(self, exclude: Collection[Endpoint]) -> Endpoint | None:
        """Panic mode: the next replica not in ``exclude``, whatever its state."""
        left = [e for e in self.endpoints if e not in exclude]
        if not left:
            return None
        self._turn += 1
        return balancer.round_robin(left, self._turn)

    def served(self, endpoint: Endpoint, key: AffinityKey | None) -> None:
        """Remember that ``endpoint`` now holds the key's prompt prefix in its cache."""
        if key is not None and key.blocks and self._prefix:
            self._index.record(key.blocks, endpoint.address)

    def available(self, model: str | None = None) -> bool:
        """Whether some replica takes requests (for ``model``, when given) now."""
        if model is None:
            return any(e.available() for e in self.endpoints)
        return any(e.serves(model) for e in self.endpoints)

    def refusal(self, model: str | None = None) -> str | None:
        """Why no replica takes ``model`` now (unavailable, rate_limited, model_failing)."""
        endpoints = self.endpoints
        if model is None:
            return None if any(e.available() for e in endpoints) else "unavailable"
        for endpoint in endpoints:  # the common case: the first one serves it
            if endpoint.serves(model):
                return None
        up = [e for e in endpoints if e.available()]
        if not up:
            return "unavailable"
        return "rate_limited" if any(e.model_breaker(model).held for e in up) else "model_failing"

    def load(self) -> float:
        """Mean ``load_value`` over the available replicas; 0 when none is available."""
        # ``Endpoint.available`` inlined: routing reads every candidate's load per request.
        endpoints = self.endpoints
        if len(endpoints) == 1:  # one replica (most upstreams): no list; the same value
            e = endpoints[0]
            return e.load_value() if e.healthy and e.breaker.available() else 0.0
        loads = [e.load_value() for e in endpoints if e.healthy and e.breaker.available()]
        return sum(loads) / len(loads) if loads else 0.0

    def circuits(self) -> dict[str, int]:
        """How many replicas' circuits are closed, half-open and open (``Endpoint.circuit_state``:
        a model failing on a replica counts; a 429 hold does not)."""
        counts = {"closed": 0, "half_open": 0, "open": 0}
        for endpoint in self.endpoints:
            counts[endpoint.circuit_state()] += 1
        return counts

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
                    "model_breakers": e.breakers(),
                    "circuit": e.circuit_state(),
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
