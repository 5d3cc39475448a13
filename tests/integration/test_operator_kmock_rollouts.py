"""The operator against kmock: pruning, rollouts and stalls, the semantics a real cluster
showed were wrong (a prune that never deleted, Ready mid-rollout, a stalled gateway that never
showed). ``kmock_cluster`` refuses a DELETE whose uid precondition is not the object's own (409,
as the API server does) and fails the test if one was refused; Deployment status is written the
way the Deployment controller writes it at each step.

    scenario             | drive                             | expect
    ---------------------|-----------------------------------|-------------------------------
    model removed        | drop a model from the pool        | its Deployment, Service, PDB
                         |                                   | deleted, each by its own uid
    autoscaling off      | autoscaling, then replicas        | the HPA deleted by its uid
    mid-rollout          | 2 of 3 updated, 1 unavailable;    | Ready False, Progressing True
                         | all updated, 1 old pod left;      | (RollingOut) for both; then
                         | complete                          | Ready True, RolloutComplete
    stalled pool         | ProgressDeadlineExceeded          | Degraded RolloutStalled, Warning
    stalled gateway      | rolling, then the gateway's       | GatewayNotReady/RollingOut, then
                         | ProgressDeadlineExceeded          | policy Degraded RolloutStalled
    Kube.delete          | a stale uid; its own; gone        | 409 ignored, object kept;
                         |                                   | deleted; 404 ignored
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import kmock_cluster as k
import kopf
import pytest

from switchman.api.v1alpha1 import API_VERSION as GROUP_VERSION
from switchman.operator.kube import Kube
from switchman.operator.render import render_pool


@pytest.fixture
async def cluster() -> AsyncIterator[k.Cluster]:
    async with k.running_cluster() as emulator:
        yield emulator


@pytest.fixture
async def operator(cluster: k.Cluster) -> AsyncIterator[None]:
    async with k.running_operator(cluster):
        yield


PRUNED = (("apps/v1", "deployments"), ("v1", "services"), ("policy/v1", "poddisruptionbudgets"))


async def test_removed_model_is_pruned(cluster: k.Cluster, operator: None) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("small"), k.vllm("large")))
    await k.eventually(
        lambda: k.get(cluster, "policy/v1", "poddisruptionbudgets", "chat-large"), ""
    )
    uids = {
        plural: (k.get(cluster, api_version, plural, "chat-large") or {})["metadata"]["uid"]
        for api_version, plural in PRUNED
    }

    spec = k.pool("chat", k.vllm("small"))["spec"]
    await k.send(
        cluster, "PATCH", k.url(GROUP_VERSION, "modelpools", "chat"),
        {"spec": spec, "metadata": {"generation": 2}},
    )  # fmt: skip

    for api_version, plural in PRUNED:

        def gone(api_version: str = api_version, plural: str = plural) -> bool:
            return k.get(cluster, api_version, plural, "chat-large") is None

        await k.eventually(gone, plural)
        deletes = [
            r
            for r in cluster
            if r.method.value == "DELETE" and r.name == "chat-large" and r.resource.plural == plural
        ]
        # The child's own uid, never its owner's (the API server answers 409 to that).
        assert [r.data["preconditions"]["uid"] for r in deletes] == [uids[plural]]
    assert cluster.refused == []
    assert k.get(cluster, "apps/v1", "deployments", "chat-small") is not None


async def test_autoscaling_turned_off_deletes_the_hpa(cluster: k.Cluster, operator: None) -> None:
    scaled = k.vllm("qwen", autoscaling={"minReplicas": 2, "maxReplicas": 4})
    await k.create(cluster, "modelpools", k.pool("chat", scaled))
    hpa = await k.eventually(
        lambda: k.get(cluster, "autoscaling/v2", "horizontalpodautoscalers", "chat-qwen"), "HPA"
    )

    spec = k.pool("chat", k.vllm("qwen", replicas=2))["spec"]
    await k.send(
        cluster, "PATCH", k.url(GROUP_VERSION, "modelpools", "chat"),
        {"spec": spec, "metadata": {"generation": 2}},
    )  # fmt: skip

    def gone() -> bool:
        return k.get(cluster, "autoscaling/v2", "horizontalpodautoscalers", "chat-qwen") is None

    await k.eventually(gone, "the HPA deleted")
    (delete,) = [
        r for r in cluster if r.method.value == "DELETE" and r.url.path.endswith("/chat-qwen")
    ]
    assert delete.data["preconditions"]["uid"] == hpa["metadata"]["uid"]
    assert k.applies(cluster, "deployments", "chat-qwen")[-1].data["spec"]["replicas"] == 2
    assert k.get(cluster, "apps/v1", "deployments", "chat-qwen") is not None


async def test_a_pool_mid_rollout_is_not_ready_until_it_completes(
    cluster: k.Cluster, operator: None
) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen", replicas=3)))
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    def conditions() -> dict[str, tuple[str, str]]:
        status = k.status(cluster, "modelpools", "chat")
        return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}

    # What a real cluster showed: 3 replicas, 2 updated and ready, 1 unavailable.
    await k.deployment_status(cluster, "chat-qwen", k.rollout_status(3, 2, 2, "ReplicaSetUpdated"))
    await k.eventually(
        lambda: "updated" in k.ready_message(cluster, "chat"), "the mid-rollout status"
    )
    assert conditions() == {
        "Ready": ("False", "ModelsNotReady"),
        "Progressing": ("True", "RollingOut"),
        "Degraded": ("False", "AsExpected"),
    }
    # All updated and ready, but an old pod still terminating: not complete either.
    await k.deployment_status(
        cluster, "chat-qwen", k.rollout_status(3, 3, 3, "ReplicaSetUpdated", total=4)
    )
    await k.eventually(lambda: "old replica" in k.ready_message(cluster, "chat"), "old pods status")
    assert conditions()["Ready"] == ("False", "ModelsNotReady")

    await k.deployment_status(
        cluster, "chat-qwen", k.rollout_status(3, 3, 3, "NewReplicaSetAvailable")
    )
    await k.eventually(lambda: conditions()["Ready"] == ("True", "Ready"), "Ready True")
    assert conditions()["Progressing"] == ("False", "RolloutComplete")


async def test_a_stalled_rollout_degrades_the_pool(cluster: k.Cluster, operator: None) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    stalled = k.rollout_status(1, 1, 0, "ProgressDeadlineExceeded")
    await k.deployment_status(cluster, "chat-qwen", stalled)

    def degraded() -> bool:
        status = k.status(cluster, "modelpools", "chat")
        return k.condition(status, "Degraded") == ("True", "RolloutStalled")

    await k.eventually(degraded, "Degraded RolloutStalled")
    warning = (await k.eventually(lambda: k.events(cluster, "RolloutStalled"), "a Warning"))[0]
    assert "progress deadline" in warning["message"]


async def test_a_stalled_gateway_degrades_the_policy(cluster: k.Cluster, operator: None) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))
    await k.create(cluster, "routingpolicies", k.policy("front", "chat", ["qwen"]))
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "front-gateway"), "gateway")

    def reasons() -> tuple[Any, ...]:
        status = k.status(cluster, "routingpolicies", "front")
        return tuple(k.condition(status, t) for t in ("Ready", "Progressing", "Degraded"))

    await k.deployment_status(
        cluster, "front-gateway", k.rollout_status(2, 1, 1, "ReplicaSetUpdated")
    )
    rolling = (("False", "GatewayNotReady"), ("True", "RollingOut"), ("False", "AsExpected"))
    await k.eventually(lambda: reasons() == rolling, "the gateway rolling out")

    await k.deployment_status(
        cluster, "front-gateway", k.rollout_status(2, 1, 1, "ProgressDeadlineExceeded")
    )
    stalled = (("False", "RolloutStalled"), ("False", "RolloutStalled"), ("True", "RolloutStalled"))
    await k.eventually(lambda: reasons() == stalled, "the policy Degraded")
    warning = (await k.eventually(lambda: k.events(cluster, "RolloutStalled"), "a Warning"))[0]
    assert warning["message"].startswith("gateway: rollout exceeded its progress deadline")


async def test_delete_spares_a_newer_object_of_the_same_name(cluster: k.Cluster) -> None:
    """``Kube.delete`` with a uid that is no longer the object's: a 409, logged and ignored; the
    object stays. With its own uid it goes; gone already is fine."""
    kube = Kube()
    kube.login(kopf.ConnectionInfo(server=str(cluster.url)))
    try:
        manifest = render_pool(k.pool("chat", k.vllm("qwen")))[1]  # the Service
        assert manifest["kind"] == "Service"
        await kube.apply({**manifest, "metadata": {**manifest["metadata"], "namespace": k.NS}})
        live = k.get(cluster, "v1", "services", "chat-qwen")
        assert live is not None

        await kube.delete("v1", "Service", k.NS, "chat-qwen", uid="uid-of-an-older-one")
        assert k.get(cluster, "v1", "services", "chat-qwen") is not None
        assert len(cluster.refused) == 1
        assert "Precondition failed: UID in precondition: uid-of-an-older-one" in cluster.refused[0]

        await kube.delete("v1", "Service", k.NS, "chat-qwen", uid=live["metadata"]["uid"])
        assert k.get(cluster, "v1", "services", "chat-qwen") is None
        await kube.delete("v1", "Service", k.NS, "chat-qwen", uid=live["metadata"]["uid"])  # 404
    finally:
        await kube.close()
    cluster.refused.clear()  # the one refusal here was the point
