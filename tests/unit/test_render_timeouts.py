"""Timeouts and breaker open times the operator renders, by upstream kind.

Scenario matrix:
- a policy without timeouts: in-cluster vLLM upstreams get the in-cluster defaults (connect 2,
  first byte 30, idle 30, total 600) and external providers theirs (10, 60, 120, 900): a
  provider's reasoning model may be silent for a minute, a pod IP answers at once or is gone
- a value set in the policy applies to every upstream; the others keep their kind's default
- the breaker's longest open time is 30 s (raised to openSeconds when that is longer), so a
  recovered backend without health checks gets traffic back within it
- a route's retry.regenerations reaches the GatewayConfig (default 1)
"""

from __future__ import annotations

from typing import Any

from switchman.operator.render.gatewayconfig import PROVIDER_TIMEOUTS, VLLM_TIMEOUTS
from switchman.operator.render.policy import render_policy


def _pools() -> dict[str, dict[str, Any]]:
    models = [
        {
            "name": "local",
            "tier": "small",
            "vllm": {"source": {"huggingFace": {"repo": "Qwen/Qwen2.5-0.5B-Instruct"}}},
        },
        {"name": "remote", "tier": "large", "external": {"provider": "openai", "model": "gpt"}},
    ]
    return {
        "chat": {
            "apiVersion": "switchman.dev/v1alpha1",
            "kind": "ModelPool",
            "metadata": {"name": "chat", "namespace": "ml", "uid": "uid-chat"},
            "spec": {"models": models},
        }
    }


def _policy(**spec: Any) -> dict[str, Any]:
    route: dict[str, Any] = {"name": "auto", "candidates": ["local", "remote"]}
    route |= spec.pop("route", {})
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "uid-policy", "generation": 1},
        "spec": {"pools": [{"name": "chat"}], "routes": [route], **spec},
    }


def _upstreams(policy: dict[str, Any]) -> dict[str, Any]:
    config = render_policy(policy, _pools()).config
    return {u.name: u for u in config.upstreams}


def test_unset_timeouts_default_by_kind() -> None:
    upstreams = _upstreams(_policy())
    assert upstreams["chat-local"].timeouts.model_dump() == VLLM_TIMEOUTS
    assert upstreams["chat-remote"].timeouts.model_dump() == PROVIDER_TIMEOUTS
    assert VLLM_TIMEOUTS == {"connect_s": 2, "first_byte_s": 30, "idle_s": 30, "total_s": 600}
    assert PROVIDER_TIMEOUTS == {"connect_s": 10, "first_byte_s": 60, "idle_s": 120, "total_s": 900}


def test_a_timeout_set_in_the_policy_applies_to_every_upstream() -> None:
    upstreams = _upstreams(_policy(timeouts={"totalSeconds": 120}))
    local, remote = upstreams["chat-local"].timeouts, upstreams["chat-remote"].timeouts
    assert (local.total_s, remote.total_s) == (120, 120)
    assert (local.first_byte_s, remote.first_byte_s) == (30, 60)


def test_breaker_open_time_is_capped_at_thirty_seconds_unless_open_seconds_is_longer() -> None:
    default = _upstreams(_policy())["chat-local"].circuit_breaker
    assert (default.open_s, default.max_open_s) == (5, 30)
    long = _upstreams(_policy(circuitBreaker={"openSeconds": 45}))["chat-local"].circuit_breaker
    assert (long.open_s, long.max_open_s) == (45, 45)


def test_route_regenerations_reach_the_gateway_config() -> None:
    config = render_policy(_policy(), _pools()).config
    assert config.routes[0].retry.regenerations == 1
    policy = _policy(route={"retry": {"regenerations": 0}})
    assert render_policy(policy, _pools()).config.routes[0].retry.regenerations == 0
