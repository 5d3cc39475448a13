"""``RoutingPolicy`` (short name ``rp``): how traffic reaches the models of one or more pools.

The operator renders a policy and the ModelPools it references into the gateway's ConfigMap
(a GatewayConfig, ``switchman.api.gatewayconfig``), the gateway Deployment, its Service and a
NetworkPolicy. Route fields mirror GatewayConfig's (``docs/routing.md``) in camelCase.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from switchman.api.routes import MidStream, OnContentFilter, QualityMode, Strategy
from switchman.api.v1alpha1.spec import DNS_LABEL, MODEL_NAME, Condition, SecretKeyRef, Spec, cel
from switchman.api.v1alpha1.tenancy import PolicyTenancy

DEFAULT_GATEWAY_IMAGE = "switchman/gateway:0.1.0"

MAX_TIERS = 16
MAX_CANDIDATES = 32
ModelName = Annotated[str, Field(min_length=1, max_length=253, pattern=MODEL_NAME)]
Percent = Annotated[float, Field(ge=0, le=100)]
Unit = Annotated[float, Field(ge=0, le=1)]
# CEL in Kubernetes has no index range; a literal list bounded by maxItems stands in for one.
_PAIRS = "[" + ", ".join(str(i) for i in range(MAX_TIERS - 1)) + "]"


class PoolRef(Spec):
    """A ModelPool in the policy's namespace."""

    name: str = Field(pattern=DNS_LABEL, max_length=253, description="ModelPool name.")


class Scorers(Spec):
    """Scorer weights overriding the strategy's preset (docs/routing.md)."""

    cost: float | None = Field(default=None, ge=0, description="Price x estimated tokens.")
    latency: float | None = Field(default=None, ge=0, description="EWMA TTFT and per-token.")
    load: float | None = Field(default=None, ge=0, description="In-flight, queue, KV cache.")
    quality: float | None = Field(default=None, ge=0, description="Tier vs complexity.")
    preference: float | None = Field(default=None, ge=0, description="Explicit preference.")
    priority: float | None = Field(default=None, ge=0, description="Candidate order.")


class Tier(Spec):
    """Prompts at or above minComplexity want this tier."""

    tier: str = Field(min_length=1, max_length=63, description="A tier the candidates use.")
    min_complexity: float = Field(ge=0, le=1, description="Threshold in [0, 1].")


class Complexity(Spec):
    """How the classifier's score picks a tier: a quality mode, or explicit thresholds."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.tiers) || self.tiers[0].minComplexity == 0.0",
                "the first tier must start at minComplexity 0",
            ),
            (
                f"!has(self.tiers) || {_PAIRS}.all(i, i + 1 >= size(self.tiers) || "
                "self.tiers[i].minComplexity < self.tiers[i + 1].minComplexity)",
                "tiers must have strictly ascending minComplexity",
            ),
            (
                "!has(self.tiers) || self.tiers.all(a, self.tiers.exists_one(b, b.tier == a.tier))",
                "each tier may appear once",
            ),
            (
                "!has(self.tiers) || (!has(self.mode) && !has(self.maxLargePercent))",
                "tiers are explicit thresholds: not with mode or maxLargePercent",
            ),
        )
    }

    mode: QualityMode | None = Field(
        default=None,
        description=(
            "quality | balanced | cost: the classifier's threshold for the top tier "
            "(default balanced when no tiers)."
        ),
    )
    max_large_percent: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="At most this percent of requests to the top tier (per gateway process).",
    )
    window: int = Field(
        default=1000, ge=50, le=100_000, description="Recent scores maxLargePercent is taken over."
    )
    tiers: list[Tier] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_TIERS,
        description="Explicit ascending thresholds; the first is 0.",
    )

    @model_validator(mode="after")
    def _ascending(self) -> Complexity:
        if self.tiers is None:
            return self
        if self.mode is not None or self.max_large_percent is not None:
            raise ValueError("tiers are explicit thresholds: not with mode or maxLargePercent")
        if self.tiers[0].min_complexity != 0:
            raise ValueError("the first tier must start at minComplexity 0")
        if any(b.min_complexity <= a.min_complexity for a, b in pairwise(self.tiers)):
            raise ValueError("tiers must have strictly ascending minComplexity")
        if len({t.tier for t in self.tiers}) != len(self.tiers):
            raise ValueError("each tier may appear once")
        return self


class Guard(Spec):
    """Which checks escalate a lower tier's non-streamed answer to the next higher tier."""

    min_mean_logprob: float | None = Field(
        default=None, le=0, description="Escalate below this mean token logprob (if returned)."
    )
    request_logprobs: bool = Field(default=False, description="Ask guarded attempts for logprobs.")
    empty: bool = Field(default=True, description="Escalate an empty answer.")
    refusal: bool = Field(default=True, description="Escalate a refusal.")
    truncated: bool = Field(default=True, description="Escalate a cut the client did not ask.")
    invalid_json: bool = Field(default=True, description="Escalate invalid JSON for JSON asks.")
    hold_stream_chunks: int = Field(
        default=0, ge=0, le=256, description="Streams: chunks held and checked first (0: none)."
    )


