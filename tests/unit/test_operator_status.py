"""Operator status, without kopf or an API server: ``switchman.operator.status`` (the pure
status of pools and policies, drift) on Deployments as the controller reports them.
``test_operator_reconcile`` covers ``reconcile.Reconciler``; ``test_rollout`` the readiness rule.

    scenario                     | input                                   | expect
    -----------------------------|-----------------------------------------|---------------------
    owner                        | ownerReferences variants                | only our controller
    pool status                  | ready, rolling, mid-rollout, missing    | Ready/Progressing/
                                 | Secret, stalled, invalid spec, external | Degraded + models
    policy status                | missing pool/Secret/model, gateway      | reason precedence,
                                 | rolling, stalled; pool gone after apply | routes, unresolved,
                                 |                                         | last served routes
    drift                        | API defaults, edits, lists, quantities  | only real edits drift
"""

from __future__ import annotations

from typing import Any

import operator_objects as o
import pytest

from switchman.operator.rollout import Rollout
from switchman.operator.status import (
    Problem,
    controller,
    drifted,
    policy_status,
    pool_secrets,
    pool_status,
)

# ----- owners, Secrets -----


def test_controller_is_our_controlling_owner_only() -> None:
    ours = {"apiVersion": "switchman.dev/v1alpha1", "kind": "ModelPool", "name": "p", "uid": "u"}
    other = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "x"}
    assert controller({"metadata": {"ownerReferences": [other, ours | {"controller": True}]}}) == (
        "ModelPool",
        "p",
        "u",
    )
    assert controller({"metadata": {"ownerReferences": [ours]}}) is None
    assert controller({"metadata": {"ownerReferences": [other | {"controller": True}]}}) is None
    assert controller({"metadata": {}}) is None


def test_pool_secrets_are_credentials_and_hf_tokens() -> None:
    pool = o.pool(
        "p",
        o.external("gpt", "openai"),
        o.external("claude", "anthropic"),
        o.vllm("qwen", hfTokenSecret={"name": "hf", "key": "token"}),
        o.vllm("plain"),
    )
    assert pool_secrets(o.spec(pool)) == ["anthropic", "hf", "openai"]


# ----- pool status -----


def test_a_ready_pool() -> None:
    pool = o.pool(
        "chat", o.vllm("a", replicas=2), o.external("gpt", "k", baseURL="https://x.io/v1")
    )
    rollouts = {"chat-a": Rollout.of(o.deployment(2, 2))}
    status = pool_status(pool, o.spec(pool), rollouts=rollouts, observed_generation=1, now=o.NOW)
    assert o.conditions(status) == {
        "Ready": ("True", "Ready", "2 of 2 models ready"),
        "Progressing": ("False", "RolloutComplete", ""),
        "Degraded": ("False", "AsExpected", ""),
    }
    assert status["observedGeneration"] == 1
    assert status["models"] == [
        {
            "name": "a",
            "kind": "vllm",
            "readyReplicas": 2,
            "desiredReplicas": 2,
            "endpoint": "http://chat-a.ml.svc.cluster.local:8000/v1",
        },
        {
            "name": "gpt",
            "kind": "external",
            "readyReplicas": 0,
            "desiredReplicas": 0,
            "endpoint": "https://x.io/v1",
        },
    ]


def test_a_rolling_pool_counts_from_the_spec_until_its_deployment_is_seen() -> None:
    pool = o.pool("chat", o.vllm("a", replicas=3), o.vllm("b", autoscaling={"maxReplicas": 4}))
    rollouts = {"chat-b": Rollout.of(o.deployment(2, 1))}
    status = pool_status(pool, o.spec(pool), rollouts=rollouts, observed_generation=1, now=o.NOW)
    message = "a: 0/3 replicas ready; b: 1 of 2 updated replicas available"
    assert o.conditions(status) == {
        "Ready": ("False", "ModelsNotReady", message),
        "Progressing": ("True", "RollingOut", message),
        "Degraded": ("False", "AsExpected", ""),
    }
    assert [m["desiredReplicas"] for m in status["models"]] == [3, 2]


