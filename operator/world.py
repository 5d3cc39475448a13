"""What the operator's watches know, and what follows from it for one custom resource (pure).

``handlers`` builds a ``World`` from kopf's indexes (pools, policies, Secret versions, children
by owner); ``reconcile`` asks it for a custom resource's desired children (``desired``), its
status (``status_of``, through ``status``) and the references it depends on. Nothing here
talks to the Kubernetes API or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from switchman.api.v1alpha1.modelpool import ModelPoolSpec
from switchman.operator.render import InvalidSpec, UnresolvedReferences, render_policy, render_pool
from switchman.operator.rollout import Rollout
from switchman.operator.status import Child, Problem, policy_status, pool_secrets, pool_status

POOL, POLICY = "ModelPool", "RoutingPolicy"
Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class World:
    """The watched state: kopf indexes (key -> a store of values), or dicts of lists in tests."""

    pools: Mapping[Key, Iterable[Mapping[str, Any]]]  # (ns, name) -> [ModelPool]
    policies: Mapping[Key, Iterable[Mapping[str, Any]]]  # (ns, name) -> [RoutingPolicy]
    secrets: Mapping[Key, Iterable[str]]  # (ns, name) -> [resourceVersion]
    children: list[Mapping[Key, Iterable[Child]]] = field(default_factory=list)  # per kind

    def get(self, kind: str, namespace: str, name: str) -> Mapping[str, Any] | None:
        index = self.pools if kind == POOL else self.policies
        return next(iter(index.get((namespace, name), ())), None)

    def pools_in(self, namespace: str) -> dict[str, Mapping[str, Any]]:
        return {k[1]: v for k, vs in self.pools.items() if k[0] == namespace for v in vs}

    def policies_in(self, namespace: str) -> list[Mapping[str, Any]]:
        return [v for k, vs in self.policies.items() if k[0] == namespace for v in vs]

    def secret_versions(self, namespace: str) -> dict[str, str]:
        return {k[1]: v for k, vs in self.secrets.items() if k[0] == namespace for v in vs}

    def children_of(self, owner: Mapping[str, Any]) -> list[Child]:
        """The indexed children whose controller is this very object (same uid)."""
        meta = owner["metadata"]
        key = (meta["namespace"], owner["kind"], meta["name"])
        found = [c for index in self.children for c in index.get(key, ())]
        return [c for c in found if c.owner_uid == meta.get("uid")]


def desired(obj: Mapping[str, Any], world: World) -> list[dict[str, Any]]:
    """The children ``obj`` renders to now; none while its spec or references fail."""
    try:
        if obj["kind"] == POOL:
            return render_pool(obj)
        namespace = obj["metadata"]["namespace"]
        pools, versions = world.pools_in(namespace), world.secret_versions(namespace)
        return render_policy(obj, pools, versions).manifests
    except InvalidSpec:
        return []


def status_of(
    obj: Mapping[str, Any],
    world: World,
    *,
    problem: Problem | None,
    generation: int | None,
    now: str,
) -> dict[str, Any]:
    """The status of ``obj`` (its ``status`` holding the previous one) in ``world``."""
    common: dict[str, Any] = {"observed_generation": generation, "now": now}
    if obj["kind"] == POOL:
        rollouts = {c.name: c.rollout for c in world.children_of(obj) if c.rollout is not None}
        missing = missing_secrets(obj, world)
        return pool_status(
            obj, pool_spec(obj), rollouts=rollouts, missing_secrets=missing, problem=problem,
            **common,
        )  # fmt: skip
    namespace = obj["metadata"]["namespace"]
    pools, versions = world.pools_in(namespace), world.secret_versions(namespace)
    missing_pools = [p for p in pool_refs(obj) if p not in pools]
    if problem is None:
        try:
            render = render_policy(obj, pools, versions)
        except UnresolvedReferences as exc:  # nothing applied: the gateway serves the last config
            served = (obj.get("status") or {}).get("routes") or []
            return policy_status(
                obj, routes=served, unresolved=exc.unresolved, missing_pools=missing_pools,
                gateway=gateway(obj, world), applied=False, **common,
            )  # fmt: skip
        except InvalidSpec as exc:
            problem = Problem("InvalidSpec", str(exc))
        else:
            return policy_status(
                obj,
                routes=render.routes,
                unresolved=render.unresolved,
                missing_pools=missing_pools,
                missing_secrets=[s for s in render.secrets if s not in versions],
                gateway=gateway(obj, world),
                **common,
            )
    return policy_status(obj, routes=[], unresolved=[], gateway=None, problem=problem, **common)


def pool_refs(policy: Mapping[str, Any]) -> list[str]:
    """The names of the ModelPools a policy references (as written, valid or not)."""
    pools = (policy.get("spec") or {}).get("pools") or []
    return [str(ref.get("name")) for ref in pools if isinstance(ref, Mapping)]


def pool_spec(pool: Mapping[str, Any]) -> ModelPoolSpec | None:
    try:
        return ModelPoolSpec.model_validate(pool.get("spec"), by_alias=True)
    except ValidationError:
        return None


def missing_secrets(pool: Mapping[str, Any], world: World) -> list[str]:
    """The Secrets a pool's models need that do not exist."""
    spec = pool_spec(pool)
    known = world.secret_versions(pool["metadata"]["namespace"])
    return [s for s in pool_secrets(spec) if s not in known] if spec is not None else []


def uses_secret(obj: Mapping[str, Any], name: str, world: World) -> bool:
    """Whether Secret ``name`` matters to ``obj`` (credentials, or the gateway's mounts)."""
    if obj["kind"] == POOL:
        spec = pool_spec(obj)
        return spec is not None and name in pool_secrets(spec)
    try:
        return name in render_policy(obj, world.pools_in(obj["metadata"]["namespace"])).secrets
    except InvalidSpec:
        return False


def gateway(policy: Mapping[str, Any], world: World) -> Rollout | None:
    """The rollout of the policy's gateway Deployment, once indexed."""
    return next(
        (c.rollout for c in world.children_of(policy) if c.kind == "Deployment" and c.rollout),
        None,
    )


def same_object(manifest: Mapping[str, Any], obj: Mapping[str, Any]) -> bool:
    """Whether a rendered manifest and a live object are the same object."""
    return (manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"]) == (
        obj.get("apiVersion"),
        obj.get("kind"),
        obj.get("metadata", {}).get("name"),
    )
