"""``reconcile.Reconciler`` against a fake ``Cluster`` and a fixed clock (no kopf, no API
server): what it applies, prunes, writes as status and posts as Events.

    scenario                     | input                                   | expect
    -----------------------------|-----------------------------------------|---------------------
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

import operator_objects as o

from switchman.operator.conditions import Event
from switchman.operator.kube import KubeError
from switchman.operator.reconcile import Outcome, Reconciler
from switchman.operator.render import render_pool
from switchman.operator.rollout import Rollout
from switchman.operator.status import Child
from switchman.operator.world import World

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
            clock=lambda: o.CLOCK,
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
        index[(o.NS, obj["metadata"]["name"])] = [obj]
        return obj

    def child(self, owner: Mapping[str, Any], child: Child) -> None:
        key = (o.NS, owner["kind"], owner["metadata"]["name"])
        self.children.setdefault(key, []).append(child)

    def last_status(self, name: str) -> dict[str, Any]:
        return [s for n, s in self.cluster.statuses if n == name][-1]

    def reasons(self, name: str) -> dict[str, str]:
        return {c["type"]: c["reason"] for c in self.last_status(name)["conditions"]}


async def test_reconciling_a_pool_twice_applies_twice_and_reports_once() -> None:
    h = Harness()
    pool = h.add(o.pool("chat", o.vllm("a")))

    assert await h.reconciler.reconcile(pool, h.world) == Outcome()
    assert await h.reconciler.reconcile(pool, h.world) == Outcome()

    assert h.cluster.applied == render_pool(pool) * 2
    assert len(h.cluster.statuses) == 1
    assert h.last_status("chat")["conditions"][0]["lastTransitionTime"] == o.NOW
    assert h.events == [("chat", Event("Normal", "Applied", "applied 3 objects for generation 1"))]


async def test_a_refused_apply_is_reported_and_retried() -> None:
    h = Harness(refuse=True)
    pool = h.add(o.pool("chat", o.vllm("a")))

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
    pool = h.add(o.pool("chat", {"name": "a", "vllm": {"source": {}}}))

    outcome = await h.reconciler.reconcile(pool, h.world)

    assert outcome.permanent
    assert "spec.models[0].vllm.source" in outcome.message
    assert h.cluster.applied == []
    assert h.reasons("chat")["Degraded"] == "InvalidSpec"
    assert [(e.type, e.reason) for _, e in h.events] == [("Warning", "InvalidSpec")]


async def test_children_no_longer_rendered_are_pruned_by_their_own_uid() -> None:
    h = Harness()
    pool = h.add(o.pool("chat", o.vllm("a")))
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
    pool = h.add(o.pool("cloud", o.external("gpt", "openai")))

    outcome = await h.reconciler.reconcile(pool, h.world)
    assert outcome == Outcome("waiting for Secret openai", 30)
    assert h.reasons("cloud")["Degraded"] == "SecretNotFound"

    h.secrets[(o.NS, "openai")] = ["7"]
    await h.reconciler.secret_changed(o.NS, "openai", h.world)
    assert h.reasons("cloud") == {
        "Ready": "Ready",
        "Progressing": "RolloutComplete",
        "Degraded": "AsExpected",
    }


async def test_a_policy_without_its_pool_applies_nothing_and_retries() -> None:
    h = Harness()
    policy = h.add(o.policy("front", "chat"))

    outcome = await h.reconciler.reconcile(policy, h.world)

    assert outcome.retry_after == 30
    assert h.cluster.applied == []
    assert h.last_status("front")["unresolved"] == ["pool chat not found"]
    assert [(e.type, e.reason) for _, e in h.events] == [("Warning", "PoolNotFound")]


async def test_a_pool_change_reconciles_only_the_policies_using_it() -> None:
    h = Harness()
    h.add(o.pool("chat", o.vllm("a")))
    h.add(o.policy("front", "chat"))
    h.add(o.policy("other", "elsewhere"))

    await h.reconciler.dependents(o.NS, "chat", h.world)

    assert {m["metadata"]["name"] for m in h.cluster.applied} >= {"front-gateway"}
    assert {name for name, _ in h.cluster.statuses} == {"front"}
    assert h.last_status("front")["routes"] == [
        {"name": "auto", "strategy": "priority", "candidates": ["a"]}
    ]


async def test_a_deleted_or_drifted_child_reapplies_its_owner() -> None:
    h = Harness()
    pool = h.add(o.pool("chat", o.vllm("a")))
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
    pool = h.add(o.pool("chat", o.vllm("a")))
    await h.reconciler.reconcile(pool, h.world)
    applied = len(h.cluster.applied)
    deployment = render_pool(pool)[0] | {"status": o.deployment(1, 1)["status"]}
    h.child(
        pool, Child("apps/v1", "Deployment", "chat-a", "uid-chat", "uid-a", Rollout.of(deployment))
    )

    await h.reconciler.child_changed("MODIFIED", deployment, h.world)

    assert len(h.cluster.applied) == applied
    assert h.reasons("chat")["Ready"] == "Ready"
    assert ("chat", Event("Normal", "Ready", "1 of 1 model ready")) in h.events


async def test_progress_is_not_reported_over_a_failed_pass() -> None:
    h = Harness(refuse=True)
    pool = h.add(o.pool("chat", o.vllm("a")))
    await h.reconciler.reconcile(pool, h.world)
    writes = len(h.cluster.statuses)
    deployment = render_pool(pool)[0] | {"status": o.deployment(1, 1)["status"]}
    h.child(
        pool, Child("apps/v1", "Deployment", "chat-a", "uid-chat", "uid-a", Rollout.of(deployment))
    )

    await h.reconciler.child_changed("MODIFIED", deployment, h.world)

    assert len(h.cluster.statuses) == writes
    assert h.reasons("chat")["Degraded"] == "ApplyFailed"


async def test_a_child_of_a_recreated_owner_is_ignored() -> None:
    h = Harness()
    pool = h.add(o.pool("chat", o.vllm("a")))
    orphan = copy.deepcopy(render_pool(pool)[0])
    orphan["metadata"]["ownerReferences"][0]["uid"] = "uid-deleted-chat"

    await h.reconciler.child_changed("DELETED", orphan, h.world)

    assert h.cluster.applied == []
