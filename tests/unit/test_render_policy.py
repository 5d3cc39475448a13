"""RoutingPolicy (+ its ModelPools) -> gateway manifests and GatewayConfig (``render_policy``).

Scenario matrix:
- golden: the complexity example (02) and the failover example (03), byte for byte;
- GatewayConfig mapping: vLLM upstreams (headless-Service DNS discovery, scrape, health check,
  vllm continuation, policy timeouts and breaker), external provider defaults (every provider),
  models (served names, LoRA adapters, explicit capabilities, window capped by maxModelLen,
  price, tier), every route field, the admin token;
- secrets: file references, optional read-only volumes, the checksum (changes with a Secret's
  version, not with routes), missing Secrets reported;
- config changes leave the pod template alone (hot reload, no rollout);
- unresolved references: missing pool, invalid pool, unknown candidate, route with nothing left,
  unknown shadow, split shares of unresolved candidates, nothing resolved at all;
- spec errors: duplicate model names across pools, an invalid spec (no values echoed), a config
  the gateway would refuse;
- manifests: names, labels, owner references, order, security, volumes, Service, NetworkPolicy,
  and every one valid for the newest Kubernetes schema kubernetes-validate knows (strict).
"""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

from switchman.api.gatewayconfig import parse
from switchman.cli.render import dump_all
from switchman.operator.render import (
    InvalidSpec,
    PolicyRender,
    UnresolvedReferences,
)
from switchman.operator.render import render_policy as _render_policy

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden" / "render"
SECRETS = "/var/run/switchman/secrets"


def _objects(example: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The example's RoutingPolicy and ModelPools, with fixed uids as a cluster would give."""
    docs = []
    for path in sorted((ROOT / "examples" / example).glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for index, doc in enumerate(docs):
        doc["metadata"] |= {"namespace": "ml", "uid": f"00000000-0000-0000-0000-00000000000{index}"}
    pools = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ModelPool"}
    (policy,) = [d for d in docs if d["kind"] == "RoutingPolicy"]
    return policy, pools


def _pool(name: str, *models: dict[str, Any], namespace: str = "ml") -> dict[str, Any]:
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "ModelPool",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"},
        "spec": {"models": list(models)},
    }


def _vllm(name: str, tier: str = "default", **vllm: Any) -> dict[str, Any]:
    source = {"huggingFace": {"repo": "Qwen/Qwen2.5-0.5B-Instruct"}}
    return {"name": name, "tier": tier, "vllm": {"source": source, **vllm}}


def _external(name: str, tier: str = "default", **external: Any) -> dict[str, Any]:
    return {"name": name, "tier": tier, "external": external}


def _policy(*pools: str, routes: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    """A policy over ``pools``; without ``routes``, one route ``default`` over every model of
    those pools (a policy needs at least one route; the candidates are filled in at render)."""
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "uid-policy", "generation": 3},
        "spec": {
            "pools": [{"name": p} for p in pools],
            "routes": routes or [{"name": "default", "candidates": []}],
            **spec,
        },
    }


def render_policy(
    policy: dict[str, Any], pools: dict[str, dict[str, Any]], *args: Any
) -> PolicyRender:
    """``render_policy`` with ``_policy``'s placeholder route given every model of the pools."""
    routes = policy["spec"]["routes"]
    if routes == [{"name": "default", "candidates": []}]:
        found = [m for p in pools.values() for m in p.get("spec", {}).get("models", [])]
        models = list(dict.fromkeys(m["name"] for m in found if "vllm" in m or "external" in m))
        policy = copy.deepcopy(policy)
        policy["spec"]["routes"] = [{"name": "default", "candidates": models or ["none"]}]
    return _render_policy(policy, pools, *args)


def _manifest(result: PolicyRender, kind: str) -> dict[str, Any]:
    (found,) = [m for m in result.manifests if m["kind"] == kind]
    return found


