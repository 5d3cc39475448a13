"""Operator status and reconcile decisions, without kopf or an API server.

``switchman.operator.status`` (pure status of pools and policies, drift), ``world`` (what the
indexes imply) and ``reconcile.Reconciler`` against a fake ``Cluster`` and a fixed clock.

    scenario                     | input                                   | expect
    -----------------------------|-----------------------------------------|---------------------
    owner                        | ownerReferences variants                | only our controller
    pool status                  | ready, rolling, missing Secret, stalled | Ready/Progressing/
                                 | invalid spec, external models           | Degraded + models
    policy status                | missing pool/Secret/model, gateway      | reason precedence,
                                 | rolling, stalled; pool gone after apply | routes, unresolved,
                                 |                                         | last served routes
    drift                        | API defaults, edits, lists, quantities  | only real edits drift
    reconcile a pool             | twice                                   | applies twice, writes
                                 |                                         | status once, 1 Applied
    apply fails                  | the API refuses                         | ApplyFailed, retry
    invalid spec                 | bad pool                                | permanent, no apply
    prune                        | indexed children not rendered           | deleted by their own
                                 |                                         | uid, only this owner's
    missing pool / Secret        | policy before pool; Secret missing      | retry, no apply;
                                 |                                         | SecretNotFound
    dependents, Secrets          | a pool or Secret changes                | only its users
    child events                 | deleted, drifted, progressed Deployment | re-apply / status
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import pytest

from switchman.api.v1alpha1.modelpool import ModelPoolSpec
from switchman.operator.conditions import Event
from switchman.operator.kube import KubeError
from switchman.operator.reconcile import Outcome, Reconciler
from switchman.operator.render import render_pool
from switchman.operator.rollout import Rollout
from switchman.operator.status import (
    Child,
    Problem,
    controller,
    drifted,
    policy_status,
    pool_secrets,
    pool_status,
)
from switchman.operator.world import World

NS = "ml"
NOW = "2026-01-01T00:00:00Z"
CLOCK = 1_767_225_600.0


def _pool(name: str, *models: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": generation}
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "ModelPool",
        "metadata": meta,
        "spec": {"models": list(models)},
    }


def _vllm(name: str, **vllm: Any) -> dict[str, Any]:
    return {"name": name, "vllm": {"source": {"huggingFace": {"repo": f"org/{name}"}}, **vllm}}


def _external(name: str, secret: str, **more: Any) -> dict[str, Any]:
    ref = {"name": secret, "key": "k"}
    return {"name": name, "external": {"provider": "openai", "credentialsSecret": ref, **more}}


def _policy(name: str, *pools: str, candidates: tuple[str, ...] = ("a",)) -> dict[str, Any]:
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "pools": [{"name": p} for p in pools],
            "routes": [{"name": "auto", "candidates": list(candidates)}],
        },
    }


def _spec(pool: Mapping[str, Any]) -> ModelPoolSpec:
    return ModelPoolSpec.model_validate(pool["spec"], by_alias=True)


def _deployment(
    desired: int = 1, ready: int = 0, generation: int = 1, seen: int = 1, **status: Any
) -> dict[str, Any]:
    """A Deployment whose ``ready`` pods are new, ready and available (none old)."""
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": seen,
            "replicas": desired,
            "readyReplicas": ready,
            "updatedReplicas": desired,
            "availableReplicas": ready,
            "unavailableReplicas": desired - ready,
            **status,
        },
    }


STALLED = [
    {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "x-1" has timed out progressing.',
    }
]


def _conditions(status: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


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
    pool = _pool(
        "p",
        _external("gpt", "openai"),
        _external("claude", "anthropic"),
        _vllm("qwen", hfTokenSecret={"name": "hf", "key": "token"}),
        _vllm("plain"),
    )
    assert pool_secrets(_spec(pool)) == ["anthropic", "hf", "openai"]


# ----- pool status -----


def test_a_ready_pool() -> None:
    pool = _pool("chat", _vllm("a", replicas=2), _external("gpt", "k", baseURL="https://x.io/v1"))
    rollouts = {"chat-a": Rollout.of(_deployment(2, 2))}
    status = pool_status(pool, _spec(pool), rollouts=rollouts, observed_generation=1, now=NOW)
    assert _conditions(status) == {
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
    pool = _pool("chat", _vllm("a", replicas=3), _vllm("b", autoscaling={"maxReplicas": 4}))
    rollouts = {"chat-b": Rollout.of(_deployment(2, 1))}
    status = pool_status(pool, _spec(pool), rollouts=rollouts, observed_generation=1, now=NOW)
    message = "a: 0/3 replicas ready; b: 1 of 2 updated replicas available"
    assert _conditions(status) == {
        "Ready": ("False", "ModelsNotReady", message),
        "Progressing": ("True", "RollingOut", message),
        "Degraded": ("False", "AsExpected", ""),
    }
    assert [m["desiredReplicas"] for m in status["models"]] == [3, 2]


def test_a_deployment_not_yet_seen_with_the_applied_replicas_is_not_ready() -> None:
    """Scaled 1 -> 0: the watch still shows the old, complete Deployment of 1 replica."""
    pool = _pool("chat", _vllm("a", replicas=0))
    rollouts = {"chat-a": Rollout.of(_deployment(1, 1))}
    status = pool_status(pool, _spec(pool), rollouts=rollouts, observed_generation=2, now=NOW)
    assert _conditions(status)["Ready"] == ("False", "ModelsNotReady", "a: 1/0 replicas ready")


def test_a_missing_secret_degrades_the_pool() -> None:
    pool = _pool("cloud", _external("gpt", "openai"))
    status = pool_status(
        pool, _spec(pool), rollouts={}, missing_secrets=["openai"], observed_generation=1, now=NOW
    )
    problem = ("SecretNotFound", "Secret openai not found in ml")
    assert _conditions(status)["Degraded"] == ("True", *problem)
    assert _conditions(status)["Ready"] == ("False", *problem)


def test_a_stalled_rollout_degrades_the_pool() -> None:
    pool = _pool("chat", _vllm("a"))
    stuck = _deployment(conditions=STALLED)
    status = pool_status(
        pool, _spec(pool), rollouts={"chat-a": Rollout.of(stuck)}, observed_generation=1, now=NOW
    )
    message = (
        'a: rollout exceeded its progress deadline: ReplicaSet "x-1" has timed out progressing.'
    )
    assert _conditions(status) == {
        "Ready": ("False", "RolloutStalled", message),
        "Progressing": ("False", "RolloutStalled", message),
        "Degraded": ("True", "RolloutStalled", message),
    }


def test_a_pool_mid_rollout_is_not_ready() -> None:
    """What a real cluster showed: 3 replicas, 2 updated and ready, 1 old one unavailable."""
    pool = _pool("chat", _vllm("a", replicas=3))
    mid = _deployment(
        3,
        2,
        replicas=3,
        updatedReplicas=2,
        availableReplicas=2,
        unavailableReplicas=1,
        conditions=[{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}],
    )
    status = pool_status(
        pool, _spec(pool), rollouts={"chat-a": Rollout.of(mid)}, observed_generation=1, now=NOW
    )
    message = "a: 2 of 3 replicas updated"
    assert _conditions(status) == {
        "Ready": ("False", "ModelsNotReady", message),
        "Progressing": ("True", "RollingOut", message),
        "Degraded": ("False", "AsExpected", ""),
    }


def test_an_invalid_pool_reports_its_problem_and_no_models() -> None:
    pool = _pool("chat", {"name": "x"})
    problem = Problem("InvalidSpec", "spec.models[0]: set exactly one of vllm or external")
    status = pool_status(pool, None, rollouts={}, problem=problem, observed_generation=1, now=NOW)
    assert {c[:2] for c in _conditions(status).values()} == {
        ("False", "InvalidSpec"),
        ("True", "InvalidSpec"),
    }
    assert status["models"] == []


def test_pool_status_keeps_transition_times_from_its_previous_status() -> None:
    pool = _pool("chat", _vllm("a"))
    first = pool_status(pool, _spec(pool), rollouts={}, observed_generation=1, now=NOW)
    later = pool_status(
        {**pool, "status": first}, _spec(pool), rollouts={}, observed_generation=1, now="later"
    )
    assert later == first


# ----- policy status -----


def _policy_status(**kwargs: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "routes": [],
        "unresolved": [],
        "gateway": Rollout.of(_deployment(2, 2)),
        "observed_generation": 1,
        "now": NOW,
    }
    return policy_status(_policy("front", "p"), **(defaults | kwargs))


def test_a_ready_policy_lists_its_routes() -> None:
    routes = [{"name": "auto", "strategy": "priority", "candidates": ["a"]}]
    status = _policy_status(routes=routes)
    assert _conditions(status)["Ready"] == ("True", "Ready", "gateway ready, 1 route")
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
    assert _conditions(status) == {
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
    assert _conditions(status)["Degraded"] == ("True", "PoolNotFound", message)
    assert _conditions(status)["Progressing"] == ("False", "PoolNotFound", message)
    assert status["routes"] == routes


def test_a_policy_never_applied_does_not_wait_for_a_gateway() -> None:
    status = _policy_status(
        unresolved=["pool p not found"], missing_pools=["p"], gateway=None, applied=False
    )
    assert _conditions(status)["Progressing"] == ("False", "PoolNotFound", "pool p not found")


@pytest.mark.parametrize(
    ("gateway", "message"),
    [
        (None, "gateway: its Deployment is not observed yet"),
        (Rollout.of(_deployment(2, 1)), "gateway: 1 of 2 updated replicas available"),
        (
            Rollout.of(_deployment(2, 2, replicas=3)),
            "gateway: 1 old replica pending termination",
        ),
        (
            Rollout.of(_deployment(2, 2, generation=3, seen=2)),
            "gateway: waiting for the Deployment controller to observe generation 3",
        ),
    ],
)
def test_a_gateway_rolling_out_keeps_the_policy_not_ready(
    gateway: Rollout | None, message: str
) -> None:
    status = _policy_status(gateway=gateway)
    assert _conditions(status)["Ready"] == ("False", "GatewayNotReady", message)
    assert _conditions(status)["Progressing"] == ("True", "RollingOut", message)
    assert _conditions(status)["Degraded"][:2] == ("False", "AsExpected")


def test_a_stalled_gateway_degrades_the_policy() -> None:
    """What a real cluster showed: the policy stayed Progressing, never Degraded."""
    status = _policy_status(gateway=Rollout.of(_deployment(2, 1, conditions=STALLED)))
    message = (
        'gateway: rollout exceeded its progress deadline: ReplicaSet "x-1" has timed out '
        "progressing."
    )
    assert _conditions(status) == {
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


# ----- reconcile, against a fake cluster -----


class FakeCluster:
    """Records writes; ``refuse`` makes applies fail like an API server would."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.applied: list[dict[str, Any]] = []
        self.deleted: list[tuple[str, str, str]] = []
        self.statuses: list[tuple[str, dict[str, Any]]] = []

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        if self.refuse:
            raise KubeError(422, "Deployment.apps is invalid: spec.replicas: must be >= 0")
        self.applied.append(dict(manifest))
        return dict(manifest)

    async def delete(
        self, api_version: str, kind: str, namespace: str, name: str, *, uid: str
    ) -> None:
        self.deleted.append((kind, name, uid))

    async def patch_status(
        self, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any]:
        self.statuses.append((obj["metadata"]["name"], copy.deepcopy(dict(status))))
        return {}


