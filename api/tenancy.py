"""GatewayConfig tenancy: who may call the gateway, what they may use, and how much.

Part of the GatewayConfig contract (``gatewayconfig.GatewayConfig.tenancy``). Without a
``tenancy`` block the gateway is keyless (the plain demo, a private sidecar). With one, every
``/v1/*`` request needs a key: keys live only as SHA-256 hashes in a file (a mounted Secret)
named here, never in this document. Each tenant (a team with one or more keys) has allowed routes
and models, request and token rate limits (token buckets), and USD budgets per day and month with
a soft limit (a warning header) and a hard one (429 before the money is spent). Limits and
budgets are shared by every gateway replica through Redis when ``redis`` is set: synchronised
every ``redis.sync_s`` (default), or checked in Redis per request (``sync_s: 0``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from switchman.api.routes import Name
from switchman.api.validation import Strict


class Limits(Strict):
    """Token-bucket rate limits; unset means unlimited."""

    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(
        default=None,
        gt=0,
        description=(
            "Prompt + completion tokens. Admission takes the request's estimate (prompt size / 4 "
            "+ max_tokens); the response's actual usage settles the difference."
        ),
    )


class Budget(Strict):
    """USD spend allowed in one period (UTC day or UTC calendar month)."""

    hard_usd: float = Field(
        gt=0, description="Requests whose worst-case cost does not fit are refused with a 429."
    )
    soft_usd: float | None = Field(
        default=None,
        gt=0,
        description="Above this, responses carry x-switchman-budget-warning.",
    )

    @model_validator(mode="after")
    def _soft_below_hard(self) -> Budget:
        if self.soft_usd is not None and self.soft_usd > self.hard_usd:
            raise ValueError("soft_usd must not be above hard_usd")
        return self


class Tenant(Strict):
    """A team: its keys (by tenant name in the keys file), what it may use, and its limits."""

    name: Name = Field(description="Bounded label in metrics and the access log; never a key.")
    routes: list[Name] | None = Field(
        default=None, description="Routes the tenant may name; unset: every route."
    )
    models: list[Name] | None = Field(
        default=None,
        description=(
            "Models the tenant may name directly or be served by through a route; unset: every "
            "model (but none named directly when routes is set)."
        ),
    )
    limits: Limits = Field(default_factory=Limits)
    daily: Budget | None = None
    monthly: Budget | None = None


class Redis(Strict):
    """The shared store of limits and budgets (one Redis, or a primary behind a Service)."""

    url: str = Field(
        pattern=r"^(redis|rediss|unix)://[^@]*$",
        description="redis://host:6379/0 (no password here: see password).",
    )
    password_env: str | None = Field(
        default=None, description="Environment variable holding the Redis password."
    )
    password_file: str | None = Field(
        default=None, description="File holding the Redis password (a mounted Secret key)."
    )
    prefix: str = Field(default="switchman", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    timeout_s: float = Field(default=0.25, gt=0, description="Per command; then it is down.")
    sync_s: float = Field(
        default=0.05,
        ge=0,
        le=10,
        description=(
            "Each process admits and bills in memory and exchanges its deltas with Redis every "
            "sync_s (one pipelined round trip); replicas converge within an interval and may "
            "overshoot a shared limit by about replicas x rate x sync_s. 0: strict, every "
            "request is checked and billed in Redis atomically (two round trips per request)."
        ),
    )

    @model_validator(mode="after")
    def _one_password(self) -> Redis:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("set at most one of password_env and password_file")
        return self


class Tenancy(Strict):
    """Keys, tenants, limits and budgets (see the module docstring)."""

    keys_file: str = Field(
        description=(
            "File of key hashes (a mounted Secret): YAML or JSON, "
            "{keys: [{tenant: NAME, sha256: HEX, id: LABEL}]}. Re-read when it changes."
        )
    )
    tenants: list[Tenant] = Field(min_length=1)
    redis: Redis | None = Field(
        default=None, description="Shared limits; without it each gateway process counts alone."
    )
    on_redis_down: Literal["open", "closed"] = Field(
        default="open",
        description=(
            "open: go on counting in this process until Redis answers again; closed: refuse "
            "with 503 (synchronised: once the last sync is older than ten intervals)."
        ),
    )
    default_max_tokens: int = Field(
        default=1024,
        gt=0,
        description="Completion tokens reserved when a request sets no max_tokens.",
    )
    route_max_tokens: dict[Name, int] = Field(
        default_factory=dict, description="Per-route override of default_max_tokens."
    )
    reservation_ttl_s: float = Field(
        default=900,
        gt=0,
        description="A reservation never settled (the gateway died) is released after this.",
    )

    @model_validator(mode="after")
    def _unique_tenants(self) -> Tenancy:
        names = [t.name for t in self.tenants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate tenant names: {dupes}")
        return self


def check_references(tenancy: Tenancy, routes: set[str], models: set[str]) -> None:
    """Every route and model a tenant names exists (called by GatewayConfig's validation)."""
    for tenant in tenancy.tenants:
        unknown = sorted(set(tenant.routes or ()) - routes) + sorted(
            set(tenant.models or ()) - models
        )
        if unknown:
            raise ValueError(f"tenant {tenant.name!r}: unknown routes or models {unknown}")
    strays = sorted(set(tenancy.route_max_tokens) - routes)
    if strays:
        raise ValueError(f"tenancy.route_max_tokens: unknown routes {strays}")
