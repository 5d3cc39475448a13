"""``RoutingPolicy.spec.tenancy``: the policy's tenants, their limits and budgets, and where the
gateway finds their keys' hashes.

A field of RoutingPolicy rather than a kind of its own: the gateway Deployment, its GatewayConfig
and its Redis are per policy, so tenants are too, and one object is rendered, validated and
reported in one status. The keys themselves never appear in a custom resource: ``keysSecret``
names a Secret key holding the keys file (SHA-256 hashes only, ``switchman keys new`` makes
entries); the operator mounts it into the gateway pods and writes only its path into the
GatewayConfig. Rendered by ``operator.render.gatewayconfig`` into GatewayConfig's ``tenancy``
block (``api.tenancy``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from switchman.api.v1alpha1.spec import DNS_LABEL, SecretKeyRef, Spec, cel

Name = Annotated[str, Field(min_length=1, max_length=253)]


class TenantLimits(Spec):
    """Token-bucket rate limits; unset means unlimited."""

    requests_per_minute: int | None = Field(
        default=None, ge=1, le=10**9, description="Requests per minute."
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        le=10**12,
        description="Prompt + completion tokens per minute (estimated at admission, settled "
        "from actual usage).",
    )


class TenantBudget(Spec):
    """USD allowed per period (UTC day or month)."""

    model_config = Spec.model_config | {
        "json_schema_extra": cel(
            (
                "!has(self.softUsd) || self.softUsd <= self.hardUsd",
                "softUsd must not exceed hardUsd",
            )
        )
    }

    hard_usd: float = Field(
        gt=0, le=10**9, description="Requests whose worst-case cost does not fit get a 429."
    )
    soft_usd: float | None = Field(
        default=None, gt=0, le=10**9, description="Past it, responses carry a warning header."
    )

    @model_validator(mode="after")
    def _soft_below_hard(self) -> TenantBudget:
        if self.soft_usd is not None and self.soft_usd > self.hard_usd:
            raise ValueError("softUsd must not exceed hardUsd")
        return self


class PolicyTenant(Spec):
    """A team: its keys are the keys file's entries with its name."""

    name: str = Field(pattern=DNS_LABEL, max_length=63, description="Tenant name (a label).")
    routes: list[Name] | None = Field(
        default=None,
        max_length=128,
        description="Routes the tenant may call; unset: every route.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    models: list[Name] | None = Field(
        default=None,
        max_length=128,
        description="Models the tenant may be served by (and name directly); unset: every model "
        "(none directly when routes is set).",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    limits: TenantLimits = Field(default_factory=TenantLimits, description="Rate limits.")
    daily: TenantBudget | None = Field(default=None, description="Budget per UTC day.")
    monthly: TenantBudget | None = Field(default=None, description="Budget per UTC month.")


class TenancyRedis(Spec):
    """The Redis all gateway pods share limits and budgets through."""

    url: str = Field(
        pattern=r"^(redis|rediss)://[^@/]+(/[0-9]+)?$",
        max_length=512,
        description="redis://HOST:PORT/DB (the password, if any, in passwordSecret).",
    )
    password_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the Redis password."
    )
    prefix: str = Field(
        default="switchman",
        pattern=r"^[A-Za-z0-9_.:-]+$",
        max_length=64,
        description="Key prefix (several policies may share one Redis).",
    )
    sync_seconds: float = Field(
        default=0.05,
        ge=0,
        le=10,
        description=(
            "How often each pod exchanges its counts with Redis (pods may overshoot a shared "
            "limit by about pods x rate x syncSeconds); 0: every request checked in Redis."
        ),
    )


class PolicyTenancy(Spec):
    """Keys required on every request, per-tenant limits and budgets (docs/tenancy.md)."""

    keys_secret: SecretKeyRef = Field(
        description="Secret key holding the keys file: {keys: [{tenant, sha256}]}, hashes only."
    )
    tenants: list[PolicyTenant] = Field(
        min_length=1,
        max_length=256,
        description="Tenants, unique by name.",
        json_schema_extra={
            "x-kubernetes-list-type": "atomic",
            **cel(
                ("self.all(a, self.exists_one(b, b.name == a.name))", "tenant names must be unique")
            ),
        },
    )
    redis: TenancyRedis | None = Field(
        default=None, description="Shared limits; without it each gateway pod counts alone."
    )
    on_redis_down: Literal["open", "closed"] = Field(
        default="open",
        description="open: each pod's own limits until Redis answers; closed: refuse (503).",
    )
    default_max_tokens: int = Field(
        default=1024, ge=1, le=10**7, description="Reserved when a request sets no max_tokens."
    )

    @model_validator(mode="after")
    def _unique(self) -> PolicyTenancy:
        if len({t.name for t in self.tenants}) != len(self.tenants):
            raise ValueError("tenant names must be unique")
        return self
