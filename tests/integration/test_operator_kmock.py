"""The kopf operator against kmock: handlers, server-side apply, status, Events, RBAC.

The operator runs in the test's event loop (``kopf.operator`` with the registry that
``handlers.register`` fills and the settings of ``run.build_settings``), logged in to a kmock
Kubernetes emulator (``kmock_cluster``: what kmock adds and checks is described there). Every
test's requests are also checked against ``operator.rbac``; pruning, rollouts and stalls are in
``test_operator_kmock_rollouts``.

    scenario             | drive                             | expect
    ---------------------|-----------------------------------|-------------------------------
    pool applied         | create a ModelPool                | SSA PATCHes (content type,
                         |                                   | fieldManager, force, rendered
                         |                                   | body), status, Applied event
    pool updated         | replicas 1 -> 3                   | re-applied, desired 3
    child ready          | Deployment status: complete       | Ready True, Ready event
    child deleted/edited | DELETE / hand-edit the Deployment | applied again
    autoscaling          | autoscaling instead of replicas   | HPA, no Deployment replicas
    policy before pool   | policy first, its pool later      | PoolNotFound + Warning, then
                         |                                   | ConfigMap, gateway applied
    invalid spec         | bad pool spec, then fixed         | InvalidSpec + Warning, nothing
                         |                                   | applied; applied once fixed
    pool deleted         | DELETE a pool a policy uses       | gone at once (no finalizer),
                         |                                   | children left to GC, policy
                         |                                   | PoolNotFound, gateway kept,
                         |                                   | its routes and rollout shown
    credentials Secret   | missing, created, then changed    | SecretNotFound, Ready, the
                         |                                   | gateway's checksum changes
    settings, rbac       | build_settings; rules vs the code | peering, priorities; every
                         | and every request made            | request allowed, none extra
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import kmock_cluster as k
import pytest

from switchman.api.gatewayconfig import parse
from switchman.operator import rbac
from switchman.operator.handlers import CHILD_RESOURCES
from switchman.operator.kube import FIELD_MANAGER, PLURALS
from switchman.operator.render import render_pool
from switchman.operator.run import build_settings, priority_of


@pytest.fixture
async def cluster() -> AsyncIterator[k.Cluster]:
    async with k.running_cluster() as emulator:
        yield emulator


@pytest.fixture
async def operator(cluster: k.Cluster) -> AsyncIterator[None]:
    async with k.running_operator(cluster):
        yield


# ----- ModelPool -----


async def test_pool_is_applied_server_side_and_reports_its_progress(
    cluster: k.Cluster, operator: None
) -> None:
    pool = k.pool("chat", k.vllm("qwen"))
    await k.create(cluster, "modelpools", pool)
    status = await k.eventually(lambda: k.status(cluster, "modelpools", "chat"), "pool status")

    rendered = {(m["kind"], m["metadata"]["name"]): m for m in render_pool(pool)}
    assert set(rendered) == {
        ("Deployment", "chat-qwen"),
        ("Service", "chat-qwen"),
        ("PodDisruptionBudget", "chat-qwen"),
    }
    for (kind, name), manifest in rendered.items():
        plural = PLURALS[(manifest["apiVersion"], kind)]
        request = k.applies(cluster, plural, name)[0]
        assert request.headers["Content-Type"] == "application/apply-patch+yaml"
        assert request.params == {"fieldManager": FIELD_MANAGER, "force": "true"}
        assert request.data == manifest
        assert k.get(cluster, manifest["apiVersion"], plural, name) is not None

    assert status["observedGeneration"] == 1
    assert k.condition(status, "Ready") == ("False", "ModelsNotReady")
    assert k.condition(status, "Progressing") == ("True", "RollingOut")
    assert k.condition(status, "Degraded") == ("False", "AsExpected")
    assert {c["lastTransitionTime"] for c in status["conditions"]} == {"2026-01-01T00:00:00Z"}
    assert status["models"] == [
        {
            "name": "qwen",
            "kind": "vllm",
            "readyReplicas": 0,
            "desiredReplicas": 1,
            "endpoint": "http://chat-qwen.team-a.svc.cluster.local:8000/v1",
        }
    ]
    applied = await k.eventually(lambda: k.events(cluster, "Applied"), "an Applied event")
    assert applied[0]["type"] == "Normal"
    assert applied[0]["involvedObject"]["name"] == "chat"


async def test_pool_update_is_applied_again(cluster: k.Cluster, operator: None) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))
    await k.eventually(lambda: k.status(cluster, "modelpools", "chat"), "pool status")

    spec = k.pool("chat", k.vllm("qwen", replicas=3))["spec"]
    await k.send(
        cluster, "PATCH", k.url(k.GROUP_VERSION, "modelpools", "chat"),
        {"spec": spec, "metadata": {"generation": 2}},
    )  # fmt: skip

    def desired() -> bool:
        models = k.status(cluster, "modelpools", "chat").get("models") or [{}]
        return bool(models[0].get("desiredReplicas") == 3)

    await k.eventually(desired, "desiredReplicas 3")
    assert k.applies(cluster, "deployments", "chat-qwen")[-1].data["spec"]["replicas"] == 3
    assert k.status(cluster, "modelpools", "chat")["observedGeneration"] == 2


async def test_ready_deployment_makes_the_pool_ready(cluster: k.Cluster, operator: None) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    await k.deployment_status(
        cluster, "chat-qwen", k.rollout_status(1, 1, 1, "NewReplicaSetAvailable")
    )

    def is_ready() -> dict[str, Any] | None:
        status = k.status(cluster, "modelpools", "chat")
        return status if k.condition(status, "Ready") == ("True", "Ready") else None

    status = await k.eventually(is_ready, "Ready True")
    assert k.condition(status, "Progressing") == ("False", "RolloutComplete")
    assert status["models"][0]["readyReplicas"] == 1
    event = (await k.eventually(lambda: k.events(cluster, "Ready"), "a Ready event"))[0]
    assert event["type"] == "Normal"
    assert event["message"] == "1 of 1 model ready"


async def test_deleted_deployment_is_applied_again(cluster: k.Cluster, operator: None) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")

    await k.send(cluster, "DELETE", k.url("apps/v1", "deployments", "chat-qwen"))

    await k.eventually(lambda: len(k.applies(cluster, "deployments", "chat-qwen")) >= 2, "re-apply")
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "chat-qwen"), "restored")


async def test_hand_edited_deployment_is_repaired(cluster: k.Cluster, operator: None) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "chat-qwen"), "Deployment")
    before = len(k.applies(cluster, "deployments", "chat-qwen"))

    path = k.url("apps/v1", "deployments", "chat-qwen")
    await k.send(cluster, "PATCH", path, {"spec": {"replicas": 7}})

    def repaired() -> bool:
        live = k.get(cluster, "apps/v1", "deployments", "chat-qwen") or {}
        return len(k.applies(cluster, "deployments", "chat-qwen")) > before and (
            live.get("spec", {}).get("replicas") == 1
        )

    await k.eventually(repaired, "replicas back to 1")


async def test_autoscaled_model_gets_an_hpa(cluster: k.Cluster, operator: None) -> None:
    scaled = k.vllm("qwen", autoscaling={"minReplicas": 2, "maxReplicas": 4})
    await k.create(cluster, "modelpools", k.pool("chat", scaled))

    hpa = await k.eventually(
        lambda: k.get(cluster, "autoscaling/v2", "horizontalpodautoscalers", "chat-qwen"), "HPA"
    )
    assert hpa["spec"]["minReplicas"] == 2
    deployment = k.applies(cluster, "deployments", "chat-qwen")[0].data
    assert "replicas" not in deployment["spec"]  # the HPA owns it


async def test_invalid_spec_is_reported_and_waits_for_a_fix(
    cluster: k.Cluster, operator: None
) -> None:
    bad = k.pool("chat", {"name": "qwen", "vllm": {"source": {}}})
    await k.create(cluster, "modelpools", bad)

    def invalid() -> dict[str, Any] | None:
        status = k.status(cluster, "modelpools", "chat")
        return status if k.condition(status, "Degraded") == ("True", "InvalidSpec") else None

    status = await k.eventually(invalid, "InvalidSpec")
    assert k.condition(status, "Ready") == ("False", "InvalidSpec")
    event = (await k.eventually(lambda: k.events(cluster, "InvalidSpec"), "a Warning"))[0]
    assert event["type"] == "Warning"
    assert "spec.models[0].vllm.source" in event["message"]
    assert k.applies(cluster, "deployments", "chat-qwen") == []

    fixed = k.pool("chat", k.vllm("qwen"))["spec"]
    await k.send(
        cluster, "PATCH", k.url(k.GROUP_VERSION, "modelpools", "chat"),
        {"spec": fixed, "metadata": {"generation": 2}},
    )  # fmt: skip
    await k.eventually(lambda: k.get(cluster, "apps/v1", "deployments", "chat-qwen"), "applied")

    def recovered() -> bool:
        return k.condition(k.status(cluster, "modelpools", "chat"), "Degraded") == (
            "False",
            "AsExpected",
        )

    await k.eventually(recovered, "Degraded False")


async def test_deleting_a_pool_is_not_blocked_and_leaves_children_to_gc(
    cluster: k.Cluster, operator: None
) -> None:
    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))
    await k.create(cluster, "routingpolicies", k.policy("front", "chat", ["qwen"]))
    await k.eventually(
        lambda: k.get(cluster, "v1", "configmaps", "front-gateway-config"), "gateway"
    )
    pool = k.get(cluster, k.GROUP_VERSION, "modelpools", "chat") or {}
    assert not pool["metadata"].get("finalizers")

    await k.send(cluster, "DELETE", k.url(k.GROUP_VERSION, "modelpools", "chat"))
    assert k.get(cluster, k.GROUP_VERSION, "modelpools", "chat") is None  # nothing held it

    def pool_gone() -> bool:  # the operator has seen the deletion
        status = k.status(cluster, "routingpolicies", "front")
        return k.condition(status, "Degraded") == ("True", "PoolNotFound")

    await k.eventually(pool_gone, "the policy to lose its pool")
    status = k.status(cluster, "routingpolicies", "front")
    # The gateway still serves the last applied config: its routes, and its rollout's state.
    assert status["routes"] == [{"name": "auto", "strategy": "priority", "candidates": ["qwen"]}]
    messages = " ".join(c["message"] for c in status["conditions"])
    assert "not observed" not in messages
    assert "keeps serving its last applied configuration" in messages
    assert [r for r in cluster if r.method.value == "DELETE" and r.name == "chat-qwen"] == []
    assert k.get(cluster, "apps/v1", "deployments", "chat-qwen") is not None  # GC's job
    assert k.get(cluster, "v1", "configmaps", "front-gateway-config") is not None  # last good


# ----- RoutingPolicy -----


async def test_policy_waits_for_its_pool_then_renders_the_gateway(
    cluster: k.Cluster, operator: None
) -> None:
    await k.create(cluster, "routingpolicies", k.policy("front", "chat", ["qwen"]))

    def missing() -> dict[str, Any] | None:
        status = k.status(cluster, "routingpolicies", "front")
        return status if k.condition(status, "Degraded") == ("True", "PoolNotFound") else None

    status = await k.eventually(missing, "PoolNotFound")
    assert status["unresolved"] == ["pool chat not found"]
    assert k.condition(status, "Ready") == ("False", "PoolNotFound")
    warning = (await k.eventually(lambda: k.events(cluster, "PoolNotFound"), "a Warning"))[0]
    assert warning["type"] == "Warning"
    assert k.applies(cluster, "configmaps", "front-gateway-config") == []

    await k.create(cluster, "modelpools", k.pool("chat", k.vllm("qwen")))

    config_map = await k.eventually(
        lambda: k.get(cluster, "v1", "configmaps", "front-gateway-config"), "gateway ConfigMap"
    )
    config = parse(config_map["data"]["gateway.yaml"])
    assert [str(u.base_url) for u in config.upstreams] == [
        "http://chat-qwen.team-a.svc.cluster.local:8000/v1"
    ]

    def resolved() -> dict[str, Any] | None:
        status = k.status(cluster, "routingpolicies", "front")
        return status if k.condition(status, "Degraded") == ("False", "AsExpected") else None

    status = await k.eventually(resolved, "the policy resolved")
    assert status["unresolved"] == []
    assert status["routes"] == [{"name": "auto", "strategy": "priority", "candidates": ["qwen"]}]
    assert k.condition(status, "Ready") == ("False", "GatewayNotReady")
    for plural, name in (("deployments", "front-gateway"), ("services", "front-gateway")):
        assert k.applies(cluster, plural, name), plural
    assert k.applies(cluster, "networkpolicies", "front-gateway-to-models")


async def test_credentials_secret_missing_created_and_changed(
    cluster: k.Cluster, operator: None
) -> None:
    await k.create(cluster, "modelpools", k.pool("cloud", k.external("gpt", "openai-key")))
    await k.create(cluster, "routingpolicies", k.policy("front", "cloud", ["gpt"]))

    def pool_condition(expected: tuple[str, str]) -> Callable[[], bool]:
        return lambda: k.condition(k.status(cluster, "modelpools", "cloud"), "Degraded") == expected

    await k.eventually(pool_condition(("True", "SecretNotFound")), "SecretNotFound")
    warning = (await k.eventually(lambda: k.events(cluster, "SecretNotFound"), "a Warning"))[0]
    assert "openai-key" in warning["message"]

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "openai-key", "namespace": k.NS, "uid": "uid-secret"},
        "data": {"api-key": "c2VjcmV0"},
    }
    await k.create(cluster, "secrets", secret)
    await k.eventually(pool_condition(("False", "AsExpected")), "the Secret found")
    assert k.condition(k.status(cluster, "modelpools", "cloud"), "Ready") == ("True", "Ready")

    def resolved() -> bool:
        return k.status(cluster, "routingpolicies", "front").get("unresolved") == []

    def checksum() -> str:
        template = k.applies(cluster, "deployments", "front-gateway")[-1].data["spec"]["template"]
        return str(template["metadata"]["annotations"]["switchman.dev/secrets-checksum"])

    await k.eventually(resolved, "the policy to find the Secret")
    first = checksum()
    changed = {"data": {"api-key": "bmV3"}}
    await k.send(cluster, "PATCH", k.url("v1", "secrets", "openai-key"), changed)
    await k.eventually(lambda: checksum() != first, "a new checksum")


# ----- settings and RBAC -----


def test_settings_run_standalone_unless_peering_is_named() -> None:
    standalone = build_settings()
    assert standalone.peering.standalone is True
    peered = build_settings(peering="switchman", priority=7)
    assert (peered.peering.standalone, peered.peering.mandatory) == (False, True)
    assert (peered.peering.name, peered.peering.priority) == ("switchman", 7)
    assert standalone.scanning.disabled is True
    assert standalone.posting.reporting_component == FIELD_MANAGER


def test_replicas_get_distinct_stable_priorities() -> None:
    first, second = (
        priority_of("switchman-operator-7d9f-abcde"),
        priority_of("switchman-operator-7d9f-xyz12"),
    )
    assert first != second
    assert first == priority_of("switchman-operator-7d9f-abcde")
    assert min(first, second) >= 1
    assert max(first, second) < 2**31


def test_rbac_rules_are_exactly_what_the_code_uses() -> None:
    needed: dict[tuple[str, str], set[str]] = {}

    def need(api_group: str, resource: str, *verbs: str) -> None:
        needed.setdefault((api_group, resource), set()).update(verbs)

    for group, _, plural in CHILD_RESOURCES:  # watched, applied, pruned
        need(group, plural, "list", "watch", "create", "patch", "delete")
    for (api_version, _), plural in PLURALS.items():
        group = api_version.rpartition("/")[0]
        if group == "switchman.dev":
            need(group, plural, "list", "watch", "patch")  # watched; kopf's annotations
            need(group, f"{plural}/status", "patch")  # Kube.patch_status
        else:
            need(group, plural, "create", "patch")  # Kube.apply
    need("", "secrets", "list", "watch")
    need("", "events", "create")
    for peering in ("kopfpeerings", "clusterkopfpeerings"):
        need("kopf.dev", peering, "get", "list", "watch", "patch")

    granted: dict[tuple[str, str], set[str]] = {}
    for rule in rbac.RULES:
        for resource in rule.resources:
            granted.setdefault((rule.api_group, resource), set()).update(rule.verbs)
    assert granted == needed


def test_rbac_roles_follow_the_operator_mode() -> None:
    def resources(rules: list[dict[str, Any]]) -> set[str]:
        return {r for rule in rules for r in rule["resources"]}

    assert "clusterkopfpeerings" in resources(rbac.rules(clusterwide=True, peering=True))
    assert "kopfpeerings" not in resources(rbac.rules(clusterwide=True, peering=True))
    assert "kopfpeerings" in resources(rbac.rules(clusterwide=False, peering=True))
    assert not resources(rbac.rules(clusterwide=False, peering=False)) & {
        "kopfpeerings",
        "clusterkopfpeerings",
    }
    assert rbac.allows("apps", "deployments", "patch")
    assert not rbac.allows("apps", "deployments", "update")
    assert not rbac.allows("", "secrets", "get")