def _template(result: PolicyRender) -> dict[str, Any]:
    template: dict[str, Any] = _manifest(result, "Deployment")["spec"]["template"]
    return template


# --- golden -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "golden"),
    [
        ("02-small-large-complexity", "policy-complexity.yaml"),
        ("03-failover-to-external", "policy-failover.yaml"),
    ],
)
def test_renders_the_example_exactly_as_the_golden_file(example: str, golden: str) -> None:
    policy, pools = _objects(example)
    text = dump_all(render_policy(policy, pools).manifests)
    path = GOLDEN / golden
    if os.environ.get("SWITCHMAN_UPDATE_GOLDEN"):
        path.write_text(text)
    expected = path.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True)))
    assert text == expected, (
        f"render differs from {path} (SWITCHMAN_UPDATE_GOLDEN=1 rewrites it):\n{diff}"
    )


def test_render_is_deterministic_and_does_not_modify_its_inputs() -> None:
    policy, pools = _objects("03-failover-to-external")
    before = copy.deepcopy((policy, pools))
    first = render_policy(policy, pools)
    assert (policy, pools) == before
    assert render_policy(policy, pools).manifests == first.manifests


# --- GatewayConfig mapping -----------------------------------------------------------------------


def test_vllm_model_becomes_a_discovered_scraped_health_checked_upstream() -> None:
    policy = _policy(
        "chat",
        timeouts={
            "connectSeconds": 2,
            "firstByteSeconds": 20,
            "idleSeconds": 15,
            "totalSeconds": 300,
        },
        circuitBreaker={"consecutiveFailures": 3, "errorRatio": 0.4, "openSeconds": 15},
    )
    result = render_policy(policy, {"chat": _pool("chat", _vllm("qwen-small"))})
    (upstream,) = result.config.upstreams
    host = "chat-qwen-small.ml.svc.cluster.local"  # the headless Service of render_pool
    assert upstream.name == "chat-qwen-small"
    assert upstream.kind == "openai"
    assert str(upstream.base_url) == f"http://{host}:8000/v1"
    assert upstream.discovery is not None
    assert (upstream.discovery.dns, upstream.discovery.refresh_s) == (host, 5)
    assert upstream.scrape is not None
    assert upstream.scrape.interval_s == 1
    assert upstream.health_check is not None
    assert upstream.health_check.path == "/health"
    assert upstream.continuation == "vllm"
    assert upstream.api_key is None
    assert upstream.timeouts.model_dump() == {
        "connect_s": 2,
        "first_byte_s": 20,
        "idle_s": 15,
        "total_s": 300,
    }
    breaker = upstream.circuit_breaker
    assert (breaker.consecutive_failures, breaker.error_ratio, breaker.open_s) == (3, 0.4, 15)


def test_long_breaker_open_time_raises_the_cap_instead_of_failing_validation() -> None:
    policy = _policy("chat", circuitBreaker={"openSeconds": 600})
    result = render_policy(policy, {"chat": _pool("chat", _vllm("m"))})
    breaker = result.config.upstreams[0].circuit_breaker
    assert (breaker.open_s, breaker.max_open_s) == (600, 600)


@pytest.mark.parametrize(
    ("external", "kind", "base_url", "provider_name"),
    [
        ({"provider": "openai"}, "openai", "https://api.openai.com/v1", None),
        ({"provider": "anthropic"}, "anthropic", "https://api.anthropic.com/", None),
        ({"provider": "mistral"}, "openai", "https://api.mistral.ai/v1", "mistral_ai"),
        ({"provider": "hf-router"}, "openai", "https://router.huggingface.co/v1", "huggingface"),
        (
            {"provider": "openai-compatible", "baseURL": "https://api.groq.com/openai/v1"},
            "openai",
            "https://api.groq.com/openai/v1",
            None,
        ),
        (
            {"provider": "openai", "baseURL": "https://eu.api.openai.com/v1"},
            "openai",
            "https://eu.api.openai.com/v1",
            None,
        ),
    ],
)
def test_external_provider_defaults(
    external: dict[str, Any], kind: str, base_url: str, provider_name: str | None
) -> None:
    pool = _pool("apis", _external("m", model="provider-id", **external))
    (upstream,) = render_policy(_policy("apis"), {"apis": pool}).config.upstreams
    assert (upstream.kind, str(upstream.base_url), upstream.provider_name) == (
        kind,
        base_url,
        provider_name,
    )
    assert upstream.discovery is None
    assert upstream.scrape is None
    assert upstream.health_check is None


