"""ModelPool -> the Kubernetes objects serving its ``vllm`` models (pure; no API access).

Called by the operator's ModelPool handler (which server-side applies the result) and by
``switchman render``. ``render_pool`` validates the spec through the v1alpha1 models and returns,
per ``vllm`` model in spec order: a Deployment, a headless Service, a PodDisruptionBudget and,
with ``autoscaling``, a HorizontalPodAutoscaler, all named ``model_child(pool, model)`` and owned
by the pool. External models need no objects here (they become gateway upstreams). The pod
template comes from ``vllm``.

Choices, and why:

- PDB ``maxUnavailable: 1`` (not ``minAvailable: 1``): a single-replica model would otherwise
  block every node drain; one replica at a time keeps N-1 serving and follows an HPA's scale.
  ``unhealthyPodEvictionPolicy: AlwaysAllow`` lets a replica that never became ready (still
  downloading, crash-looping) be evicted rather than stall the drain.
- Rolling updates surge by one and keep every old replica until the new one is ready
  (``maxSurge: 1, maxUnavailable: 0``): a surge pod waiting for a free GPU stalls the rollout
  while the old replicas keep serving. ``progressDeadlineSeconds`` exceeds the startup probe's
  30 minutes so a long download is not reported as a failed rollout.
- With ``autoscaling`` the Deployment has no ``replicas`` field, so server-side apply never
  takes it back from the HPA.
- The HPA scales on the Pods metric ``vllm_num_requests_waiting`` (average per replica =
  ``targetQueueDepth``). vLLM exports ``vllm:num_requests_waiting``; the custom-metrics API
  cannot carry ':' so prometheus-adapter needs this rule::

      - seriesQuery: 'vllm:num_requests_waiting{namespace!="",pod!=""}'
        resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
        name: {matches: "^vllm:num_requests_waiting$", as: "vllm_num_requests_waiting"}
        metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'

- Label values (``switchman.dev/pool``, ``switchman.dev/model``) are kept when valid; a model
  name such as ``org/model`` becomes a valid label value with a hash suffix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from switchman.api.v1alpha1.modelpool import VLLM, ModelPoolSpec
from switchman.api.validation import bracketed
from switchman.api.validation import problems as validation_problems
from switchman.operator.render import vllm as pod
from switchman.operator.render.meta import (
    VLLM_PORT,
    InvalidSpec,
    labels,
    metadata,
    model_child,
    selector,
)

QUEUE_METRIC = "vllm_num_requests_waiting"
PROGRESS_DEADLINE_S = pod.STARTUP_PERIOD_S * pod.STARTUP_FAILURES + 600
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_RESOURCE_KEYS = frozenset({"requests", "limits", "claims"})


def render_pool(pool: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The children of a whole ModelPool object, in a deterministic order."""
    spec = parse_spec(pool)
    out: list[dict[str, Any]] = []
    for model in spec.models:
        if model.vllm is None:
            continue
        name = model_child(pool["metadata"]["name"], model.name)
        child_labels = labels(
            name,
            "model-server",
            pool=label_value(pool["metadata"]["name"]),
            model=label_value(model.name),
        )
        out.append(_deployment(pool, name, model.name, model.vllm, child_labels))
        out.append(_service(pool, name, child_labels))
        out.append(_pdb(pool, name, child_labels))
        if model.vllm.autoscaling is not None:
            out.append(_hpa(pool, name, model.vllm, child_labels))
    return out


def parse_spec(pool: Mapping[str, Any]) -> ModelPoolSpec:
    """The validated spec; ``InvalidSpec`` names every bad field (never its value)."""
    kind_name = f"ModelPool {pool.get('metadata', {}).get('name', '?')}"
    try:
        spec = ModelPoolSpec.model_validate(pool.get("spec"), by_alias=True)
    except ValidationError as exc:
        found = validation_problems(exc, bracketed)
        raise InvalidSpec(f"{kind_name}: invalid spec: {'; '.join(found)}") from None
    problems = []
    children: dict[str, str] = {}
    for index, model in enumerate(spec.models):
        child = model_child(pool.get("metadata", {}).get("name", ""), model.name)
        if child in children and model.vllm is not None:
            problems.append(
                f"spec.models[{index}].name: model names {children[child]!r} and "
                f"{model.name!r} give the same object name {child!r}; make them differ"
            )
        if model.vllm is not None:
            children[child] = model.name
            problems += _check_vllm(f"spec.models[{index}].vllm", model.vllm)
    if problems:
        raise InvalidSpec(f"{kind_name}: invalid spec: {'; '.join(problems)}")
    return spec


