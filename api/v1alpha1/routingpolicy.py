"""``RoutingPolicy`` (short name ``rp``): how traffic reaches the models of one or more pools.

The operator renders a policy and the ModelPools it references into the gateway's ConfigMap
(a GatewayConfig, ``switchman.api.gatewayconfig``), the gateway Deployment, its Service and a
NetworkPolicy. Route fields mirror GatewayConfig's (``docs/routing.md``) in camelCase.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from switchman.api.v1alpha1.common import DNS_LABEL, MODEL_NAME, Condition, SecretKeyRef, Spec, cel

DEFAULT_GATEWAY_IMAGE = "ghcr.io/switchman-dev/switchman-gateway:0.1.0"

Strategy = Literal["priority", "cheapest", "fastest", "least-loaded", "complexity", "weighted"]


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

    tier: str = Field(min_length=1, description="A tier the candidates use.")
    min_complexity: float = Field(ge=0, le=1, description="Threshold in [0, 1].")


class Complexity(Spec):
    """Complexity thresholds mapping the classifier's score to a tier."""

    tiers: list[Tier] = Field(min_length=1, max_length=16, description="Ascending thresholds.")


class Shadow(Spec):
    """Mirror a share of requests to another model; answers are discarded."""

    model: str = Field(pattern=MODEL_NAME, description="The shadow model.")
    percent: float = Field(gt=0, le=100, description="Share of requests mirrored.")


class Retry(Spec):
    """Attempts, backoff, deadline and retry budget per request."""

    max_attempts: int = Field(default=3, ge=1, le=10, description="Attempts per request.")
    per_candidate: int = Field(default=2, ge=1, le=10, description="Attempts per model.")
    backoff_base_seconds: float = Field(default=0.025, ge=0, le=10, description="First delay.")
    backoff_max_seconds: float = Field(default=1.0, ge=0, le=60, description="Largest delay.")
    deadline_seconds: float = Field(default=120, gt=0, le=3600, description="No attempt after.")
    budget_ratio: float = Field(default=0.2, ge=0, le=10, description="Retries per request.")


class Timeouts(Spec):
    """Per-upstream time limits in seconds."""

    connect: float = Field(default=5, gt=0, description="TCP and TLS connect.")
    first_byte: float = Field(default=60, gt=0, description="Request sent to headers.")
    idle: float = Field(default=30, gt=0, description="Longest silence in a stream.")
    total: float = Field(default=600, gt=0, description="Whole exchange.")


class CircuitBreaker(Spec):
    """Per replica circuit breaker for every upstream of the policy."""

    consecutive_failures: int = Field(default=5, ge=1, le=1000, description="Opens after.")
    error_ratio: float = Field(default=0.5, gt=0, le=1, description="Or this error ratio.")
    open_seconds: float = Field(default=10, gt=0, le=3600, description="Before a probe.")


class Route(Spec):
    """A name clients call and how it picks among its candidates."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            ("self.strategy != 'weighted' || has(self.split)", "strategy weighted needs split"),
            ("!has(self.split) || self.strategy == 'weighted'", "split is only for weighted"),
        )
    }

    name: str = Field(pattern=MODEL_NAME, max_length=253, description="The model clients send.")
    candidates: list[str] = Field(
        min_length=1,
        max_length=32,
        description="Model names from the pools, most preferred first; the fallback chain.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    strategy: Strategy = Field(default="priority", description="Preset of scorer weights.")
    scorers: Scorers | None = Field(default=None, description="Override preset weights.")
    complexity: Complexity | None = Field(default=None, description="Tier thresholds.")
    split: dict[str, float] | None = Field(default=None, description="Weighted: percent each.")
    preference: dict[str, float] | None = Field(default=None, description="0..1 per model.")
    shadow: Shadow | None = Field(default=None, description="Shadow traffic.")
    retry: Retry = Field(default_factory=Retry, description="Retries and deadline.")
    mid_stream: Literal["continue", "terminate"] = Field(
        default="continue", description="A stream cut after tokens: continue elsewhere or end."
    )
    on_content_filter: Literal["fail", "next"] = Field(
        default="fail", description="A content-filter refusal: answer it or try the next."
    )

    @model_validator(mode="after")
    def _split(self) -> Route:
        if self.strategy == "weighted" and not self.split:
            raise ValueError("strategy weighted needs split")
        if self.split and self.strategy != "weighted":
            raise ValueError("split is only for weighted")
        return self


class Gateway(Spec):
    """The gateway Deployment the policy gets."""

    replicas: int = Field(default=2, ge=1, le=100, description="Gateway pods.")
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


class RoutingPolicySpec(Spec):
    """Routes over the models of the referenced pools."""

    pools: list[PoolRef] = Field(
        min_length=1,
        max_length=32,
        description="ModelPools in this namespace whose models the routes may use.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    routes: list[Route] = Field(
        default_factory=list,
        max_length=128,
        description="Routes, unique by name.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    timeouts: Timeouts = Field(default_factory=Timeouts, description="Upstream time limits.")
    circuit_breaker: CircuitBreaker = Field(
        default_factory=CircuitBreaker, description="Per-replica breaker settings."
    )
    gateway: Gateway = Field(default_factory=Gateway, description="The gateway Deployment.")


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