def test_azure_openai_gets_its_deployment_block() -> None:
    azure = {"deployment": "gpt-4o-prod", "apiVersion": "2025-01-01"}
    model = _external(
        "gpt-4o",
        provider="azure-openai",
        baseURL="https://contoso.openai.azure.com",
        azure=azure,
    )
    (upstream,) = render_policy(_policy("az"), {"az": _pool("az", model)}).config.upstreams
    assert upstream.kind == "azure-openai"
    assert str(upstream.base_url) == "https://contoso.openai.azure.com/"
    assert upstream.azure is not None
    assert (upstream.azure.deployment, upstream.azure.api_version) == ("gpt-4o-prod", "2025-01-01")


def test_models_carry_served_names_explicit_capabilities_price_and_tier() -> None:
    lora = [{"name": "sql-lora", "source": "org/sql-adapter"}]
    pool = _pool(
        "chat",
        {
            **_vllm("small", tier="small", engine={"maxModelLen": 4096, "loraAdapters": lora}),
            "capabilities": {"tools": True, "contextWindow": 32768},
            "price": {"inputPerMTok": 0.02, "outputPerMTok": 0.04},
        },
        {
            **_external("gpt", tier="large", provider="openai", model="gpt-4o-mini"),
            "capabilities": {"vision": True, "jsonSchema": True, "contextWindow": 128000},
        },
        _external("claude", provider="anthropic"),
    )
    config = render_policy(_policy("chat"), {"chat": pool}).config
    models = {m.name: m for m in config.models}
    assert list(models) == ["small", "sql-lora", "gpt", "claude"]
    assert models["small"].upstream == "chat-small"
    assert models["small"].upstream_model == "small"  # vLLM's --served-model-name
    assert models["sql-lora"].upstream == "chat-small"
    assert models["sql-lora"].upstream_model == "sql-lora"
    assert models["gpt"].upstream_model == "gpt-4o-mini"
    assert models["claude"].upstream_model == "claude"
    small = models["small"].capabilities
    # Explicit booleans: the gateway filters on false, and treats unset as unknown.
    assert (small.vision, small.tools, small.json_schema) == (False, True, False)
    assert small.context_window == 4096  # vLLM refuses more than --max-model-len
    gpt = models["gpt"].capabilities
    assert (gpt.vision, gpt.tools, gpt.json_schema, gpt.context_window) == (
        True,
        False,
        True,
        128000,
    )
    price = models["small"].price
    assert price is not None
    assert (price.input_per_mtok, price.output_per_mtok) == (0.02, 0.04)
    assert (models["small"].tier, models["gpt"].tier, models["claude"].tier) == (
        "small",
        "large",
        "default",
    )