class Harness:
    def __init__(self, *, refuse: bool = False) -> None:
        self.cluster = FakeCluster(refuse)
        self.events: list[tuple[str, Event]] = []
        self.reconciler = Reconciler(
            self.cluster,
            lambda obj, event: self.events.append((obj["metadata"]["name"], event)),
            clock=lambda: CLOCK,
            missing_retry=30,
            apply_retry=15,
        )
        self.pools: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        self.policies: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
        self.secrets: dict[tuple[str, ...], list[str]] = {}
        self.children: dict[tuple[str, ...], list[Child]] = {}

    @property
    def world(self) -> World:
        return World(self.pools, self.policies, self.secrets, [self.children])

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        index = self.pools if obj["kind"] == "ModelPool" else self.policies
        index[(NS, obj["metadata"]["name"])] = [obj]
        return obj

    def child(self, owner: Mapping[str, Any], child: Child) -> None:
        key = (NS, owner["kind"], owner["metadata"]["name"])
        self.children.setdefault(key, []).append(child)

    def last_status(self, name: str) -> dict[str, Any]:
        return [s for n, s in self.cluster.statuses if n == name][-1]

    def reasons(self, name: str) -> dict[str, str]:
        return {c["type"]: c["reason"] for c in self.last_status(name)["conditions"]}


