"""Map ``RoutingPolicy.spec.tenancy`` onto GatewayConfig's ``tenancy`` block (pure).

Called by ``gatewayconfig.to_gateway_config``. The keys Secret and the Redis password Secret
become files under the gateway's mounted-Secrets directory: only their paths enter the
GatewayConfig (and so the ConfigMap); the Secret names are returned so ``policy`` mounts them
and rolls the pods when they change. Tenants' route and model names are checked against the
rendered routes and models by the GatewayConfig validation that follows.
"""

from __future__ import annotations

from typing import Any

from switchman.api.v1alpha1.spec import SecretKeyRef
from switchman.api.v1alpha1.tenancy import PolicyTenancy, PolicyTenant
from switchman.operator.render.meta import SECRETS_DIR


def mounted(ref: SecretKeyRef) -> str:
    """Where the gateway reads a Secret key the operator mounts."""
    return f"{SECRETS_DIR}/{ref.name}/{ref.key}"


def to_tenancy(spec: PolicyTenancy) -> tuple[dict[str, Any], set[str]]:
    """The GatewayConfig ``tenancy`` block and the Secrets it needs mounted."""
    secrets = {spec.keys_secret.name}
    block: dict[str, Any] = {
        "keys_file": mounted(spec.keys_secret),
        "on_redis_down": spec.on_redis_down,
        "default_max_tokens": spec.default_max_tokens,
        "tenants": [_tenant(t) for t in spec.tenants],
    }
    if spec.redis is not None:
        redis: dict[str, Any] = {
            "url": spec.redis.url,
            "prefix": spec.redis.prefix,
            "sync_s": spec.redis.sync_seconds,
        }
        if spec.redis.password_secret is not None:
            redis["password_file"] = mounted(spec.redis.password_secret)
            secrets.add(spec.redis.password_secret.name)
        block["redis"] = redis
    return block, secrets


def _tenant(tenant: PolicyTenant) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": tenant.name,
        "limits": tenant.limits.model_dump(exclude_none=True),
    }
    for field in ("routes", "models"):
        if getattr(tenant, field) is not None:
            out[field] = list(getattr(tenant, field))
    for period in ("daily", "monthly"):
        budget = getattr(tenant, period)
        if budget is not None:
            out[period] = budget.model_dump(exclude_none=True)
    return out