def test_every_route_field_is_mapped() -> None:
    pool = _pool("chat", _vllm("a", tier="small"), _vllm("b", tier="large"), _vllm("c"))
    route = {
        "name": "auto",
        "candidates": ["a", "b"],
        "strategy": "complexity",
        "scorers": {"load": 0.3, "cost": 0.1},
        "complexity": {
            "tiers": [
                {"tier": "small", "minComplexity": 0},
                {"tier": "large", "minComplexity": 0.6},
            ]
        },
        "preference": {"b": 0.8},
        "shadow": {"model": "c", "percent": 5},
        "retry": {
            "maxAttempts": 4,
            "perCandidate": 1,
            "backoffBaseSeconds": 0.05,
            "backoffMaxSeconds": 2,
            "deadlineSeconds": 30,
            "budgetRatio": 0.5,
        },
        "midStream": "terminate",
        "onContentFilter": "next",
    }
    result = render_policy(_policy("chat", routes=[route]), {"chat": pool})
    (out,) = result.config.routes
    assert out.candidates == ["a", "b"]
    assert out.strategy == "complexity"
    assert (out.scorers.load, out.scorers.cost, out.scorers.latency) == (0.3, 0.1, None)
    assert out.complexity is not None
    assert [(t.tier, t.min_complexity) for t in out.complexity.tiers] == [
        ("small", 0),
        ("large", 0.6),
    ]
    assert out.preference == {"b": 0.8}
    assert out.shadow is not None
    assert (out.shadow.model, out.shadow.percent) == ("c", 5)
    retry = out.retry
    assert (retry.max_attempts, retry.per_candidate, retry.backoff_base_s) == (4, 1, 0.05)
    assert (retry.backoff_max_s, retry.deadline_s, retry.budget_ratio) == (2, 30, 0.5)
    assert (out.mid_stream, out.on_content_filter) == ("terminate", "next")
    assert result.routes == [{"name": "auto", "strategy": "complexity", "candidates": ["a", "b"]}]


def test_weighted_split_is_mapped() -> None:
    route = {
        "name": "chat",
        "candidates": ["stable", "canary"],
        "strategy": "weighted",
        "split": {"stable": 90, "canary": 10},
    }
    pool = _pool("p", _vllm("stable"), _vllm("canary"))
    (out,) = render_policy(_policy("p", routes=[route]), {"p": pool}).config.routes
    assert out.split == {"stable": 90, "canary": 10}


def test_config_map_holds_the_config_the_gateway_would_load() -> None:
    policy, pools = _objects("02-small-large-complexity")
    result = render_policy(policy, pools)
    config_map = _manifest(result, "ConfigMap")
    assert config_map["metadata"]["name"] == "assistants-gateway-config"
    assert list(config_map["data"]) == ["gateway.yaml"]
    assert parse(config_map["data"]["gateway.yaml"]) == result.config


# --- secrets -----------------------------------------------------------------------------------


