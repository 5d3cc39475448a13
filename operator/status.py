"""What the operator observed, as the status of a ModelPool or a RoutingPolicy (pure).

Called by ``reconcile`` after it applied (or failed to apply) a custom resource's children, and
whenever a child Deployment reports progress. ``Child`` (with its Deployment's ``rollout.Rollout``)
is the compact view of a child that ``handlers`` keeps in kopf indexes; ``pool_status`` and
``policy_status`` turn them, the missing references and any spec problem into ``status``
(conditions via ``conditions``); both judge a Deployment by ``Rollout.complete`` alone.
``drifted`` tells whether a live child still carries everything rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from switchman.api.v1alpha1 import API_VERSION
from switchman.api.v1alpha1.modelpool import ModelPoolSpec
from switchman.operator import conditions as cond
from switchman.operator.conditions import Condition
from switchman.operator.render.meta import VLLM_PORT, model_child, service_host
from switchman.operator.rollout import Rollout


@dataclass(frozen=True, slots=True)
class Problem:
    """Why nothing could be applied: InvalidSpec, ApplyFailed..."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class Child:
    """A child object as indexed: what to prune it by, and its rollout if it is a Deployment."""

    api_version: str
    kind: str
    name: str
    owner_uid: str  # the controlling owner's uid (whose child it is)
    uid: str  # its own uid: the precondition that prunes exactly this object
    rollout: Rollout | None = None