async def test_reconciling_a_pool_twice_applies_twice_and_reports_once() -> None:
    h = Harness()
    pool = h.add(_pool("chat", _vllm("a")))

    assert await h.reconciler.reconcile(pool, h.world) == Outcome()
    assert await h.reconciler.reconcile(pool, h.world) == Outcome()

    assert h.cluster.applied == render_pool(pool) * 2
    assert len(h.cluster.statuses) == 1
    assert h.last_status("chat")["conditions"][0]["lastTransitionTime"] == NOW
    assert h.events == [("chat", Event("Normal", "Applied", "applied 3 objects for generation 1"))]


async def test_a_refused_apply_is_reported_and_retried() -> None:
    h = Harness(refuse=True)
    pool = h.add(_pool("chat", _vllm("a")))

    outcome = await h.reconciler.reconcile(pool, h.world)

    assert outcome.retry_after == 15
    assert not outcome.permanent
    assert h.reasons("chat") == {
        "Ready": "ApplyFailed",
        "Progressing": "ApplyFailed",
        "Degraded": "ApplyFailed",
    }
    assert [e.type for _, e in h.events] == ["Warning"]
    assert "spec.replicas: must be >= 0" in h.events[0][1].message


async def test_an_invalid_spec_is_permanent_and_applies_nothing() -> None:
    h = Harness()
    pool = h.add(_pool("chat", {"name": "a", "vllm": {"source": {}}}))

    outcome = await h.reconciler.reconcile(pool, h.world)

    assert outcome.permanent
    assert "spec.models[0].vllm.source" in outcome.message
    assert h.cluster.applied == []
    assert h.reasons("chat")["Degraded"] == "InvalidSpec"
    assert [(e.type, e.reason) for _, e in h.events] == [("Warning", "InvalidSpec")]