def _secret_policy(**gateway: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    pool = _pool(
        "apis",
        _external("gpt", provider="openai", credentialsSecret={"name": "openai", "key": "api-key"}),
        _external(
            "claude", provider="anthropic", credentialsSecret={"name": "anthropic", "key": "k"}
        ),
        _external("mini", provider="openai", credentialsSecret={"name": "openai", "key": "other"}),
    )
    return _policy("apis", gateway=gateway), {"apis": pool}


def test_secrets_become_file_references_and_read_only_optional_volumes() -> None:
    policy, pools = _secret_policy(clientAuthSecret={"name": "admin", "key": "token"})
    result = render_policy(policy, pools)
    keys = {u.name: u.api_key for u in result.config.upstreams}
    assert keys["apis-gpt"] is not None
    assert keys["apis-gpt"].file == f"{SECRETS}/openai/api-key"
    assert keys["apis-claude"] is not None
    assert keys["apis-claude"].file == f"{SECRETS}/anthropic/k"
    assert result.config.server.admin_token is not None
    assert result.config.server.admin_token.file == f"{SECRETS}/admin/token"
    assert result.secrets == ["admin", "anthropic", "openai"]
    pod = _template(result)["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for secret in result.secrets:
        mount = mounts[f"{SECRETS}/{secret}"]
        assert mount["readOnly"] is True
        assert "subPath" not in mount
        assert volumes[mount["name"]]["secret"] == {
            "secretName": secret,
            "defaultMode": 0o440,
            "optional": True,  # a missing Secret makes its upstream unusable, not the gateway
        }


def test_checksum_follows_secret_versions_but_not_routes() -> None:
    policy, pools = _secret_policy()
    checksum = "switchman.dev/secrets-checksum"
    base = _template(render_policy(policy, pools, {"openai": "10", "anthropic": "20"}))
    rotated = _template(render_policy(policy, pools, {"openai": "11", "anthropic": "20"}))
    assert rotated["metadata"]["annotations"][checksum] != base["metadata"]["annotations"][checksum]
    rerouted_policy = copy.deepcopy(policy)
    rerouted_policy["spec"]["routes"] = [{"name": "auto", "candidates": ["claude", "gpt"]}]
    rerouted = render_policy(rerouted_policy, pools, {"openai": "10", "anthropic": "20"})
    assert _template(rerouted) == base


def test_offline_checksum_covers_secret_names() -> None:
    policy, pools = _secret_policy()
    offline = _template(render_policy(policy, pools))
    renamed = copy.deepcopy(pools)
    renamed["apis"]["spec"]["models"][0]["external"]["credentialsSecret"]["name"] = "openai-2"
    annotations = offline["metadata"]["annotations"]
    other = _template(render_policy(policy, renamed))["metadata"]["annotations"]
    assert len(annotations["switchman.dev/secrets-checksum"]) == 64
    assert other != annotations


def test_missing_secrets_are_reported_when_versions_are_known() -> None:
    policy, pools = _secret_policy()
    result = render_policy(policy, pools, {"openai": "10"})
    assert result.unresolved == ["secret anthropic not found"]
    assert render_policy(policy, pools).unresolved == []  # offline: unknown, not missing


def test_config_changes_do_not_touch_the_pod_template() -> None:
    policy, pools = _objects("02-small-large-complexity")
    before = render_policy(policy, pools)
    changed = copy.deepcopy(policy)
    changed["spec"]["routes"][0]["complexity"]["tiers"][1]["minComplexity"] = 0.7
    changed["spec"]["timeouts"]["firstByteSeconds"] = 10
    after = render_policy(changed, pools)
    assert _manifest(after, "ConfigMap")["data"] != _manifest(before, "ConfigMap")["data"]
    assert _manifest(after, "Deployment") == _manifest(before, "Deployment")


# --- unresolved references ---------------------------------------------------------------------


def test_missing_pools_and_models_are_listed_and_their_routes_trimmed() -> None:
    pool = _pool("chat", _vllm("small"), _vllm("large"))
    routes: list[dict[str, Any]] = [
        {"name": "auto", "candidates": ["small", "gpt-5", "large"], "preference": {"gpt-5": 1}},
        {"name": "ghost", "candidates": ["gpt-5", "o3"]},
        {"name": "mirror", "candidates": ["small"], "shadow": {"model": "o3", "percent": 5}},
    ]
    result = render_policy(_policy("chat", "chat-pools", routes=routes), {"chat": pool})
    assert result.unresolved == [
        "pool chat-pools not found",
        "model gpt-5 not in any pool",
        "model o3 not in any pool",
        "route ghost dropped: none of its candidates resolved",
    ]
    routes_out = {r.name: r for r in result.config.routes}
    assert list(routes_out) == ["auto", "mirror"]
    assert routes_out["auto"].candidates == ["small", "large"]
    assert routes_out["auto"].preference == {}
    assert routes_out["mirror"].shadow is None
    assert [r["name"] for r in result.routes] == ["auto", "mirror"]
    # The NetworkPolicy still names the missing pool, so its pods are covered once it exists.
    selector = _manifest(result, "NetworkPolicy")["spec"]["podSelector"]
    assert selector["matchExpressions"][0]["values"] == ["chat", "chat-pools"]


def test_weighted_route_without_a_resolved_share_is_dropped() -> None:
    route = {
        "name": "canary",
        "candidates": ["stable", "next"],
        "strategy": "weighted",
        "split": {"next": 100},
    }
    result = render_policy(_policy("p", routes=[route]), {"p": _pool("p", _vllm("stable"))})
    assert result.config.routes == []
    assert "route canary dropped: no resolved candidate has a split share" in result.unresolved


def test_an_invalid_pool_is_skipped_and_reported() -> None:
    broken = _pool("broken", {"name": "x"})  # neither vllm nor external
    result = render_policy(
        _policy("chat", "broken"), {"chat": _pool("chat", _vllm("a")), "broken": broken}
    )
    assert result.unresolved == ["pool broken has an invalid spec (see its conditions)"]
    assert [m.name for m in result.config.models] == ["a"]


def test_nothing_resolved_raises_unresolved_references() -> None:
    with pytest.raises(UnresolvedReferences) as caught:
        render_policy(_policy("chat"), {})
    assert isinstance(caught.value, InvalidSpec)
    assert caught.value.unresolved == ["pool chat not found"]
    assert "pool chat not found" in str(caught.value)


# --- spec errors -------------------------------------------------------------------------------


def test_duplicate_model_names_across_pools_name_both_pools() -> None:
    pools = {
        "a": _pool("a", _vllm("llama")),
        "b": _pool("b", _external("llama", provider="openai")),
    }
    with pytest.raises(InvalidSpec, match="model 'llama' is served by both pool 'a' and pool 'b'"):
        render_policy(_policy("a", "b"), pools)


def test_lora_adapter_clashing_with_a_model_is_refused() -> None:
    lora = [{"name": "other", "source": "org/adapter"}]
    pool = _pool("p", _vllm("base", engine={"loraAdapters": lora}), _vllm("other"))
    with pytest.raises(InvalidSpec, match="pool 'p' serves model 'other' twice"):
        render_policy(_policy("p"), {"p": pool})


def test_invalid_spec_names_the_field_without_echoing_values() -> None:
    policy = _policy("chat", routes=[{"name": "auto", "candidates": ["a"], "strategy": "sk-live"}])
    policy["spec"]["gateway"] = {"serviceType": "sk-secret-value"}
    with pytest.raises(InvalidSpec) as caught:
        render_policy(policy, {"chat": _pool("chat", _vllm("a"))})
    message = str(caught.value)
    assert message.startswith("RoutingPolicy chat: invalid spec:")
    assert "spec.routes[0].strategy" in message
    assert "spec.gateway.serviceType" in message
    assert "sk-live" not in message
    assert "sk-secret-value" not in message


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        (
            {
                "name": "auto",
                "candidates": ["a"],
                "strategy": "complexity",
                "complexity": {"tiers": [{"tier": "small", "minComplexity": 0}]},
            },
            "route 'auto': candidate tiers ['default'] are not in complexity.tiers",
        ),
        ({"name": "a", "candidates": ["a"]}, "names used by both a model and a route: ['a']"),
    ],
)
def test_a_config_the_gateway_would_refuse_is_an_invalid_spec(
    route: dict[str, Any], expected: str
) -> None:
    with pytest.raises(InvalidSpec) as caught:
        render_policy(_policy("chat", routes=[route]), {"chat": _pool("chat", _vllm("a"))})
    assert str(caught.value) == f"the rendered gateway config is invalid: {expected}"