def test_a_deployment_not_yet_seen_with_the_applied_replicas_is_not_ready() -> None:
    """Scaled 1 -> 0: the watch still shows the old, complete Deployment of 1 replica."""
    pool = o.pool("chat", o.vllm("a", replicas=0))
    rollouts = {"chat-a": Rollout.of(o.deployment(1, 1))}
    status = pool_status(pool, o.spec(pool), rollouts=rollouts, observed_generation=2, now=o.NOW)
    assert o.conditions(status)["Ready"] == ("False", "ModelsNotReady", "a: 1/0 replicas ready")


def test_a_missing_secret_degrades_the_pool() -> None:
    pool = o.pool("cloud", o.external("gpt", "openai"))
    status = pool_status(
        pool,
        o.spec(pool),
        rollouts={},
        missing_secrets=["openai"],
        observed_generation=1,
        now=o.NOW,
    )
    problem = ("SecretNotFound", "Secret openai not found in ml")
    assert o.conditions(status)["Degraded"] == ("True", *problem)
    assert o.conditions(status)["Ready"] == ("False", *problem)


def test_a_stalled_rollout_degrades_the_pool() -> None:
    pool = o.pool("chat", o.vllm("a"))
    stuck = o.deployment(conditions=o.STALLED)
    status = pool_status(
        pool, o.spec(pool), rollouts={"chat-a": Rollout.of(stuck)}, observed_generation=1, now=o.NOW
    )
    message = (
        'a: rollout exceeded its progress deadline: ReplicaSet "x-1" has timed out progressing.'
    )
    assert o.conditions(status) == {
        "Ready": ("False", "RolloutStalled", message),
        "Progressing": ("False", "RolloutStalled", message),
        "Degraded": ("True", "RolloutStalled", message),
    }


def test_a_pool_mid_rollout_is_not_ready() -> None:
    """What a real cluster showed: 3 replicas, 2 updated and ready, 1 old one unavailable."""
    pool = o.pool("chat", o.vllm("a", replicas=3))
    mid = o.deployment(
        3,
        2,
        replicas=3,
        updatedReplicas=2,
        availableReplicas=2,
        unavailableReplicas=1,
        conditions=[{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}],
    )
    status = pool_status(
        pool, o.spec(pool), rollouts={"chat-a": Rollout.of(mid)}, observed_generation=1, now=o.NOW
    )
    message = "a: 2 of 3 replicas updated"
    assert o.conditions(status) == {
        "Ready": ("False", "ModelsNotReady", message),
        "Progressing": ("True", "RollingOut", message),
        "Degraded": ("False", "AsExpected", ""),
    }


def test_an_invalid_pool_reports_its_problem_and_no_models() -> None:
    pool = o.pool("chat", {"name": "x"})
    problem = Problem("InvalidSpec", "spec.models[0]: set exactly one of vllm or external")
    status = pool_status(pool, None, rollouts={}, problem=problem, observed_generation=1, now=o.NOW)
    assert {c[:2] for c in o.conditions(status).values()} == {
        ("False", "InvalidSpec"),
        ("True", "InvalidSpec"),
    }
    assert status["models"] == []


def test_pool_status_keeps_transition_times_from_its_previous_status() -> None:
    pool = o.pool("chat", o.vllm("a"))
    first = pool_status(pool, o.spec(pool), rollouts={}, observed_generation=1, now=o.NOW)
    later = pool_status(
        {**pool, "status": first}, o.spec(pool), rollouts={}, observed_generation=1, now="later"
    )
    assert later == first


# ----- policy status -----


def _policy_status(**kwargs: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "routes": [],
        "unresolved": [],
        "gateway": Rollout.of(o.deployment(2, 2)),
        "observed_generation": 1,
        "now": o.NOW,
    }
    return policy_status(o.policy("front", "p"), **(defaults | kwargs))


def test_a_ready_policy_lists_its_routes() -> None:
    routes = [{"name": "auto", "strategy": "priority", "candidates": ["a"]}]
    status = _policy_status(routes=routes)
    assert o.conditions(status)["Ready"] == ("True", "Ready", "gateway ready, 1 route")
    assert (status["routes"], status["unresolved"]) == (routes, [])


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        ({"missing_pools": ["p"], "missing_secrets": ["s"]}, "PoolNotFound"),
        ({"missing_secrets": ["s"]}, "SecretNotFound"),
        ({}, "UnresolvedReferences"),
    ],
)
def test_policy_problems_name_the_missing_reference(missing: dict[str, Any], reason: str) -> None:
    status = _policy_status(unresolved=["pool p not found", "secret s not found"], **missing)
    message = "pool p not found; secret s not found"
    assert o.conditions(status) == {
        "Ready": ("False", reason, message),
        "Progressing": ("False", reason, message),
        "Degraded": ("True", reason, message),
    }


