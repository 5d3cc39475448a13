"""RoutingPolicy ``spec.tenancy`` -> GatewayConfig ``tenancy`` and the gateway's mounted Secrets.

- the block maps field by field (tenants, limits, budgets, Redis, on_redis_down); the keys file
  and the Redis password are paths under the mounted-Secrets directory, their Secrets mounted
  read-only like every other Secret the gateway reads
- the ConfigMap's document holds no key material: the operator never reads a Secret's data
- a tenant naming a route or model the policy does not serve is an invalid spec (the policy's
  condition says which tenant, the gateway never gets the config)
- without ``tenancy`` the rendered config has none (keyless gateway)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.operator.render import InvalidSpec, render_policy

SECRETS = "/var/run/switchman/secrets"


def _objects(tenancy: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    pool = {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "ModelPool",
        "metadata": {"name": "apis", "namespace": "ml", "uid": "uid-apis"},
        "spec": {
            "models": [
                {
                    "name": "gpt",
                    "external": {
                        "provider": "openai",
                        "credentialsSecret": {"name": "openai", "key": "api-key"},
                    },
                    "price": {"inputPerMTok": 2.5, "outputPerMTok": 10},
                }
            ]
        },
    }
    spec: dict[str, Any] = {
        "pools": [{"name": "apis"}],
        "routes": [{"name": "auto", "candidates": ["gpt"]}],
    }
    if tenancy is not None:
        spec["tenancy"] = tenancy
    policy = {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "uid-policy", "generation": 1},
        "spec": spec,
    }
    return policy, {"apis": pool}


TENANCY = {
    "keysSecret": {"name": "switchman-keys", "key": "keys.yaml"},
    "redis": {
        "url": "redis://redis:6379/0",
        "passwordSecret": {"name": "redis-auth", "key": "pw"},
        "syncSeconds": 0.2,
    },
    "onRedisDown": "closed",
    "defaultMaxTokens": 256,
    "tenants": [
        {"name": "team-a", "routes": ["auto"], "limits": {"requestsPerMinute": 5}},
        {"name": "team-b", "daily": {"hardUsd": 2, "softUsd": 1}, "monthly": {"hardUsd": 40}},
    ],
}


def test_tenancy_renders_into_the_gateway_config_with_mounted_secret_paths() -> None:
    result = render_policy(*_objects(TENANCY))
    tenancy = result.config.tenancy
    assert tenancy is not None
    assert tenancy.keys_file == f"{SECRETS}/switchman-keys/keys.yaml"
    assert tenancy.redis is not None
    assert tenancy.redis.url == "redis://redis:6379/0"
    assert tenancy.redis.password_file == f"{SECRETS}/redis-auth/pw"
    assert tenancy.redis.sync_s == 0.2
    assert tenancy.on_redis_down == "closed"
    assert tenancy.default_max_tokens == 256
    a, b = tenancy.tenants
    assert (a.name, a.routes, a.limits.requests_per_minute) == ("team-a", ["auto"], 5)
    assert b.daily is not None
    assert (b.daily.hard_usd, b.daily.soft_usd) == (2, 1)
    assert b.monthly is not None
    assert b.monthly.hard_usd == 40
    assert set(result.secrets) == {"openai", "redis-auth", "switchman-keys"}
    pod = next(m for m in result.manifests if m["kind"] == "Deployment")["spec"]["template"]
    mounts = {m["mountPath"]: m for m in pod["spec"]["containers"][0]["volumeMounts"]}
    for secret in ("switchman-keys", "redis-auth"):
        assert mounts[f"{SECRETS}/{secret}"]["readOnly"] is True


def test_config_map_carries_paths_never_keys() -> None:
    result = render_policy(*_objects(TENANCY))
    (config_map,) = [m for m in result.manifests if m["kind"] == "ConfigMap"]
    text = json.dumps(config_map)
    assert "keys.yaml" in text
    assert "sha256" not in text


def test_a_tenant_naming_an_unserved_route_is_an_invalid_spec() -> None:
    bad = {**TENANCY, "tenants": [{"name": "team-a", "routes": ["nope"]}]}
    with pytest.raises(InvalidSpec) as refused:
        render_policy(*_objects(bad))
    assert "team-a" in str(refused.value)
    assert "nope" in str(refused.value)


def test_without_tenancy_the_gateway_is_keyless() -> None:
    assert render_policy(*_objects(None)).config.tenancy is None


def test_redis_sync_defaults_to_the_gateways_and_zero_means_strict() -> None:
    default = {**TENANCY, "redis": {"url": "redis://redis:6379/0"}}
    tenancy = render_policy(*_objects(default)).config.tenancy
    assert tenancy is not None
    assert tenancy.redis is not None
    assert tenancy.redis.sync_s == 0.05
    strict = {**TENANCY, "redis": {"url": "redis://redis:6379/0", "syncSeconds": 0}}
    tenancy = render_policy(*_objects(strict)).config.tenancy
    assert tenancy is not None
    assert tenancy.redis is not None
    assert tenancy.redis.sync_s == 0