# --- manifests ---------------------------------------------------------------------------------


def test_manifests_are_named_labelled_and_owned_by_the_policy() -> None:
    result = render_policy(_policy("chat"), {"chat": _pool("chat", _vllm("a"))})
    assert [(m["kind"], m["metadata"]["name"]) for m in result.manifests] == [
        ("ConfigMap", "chat-gateway-config"),
        ("Deployment", "chat-gateway"),
        ("Service", "chat-gateway"),
        ("NetworkPolicy", "chat-gateway-to-models"),
    ]
    for manifest in result.manifests:
        meta = manifest["metadata"]
        assert meta["namespace"] == "ml"
        assert meta["labels"] == {
            "app.kubernetes.io/name": "switchman-gateway",
            "app.kubernetes.io/instance": "chat-gateway",
            "app.kubernetes.io/component": "gateway",
            "app.kubernetes.io/part-of": "switchman",
            "app.kubernetes.io/managed-by": "switchman-operator",
            "switchman.dev/policy": "chat",
        }
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "switchman.dev/v1alpha1",
                "kind": "RoutingPolicy",
                "name": "chat",
                "uid": "uid-policy",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


def test_gateway_deployment_runs_restricted_and_mounts_the_config_directory() -> None:
    policy = _policy("chat", gateway={"replicas": 3, "image": "example.internal/switchman:1.2.3"})
    result = render_policy(policy, {"chat": _pool("chat", _vllm("a"))})
    deployment = _manifest(result, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"] == {
        "matchLabels": {"app.kubernetes.io/instance": "chat-gateway"}
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod
    (container,) = pod["containers"]
    assert container["image"] == "example.internal/switchman:1.2.3"
    assert container["args"] == [
        "gateway",
        "--config",
        "/etc/switchman/gateway.yaml",
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    # The ConfigMap as a directory (no subPath): updates reach the file, the gateway reloads.
    assert mounts["config"] == {"name": "config", "mountPath": "/etc/switchman", "readOnly": True}
    assert mounts["tmp"]["mountPath"] == "/tmp"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"] == {"name": "config", "configMap": {"name": "chat-gateway-config"}}
    assert "emptyDir" in volumes["tmp"]


def test_service_exposes_http_with_the_requested_type() -> None:
    policy = _policy("chat", gateway={"serviceType": "LoadBalancer"})
    service = _manifest(render_policy(policy, {"chat": _pool("chat", _vllm("a"))}), "Service")
    assert service["spec"] == {
        "type": "LoadBalancer",
        "selector": {"app.kubernetes.io/instance": "chat-gateway"},
        "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}],
    }


def test_network_policy_admits_only_this_gateway_to_the_pools_vllm_pods() -> None:
    pools = {"b": _pool("b", _vllm("x")), "a": _pool("a", _vllm("y"))}
    result = render_policy(_policy("b", "a"), pools)
    spec = _manifest(result, "NetworkPolicy")["spec"]
    assert spec["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "vllm"},
        "matchExpressions": [{"key": "switchman.dev/pool", "operator": "In", "values": ["a", "b"]}],
    }
    assert spec["policyTypes"] == ["Ingress"]
    assert spec["ingress"] == [
        {
            "from": [
                {"podSelector": {"matchLabels": {"app.kubernetes.io/instance": "chat-gateway"}}}
            ],
            "ports": [{"protocol": "TCP", "port": 8000}],
        }
    ]


@pytest.mark.parametrize(
    "example",
    sorted(p.name for p in (ROOT / "examples").iterdir() if p.is_dir()),
)
def test_every_manifest_is_valid_for_the_newest_kubernetes(example: str) -> None:
    policy, pools = _objects(example)
    result = render_policy(policy, pools, {s: "1" for s in ("openai-api-key",)})
    for manifest in result.manifests:
        kubernetes_validate.validate(manifest, latest_version(), strict=True)


def test_unset_price_and_window_render_as_unknown_not_free_or_8192() -> None:
    pool = _pool(
        "chat",
        _external("claude", provider="anthropic"),
        _vllm("small", engine={"maxModelLen": 4096}),
        {**_vllm("big"), "capabilities": {"contextWindow": 32768}},
    )
    models = {m.name: m for m in render_policy(_policy("chat"), {"chat": pool}).config.models}
    assert models["claude"].price is None
    assert models["claude"].capabilities.context_window is None
    assert models["small"].capabilities.context_window == 4096  # vLLM's own limit
    assert models["big"].capabilities.context_window == 32768