def test_a_pool_gone_after_apply_keeps_the_served_routes_and_the_gateway_rollout() -> None:
    """What a real cluster showed: no 'not observed yet' and no empty routes while the gateway
    Deployment exists and serves the last good config."""
    routes = [{"name": "auto", "strategy": "priority", "candidates": ["a"]}]
    status = _policy_status(
        routes=routes, unresolved=["pool p not found"], missing_pools=["p"], applied=False
    )
    message = "pool p not found; the gateway keeps serving its last applied configuration"
    assert o.conditions(status)["Degraded"] == ("True", "PoolNotFound", message)
    assert o.conditions(status)["Progressing"] == ("False", "PoolNotFound", message)
    assert status["routes"] == routes


def test_a_policy_never_applied_does_not_wait_for_a_gateway() -> None:
    status = _policy_status(
        unresolved=["pool p not found"], missing_pools=["p"], gateway=None, applied=False
    )
    assert o.conditions(status)["Progressing"] == ("False", "PoolNotFound", "pool p not found")


@pytest.mark.parametrize(
    ("gateway", "message"),
    [
        (None, "gateway: its Deployment is not observed yet"),
        (Rollout.of(o.deployment(2, 1)), "gateway: 1 of 2 updated replicas available"),
        (
            Rollout.of(o.deployment(2, 2, replicas=3)),
            "gateway: 1 old replica pending termination",
        ),
        (
            Rollout.of(o.deployment(2, 2, generation=3, seen=2)),
            "gateway: waiting for the Deployment controller to observe generation 3",
        ),
    ],
)
def test_a_gateway_rolling_out_keeps_the_policy_not_ready(
    gateway: Rollout | None, message: str
) -> None:
    status = _policy_status(gateway=gateway)
    assert o.conditions(status)["Ready"] == ("False", "GatewayNotReady", message)
    assert o.conditions(status)["Progressing"] == ("True", "RollingOut", message)
    assert o.conditions(status)["Degraded"][:2] == ("False", "AsExpected")


def test_a_stalled_gateway_degrades_the_policy() -> None:
    """What a real cluster showed: the policy stayed Progressing, never Degraded."""
    status = _policy_status(gateway=Rollout.of(o.deployment(2, 1, conditions=o.STALLED)))
    message = (
        'gateway: rollout exceeded its progress deadline: ReplicaSet "x-1" has timed out '
        "progressing."
    )
    assert o.conditions(status) == {
        "Ready": ("False", "RolloutStalled", message),
        "Progressing": ("False", "RolloutStalled", message),
        "Degraded": ("True", "RolloutStalled", message),
    }


# ----- drift -----


LIVE = {
    "metadata": {"name": "x", "labels": {"a": "1"}, "resourceVersion": "9", "managedFields": []},
    "spec": {
        "replicas": 1,
        "ports": [{"port": 8000, "protocol": "TCP", "name": "http"}],
        "resources": {"limits": {"nvidia.com/gpu": "1"}},
        "nodeSelector": {},
    },
}


@pytest.mark.parametrize(
    ("desired", "drift"),
    [
        ({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"replicas": 1}}, False),
        ({"spec": {"ports": [{"port": 8000, "name": "http"}]}}, False),  # API defaults added
        ({"spec": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}, False),  # a quantity
        ({"spec": {"tolerations": [], "affinity": {}}}, False),  # empty means absent
        ({"spec": {"replicas": None}}, False),
        ({"spec": {"replicas": 2}}, True),
        ({"metadata": {"labels": {"a": "1", "b": "2"}}}, True),
        ({"spec": {"ports": []}}, True),
        ({"spec": {"ports": [{"port": 8000}, {"port": 8001}]}}, True),
        ({"spec": {"ports": [{"port": 9000}]}}, True),
        ({"spec": {"paused": True}}, True),
        ({"spec": {"replicas": {"a": 1}}}, True),
    ],
)
def test_only_real_edits_are_drift(desired: dict[str, Any], drift: bool) -> None:
    assert drifted(desired, LIVE) is drift
