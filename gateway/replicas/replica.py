"""One replica of an upstream: its address, health verdict, load, and breakers.

``endpoints.EndpointSet`` makes one ``Endpoint`` per replica address and keeps it as long as the
address stays in the set (so its breakers, health streak and load survive DNS refreshes). The
failover loop admits each attempt with ``admit`` and reports it with ``succeeded``, ``failed`` or
``release``; the health check (``healthcheck``) sets ``healthy`` and calls ``health_passed``;
the load scrape (``loadscrape``) calls ``record_load``; ``balancer`` reads ``available`` and
``load_value``.

Breakers are scoped by failure class: the replica's ``breaker`` counts what says the replica is in
trouble (connection errors, timeouts, broken or stalled streams) and keeps every model off it;
``model_breaker(model)`` counts what one model on it answered (error statuses, answers that
cannot be parsed, in-band error events) and holds its 429s, so one model's errors or quota never
eject the other models of the same replica. Which one a failure counts against is the failover
loop's ``Failure.blame`` (``serve.failures``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from switchman.api.resilience import CircuitBreaker
from switchman.gateway.replicas.breaker import Breaker
from switchman.gateway.replicas.healthcheck import HealthStreak

Blame = Literal["replica", "model", "none"]

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
        "_models",
        "_spec",
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
        spec: CircuitBreaker | None = None,
    ) -> None:
        self.address = address
        self.base = base
        self.breaker = breaker
        self._spec = spec or CircuitBreaker()
        self._models: dict[str, Breaker] = {}  # per model served here (upstream model ids)
        self.inflight = 0  # the gateway's own requests to this replica, counted per attempt
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
        """Whether the replica takes requests now (health and its own breaker)."""
        return self.healthy and self.breaker.available()

    def model_breaker(self, model: str) -> Breaker:
        """The breaker of ``model`` (an upstream model id) on this replica, made on first use."""
        breaker = self._models.get(model)
        if breaker is None:
            breaker = self._models[model] = Breaker(self._spec, clock=self._clock)
        return breaker

    def serves(self, model: str) -> bool:
        """Whether ``model`` may be sent here now (replica and model breakers, health)."""
        if not (self.healthy and self.breaker.available()):  # ``available``, inlined
            return False
        breaker = self._models.get(model)
        return breaker is None or breaker.available()

    def admit(self, model: str, *, force: bool = False) -> bool:
        """Take the replica's and the model's breaker for one attempt; False: not here now.

        ``force`` (panic mode: every candidate is out) admits it whatever the breakers say,
        as their half-open probe, so a success closes them at once.
        """
        breaker, per_model = self.breaker, self.model_breaker(model)
        if force:
            breaker.force()
            per_model.force()
            return True
        if not breaker.acquire():
            return False
        if not per_model.acquire():
            breaker.release()
            return False
        return True

    def succeeded(self, model: str) -> None:
        """The attempt got an answer the replica and model are not to blame for."""
        self.breaker.success()
        (self._models.get(model) or self.model_breaker(model)).success()

    def failed(self, model: str, blame: Blame, hold_s: float | None = None) -> None:
        """The attempt failed: ``replica`` (unreachable, timeout, cut), ``model`` (an error
        status; ``hold_s``: a 429 to wait out) or ``none`` (the request's fault)."""
        per_model = self.model_breaker(model)
        if blame == "replica":
            self.breaker.failure()
            per_model.release()
            return
        if blame == "none":  # the request's own fault says nothing about either
            self.breaker.release()
            per_model.release()
            return
        self.breaker.success()
        if hold_s is not None:
            per_model.hold(hold_s)
        else:
            per_model.failure()

    def release(self, model: str) -> None:
        """The attempt ended without an outcome (the client left, the deadline passed)."""
        self.breaker.release()
        self.model_breaker(model).release()

    def health_passed(self) -> None:
        """An active check passed: open breakers (not 429 holds) probe with the next request."""
        self.breaker.health_passed()
        for breaker in self._models.values():
            breaker.health_passed()

    def circuit_state(self) -> str:
        """The worst of the replica's breaker and its models' (429 holds aside): the
        ``switchman_circuit_state`` of the replica, so a model failing on it shows there."""
        worst = self.breaker.state
        for breaker in self._models.values():
            state = breaker.state
            if state == "open" and not breaker.held:
                return "open"
            if state == "half_open":
                worst = "half_open" if worst == "closed" else worst
        return worst

    def breakers(self) -> dict[str, str]:
        """State of each model's breaker that is not closed (for /readyz)."""
        return {m: b.state for m, b in self._models.items() if b.state != "closed"}

    def load_value(self) -> float:
        """Estimated requests on the replica, plus penalties for queueing and a full KV cache.

        Without a fresh scrape: the gateway's own in-flight count. With one: the scraped
        ``running + waiting`` (which already includes this gateway's requests of that moment)
        moved by how much our own in-flight count changed since, never below our own count; plus
        ``QUEUE_WEIGHT * waiting`` and ``KV_WEIGHT * (kv - KV_KNEE) / (1 - KV_KNEE)`` above the
        knee.
        """
        own = self.inflight
        load = self._load  # ``self.load``, inlined: this runs for every replica on every pick
        if load is None or self._clock() - load.at > self._stale_after:
            return float(own)
        busy = load.running + load.waiting + (own - self._inflight_at_scrape)
        if busy < own:
            busy = own
        value = busy + QUEUE_WEIGHT * load.waiting
        if load.kv_usage > KV_KNEE:
            value += KV_WEIGHT * (load.kv_usage - KV_KNEE) / (1.0 - KV_KNEE)
        return value