class Shadow(Spec):
    """Mirror a share of requests to another model; answers are discarded."""

    model: str = Field(pattern=MODEL_NAME, max_length=253, description="The shadow model.")
    percent: float = Field(gt=0, le=100, description="Share of requests mirrored.")


class Retry(Spec):
    """Attempts, backoff, deadline and retry budget per request."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            (
                "self.backoffBaseSeconds <= self.backoffMaxSeconds",
                "backoffMaxSeconds must be at least backoffBaseSeconds",
            )
        )
    }

    max_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per request.")
    per_candidate: int = Field(default=2, ge=1, le=10, description="Attempts per model.")
    backoff_base_seconds: float = Field(default=0.025, ge=0, le=10, description="First delay.")
    backoff_max_seconds: float = Field(default=1.0, ge=0, le=60, description="Largest delay.")
    deadline_seconds: float = Field(default=120, gt=0, le=3600, description="No attempt after.")
    budget_ratio: float = Field(default=0.2, ge=0, le=10, description="Retries per request.")
    regenerations: int = Field(
        default=1, ge=0, le=10, description="Re-sends of a whole answer that ran out of time."
    )

    @model_validator(mode="after")
    def _backoff(self) -> Retry:
        if self.backoff_max_seconds < self.backoff_base_seconds:
            raise ValueError("backoffMaxSeconds must be at least backoffBaseSeconds")
        return self


class Timeouts(Spec):
    """Per-upstream time limits in seconds; unset, each takes its default for the upstream's kind.

    Defaults (docs/reliability.md): in-cluster vLLM connect 2, firstByte 30, idle 30, total 600;
    external providers connect 10, firstByte 60, idle 120, total 900.
    """

    connect_seconds: float | None = Field(default=None, gt=0, description="TCP and TLS connect.")
    first_byte_seconds: float | None = Field(
        default=None, gt=0, description="A stream's request sent to its response headers."
    )
    idle_seconds: float | None = Field(
        default=None, gt=0, description="Longest silence in a stream."
    )
    total_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Generation timeout: a whole answer, or a whole stream, from one upstream.",
    )


class CircuitBreaker(Spec):
    """Per replica circuit breaker for every upstream of the policy."""

    consecutive_failures: int = Field(default=5, ge=1, le=1000, description="Opens after.")
    error_ratio: float = Field(default=0.5, gt=0, le=1, description="Or this error ratio.")
    open_seconds: float = Field(default=5, gt=0, le=3600, description="Before a probe.")


class Route(Spec):
    """A name clients call and how it picks among its candidates."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            ("self.strategy != 'weighted' || has(self.split)", "strategy weighted needs split"),
            ("!has(self.split) || self.strategy == 'weighted'", "split is only for weighted"),
            (
                "!has(self.split) || self.split.all(k, k in self.candidates)",
                "split names models that are not candidates",
            ),
            (
                "!has(self.split) || self.split.exists(k, self.split[k] > 0.0)",
                "split values must not all be 0",
            ),
            (
                "!has(self.preference) || self.preference.all(k, k in self.candidates)",
                "preference names models that are not candidates",
            ),
            (
                "!has(self.shadow) || !(self.shadow.model in self.candidates)",
                "the shadow model must not be a candidate of the same route",
            ),
        )
    }

    name: str = Field(pattern=MODEL_NAME, max_length=253, description="The model clients send.")
    candidates: list[ModelName] = Field(
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="Model names from the pools, most preferred first; the fallback chain.",
        json_schema_extra={
            "x-kubernetes-list-type": "atomic",  # a set's duplicate is a 500 on server-side apply
            **cel(("self.all(a, self.exists_one(b, b == a))", "candidates must be unique")),
        },
    )
    strategy: Strategy = Field(default="priority", description="Preset of scorer weights.")
    scorers: Scorers | None = Field(default=None, description="Override preset weights.")
    complexity: Complexity | None = Field(
        default=None, description="Quality mode or tier thresholds."
    )
    split: dict[str, Percent] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CANDIDATES,
        description="Weighted: percent of requests each candidate serves first.",
    )
    preference: dict[str, Unit] | None = Field(
        default=None,
        max_length=MAX_CANDIDATES,
        description="Explicit preference in [0, 1] per candidate.",
    )
    shadow: Shadow | None = Field(default=None, description="Shadow traffic.")
    retry: Retry = Field(default_factory=Retry, description="Retries and deadline.")
    mid_stream: MidStream = Field(
        default="continue", description="A stream cut after tokens: continue elsewhere or end."
    )
    on_content_filter: OnContentFilter = Field(
        default="fail", description="A content-filter refusal: answer it or try the next."
    )
    guard: Guard | None = Field(
        default=None,
        description="Quality guard: escalate a lower tier's low-confidence whole answer.",
    )

    @model_validator(mode="after")
    def _split(self) -> Route:
        members = set(self.candidates)
        if len(members) != len(self.candidates):
            raise ValueError("candidates must be unique")
        if self.strategy == "weighted" and self.split is None:
            raise ValueError("strategy weighted needs split")
        if self.split is not None and self.strategy != "weighted":
            raise ValueError("split is only for weighted")
        if self.split is not None and not set(self.split) <= members:
            raise ValueError("split names models that are not candidates")
        if self.split is not None and not any(v > 0 for v in self.split.values()):
            raise ValueError("split values must not all be 0")
        if self.preference is not None and not set(self.preference) <= members:
            raise ValueError("preference names models that are not candidates")
        if self.shadow is not None and self.shadow.model in members:
            raise ValueError("the shadow model must not be a candidate of the same route")
        return self