def controller(obj: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(kind, name, uid) of the switchman custom resource controlling ``obj``, if any."""
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("apiVersion") == API_VERSION:
            return str(ref["kind"]), str(ref["name"]), str(ref.get("uid", ""))
    return None


def pool_secrets(spec: ModelPoolSpec) -> list[str]:
    """The Secrets a pool's models need: provider credentials and Hugging Face tokens."""
    names = set()
    for model in spec.models:
        if model.external is not None and model.external.credentials_secret is not None:
            names.add(model.external.credentials_secret.name)
        if model.vllm is not None and model.vllm.hf_token_secret is not None:
            names.add(model.vllm.hf_token_secret.name)
    return sorted(names)


def pool_status(
    pool: Mapping[str, Any],
    spec: ModelPoolSpec | None,
    *,
    rollouts: Mapping[str, Rollout],
    missing_secrets: Sequence[str] = (),
    problem: Problem | None = None,
    observed_generation: int | None,
    now: str,
) -> dict[str, Any]:
    """A ModelPool's status; ``rollouts`` maps child Deployment names to their progress.

    A vLLM model is ready when its Deployment's rollout is complete (``rollout.Rollout``) with
    at least the replicas the spec asks for; a stalled rollout degrades the pool.
    """
    name, namespace = pool["metadata"]["name"], pool["metadata"]["namespace"]
    models: list[dict[str, Any]] = []
    waiting, stalled = [], []
    for model in spec.models if spec is not None else []:
        if model.external is not None:
            endpoint = model.external.base_url
            models.append(_model(model.name, "external", 0, 0, endpoint))
            continue
        assert model.vllm is not None
        child = model_child(name, model.name)
        rollout = rollouts.get(child)
        scaling = model.vllm.autoscaling
        ready = rollout.ready if rollout is not None else 0
        if scaling is not None and rollout is not None:
            desired = rollout.desired  # the HPA owns the Deployment's replicas
        elif scaling is not None:
            desired = scaling.min_replicas
        else:  # what the spec asks for, even before the Deployment's watch catches up
            desired = 1 if model.vllm.replicas is None else model.vllm.replicas
        endpoint = f"http://{service_host(child, namespace)}:{VLLM_PORT}/v1"
        models.append(_model(model.name, "vllm", ready, desired, endpoint))
        if rollout is not None and rollout.stalled:
            stalled.append(f"{model.name}: {rollout.waiting}")
        elif rollout is None:
            waiting.append(f"{model.name}: 0/{desired} replicas ready")
        elif rollout.waiting is not None:
            waiting.append(f"{model.name}: {rollout.waiting}")
        elif rollout.desired != desired:  # the watch has not seen the applied replicas yet
            waiting.append(f"{model.name}: {ready}/{desired} replicas ready")
    if problem is not None:
        current = _failed(problem)
    else:
        issue = None
        if missing_secrets:
            names = ", ".join(missing_secrets)
            issue = Problem("SecretNotFound", f"Secret {names} not found in {namespace}")
        elif stalled:
            issue = Problem("RolloutStalled", "; ".join(stalled))
        current = _verdict(issue, waiting, "ModelsNotReady", _ready_message(len(models)))
    return {
        "observedGeneration": observed_generation,
        "conditions": _merge(pool, current, observed_generation, now),
        "models": models,
    }


def policy_status(
    policy: Mapping[str, Any],
    *,
    routes: Sequence[Mapping[str, Any]],
    unresolved: Sequence[str],
    missing_pools: Sequence[str] = (),
    missing_secrets: Sequence[str] = (),
    gateway: Rollout | None,
    problem: Problem | None = None,
    observed_generation: int | None,
    now: str,
    applied: bool = True,
) -> dict[str, Any]:
    """A RoutingPolicy's status: its resolved routes, what is missing, the gateway's rollout.

    ``applied`` False: this generation could not be rendered (a pool is missing), so nothing was
    applied; ``routes`` are then the ones the gateway still serves from the last applied config.
    """
    if problem is not None:
        current = _failed(problem)
    else:
        issue = None
        if unresolved:
            # A missing pool explains the most; a model not found or an invalid pool, the least.
            reason = (
                "PoolNotFound"
                if missing_pools
                else "SecretNotFound"
                if missing_secrets
                else "UnresolvedReferences"
            )
            message = "; ".join(unresolved)
            if not applied and gateway is not None:
                message += "; the gateway keeps serving its last applied configuration"
            issue = Problem(reason, message)
        waiting = []
        if gateway is not None and gateway.stalled:
            stall = Problem("RolloutStalled", f"gateway: {gateway.waiting}")
            issue = issue if issue is not None else stall
        elif gateway is not None and gateway.waiting is not None:
            waiting.append(f"gateway: {gateway.waiting}")
        elif gateway is None and applied:
            waiting.append("gateway: its Deployment is not observed yet")
        message = f"gateway ready, {len(routes)} route{'s' if len(routes) != 1 else ''}"
        current = _verdict(issue, waiting, "GatewayNotReady", message)
    return {
        "observedGeneration": observed_generation,
        "conditions": _merge(policy, current, observed_generation, now),
        "routes": [dict(route) for route in routes],
        "unresolved": list(unresolved),
    }


def drifted(desired: Any, live: Any) -> bool:
    """Whether ``live`` lacks or changed anything in ``desired`` (API defaults are extra, fine)."""
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return bool(desired) or live is not None
        return any(
            drifted(value, live.get(key)) for key, value in desired.items() if value is not None
        )
    if isinstance(desired, list):
        if not isinstance(live, list):
            return bool(desired) or live is not None
        return len(live) != len(desired) or any(map(drifted, desired, live))
    if desired == live:
        return False
    # Quantities and ports come back as strings: 1 and "1" are the same value.
    both = (desired, live)
    return not (all(isinstance(v, (int, float, str)) for v in both) and str(live) == str(desired))


def _model(name: str, kind: str, ready: int, desired: int, endpoint: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "kind": kind, "readyReplicas": ready}
    entry["desiredReplicas"] = desired
    if endpoint is not None:
        entry["endpoint"] = endpoint
    return entry


def _ready_message(count: int) -> str:
    return f"{count} of {count} model{'s' if count != 1 else ''} ready"


def _failed(problem: Problem) -> list[Condition]:
    return [
        Condition(cond.READY, False, problem.reason, problem.message),
        Condition(cond.PROGRESSING, False, problem.reason, problem.message),
        Condition(cond.DEGRADED, True, problem.reason, problem.message),
    ]


def _verdict(
    issue: Problem | None, waiting: Sequence[str], not_ready: str, ready_message: str
) -> list[Condition]:
    rolling = "; ".join(waiting)
    if issue is not None:
        ready = Condition(cond.READY, False, issue.reason, issue.message)
    elif waiting:
        ready = Condition(cond.READY, False, not_ready, rolling)
    else:
        ready = Condition(cond.READY, True, "Ready", ready_message)
    if waiting:
        progressing = Condition(cond.PROGRESSING, True, "RollingOut", rolling)
    elif issue is not None:  # nothing moves until the problem is fixed
        progressing = Condition(cond.PROGRESSING, False, issue.reason, issue.message)
    else:
        progressing = Condition(cond.PROGRESSING, False, "RolloutComplete", "")
    degraded = (
        Condition(cond.DEGRADED, True, issue.reason, issue.message)
        if issue is not None
        else Condition(cond.DEGRADED, False, "AsExpected", "")
    )
    return [ready, progressing, degraded]


def _merge(
    obj: Mapping[str, Any], current: list[Condition], generation: int | None, now: str
) -> list[dict[str, Any]]:
    previous = (obj.get("status") or {}).get("conditions") or []
    return cond.merge(previous, current, generation=generation, now=now)