async def test_children_no_longer_rendered_are_pruned_by_their_own_uid() -> None:
    h = Harness()
    pool = h.add(_pool("chat", _vllm("a")))
    h.child(pool, Child("apps/v1", "Deployment", "chat-a", "uid-chat", "uid-1"))
    h.child(pool, Child("apps/v1", "Deployment", "chat-old", "uid-chat", "uid-2"))
    h.child(pool, Child("autoscaling/v2", "HorizontalPodAutoscaler", "chat-a", "uid-chat", "uid-3"))
    h.child(pool, Child("apps/v1", "Deployment", "chat-older", "uid-previous-chat", "uid-4"))

    await h.reconciler.reconcile(pool, h.world)

    assert h.cluster.deleted == [
        ("Deployment", "chat-old", "uid-2"),
        ("HorizontalPodAutoscaler", "chat-a", "uid-3"),
    ]


async def test_a_missing_secret_is_reported_and_retried() -> None:
    h = Harness()
    pool = h.add(_pool("cloud", _external("gpt", "openai")))

    outcome = await h.reconciler.reconcile(pool, h.world)
    assert outcome == Outcome("waiting for Secret openai", 30)
    assert h.reasons("cloud")["Degraded"] == "SecretNotFound"

    h.secrets[(NS, "openai")] = ["7"]
    await h.reconciler.secret_changed(NS, "openai", h.world)
    assert h.reasons("cloud") == {
        "Ready": "Ready",
        "Progressing": "RolloutComplete",
        "Degraded": "AsExpected",
    }