class Gateway(Spec):
    """The gateway Deployment the policy gets."""

    replicas: int = Field(default=2, ge=1, le=100, description="Gateway pods.")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Gateway processes per pod sharing its port (switchman gateway --workers): one event "
            "loop, and so about one CPU core, each; set with the pod's CPU request."
        ),
    )
    image: str = Field(default=DEFAULT_GATEWAY_IMAGE, description="Gateway image.")
    resources: dict[str, Any] = Field(
        default_factory=lambda: {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
        description="Container resources.",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="The gateway Service's type."
    )
    client_auth_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the admin token for /debug."
    )


def _unique_names(noun: str) -> dict[str, Any]:
    rule = "self.all(a, self.exists_one(b, b.name == a.name))"
    return cel((rule, f"{noun} names must be unique"))


class RoutingPolicySpec(Spec):
    """Routes over the models of the referenced pools."""

    pools: list[PoolRef] = Field(
        min_length=1,
        max_length=32,
        description="ModelPools in this namespace whose models the routes may use.",
        # Atomic lists with CEL uniqueness rules, not list-maps: server-side apply of a list-map
        # with a duplicate key fails before validation, as an API-server 500 instead of a 422.
        json_schema_extra={"x-kubernetes-list-type": "atomic", **_unique_names("pool")},
    )
    routes: list[Route] = Field(
        min_length=1,
        max_length=128,
        description="Routes, unique by name; a policy without one would serve nothing.",
        json_schema_extra={"x-kubernetes-list-type": "atomic", **_unique_names("route")},
    )
    timeouts: Timeouts = Field(
        default_factory=Timeouts,
        description="Upstream time limits; unset ones default by kind (in-cluster vLLM, provider).",
    )
    circuit_breaker: CircuitBreaker = Field(
        default_factory=CircuitBreaker, description="Per-replica breaker settings."
    )
    gateway: Gateway = Field(default_factory=Gateway, description="The gateway Deployment.")
    tenancy: PolicyTenancy | None = Field(
        default=None,
        description="Keys, tenants, rate limits and USD budgets; unset: the gateway is keyless.",
    )

    @model_validator(mode="after")
    def _unique(self) -> RoutingPolicySpec:
        for kind, names in (("pool", self.pools), ("route", self.routes)):
            if len({n.name for n in names}) != len(names):
                raise ValueError(f"{kind} names must be unique")
        return self


class RouteStatus(Spec):
    """A route as resolved against the pools."""

    name: str
    strategy: str
    candidates: list[str] = Field(default_factory=list)


class RoutingPolicyStatus(Spec):
    """Observed state, written by the operator."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    routes: list[RouteStatus] = Field(default_factory=list)
    unresolved: list[str] = Field(
        default_factory=list, description="Pools or models referenced but not found."
    )
