"""The kopf handlers: thin glue from kopf's causes to ``reconcile.Reconciler``.

``run`` (and the integration tests) call ``register`` on a registry of their own: nothing is
registered at import time and no handler keeps state outside the ``Reconciler`` it is given.
What is watched, and why:

- ModelPool and RoutingPolicy: create, update and resume reconcile the object (a pool change
  also re-renders the policies that use it); a deletion re-renders those policies and is
  otherwise left to garbage collection. No handler needs a finalizer, so kopf adds none.
- The children (label-selected by ``app.kubernetes.io/managed-by``): indexed by owner for
  pruning and status; a deleted or drifted child re-applies its owner; a Deployment's progress
  updates its owner's status.
- Secrets: their resourceVersions are indexed (nothing else is kept) so a pool can report a
  missing one and a policy's gateway rolls when one changes.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import kopf

from switchman.api.v1alpha1 import GROUP, VERSION
from switchman.operator.conditions import Event
from switchman.operator.kube import Kube
from switchman.operator.reconcile import Outcome, Reconciler
from switchman.operator.render.meta import MANAGED_BY
from switchman.operator.rollout import Rollout
from switchman.operator.status import Child, controller
from switchman.operator.world import World

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# (group, version, plural) of every kind the render functions produce.
CHILD_RESOURCES = (
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("policy", "v1", "poddisruptionbudgets"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("networking.k8s.io", "v1", "networkpolicies"),
)
CHANGES = ("ADDED", "MODIFIED", "DELETED")  # kopf's initial listing has type None: resume covers it
POOLS, POLICIES, SECRETS = "switchman_pools", "switchman_policies", "switchman_secrets"

Login = Callable[..., kopf.ConnectionInfo | None]


def register(
    registry: kopf.OperatorRegistry,
    kube: Kube,
    *,
    login: Login = kopf.login_via_client,
    clock: Callable[[], float] = time.time,
) -> Reconciler:
    """Declare every handler on ``registry``; return the reconciler they share."""
    reconciler = Reconciler(kube, post_event, clock=clock)

    async def reconcile(body: kopf.Body, **kwargs: Any) -> None:
        obj, state = plain(body), world(kwargs)
        outcome = await reconciler.reconcile(obj, state)
        if obj["kind"] == "ModelPool":  # the policies using it render its models
            meta = obj["metadata"]
            await reconciler.dependents(meta["namespace"], meta["name"], state)
        raise_for(outcome)

    @kopf.on.login(id="login", registry=registry)
    async def switchman_login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        info = await asyncio.to_thread(login, **kwargs)  # may read files or run exec plugins
        if info is not None:
            kube.login(info)  # the same credentials for the operator's own writes
        return info

    @kopf.on.cleanup(id="close", registry=registry)
    async def close_client(**_: Any) -> None:
        await kube.close()

    @kopf.index(GROUP, VERSION, "modelpools", id=POOLS, registry=registry)
    def index_pool(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> object:
        return {(namespace, name): plain(body)}

    @kopf.index(GROUP, VERSION, "routingpolicies", id=POLICIES, registry=registry)
    def index_policy(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> object:
        return {(namespace, name): plain(body)}

    @kopf.index("", "v1", "secrets", id=SECRETS, registry=registry)
    def index_secret(namespace: str | None, name: str, meta: kopf.Meta, **_: Any) -> object:
        return {(namespace, name): str(meta.get("resourceVersion", ""))}

    for group, version, plural in CHILD_RESOURCES:
        _watch_children(registry, reconciler, group, version, plural)

    for plural in ("modelpools", "routingpolicies"):
        for cause in (kopf.on.resume, kopf.on.create, kopf.on.update):
            cause(GROUP, VERSION, plural, id="reconcile", registry=registry)(reconcile)

    @kopf.on.event(GROUP, VERSION, "modelpools", id="gone", when=_deleted, registry=registry)
    @kopf.on.event(GROUP, VERSION, "routingpolicies", id="gone", when=_deleted, registry=registry)
    async def gone(body: kopf.Body, namespace: str | None, name: str, **kwargs: Any) -> None:
        reconciler.forget(body)
        if body.get("kind") == "ModelPool":
            await reconciler.dependents(str(namespace), name, world(kwargs))

    @kopf.on.event("", "v1", "secrets", id="secret", when=_changed, registry=registry)
    async def secret_changed(namespace: str | None, name: str, **kwargs: Any) -> None:
        await reconciler.secret_changed(str(namespace), name, world(kwargs))

    return reconciler


def _watch_children(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    group: str,
    version: str,
    plural: str,
) -> None:
    labels = {MANAGED_BY_LABEL: MANAGED_BY}
    api_version = f"{group}/{version}" if group else version

    @kopf.index(group, version, plural, id=f"switchman_{plural}", labels=labels, registry=registry)
    def index_child(namespace: str | None, body: kopf.Body, **_: Any) -> object:
        owner = controller(body)
        if owner is None:
            return None
        rollout = Rollout.of(body) if plural == "deployments" else None
        meta = body.get("metadata", {})
        kind, uid = str(body.get("kind")), str(meta.get("uid", ""))
        child = Child(api_version, kind, meta["name"], owner[2], uid, rollout)
        return {(namespace, owner[0], owner[1]): child}

    @kopf.on.event(
        group, version, plural, id="child", labels=labels, when=_changed, registry=registry
    )
    async def child_changed(type: str, body: kopf.Body, **kwargs: Any) -> None:
        await reconciler.child_changed(type, plain(body), world(kwargs))


def _changed(type: str | None, **_: Any) -> bool:
    return type in CHANGES


def _deleted(type: str | None, **_: Any) -> bool:
    return type == "DELETED"


def world(kwargs: Mapping[str, Any]) -> World:
    """The kopf indexes a handler received, as the reconciler's ``World``."""
    return World(
        pools=kwargs[POOLS],
        policies=kwargs[POLICIES],
        secrets=kwargs[SECRETS],
        children=[kwargs[f"switchman_{plural}"] for _, _, plural in CHILD_RESOURCES],
    )


def raise_for(outcome: Outcome) -> None:
    """A handler's outcome as kopf's errors: retry later, or wait for the object to change."""
    if outcome.permanent:
        raise kopf.PermanentError(outcome.message)
    if outcome.retry_after is not None:
        raise kopf.TemporaryError(outcome.message, delay=outcome.retry_after)


def post_event(obj: Mapping[str, Any], event: Event) -> None:
    """Queue a Kubernetes Event on ``obj`` through kopf's poster."""
    body = kopf.Body(cast(kopf.RawBody, dict(obj)))
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def plain(body: Mapping[str, Any]) -> dict[str, Any]:
    """A detached plain-dict copy of a kopf body (kopf reuses and updates its views)."""
    return copy.deepcopy({key: body[key] for key in body})