def label_value(value: str) -> str:
    """``value`` when it is a valid label value, else a sanitized one with a hash suffix."""
    if len(value) <= 63 and _LABEL_VALUE.match(value):
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:54].strip("-_.")
    return f"{cleaned}-{digest}" if cleaned else digest


def _engine_field_set(vllm: VLLM, alias: str) -> bool:
    """Whether the engine field of camelCase name ``alias`` is set."""
    fields = type(vllm.engine).model_fields
    name = next(n for n, f in fields.items() if f.alias == alias)
    return getattr(vllm.engine, name) is not None


def _check_vllm(path: str, vllm: VLLM) -> list[str]:
    """Rules the schema cannot state: flags the Service relies on, GPUs set in one place."""
    problems = []
    for arg in vllm.engine.extra_args:
        flag = arg.split("=", 1)[0]
        if flag in pod.MANAGED_FLAGS:
            problems.append(f"{path}.engine.extraArgs: {flag} is set by the operator; remove it")
        elif flag in pod.ENGINE_FLAGS and _engine_field_set(vllm, pod.ENGINE_FLAGS[flag]):
            field = pod.ENGINE_FLAGS[flag]
            problems.append(f"{path}.engine.extraArgs: {flag} repeats engine.{field}; keep one")
    unknown = sorted(set(vllm.resources) - _RESOURCE_KEYS)
    if unknown:
        problems.append(f"{path}.resources: unknown keys {unknown}; use requests and limits")
    for key in ("requests", "limits"):
        values = vllm.resources.get(key, {})
        if not isinstance(values, Mapping):
            problems.append(f"{path}.resources.{key}: must be a map of resource to quantity")
        elif pod.GPU_RESOURCE in values:
            problems.append(
                f"{path}.resources.{key}: set GPUs with gpu.count, not {pod.GPU_RESOURCE}"
            )
    return problems


def _deployment(
    pool: Mapping[str, Any], name: str, served: str, vllm: VLLM, child_labels: dict[str, str]
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if vllm.autoscaling is None:
        spec["replicas"] = 1 if vllm.replicas is None else vllm.replicas
    spec.update(
        {
            "selector": {"matchLabels": selector(name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
            "template": pod.pod_template(served, vllm, child_labels),
        }
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, pool, child_labels),
        "spec": spec,
    }


def _service(pool: Mapping[str, Any], name: str, child_labels: dict[str, str]) -> dict[str, Any]:
    port = {"name": "http", "port": VLLM_PORT, "targetPort": "http", "protocol": "TCP"}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, pool, child_labels),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": False,
            "selector": selector(name),
            "ports": [port],
        },
    }


def _pdb(pool: Mapping[str, Any], name: str, child_labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, pool, child_labels),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector(name)},
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def _hpa(
    pool: Mapping[str, Any], name: str, vllm: VLLM, child_labels: dict[str, str]
) -> dict[str, Any]:
    scaling = vllm.autoscaling
    assert scaling is not None
    target = {"type": "AverageValue", "averageValue": quantity(scaling.target_queue_depth)}
    metric = {"type": "Pods", "pods": {"metric": {"name": QUEUE_METRIC}, "target": target}}
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, pool, child_labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [metric],
        },
    }


def quantity(value: float) -> str:
    """A Kubernetes quantity: whole numbers as is, fractions in milli-units (at least 1m)."""
    if value == int(value):
        return str(int(value))
    return f"{max(1, round(value * 1000))}m"
