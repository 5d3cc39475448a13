"""Map a RoutingPolicy and its ModelPools onto the gateway's GatewayConfig (pure).

Called by ``policy.render_policy``, which validates the custom resources first and turns the
result into manifests. One upstream per pool model (in-cluster vLLM: the headless Service's DNS
name, replicas discovered and scraped; external: provider defaults and a mounted-Secret file
reference), one GatewayConfig model per served name (LoRA adapters included), and the routes
with their unresolved candidates removed. The document is validated by
``switchman.api.gatewayconfig`` before it is returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from switchman.api.gatewayconfig import GatewayConfig
from switchman.api.v1alpha1.modelpool import ModelPoolSpec, PoolModel
from switchman.api.v1alpha1.routingpolicy import Route, RoutingPolicySpec, Timeouts
from switchman.api.v1alpha1.spec import SecretKeyRef
from switchman.api.validation import problems
from switchman.operator.render.meta import (
    SECRETS_DIR,
    VLLM_PORT,
    InvalidSpec,
    model_child,
    service_host,
)
from switchman.operator.render.tenancy import to_tenancy

# provider -> (upstream kind, default base URL, gen_ai.provider.name)
PROVIDERS: dict[str, tuple[str, str | None, str | None]] = {
    "openai": ("openai", "https://api.openai.com/v1", None),
    "anthropic": ("anthropic", "https://api.anthropic.com", None),
    "mistral": ("openai", "https://api.mistral.ai/v1", "mistral_ai"),
    "hf-router": ("openai", "https://router.huggingface.co/v1", "huggingface"),
    "azure-openai": ("azure-openai", None, None),
    "openai-compatible": ("openai", None, None),
}


# Timeouts the policy leaves unset, by upstream kind (documented in docs/reliability.md).
# In-cluster vLLM: a pod IP on the cluster network connects at once or is gone (fail over fast);
# a stream's headers and tokens come within its queueing and prefill; a whole answer is bounded
# by the generation timeout, never by first byte (vLLM sends its headers after generating).
VLLM_TIMEOUTS = {"connect_s": 2.0, "first_byte_s": 30.0, "idle_s": 30.0, "total_s": 600.0}
# External providers: TLS over the internet, provider-side queueing, and reasoning models that
# stream nothing while they think (idle), and long answers (total).
PROVIDER_TIMEOUTS = {"connect_s": 10.0, "first_byte_s": 60.0, "idle_s": 120.0, "total_s": 900.0}
MAX_OPEN_S = 30.0  # the breaker's longest open time: a recovered backend is probed within it


class UnresolvedReferences(InvalidSpec):
    """Nothing the policy references exists yet: no GatewayConfig can be rendered.

    A retry (not a spec fix) clears it once the pools appear; ``unresolved`` lists what is missing.
    """

    def __init__(self, unresolved: Sequence[str]) -> None:
        self.unresolved = list(unresolved)
        super().__init__("no model resolved: " + "; ".join(self.unresolved))


@dataclass(frozen=True, slots=True)
class Pool:
    """A referenced ModelPool, validated: its name, namespace and spec."""

    name: str
    namespace: str
    spec: ModelPoolSpec


@dataclass(frozen=True, slots=True)
class Mapped:
    """The GatewayConfig and what the policy's status and the gateway's pods need from it."""

    config: GatewayConfig
    routes: list[dict[str, Any]]
    unresolved: list[str]
    secrets: list[str]


def secret_file(ref: SecretKeyRef) -> dict[str, str]:
    """The GatewayConfig credential reference of a Secret key mounted into the gateway."""
    return {"file": f"{SECRETS_DIR}/{ref.name}/{ref.key}"}


def to_gateway_config(
    spec: RoutingPolicySpec, pools: Sequence[Pool], unresolved: Sequence[str] = ()
) -> Mapped:
    """The GatewayConfig of ``spec`` over ``pools``; ``unresolved`` carries earlier findings."""
    missing = list(unresolved)
    upstreams: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    secrets: set[str] = set()
    owners: dict[str, str] = {}
    for pool in pools:
        for model in pool.spec.models:
            upstream = _upstream(spec, pool, model)
            upstreams.append(upstream)
            if model.external is not None and model.external.credentials_secret is not None:
                secrets.add(model.external.credentials_secret.name)
            for entry in _models(model, upstream["name"]):
                _claim(owners, entry["name"], pool.name)
                models.append(entry)
    if not models:
        raise UnresolvedReferences(missing or ["the referenced pools have no models"])
    routes = [r for r in (_route(route, owners, missing) for route in spec.routes) if r]
    server: dict[str, Any] = {}
    if spec.gateway.client_auth_secret is not None:
        server["admin_token"] = secret_file(spec.gateway.client_auth_secret)
        secrets.add(spec.gateway.client_auth_secret.name)
    document = {
        "version": 1,
        "server": server,
        "upstreams": upstreams,
        "models": models,
        "routes": routes,
    }
    if spec.tenancy is not None:  # only Secret paths enter the document, never a key
        document["tenancy"], needed = to_tenancy(spec.tenancy)
        secrets.update(needed)
    return Mapped(
        config=_validated(document),
        routes=[
            {"name": r["name"], "strategy": r["strategy"], "candidates": list(r["candidates"])}
            for r in routes
        ],
        unresolved=missing,
        secrets=sorted(secrets),
    )


def _claim(owners: dict[str, str], name: str, pool: str) -> None:
    """Record that ``pool`` serves ``name``; a name served twice is a spec error."""
    first = owners.get(name)
    if first is None:
        owners[name] = pool
    elif first == pool:
        raise InvalidSpec(
            f"pool {pool!r} serves model {name!r} twice (a model and a LoRA adapter share the "
            "name); rename one"
        )
    else:
        raise InvalidSpec(
            f"model {name!r} is served by both pool {first!r} and pool {pool!r}; model names "
            "must be unique across a policy's pools (rename one)"
        )


def _timeouts(spec: Timeouts, in_cluster: bool) -> dict[str, float]:
    """The policy's timeouts, each unset one from the defaults for the upstream's kind."""
    defaults = VLLM_TIMEOUTS if in_cluster else PROVIDER_TIMEOUTS
    given = {
        "connect_s": spec.connect_seconds,
        "first_byte_s": spec.first_byte_seconds,
        "idle_s": spec.idle_seconds,
        "total_s": spec.total_seconds,
    }
    return {key: defaults[key] if value is None else value for key, value in given.items()}


def _upstream(spec: RoutingPolicySpec, pool: Pool, model: PoolModel) -> dict[str, Any]:
    breaker = spec.circuit_breaker
    upstream: dict[str, Any] = {
        "name": model_child(pool.name, model.name),
        "timeouts": _timeouts(spec.timeouts, model.vllm is not None),
        "circuit_breaker": {
            "consecutive_failures": breaker.consecutive_failures,
            "error_ratio": breaker.error_ratio,
            "open_s": breaker.open_seconds,
            # The gateway doubles open time per re-open up to this (so a recovered replica
            # without health checks gets traffic back within it); never below open_s.
            "max_open_s": max(MAX_OPEN_S, breaker.open_seconds),
        },
    }
    if model.vllm is not None:
        host = service_host(model_child(pool.name, model.name), pool.namespace)
        upstream |= {
            "kind": "openai",
            "base_url": f"http://{host}:{VLLM_PORT}/v1",
            "discovery": {"dns": host, "refresh_s": 5},
            "scrape": {"interval_s": 1},
            "health_check": {"path": "/health"},
            "continuation": "vllm",
        }
        return upstream
    external = model.external
    assert external is not None  # PoolModel: exactly one of vllm or external
    kind, default_url, provider_name = PROVIDERS[external.provider]
    upstream |= {"kind": kind, "base_url": external.base_url or default_url}
    if provider_name is not None:
        upstream["provider_name"] = provider_name
    if external.azure is not None:
        upstream["azure"] = external.azure.model_dump()
    if external.credentials_secret is not None:
        upstream["api_key"] = secret_file(external.credentials_secret)
    return upstream


def _models(model: PoolModel, upstream: str) -> list[dict[str, Any]]:
    caps = model.capabilities
    window = caps.context_window
    served = [(model.name, model.name)]
    if model.vllm is not None:
        limit = model.vllm.engine.max_model_len
        if limit is not None:
            # vLLM refuses longer requests, so never route one there.
            window = limit if window is None else min(window, limit)
        served += [(a.name, a.name) for a in model.vllm.engine.lora_adapters]
    elif model.external is not None:
        served = [(model.name, model.external.model or model.name)]
    capabilities: dict[str, Any] = {
        "vision": caps.vision,
        "tools": caps.tools,
        "json_schema": caps.json_schema,
        "context_window": window,
    }
    if caps.endpoints:
        capabilities["endpoints"] = list(caps.endpoints)
    common = {
        "upstream": upstream,
        "capabilities": capabilities,
        "price": None
        if model.price is None
        else {
            "input_per_mtok": model.price.input_per_m_tok,
            "output_per_mtok": model.price.output_per_m_tok,
        },
        "tier": model.tier,
    }
    return [{"name": name, "upstream_model": target, **common} for name, target in served]


def _route(route: Route, known: dict[str, str], unresolved: list[str]) -> dict[str, Any] | None:
    for name in [*route.candidates, *([route.shadow.model] if route.shadow else [])]:
        if name not in known and f"model {name} not in any pool" not in unresolved:
            unresolved.append(f"model {name} not in any pool")
    candidates = [c for c in route.candidates if c in known]
    if not candidates:
        unresolved.append(f"route {route.name} dropped: none of its candidates resolved")
        return None
    split = {k: v for k, v in (route.split or {}).items() if k in known}
    if route.strategy == "weighted" and sum(split.values()) <= 0:
        unresolved.append(f"route {route.name} dropped: no resolved candidate has a split share")
        return None
    out: dict[str, Any] = {
        "name": route.name,
        "candidates": candidates,
        "strategy": route.strategy,
        "scorers": route.scorers.model_dump() if route.scorers else {},
        "split": split,
        "preference": {k: v for k, v in (route.preference or {}).items() if k in known},
        "retry": {
            "max_attempts": route.retry.max_attempts,
            "per_candidate": route.retry.per_candidate,
            "backoff_base_s": route.retry.backoff_base_seconds,
            "backoff_max_s": route.retry.backoff_max_seconds,
            "deadline_s": route.retry.deadline_seconds,
            "budget_ratio": route.retry.budget_ratio,
            "regenerations": route.retry.regenerations,
        },
        "mid_stream": route.mid_stream,
        "on_content_filter": route.on_content_filter,
    }
    if route.complexity is not None:
        out["complexity"] = route.complexity.model_dump(exclude_defaults=True)
    if route.guard is not None:
        out["guard"] = route.guard.model_dump()
    if route.shadow is not None and route.shadow.model in known:
        out["shadow"] = route.shadow.model_dump()
    return out


def _validated(document: dict[str, Any]) -> GatewayConfig:
    try:
        return GatewayConfig.model_validate(document)
    except ValidationError as exc:
        # Never pydantic's default text: it echoes input values.
        found = "; ".join(problems(exc, lambda loc: _where(document, loc)))
        raise InvalidSpec(f"the rendered gateway config is invalid: {found}") from None


def _where(document: dict[str, Any], loc: tuple[int | str, ...]) -> str:
    """``route auto: complexity.tiers`` for a loc of ('routes', 0, 'complexity', 'tiers')."""
    if len(loc) >= 2 and loc[0] in ("routes", "models", "upstreams") and isinstance(loc[1], int):
        name = document[str(loc[0])][loc[1]]["name"]
        rest = ".".join(str(p) for p in loc[2:])
        return f"{str(loc[0])[:-1]} {name}" + (f": {rest}" if rest else "")
    return ".".join(str(p) for p in loc)
