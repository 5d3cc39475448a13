"""GatewayConfig blocks that say how one upstream's replicas are found, balanced and protected.

Part of the GatewayConfig contract (``gatewayconfig`` composes them into ``Upstream``). An
upstream is one logical API; its *endpoints* are the replicas behind it: the DNS A records of an
in-cluster model's headless Service, a static list, or just the host of ``base_url``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from switchman.api.validation import Strict

HostPort = Annotated[str, Field(pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")]


class Discovery(Strict):
    """Where the replicas are: exactly one of a DNS name (all its A records) or a static list."""

    dns: str | None = Field(
        default=None,
        min_length=1,
        description="Name whose A/AAAA records are the replicas, e.g. a headless Service.",
    )
    port: int | None = Field(
        default=None, ge=1, le=65535, description="Replica port for dns; default base_url's."
    )
    static: list[HostPort] = Field(
        default_factory=list, description="Fixed replica addresses as host:port."
    )
    refresh_s: float = Field(default=5.0, ge=0.5, le=300, description="DNS re-resolve period.")

    @model_validator(mode="after")
    def _one_source(self) -> Discovery:
        if (self.dns is None) == (not self.static):
            raise ValueError("set exactly one of 'dns' or 'static'")
        if self.static and self.port is not None:
            raise ValueError("'port' is only for 'dns'; static entries carry their own port")
        return self


class Scrape(Strict):
    """Read each replica's load from its vLLM Prometheus metrics."""

    path: str = Field(default="/metrics", pattern=r"^/")
    interval_s: float = Field(default=1.0, ge=0.1, le=60)
    timeout_s: float = Field(default=0.5, gt=0, le=10)
    stale_after_s: float = Field(
        default=5.0, gt=0, description="Older samples are ignored (the replica's load is unknown)."
    )


class Balance(Strict):
    """How a request picks one replica of the upstream."""

    policy: Literal["least-loaded", "round-robin", "random"] = "least-loaded"
    prefix_affinity: bool = Field(
        default=True,
        description=(
            "Send prompts sharing leading blocks to the same replica (warm prefix cache), "
            "within the bounded-load limit."
        ),
    )
    block_chars: int = Field(
        default=256, ge=16, le=65536, description="Prompt characters per affinity block."
    )
    max_blocks: int = Field(default=16, ge=1, le=256, description="Leading blocks hashed.")
    load_factor: float = Field(
        default=1.25,
        ge=1.0,
        le=10.0,
        description="Bounded load: affinity may pick a replica up to this times the mean load.",
    )
    session_header: str | None = Field(
        default=None,
        min_length=1,
        description="Request header whose value pins a session to a replica (e.g. x-session-id).",
    )


class HealthCheck(Strict):
    """Active health checks of every replica (vLLM answers GET /health)."""

    path: str = Field(default="/health", pattern=r"^/")
    interval_s: float = Field(default=5.0, ge=0.2, le=300)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    unhealthy_after: int = Field(default=2, ge=1, le=100, description="Failed checks in a row.")
    healthy_after: int = Field(default=1, ge=1, le=100, description="Passed checks in a row.")


class CircuitBreaker(Strict):
    """Per replica: stop sending to one that keeps failing, probe it, let it back on success."""

    enabled: bool = True
    consecutive_failures: int = Field(default=5, ge=1, le=1000)
    error_ratio: float = Field(
        default=0.5, gt=0, le=1, description="Opens when failures/requests in the window reach it."
    )
    min_requests: int = Field(
        default=20, ge=1, description="Requests in the window before error_ratio applies."
    )
    window_s: float = Field(default=30.0, gt=0, le=3600)
    open_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        description=(
            "Open time before the first half-open probe (a passing active health check ends "
            "it at once)."
        ),
    )
    max_open_s: float = Field(
        default=30.0,
        gt=0,
        le=86400,
        description=(
            "Open time doubles per re-open up to this: the longest a recovered replica without "
            "health checks waits to get traffic back."
        ),
    )
    half_open_requests: int = Field(
        default=1, ge=1, le=100, description="Concurrent trial requests while half-open."
    )

    @model_validator(mode="after")
    def _open_bounds(self) -> CircuitBreaker:
        if self.max_open_s < self.open_s:
            raise ValueError("max_open_s must be at least open_s")
        return self


class Retry(Strict):
    """Attempts, backoff and limits for one request (a route's, or the server default)."""

    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Upstream attempts per request, across candidates."
    )
    per_candidate: int = Field(
        default=2,
        ge=1,
        le=10,
        description="Attempts on one model (another replica each time) before the next model.",
    )
    backoff_base_s: float = Field(
        default=0.025, ge=0, le=10, description="First retry delay on the same model."
    )
    backoff_max_s: float = Field(default=1.0, ge=0, le=60)
    deadline_s: float = Field(
        default=120.0, gt=0, le=3600, description="No new attempt starts after this."
    )
    regenerations: int = Field(
        default=1,
        ge=0,
        le=10,
        description=(
            "Times a non-streamed request whose generation ran out of time (timeouts.total_s) "
            "is sent again elsewhere; each one pays for the whole generation again."
        ),
    )
    retry_after_max_s: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description=(
            "A 429's Retry-After up to this is waited out when no other model is left; longer "
            "ones skip that model until the time passes."
        ),
    )
    budget_ratio: float = Field(
        default=0.2,
        ge=0,
        le=10,
        description="Retries may add at most this fraction on top of first attempts (per route).",
    )
    budget_min_per_s: float = Field(
        default=5.0, ge=0, description="Retries always allowed per second regardless of ratio."
    )

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Retry:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be at least backoff_base_s")
        return self
