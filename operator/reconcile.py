"""Level-triggered reconcile of ModelPools and RoutingPolicies: render, apply, prune, report.

Called by the kopf handlers in ``handlers`` for every cause (create, update, resume, a child
changed or vanished, a referenced pool or Secret changed), always against the whole current
state (``world.World``, from kopf's indexes). A pass renders the custom resource purely,
server-side applies every child and deletes the owned children it no longer renders (``kube``),
then writes the status when it changed and posts Events for transitions (``conditions``). It
returns an ``Outcome`` instead of raising, so a pool's handler can reconcile the policies that
use it without taking on their retries; ``handlers`` turns a handler's own outcome into kopf's
errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from switchman.operator import conditions as cond
from switchman.operator import world as w
from switchman.operator.kube import KubeError
from switchman.operator.render import InvalidSpec, UnresolvedReferences, render_policy, render_pool
from switchman.operator.status import Problem, controller, drifted

logger = logging.getLogger(__name__)

Post = Callable[[Mapping[str, Any], cond.Event], None]


class Cluster(Protocol):
    """The writes a reconcile makes (``kube.Kube``)."""

    async def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]: ...

    async def delete(
        self, api_version: str, kind: str, namespace: str, name: str, *, uid: str
    ) -> None: ...

    async def patch_status(
        self, obj: Mapping[str, Any], status: Mapping[str, Any]
    ) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a pass ended: done, retry later (``retry_after``), or wait for a spec change."""

    message: str = ""
    retry_after: float | None = None
    permanent: bool = False


