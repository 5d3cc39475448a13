"""The operator against a real control plane: pruning that deletes, readiness that means ready,
stalls that show (what a run on kube-apiserver v1.36 + kube-controller-manager found missing).

Same fixtures and assumptions as ``test_operator_cluster``: no scheduler, nodes or GPUs needed.
Rollouts are driven with what every cluster does the same way: a Deployment scaled to 0 completes
at once; a replica whose image can never be pulled (a ``.invalid`` registry) never becomes
available, whether the cluster has nodes or not. The Deployment controller's own state is the
oracle (``cluster_checks.rollout_incomplete``), never the operator's code.

    scenario                                   | asserts
    -------------------------------------------|---------------------------------------------
    a model removed from a live pool           | its Deployment, Service and PDB deleted (by
                                               |   the operator: the pool still exists), the
                                               |   other model's children kept
    autoscaling turned off                     | the HPA deleted; the Deployment has replicas
    0 replicas -> 1 never-ready -> 0           | Ready True (complete at 0); Ready False with
                                               |   Progressing True while the controller says
                                               |   incomplete; Ready True again once complete
    gateway image never ready, deadline 5 s    | the controller says ProgressDeadlineExceeded;
                                               |   the policy Degraded RolloutStalled, a Warning
    the pool deleted under a live policy       | PoolNotFound; routes still listed; no "not
                                               |   observed" claim about the existing gateway
"""

from __future__ import annotations

from typing import Any

from cluster_checks import check_pool_children, live, pool_status, rollout_incomplete
from cluster_examples import Child, pool_children
from cluster_gateway import check_gateway_config
from cluster_kube import Kube
from cluster_operator import Operator
from test_operator_cluster import HAND, REPAIR_TIMEOUT, model_pool, routing_policy, vllm_model, wait

from switchman.api.v1alpha1 import API_VERSION
from switchman.operator.render.meta import gateway_child, model_child

NEVER_READY = "registry.switchman.invalid/never-ready:0"  # no such host: never pulled
STALL_DEADLINE_S = 5  # the gateway Deployment's progressDeadlineSeconds, set by hand


def conditions_of(kube: Kube, kind: str, name: str, namespace: str) -> dict[str, dict[str, Any]]:
    current = live(kube, Child(API_VERSION, kind, name), namespace)
    status = current.get("status") or {}
    assert status.get("observedGeneration") == current["metadata"]["generation"], status
    return {c["type"]: c for c in status.get("conditions") or []}


def test_removed_model_is_pruned(kube: Kube, operator: Operator) -> None:
    namespace = operator.namespace
    both = model_pool("shrink", namespace, vllm_model("small"), vllm_model("large"))
    pool = kube.apply(both)
    wait(operator, "both models' children", check_pool_children, kube, pool)
    large = [c for c in pool_children(pool) if c.name == model_child("shrink", "large")]
    assert len(large) == 3, large

    smaller = kube.apply(model_pool("shrink", namespace, vllm_model("small")))

    def pruned() -> None:
        left = [str(c) for c in large if kube.get(c.api_version, c.kind, c.name, namespace)]
        assert not left, f"still there although no longer rendered: {left}"

    wait(operator, "the removed model's children to be deleted", pruned)
    assert kube.get(API_VERSION, "ModelPool", "shrink", namespace) is not None
    check_pool_children(kube, smaller)
    wait(operator, "the pool's status", pool_status, kube, smaller)


def test_autoscaling_turned_off_deletes_the_hpa(kube: Kube, operator: Operator) -> None:
    namespace = operator.namespace
    scaled = vllm_model("small")
    scaled["vllm"].pop("replicas")
    scaled["vllm"]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 3}
    pool = kube.apply(model_pool("scaling", namespace, scaled))
    wait(operator, "the pool's children and HPA", check_pool_children, kube, pool)
    hpa = Child("autoscaling/v2", "HorizontalPodAutoscaler", model_child("scaling", "small"))
    assert kube.get(hpa.api_version, hpa.kind, hpa.name, namespace) is not None

    fixed = kube.apply(model_pool("scaling", namespace, vllm_model("small", replicas=2)))

    def gone() -> None:
        assert kube.get(hpa.api_version, hpa.kind, hpa.name, namespace) is None, "HPA still there"
        check_pool_children(kube, fixed)

    wait(operator, "the HPA to be deleted", gone)


