"""The operator against a real Kubernetes API server: CRDs installed, ``switchman operator``
running as a subprocess, custom resources applied the way a person applies them.

Needs a kube-apiserver with kube-controller-manager (deployment controller and garbage
collector); no scheduler, nodes or GPUs: Pods may stay Pending, so readiness is checked for
honesty (Ready True only when the Deployments really are ready; otherwise Progressing or
Degraded says why), never demanded. Each test gets a namespace and an operator of its own.

    scenario                                       | asserts
    -----------------------------------------------|------------------------------------------
    every examples/NN-* applied (placeholder        | per vLLM model a Deployment, headless
      Secrets for references it leaves out)         |   Service, PDB (HPA when autoscaling),
                                                    |   owned by the pool, labelled, selecting
                                                    |   their pods; per policy the ConfigMap
                                                    |   (a valid GatewayConfig with every model
                                                    |   and route), gateway Deployment (config
                                                    |   dir + Secret mounts, checksum), Service,
                                                    |   NetworkPolicy (admits only the gateway);
                                                    |   status: observedGeneration, conditions
    a child Service deleted by hand                 | recreated (a new uid)
    a Deployment's replicas edited by hand          | restored to the spec's
    a model added to a referenced pool              | gateway.yaml gains it; gateway pod
                                                    |   template unchanged (hot reload)
    the ModelPool deleted                           | its children garbage-collected (60 s)
    a RoutingPolicy naming a missing pool           | Degraded + reason, unresolved, Warning
                                                    |   Event; resolved once the pool appears
    vllm and external both set / weighted without   | 422 at apply time with the CEL rule's
      split / duplicate models, candidates or pools |   (or the schema's) message; nothing
      (server-side apply) / no routes               |   stored; never a 500
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cluster_checks import REASON, check_pool_children, live, pool_status
from cluster_examples import (
    Child,
    example_dirs,
    into_namespace,
    load_example,
    placeholder_secret,
    pool_children,
    referenced_secrets,
)
from cluster_gateway import check_gateway, check_gateway_config, policy_status
from cluster_kube import ApiException, Kube, api_message, eventually
from cluster_operator import Operator

from switchman.api.v1alpha1 import API_VERSION
from switchman.operator.render.meta import gateway_child, model_child

FACTOR = float(os.environ.get("SWITCHMAN_E2E_TIMEOUT_FACTOR", "1"))
RECONCILE_TIMEOUT = 90.0 * FACTOR  # operator start-up plus a first reconcile
REPAIR_TIMEOUT = 150.0 * FACTOR  # drift repair may wait for the operator's periodic re-apply
GC_TIMEOUT = 60.0 * FACTOR  # the brief's bound for kube-controller-manager's garbage collector
HAND = "e2e-hand-edit"  # field manager of the edits a person makes with kubectl
EXAMPLES = example_dirs()
T = TypeVar("T")


def wait(
    operator: Operator,
    what: str,
    check: Callable[..., T],
    *args: Any,
    timeout: float = RECONCILE_TIMEOUT,
) -> T:
    """``check(*args)`` until it passes, failing at once if the operator exits."""
    bound = functools.partial(check, *args)
    return eventually(what, bound, timeout, guard=operator.ensure_running)


def vllm_model(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "name": name,
        "tier": name,
        "vllm": {
            "source": {"huggingFace": {"repo": "Qwen/Qwen2.5-0.5B-Instruct"}},
            "replicas": replicas,
            "gpu": {"count": 1},
        },
    }


def model_pool(name: str, namespace: str, *models: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelPool",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"models": list(models)},
    }


def routing_policy(name: str, namespace: str, pools: list[str], **routes: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "pools": [{"name": pool} for pool in pools],
            "routes": [{"name": route, **spec} for route, spec in routes.items()],
        },
    }


@pytest.mark.parametrize(
    "example", EXAMPLES or [None], ids=[p.name for p in EXAMPLES] or ["no-examples"]
)
def test_example_is_reconciled(example: Path | None, kube: Kube, operator: Operator) -> None:
    if example is None:
        pytest.fail("examples/ holds no numbered example directory", pytrace=False)
    loaded = load_example(example)
    assert loaded.pools or loaded.policies, f"{example}: no ModelPool or RoutingPolicy in it"
    namespace = operator.namespace
    for secret in loaded.secrets:
        kube.apply(into_namespace(secret, namespace))
    given = {s["metadata"]["name"] for s in loaded.secrets}
    for secret_name, keys in referenced_secrets(loaded.pools, loaded.policies).items():
        if secret_name not in given:
            kube.apply(placeholder_secret(secret_name, keys, namespace))
    pools = {p["metadata"]["name"]: kube.apply(into_namespace(p, namespace)) for p in loaded.pools}
    policies = [kube.apply(into_namespace(p, namespace)) for p in loaded.policies]
    for name, pool in pools.items():
        wait(operator, f"ModelPool {name}'s children", check_pool_children, kube, pool)
        wait(operator, f"ModelPool {name}'s status", pool_status, kube, pool)
    for policy in policies:
        name = policy["metadata"]["name"]
        wait(operator, f"RoutingPolicy {name}'s config", check_gateway_config, kube, policy, pools)
        wait(operator, f"RoutingPolicy {name}'s status", policy_status, kube, policy, pools)


def test_deleted_child_service_is_recreated(kube: Kube, operator: Operator) -> None:
    pool = kube.apply(model_pool("drift", operator.namespace, vllm_model("small")))
    wait(operator, "the pool's children", check_pool_children, kube, pool)
    service = Child("v1", "Service", model_child("drift", "small"))
    before = live(kube, service, operator.namespace)["metadata"]["uid"]
    assert kube.delete(service.api_version, service.kind, service.name, operator.namespace)

    def recreated() -> None:
        again = live(kube, service, operator.namespace)
        assert again["metadata"]["uid"] != before, "still the old Service (not yet deleted)"
        check_pool_children(kube, pool)

    wait(operator, f"{service} to be recreated", recreated, timeout=REPAIR_TIMEOUT)


def test_hand_edited_replicas_are_restored(kube: Kube, operator: Operator) -> None:
    pool = kube.apply(model_pool("drift", operator.namespace, vllm_model("small", replicas=1)))
    wait(operator, "the pool's children", check_pool_children, kube, pool)
    deployment = Child("apps/v1", "Deployment", model_child("drift", "small"))
    edit = {"spec": {"replicas": 3}}
    edited = kube.merge_patch(
        deployment.api_version,
        deployment.kind,
        deployment.name,
        operator.namespace,
        edit,
        manager=HAND,
    )
    assert edited["spec"]["replicas"] == 3

    def restored() -> None:
        replicas = live(kube, deployment, operator.namespace)["spec"]["replicas"]
        assert replicas == 1, f"{deployment} still has {replicas} replicas"

    wait(operator, "the replicas to be restored", restored, timeout=REPAIR_TIMEOUT)


def test_gateway_config_follows_pool_change(kube: Kube, operator: Operator) -> None:
    namespace = operator.namespace
    pool = kube.apply(model_pool("grow", namespace, vllm_model("small")))
    route = {"candidates": ["small"]}
    policy = kube.apply(routing_policy("front", namespace, ["grow"], auto=route))
    config = wait(operator, "the first config", check_gateway_config, kube, policy, {"grow": pool})
    assert {m.name for m in config.models} == {"small"}
    gateway = wait(operator, "the gateway", check_gateway, kube, policy, {"grow": pool})

    grown = kube.apply(model_pool("grow", namespace, vllm_model("small"), vllm_model("large")))
    assert grown["metadata"]["generation"] > pool["metadata"]["generation"]
    pools = {"grow": grown}
    config = wait(operator, "gateway.yaml to gain large", check_gateway_config, kube, policy, pools)
    assert {m.name for m in config.models} == {"small", "large"}
    wait(operator, "the new model's children", check_pool_children, kube, grown)
    wait(operator, "the status of the pool's new generation", pool_status, kube, grown)
    after = live(kube, Child("apps/v1", "Deployment", gateway_child("front")), namespace)
    assert after["spec"]["template"] == gateway["spec"]["template"], (
        "a config change rolled the gateway's pods; it must reach them by hot reload"
    )


def test_deleting_a_pool_garbage_collects_its_children(kube: Kube, operator: Operator) -> None:
    namespace = operator.namespace
    pool = kube.apply(model_pool("doomed", namespace, vllm_model("small")))
    wait(operator, "the pool's children", check_pool_children, kube, pool)
    assert kube.delete(API_VERSION, "ModelPool", "doomed", namespace)

    def collected() -> None:
        pool_left = kube.get(API_VERSION, "ModelPool", "doomed", namespace)
        assert pool_left is None, "the ModelPool is still there (a finalizer?)"
        children = pool_children(pool)
        left = [str(c) for c in children if kube.get(c.api_version, c.kind, c.name, namespace)]
        assert not left, f"not yet collected: {left}"

    # kube-controller-manager's garbage collector does this, not the operator.
    eventually("garbage collection", collected, GC_TIMEOUT)


def test_policy_with_a_missing_pool_is_degraded_until_the_pool_appears(
    kube: Kube, operator: Operator
) -> None:
    namespace = operator.namespace
    route = {"candidates": ["small"]}
    policy = kube.apply(routing_policy("lonely", namespace, ["late"], auto=route))

    def degraded() -> None:
        current = live(kube, Child(API_VERSION, "RoutingPolicy", "lonely"), namespace)
        status = current.get("status") or {}
        assert status.get("observedGeneration") == current["metadata"]["generation"], status
        conditions = {c["type"]: c for c in status.get("conditions") or []}
        assert conditions.get("Degraded", {}).get("status") == "True", f"conditions {conditions}"
        assert REASON.match(conditions["Degraded"].get("reason") or ""), conditions["Degraded"]
        assert conditions.get("Ready", {}).get("status") != "True", conditions
        assert any("late" in entry for entry in status.get("unresolved") or []), status

    wait(operator, "a Degraded condition naming the missing pool", degraded)

    def warned() -> None:
        about = "involvedObject.kind=RoutingPolicy,involvedObject.name=lonely"
        events = kube.list("v1", "Event", namespace, field_selector=about)
        seen = [(e.get("type"), e.get("reason")) for e in events]
        assert any(kind == "Warning" for kind, _ in seen), f"events: {seen}"

    wait(operator, "a Warning Event on the policy", warned)

    pools = {"late": kube.apply(model_pool("late", namespace, vllm_model("small")))}
    wait(
        operator, "the pool to resolve", policy_status, kube, policy, pools, timeout=REPAIR_TIMEOUT
    )
    wait(operator, "the config to hold the pool's model", check_gateway_config, kube, policy, pools)


BOTH = {**vllm_model("both"), "external": {"provider": "openai"}}
UNSPLIT = {"candidates": ["a", "b"], "strategy": "weighted"}


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param(
            model_pool("confused", "-", BOTH),
            "set exactly one of vllm or external",
            id="vllm-and-external",
        ),
        pytest.param(
            routing_policy("unsplit", "-", ["any"], auto=UNSPLIT),
            "strategy weighted needs split",
            id="weighted-without-split",
        ),
        # Duplicates in a list-map or set fail server-side apply before validation (a 500):
        # these lists are atomic with CEL uniqueness rules, so the answer is a 422.
        pytest.param(
            model_pool("twins", "-", vllm_model("same"), vllm_model("same")),
            "model names must be unique within a pool",
            id="duplicate-model-names",
        ),
        pytest.param(
            routing_policy("twice", "-", ["any"], auto={"candidates": ["a", "a"]}),
            "candidates must be unique",
            id="duplicate-candidates",
        ),
        pytest.param(
            routing_policy("dup", "-", ["any", "any"], auto={"candidates": ["a"]}),
            "pool names must be unique",
            id="duplicate-pools",
        ),
        pytest.param(
            routing_policy("empty", "-", ["any"]),
            "should have at least 1 items",
            id="no-routes",
        ),
    ],
)
def test_invalid_object_is_rejected_at_apply_time(
    kube: Kube, namespace: str, obj: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiException) as caught:
        kube.apply(into_namespace(obj, namespace))
    said = api_message(caught.value)
    assert caught.value.status == 422, f"{caught.value.status}: {said}"
    assert message in said, f"the API server said: {said}"
    assert kube.get(API_VERSION, obj["kind"], obj["metadata"]["name"], namespace) is None