class Reconciler:
    """One per operator. Status writes are serialized (one lock) so none is based on stale
    state, and the last status written per object is remembered (the watch may lag behind)."""

    def __init__(
        self,
        cluster: Cluster,
        post: Post,
        *,
        clock: Callable[[], float] = time.time,  # wall time: it stamps lastTransitionTime
        missing_retry: float = 30.0,
        apply_retry: float = 15.0,
    ) -> None:
        self._cluster = cluster
        self._post = post
        self._clock = clock
        self._missing_retry = missing_retry
        self._apply_retry = apply_retry
        self._lock = asyncio.Lock()
        self._written: dict[str, dict[str, Any]] = {}  # uid -> the last status written

    async def reconcile(self, obj: Mapping[str, Any], world: w.World) -> Outcome:
        """Bring one ModelPool's or RoutingPolicy's children and status up to date."""
        try:
            if obj["kind"] == w.POOL:
                return await self._pool(obj, world)
            return await self._policy(obj, world)
        except KubeError as exc:  # the status write failed; the children are applied
            return Outcome(f"status not written: {exc}", self._apply_retry)

    async def dependents(self, namespace: str, pool: str, world: w.World) -> None:
        """Reconcile the policies that reference ``pool`` (it changed, appeared or vanished)."""
        for policy in world.policies_in(namespace):
            if pool in w.pool_refs(policy):
                await self._quietly(policy, world)

    async def secret_changed(self, namespace: str, name: str, world: w.World) -> None:
        """Reconcile what uses Secret ``name``: pools (their status), policies (pod checksum)."""
        for obj in [*world.pools_in(namespace).values(), *world.policies_in(namespace)]:
            if w.uses_secret(obj, name, world):
                await self._quietly(obj, world)

    async def child_changed(self, event: str, child: Mapping[str, Any], world: w.World) -> None:
        """Re-apply the owner of a deleted, drifted or stale child; report a rollout's progress."""
        owner = controller(child)
        if owner is None:
            return
        parent = world.get(owner[0], child["metadata"]["namespace"], owner[1])
        if parent is None or parent["metadata"].get("uid") != owner[2]:
            return  # the owner is gone: garbage collection's job
        wanted = next((m for m in w.desired(parent, world) if w.same_object(m, child)), None)
        if wanted is None or event == "DELETED" or drifted(wanted, child):
            await self._quietly(parent, world)
        elif child.get("kind") == "Deployment":
            await self._refresh(parent, world)

    def forget(self, obj: Mapping[str, Any]) -> None:
        """Drop what is remembered about a deleted custom resource."""
        self._written.pop(str(obj.get("metadata", {}).get("uid")), None)

    async def _pool(self, pool: Mapping[str, Any], world: w.World) -> Outcome:
        try:
            manifests = render_pool(pool)
        except InvalidSpec as exc:
            return await self._fail(pool, world, Problem("InvalidSpec", str(exc)), permanent=True)
        failure = await self._apply(pool, manifests, world)
        if failure is not None:
            return failure
        await self._report(pool, world, applied=len(manifests))
        missing = w.missing_secrets(pool, world)
        if missing:
            return Outcome(f"waiting for Secret {', '.join(missing)}", self._missing_retry)
        return Outcome()

    async def _policy(self, policy: Mapping[str, Any], world: w.World) -> Outcome:
        namespace = policy["metadata"]["namespace"]
        pools, versions = world.pools_in(namespace), world.secret_versions(namespace)
        try:
            render = render_policy(policy, pools, versions)
        except UnresolvedReferences as exc:  # keep the last applied gateway, report, retry
            await self._report(policy, world)
            return Outcome(str(exc), self._missing_retry)
        except InvalidSpec as exc:
            problem = Problem("InvalidSpec", str(exc))
            return await self._fail(policy, world, problem, permanent=True)
        failure = await self._apply(policy, render.manifests, world)
        if failure is not None:
            return failure
        await self._report(policy, world, applied=len(render.manifests))
        missing = [p for p in w.pool_refs(policy) if p not in pools]
        missing += [s for s in render.secrets if s not in versions]
        if missing:
            return Outcome("; ".join(render.unresolved), self._missing_retry)
        return Outcome()

    async def _apply(
        self, owner: Mapping[str, Any], manifests: list[dict[str, Any]], world: w.World
    ) -> Outcome | None:
        """Apply every manifest, then delete the owned children no longer rendered."""
        rendered = {(m["apiVersion"], m["kind"], m["metadata"]["name"]) for m in manifests}
        namespace = owner["metadata"]["namespace"]
        try:
            for manifest in manifests:
                await self._cluster.apply(manifest)
            for child in world.children_of(owner):
                if (child.api_version, child.kind, child.name) not in rendered:
                    # The child's own uid: a newer object of that name is not deleted.
                    await self._cluster.delete(
                        child.api_version, child.kind, namespace, child.name, uid=child.uid
                    )
        except KubeError as exc:
            problem = Problem("ApplyFailed", str(exc))
            return await self._fail(owner, world, problem, retry_after=self._apply_retry)
        return None

    async def _fail(
        self,
        obj: Mapping[str, Any],
        world: w.World,
        problem: Problem,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> Outcome:
        await self._report(obj, world, problem=problem)
        return Outcome(problem.message, retry_after, permanent)

    async def _refresh(self, obj: Mapping[str, Any], world: w.World) -> None:
        """Report children's progress, unless the last pass failed or a new one is due."""
        previous = self._previous(obj)
        degraded = cond.find(previous.get("conditions") or [], cond.DEGRADED)
        if degraded and degraded.get("reason") in ("InvalidSpec", "ApplyFailed"):
            return
        if previous.get("observedGeneration") != obj["metadata"].get("generation"):
            return
        try:
            await self._report(obj, world)
        except KubeError as exc:
            logger.info("%s: status not written: %s", _name(obj), exc)

    async def _quietly(self, obj: Mapping[str, Any], world: w.World) -> None:
        """Reconcile outside the object's own handler: log what failed (its handler retries)."""
        outcome = await self.reconcile(obj, world)
        if outcome.message:
            logger.info("%s: %s", _name(obj), outcome.message)

    async def _report(
        self,
        obj: Mapping[str, Any],
        world: w.World,
        *,
        problem: Problem | None = None,
        applied: int | None = None,
    ) -> None:
        """Compute the status from the freshest state; patch it if it changed; post Events."""
        generation = obj["metadata"].get("generation")
        async with self._lock:
            previous = self._previous(obj)
            now = cond.rfc3339(self._clock())
            current = {**obj, "status": previous}
            status = w.status_of(current, world, problem=problem, generation=generation, now=now)
            if all(previous.get(key) == value for key, value in status.items()):
                return
            await self._cluster.patch_status(obj, status)
            self._written[str(obj["metadata"].get("uid"))] = status
        events = cond.events(previous.get("conditions") or [], status["conditions"])
        if applied is not None and problem is None:
            first = cond.applied(previous.get("observedGeneration"), generation, applied)
            events = [first, *events] if first else events
        for event in events:
            self._post(obj, event)

    def _previous(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        written = self._written.get(str(obj["metadata"].get("uid")))
        return dict(written if written is not None else obj.get("status") or {})


def _name(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']} {obj['metadata']['namespace']}/{obj['metadata']['name']}"
