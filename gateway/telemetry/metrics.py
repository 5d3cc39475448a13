"""Every Prometheus metric the gateway exports, defined in one place.

Each ``Metrics`` owns its own CollectorRegistry (no global registry), so tests and several apps in
one process never collide. Labels are bounded: route, model, upstream, outcome, reason, direction;
never a key, user, prompt or request id. Families are the lock-free ones of ``series`` (updated
only from the event loop); the exposition is prometheus_client's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest

from switchman.gateway.telemetry.series import (
    CounterChild,
    HistogramChild,
    SeriesCollector,
)
from switchman.gateway.telemetry.series import (
    CounterFamily as Counter,
)
from switchman.gateway.telemetry.series import (
    GaugeFamily as Gauge,
)
from switchman.gateway.telemetry.series import (
    HistogramFamily as Histogram,
)

# LLM calls run from milliseconds (cached, tiny) to minutes (long generations).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1, 2.5)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True, slots=True)
class Spec:
    """One metric family: the ``Metrics`` attribute that holds it and how it is exported."""

    attr: str
    kind: type[Counter] | type[Gauge] | type[Histogram]
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    def build(self) -> Counter | Gauge | Histogram:
        if self.kind is Histogram:
            return Histogram(self.name, self.help, self.labels, self.buckets)
        if self.kind is Gauge:
            return Gauge(self.name, self.help, self.labels)
        return Counter(self.name, self.help, self.labels)


FAMILIES: tuple[Spec, ...] = (
    Spec(
        "requests",
        Counter,
        "switchman_requests",
        "Client requests by route, serving model and upstream, and outcome.",
        ("route", "model", "upstream", "outcome"),
    ),
    Spec(
        "request_duration",
        Histogram,
        "switchman_request_duration_seconds",
        "Time from request received to last byte sent.",
        ("route", "model"),
        buckets=LATENCY_BUCKETS,
    ),
    Spec(
        "time_to_first_token",
        Histogram,
        "switchman_time_to_first_token_seconds",
        "Streaming: time from request received to the first chunk sent to the client.",
        ("route", "model"),
        buckets=TTFT_BUCKETS,
    ),
    Spec(
        "inter_token_latency",
        Histogram,
        "switchman_inter_token_latency_seconds",
        "Streaming: mean time between chunks sent to the client, one sample per request.",
        ("route", "model"),
        buckets=ITL_BUCKETS,
    ),
    Spec(
        "cost",
        Counter,
        "switchman_cost_usd",
        "Spend in USD from the models' configured prices and the usage of each response.",
        ("route", "model"),
    ),
    Spec(
        "routing_decisions",
        Counter,
        "switchman_routing_decisions",
        "Routing decisions by route and reason (the strategy that ordered the candidates).",
        ("route", "reason"),
    ),
    Spec(
        "fallbacks",
        Counter,
        "switchman_fallbacks",
        "Requests moved on to another candidate, by route and the failure that moved them.",
        ("route", "reason"),
    ),
    Spec(
        "tokens",
        Counter,
        "switchman_tokens",
        "Tokens by model and direction (input, output).",
        ("model", "direction"),
    ),
    Spec(
        "upstream_attempts",
        Counter,
        "switchman_upstream_attempts",
        "Upstream attempts by upstream, model and outcome (ok, rejected, or the failure "
        "reason, including how a stream ended after its first chunk).",
        ("upstream", "model", "outcome"),
    ),
    Spec(
        "upstream_in_flight",
        Gauge,
        "switchman_upstream_in_flight_requests",
        "Requests currently sent to each upstream.",
        ("upstream",),
    ),
    Spec(
        "config_reloads",
        Counter,
        "switchman_config_reloads",
        "Config (re)loads by result (success, invalid).",
        ("result",),
    ),
    Spec(
        "config_generation",
        Gauge,
        "switchman_config_generation",
        "Generation number of the config being served (increments per successful load).",
        (),
    ),
    Spec(
        "config_last_reload_success",
        Gauge,
        "switchman_config_last_reload_successful",
        "1 if the last config (re)load attempt succeeded, 0 if the last good one is kept.",
        (),
    ),
    Spec(
        "config_file_missing",
        Gauge,
        "switchman_config_file_missing",
        "1 while the config file cannot be found (the last good config keeps serving).",
        (),
    ),
    Spec(
        "connections_refused",
        Counter,
        "switchman_connections_refused",
        "Client connections refused at the edge, by reason (connection_limit, header_timeout).",
        ("reason",),
    ),
    Spec(
        "retries",
        Counter,
        "switchman_retries",
        "Attempts after a request's first, by route and the failure that caused them.",
        ("route", "reason"),
    ),
    Spec(
        "retries_exhausted",
        Counter,
        "switchman_retries_exhausted",
        "Requests that stopped retrying early, by route and why (deadline, retry_budget).",
        ("route", "reason"),
    ),
    Spec(
        "midstream",
        Counter,
        "switchman_midstream_failovers",
        "Streams cut after the client saw tokens, by route and how the upstream broke off "
        "(continued on another attempt when the route allows).",
        ("route", "reason"),
    ),
    Spec(
        "escalations",
        Counter,
        "switchman_escalations",
        "Non-streamed answers the quality guard sent to a higher tier, by route, the model "
        "that answered and why (escalated_empty, _refusal, _truncated, _invalid_json, "
        "_low_logprob).",
        ("route", "model", "reason"),
    ),
    Spec(
        "escalation_cost",
        Counter,
        "switchman_escalation_cost_usd",
        "What the escalated answers cost (the cascade's extra spend), by route and the model "
        "that gave them; billed to no tenant.",
        ("route", "model"),
    ),
    Spec(
        "complexity",
        Histogram,
        "switchman_complexity_score",
        "Prompt complexity scores of requests on routes that use the classifier.",
        ("route",),
        buckets=tuple(i / 10 for i in range(1, 11)),
    ),
    Spec(
        "shadow_requests",
        Counter,
        "switchman_shadow_requests",
        "Mirrored (shadow) requests by route, shadow model and outcome.",
        ("route", "model", "outcome"),
    ),
    Spec(
        "shadow_duration",
        Histogram,
        "switchman_shadow_duration_seconds",
        "Time a shadow model took to answer a mirrored request in full.",
        ("route", "model"),
        buckets=LATENCY_BUCKETS,
    ),
    Spec(
        "shadow_tokens",
        Counter,
        "switchman_shadow_tokens",
        "Tokens of mirrored requests by route, shadow model and direction.",
        ("route", "model", "direction"),
    ),
    Spec(
        "endpoint_up",
        Gauge,
        "switchman_endpoint_up",
        "1 when a replica can take requests (healthy, circuit not open), else 0.",
        ("upstream", "endpoint"),
    ),
    Spec(
        "circuit_state",
        Gauge,
        "switchman_circuit_state",
        "Circuit breaker per replica: 0 closed, 1 half-open, 2 open.",
        ("upstream", "endpoint"),
    ),
    Spec(
        "endpoint_load",
        Gauge,
        "switchman_endpoint_load",
        "The load value replica picking compares (in-flight, queue and KV-cache use).",
        ("upstream", "endpoint"),
    ),
    Spec(
        "tenant_spend",
        Counter,
        "switchman_tenant_spend_usd",
        "Spend billed to each tenant (actual usage; never retries, failed attempts or "
        "shadows), by tenant, route and serving model.",
        ("tenant", "route", "model"),
    ),
    Spec(
        "tenant_rejections",
        Counter,
        "switchman_tenant_rejections",
        "Requests refused by tenancy, by tenant (none: no or unknown key) and reason "
        "(unauthenticated, forbidden, rpm, tpm, daily, monthly, store_down).",
        ("tenant", "reason"),
    ),
    Spec(
        "tenancy_store_errors",
        Counter,
        "switchman_tenancy_store_errors",
        "Redis commands of the limits store that failed, by operation (admit, settle).",
        ("operation",),
    ),
    Spec(
        "tenancy_store_up",
        Gauge,
        "switchman_tenancy_store_up",
        "1 while the shared limits store (Redis) answers, 0 while it does not.",
        (),
    ),
    Spec(
        "shadow_cost",
        Counter,
        "switchman_shadow_cost_usd",
        "Cost of mirrored (shadow) requests by route and shadow model; billed to no tenant.",
        ("route", "model"),
    ),
)


class Accounted:
    """The series an accounted request of one (route, model, upstream, outcome) updates, looked
    up once per combination instead of by label values at every request. A series is created
    when first updated, as ``family.labels(...)`` would create it: none appears before."""

    __slots__ = (
        "_cost",
        "_gaps",
        "_metrics",
        "_model",
        "_route",
        "_tokens",
        "duration",
        "requests",
    )

    def __init__(self, metrics: Metrics, route: str, model: str, upstream: str, outcome: str):
        self._metrics, self._route, self._model = metrics, route, model
        self.requests = metrics.requests.labels(route, model, upstream, outcome)
        self.duration = metrics.request_duration.labels(route, model)
        self._gaps: HistogramChild | None = None
        self._tokens: tuple[CounterChild, CounterChild] | None = None
        self._cost: CounterChild | None = None

    def inter_chunk(self, seconds: float) -> None:
        if self._gaps is None:
            self._gaps = self._metrics.inter_token_latency.labels(self._route, self._model)
        self._gaps.observe(seconds)

    def tokens(self, prompt: int, completion: int) -> None:
        if self._tokens is None:
            tokens, model = self._metrics.tokens, self._model
            self._tokens = tokens.labels(model, "input"), tokens.labels(model, "output")
        self._tokens[0].inc(prompt)
        self._tokens[1].inc(completion)

    def cost(self, usd: float) -> None:
        if self._cost is None:
            self._cost = self._metrics.cost.labels(self._route, self._model)
        self._cost.inc(usd)


class Metrics:
    """The gateway's metric families: one attribute per row of ``FAMILIES``."""

    requests: Counter
    request_duration: Histogram
    time_to_first_token: Histogram
    inter_token_latency: Histogram
    cost: Counter
    routing_decisions: Counter
    fallbacks: Counter
    tokens: Counter
    upstream_attempts: Counter
    upstream_in_flight: Gauge
    config_reloads: Counter
    config_generation: Gauge
    config_last_reload_success: Gauge
    config_file_missing: Gauge
    connections_refused: Counter
    retries: Counter
    retries_exhausted: Counter
    midstream: Counter
    escalations: Counter
    escalation_cost: Counter
    complexity: Histogram
    shadow_requests: Counter
    shadow_duration: Histogram
    shadow_tokens: Counter
    endpoint_up: Gauge
    circuit_state: Gauge
    endpoint_load: Gauge
    tenant_spend: Counter
    tenant_rejections: Counter
    tenancy_store_errors: Counter
    tenancy_store_up: Gauge
    shadow_cost: Counter

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # (route, model, upstream, outcome) -> its series; as bounded as those labels, and the
        # families' series are never removed (only the per-replica gauges are: ``endpoints``).
        self._accounted: dict[tuple[str, str, str, str], Accounted] = {}
        for spec in FAMILIES:
            setattr(self, spec.attr, spec.build())
        for result in ("success", "invalid"):
            self.config_reloads.labels(result)
        for reason in ("connection_limit", "header_timeout"):
            self.connections_refused.labels(reason)
        self.registry.register(
            SeriesCollector([value for value in vars(self).values() if hasattr(value, "metric")])
        )

    def accounted(self, route: str, model: str, upstream: str, outcome: str) -> Accounted:
        """The series ``observe`` updates when it accounts a request (see ``Accounted``)."""
        key = (route, model, upstream, outcome)
        found = self._accounted.get(key)
        if found is None:
            found = self._accounted[key] = Accounted(self, route, model, upstream, outcome)
        return found

    def prepare(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Create the zero series of each (upstream, model) pair, so that ``rate()`` and
        ``increase()`` see the first event instead of starting from it."""
        for upstream, model in pairs:
            self.upstream_attempts.labels(upstream, model, "ok")
            self.upstream_in_flight.labels(upstream)

    def endpoints(self, states: Iterable[tuple[str, str, bool, str, float]]) -> None:
        """Replace the per-replica gauges with ``(upstream, endpoint, up, circuit, load)``."""
        codes = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
        for family in (self.endpoint_up, self.circuit_state, self.endpoint_load):
            family.children.clear()  # replicas come and go; no stale series
        for upstream, endpoint, up, circuit, load in states:
            self.endpoint_up.labels(upstream, endpoint).set(1.0 if up else 0.0)
            self.circuit_state.labels(upstream, endpoint).set(codes.get(circuit, 0.0))
            self.endpoint_load.labels(upstream, endpoint).set(load)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