def test_a_rollout_in_progress_is_not_ready_until_it_completes(
    kube: Kube, operator: Operator
) -> None:
    namespace = operator.namespace
    deployment = Child("apps/v1", "Deployment", model_child("roll", "small"))

    def pool_ready() -> None:
        assert rollout_incomplete(live(kube, deployment, namespace)) is None
        ready = conditions_of(kube, "ModelPool", "roll", namespace)["Ready"]
        assert (ready["status"], ready["reason"]) == ("True", "Ready"), ready

    kube.apply(model_pool("roll", namespace, vllm_model("small", replicas=0)))
    wait(operator, "a pool of 0 replicas to be Ready (complete at once)", pool_ready)

    never = vllm_model("small", replicas=1)
    never["vllm"]["image"] = NEVER_READY
    pool = kube.apply(model_pool("roll", namespace, never))

    def rolling() -> None:
        why = rollout_incomplete(live(kube, deployment, namespace))
        assert why is not None, "the controller says the rollout is complete"
        assert "not observed" not in why, f"the controller says: {why}"
        found = conditions_of(kube, "ModelPool", "roll", namespace)
        got = {t: (found[t]["status"], found[t]["reason"]) for t in found}
        assert got.get("Ready") == ("False", "ModelsNotReady"), got
        assert got.get("Progressing") == ("True", "RollingOut"), got
        assert found["Progressing"]["message"].startswith("small: "), found["Progressing"]

    wait(operator, "Ready False and Progressing True mid-rollout", rolling)
    pool_status(kube, pool)  # honesty: Ready is not True while the rollout is incomplete

    kube.apply(model_pool("roll", namespace, vllm_model("small", replicas=0)))
    wait(operator, "Ready True once the rollout completes", pool_ready, timeout=REPAIR_TIMEOUT)


def test_a_stalled_gateway_degrades_its_policy(kube: Kube, operator: Operator) -> None:
    namespace = operator.namespace
    pools = {"backing": kube.apply(model_pool("backing", namespace, vllm_model("small", 0)))}
    policy = routing_policy("stuck", namespace, ["backing"], auto={"candidates": ["small"]})
    policy["spec"]["gateway"] = {"replicas": 1, "image": NEVER_READY}
    policy = kube.apply(policy)
    wait(operator, "the gateway config", check_gateway_config, kube, policy, pools)
    gateway = Child("apps/v1", "Deployment", gateway_child("stuck"))
    wait(operator, "the gateway Deployment", live, kube, gateway, namespace)
    # The operator renders no progressDeadlineSeconds for the gateway: a short one set by hand
    # stays (server-side apply leaves fields it does not own) and makes the stall come quickly.
    edit = {"spec": {"progressDeadlineSeconds": STALL_DEADLINE_S}}
    kube.merge_patch(gateway.api_version, gateway.kind, gateway.name, namespace, edit, manager=HAND)

    def stalled() -> None:
        why = rollout_incomplete(live(kube, gateway, namespace))
        assert why is not None, "the controller says the rollout is complete"
        assert "progress deadline exceeded" in why, f"the controller says: {why}"
        found = conditions_of(kube, "RoutingPolicy", "stuck", namespace)
        got = {t: (found[t]["status"], found[t]["reason"]) for t in found}
        assert got.get("Degraded") == ("True", "RolloutStalled"), got
        assert got.get("Ready") == ("False", "RolloutStalled"), got
        assert found["Degraded"]["message"].startswith("gateway: "), found["Degraded"]

    wait(operator, "the policy Degraded with RolloutStalled", stalled, timeout=REPAIR_TIMEOUT)

    def warned() -> None:
        about = "involvedObject.kind=RoutingPolicy,involvedObject.name=stuck"
        events = kube.list("v1", "Event", namespace, field_selector=about)
        reasons = [(e.get("type"), e.get("reason")) for e in events]
        assert ("Warning", "RolloutStalled") in reasons, f"events: {reasons}"

    wait(operator, "a RolloutStalled Warning Event", warned)


def test_a_policy_losing_its_pool_still_shows_what_it_serves(
    kube: Kube, operator: Operator
) -> None:
    namespace = operator.namespace
    pools = {"gone": kube.apply(model_pool("gone", namespace, vllm_model("small", 0)))}
    policy = kube.apply(
        routing_policy("orphan", namespace, ["gone"], auto={"candidates": ["small"]})
    )
    wait(operator, "the gateway config", check_gateway_config, kube, policy, pools)
    gateway = Child("apps/v1", "Deployment", gateway_child("orphan"))
    wait(operator, "the gateway Deployment", live, kube, gateway, namespace)
    assert kube.delete(API_VERSION, "ModelPool", "gone", namespace)

    def missing() -> None:
        found = conditions_of(kube, "RoutingPolicy", "orphan", namespace)
        degraded = found.get("Degraded") or {}
        assert (degraded.get("status"), degraded.get("reason")) == ("True", "PoolNotFound"), found
        messages = " ".join(c.get("message") or "" for c in found.values())
        assert "not observed" not in messages, messages  # its Deployment exists
        assert "last applied configuration" in messages, messages
        current = live(kube, Child(API_VERSION, "RoutingPolicy", "orphan"), namespace)
        routes = [r.get("name") for r in (current.get("status") or {}).get("routes") or []]
        assert routes == ["auto"], f"the routes the gateway still serves: {routes}"

    wait(operator, "PoolNotFound with the served routes", missing)
    assert live(kube, gateway, namespace), "the gateway was deleted with its pool"