async def test_a_policy_without_its_pool_applies_nothing_and_retries() -> None:
    h = Harness()
    policy = h.add(_policy("front", "chat"))

    outcome = await h.reconciler.reconcile(policy, h.world)

    assert outcome.retry_after == 30
    assert h.cluster.applied == []
    assert h.last_status("front")["unresolved"] == ["pool chat not found"]
    assert [(e.type, e.reason) for _, e in h.events] == [("Warning", "PoolNotFound")]


async def test_a_pool_change_reconciles_only_the_policies_using_it() -> None:
    h = Harness()
    h.add(_pool("chat", _vllm("a")))
    h.add(_policy("front", "chat"))
    h.add(_policy("other", "elsewhere"))

    await h.reconciler.dependents(NS, "chat", h.world)

    assert {m["metadata"]["name"] for m in h.cluster.applied} >= {"front-gateway"}
    assert {name for name, _ in h.cluster.statuses} == {"front"}
    assert h.last_status("front")["routes"] == [
        {"name": "auto", "strategy": "priority", "candidates": ["a"]}
    ]


async def test_a_deleted_or_drifted_child_reapplies_its_owner() -> None:
    h = Harness()
    pool = h.add(_pool("chat", _vllm("a")))
    deployment = render_pool(pool)[0]

    await h.reconciler.child_changed("DELETED", deployment, h.world)
    assert len(h.cluster.applied) == 3

    await h.reconciler.child_changed("MODIFIED", deployment, h.world)
    assert len(h.cluster.applied) == 3  # as rendered: nothing to repair

    edited = copy.deepcopy(deployment)
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "other:latest"
    await h.reconciler.child_changed("MODIFIED", edited, h.world)
    assert len(h.cluster.applied) == 6


async def test_a_progressing_deployment_updates_its_pool_status_only() -> None:
    h = Harness()
    pool = h.add(_pool("chat", _vllm("a")))
    await h.reconciler.reconcile(pool, h.world)
    applied = len(h.cluster.applied)
    deployment = render_pool(pool)[0] | {"status": _deployment(1, 1)["status"]}
    h.child(
        pool, Child("apps/v1", "Deployment", "chat-a", "uid-chat", "uid-a", Rollout.of(deployment))
    )

    await h.reconciler.child_changed("MODIFIED", deployment, h.world)

    assert len(h.cluster.applied) == applied
    assert h.reasons("chat")["Ready"] == "Ready"
    assert ("chat", Event("Normal", "Ready", "1 of 1 model ready")) in h.events


async def test_progress_is_not_reported_over_a_failed_pass() -> None:
    h = Harness(refuse=True)
    pool = h.add(_pool("chat", _vllm("a")))
    await h.reconciler.reconcile(pool, h.world)
    writes = len(h.cluster.statuses)
    deployment = render_pool(pool)[0] | {"status": _deployment(1, 1)["status"]}
    h.child(
        pool, Child("apps/v1", "Deployment", "chat-a", "uid-chat", "uid-a", Rollout.of(deployment))
    )

    await h.reconciler.child_changed("MODIFIED", deployment, h.world)

    assert len(h.cluster.statuses) == writes
    assert h.reasons("chat")["Degraded"] == "ApplyFailed"


async def test_a_child_of_a_recreated_owner_is_ignored() -> None:
    h = Harness()
    pool = h.add(_pool("chat", _vllm("a")))
    orphan = copy.deepcopy(render_pool(pool)[0])
    orphan["metadata"]["ownerReferences"][0]["uid"] = "uid-deleted-chat"

    await h.reconciler.child_changed("DELETED", orphan, h.world)

    assert h.cluster.applied == []
