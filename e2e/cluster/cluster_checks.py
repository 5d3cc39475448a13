"""What the cluster must hold for a ModelPool, and what any custom resource's status must say:
assertions over live objects, each raising ``AssertionError`` with what it found so that
``eventually`` can retry them and report the last one.

Used by ``test_operator_cluster`` and ``cluster_gateway``. Expectations come from the specs
(``cluster_examples``) and the naming contract (``switchman.operator.render.meta``), never
from the operator's own render functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from cluster_examples import Child, pool_spec, selects
from cluster_kube import Kube

from switchman.api.v1alpha1 import API_VERSION
from switchman.operator.render.meta import model_child

REASON = re.compile(r"^[A-Z][A-Za-z0-9]*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def live(kube: Kube, child: Child, namespace: str) -> dict[str, Any]:
    obj = kube.get(child.api_version, child.kind, child.name, namespace)
    assert obj is not None, f"{child} does not exist"
    return obj


def assert_owned(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> None:
    meta = owner["metadata"]
    want = {
        "apiVersion": API_VERSION,
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    refs = obj["metadata"].get("ownerReferences")
    assert refs == [want], f"{obj['kind']} {obj['metadata']['name']}: ownerReferences {refs}"


def assert_labelled(
    obj: Mapping[str, Any], component: str, instance: str | None, **switchman: str
) -> None:
    """The standard labels; ``instance`` None: present, whatever its value."""
    labels = obj["metadata"].get("labels") or {}
    want = {
        "app.kubernetes.io/name": "vllm" if component == "model-server" else "switchman-gateway",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "switchman",
        "app.kubernetes.io/managed-by": "switchman-operator",
    }
    if instance is not None:
        want["app.kubernetes.io/instance"] = instance
    for key, value in switchman.items():
        # A model name may hold '/' or ':', which no label value can: then only its presence.
        if LABEL_VALUE.match(value) and len(value) <= 63:
            want[f"switchman.dev/{key}"] = value
        else:
            assert f"switchman.dev/{key}" in labels, f"no switchman.dev/{key} label: {labels}"
    got = {key: labels.get(key) for key in want}
    assert got == want, f"{obj['kind']} {obj['metadata']['name']}: labels {labels}"
    assert "app.kubernetes.io/instance" in labels, f"no instance label: {labels}"


def instance_selector(name: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/instance": name}}


def pod_labels(deployment: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"].get("labels") or {}
    return labels


def flag(args: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in a container's args."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def rollout_incomplete(deployment: Mapping[str, Any]) -> str | None:
    """Why the Deployment's rollout is not complete, or None when it is, by the Deployment
    controller's own definition (``DeploymentComplete``; ``kubectl rollout status``): the latest
    generation observed, every desired replica updated and available, no old replica left, no
    unavailable one, and ``Progressing`` (when present) True with ``NewReplicaSetAvailable``.

    Written here from that definition, not imported from the operator: it is the oracle the
    operator's conditions are checked against.
    """
    name = deployment["metadata"]["name"]
    desired = deployment["spec"].get("replicas", 1)
    status = deployment.get("status") or {}
    generation = deployment["metadata"].get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return f"{name}: generation {generation} not observed yet"
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return f"{name}: progress deadline exceeded"
    counts = {
        key: status.get(key, 0) or 0 for key in ("updatedReplicas", "replicas", "availableReplicas")
    }
    if any(value != desired for value in counts.values()):
        return f"{name}: {counts} for {desired} desired"
    if status.get("unavailableReplicas", 0):
        return f"{name}: {status['unavailableReplicas']} unavailable"
    if progressing is not None and (
        progressing.get("status"),
        progressing.get("reason"),
    ) != ("True", "NewReplicaSetAvailable"):
        return f"{name}: Progressing {progressing.get('status')} {progressing.get('reason')}"
    return None


def check_engine_flags(child: str, engine: Any, args: list[str]) -> None:
    """The typed engine fields the spec sets are on vLLM's command line, as vLLM reads them."""
    wanted = {
        "--max-model-len": engine.max_model_len,
        "--tokenizer-mode": engine.tokenizer_mode,
        "--config-format": engine.config_format,
        "--load-format": engine.load_format,
        "--tool-call-parser": engine.tool_call_parser,
    }
    for name, value in wanted.items():
        if value is not None:
            assert flag(args, name) == str(value), f"{child}: {name} {flag(args, name)} {args}"
    if engine.tool_call_parser is not None:
        assert "--enable-auto-tool-choice" in args, f"{child}: no --enable-auto-tool-choice"
    limits = engine.limit_mm_per_prompt
    if limits is not None and limits.model_dump(exclude_none=True):
        given = json.loads(flag(args, "--limit-mm-per-prompt") or "{}")
        assert given == limits.model_dump(exclude_none=True), f"{child}: limits {given}"


def check_pool_children(kube: Kube, pool: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every child of a vLLM model exists, owned, labelled and selecting the model's pods."""
    namespace, name = pool["metadata"]["namespace"], pool["metadata"]["name"]
    deployments = []
    for model in pool_spec(pool).models:
        if model.vllm is None:
            continue
        child = model_child(name, model.name)
        marks = {"pool": name, "model": model.name}
        deployment = live(kube, Child("apps/v1", "Deployment", child), namespace)
        assert_owned(deployment, pool)
        assert_labelled(deployment, "model-server", child, **marks)
        assert deployment["spec"]["selector"] == instance_selector(child)
        pods = pod_labels(deployment)
        assert selects(deployment["spec"]["selector"], pods), f"{child}: selector misses pods"
        containers = deployment["spec"]["template"]["spec"]["containers"]
        served = [flag(c.get("args") or [], "--served-model-name") for c in containers]
        assert model.name in served, f"{child}: no --served-model-name {model.name}: {served}"
        check_engine_flags(child, model.vllm.engine, containers[0].get("args") or [])
        if model.vllm.gpu.count > 0:
            gpus = [
                str(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu"))
                for c in containers
            ]
            assert str(model.vllm.gpu.count) in gpus, f"{child}: nvidia.com/gpu limits {gpus}"
        if model.vllm.replicas is not None:
            assert deployment["spec"].get("replicas") == model.vllm.replicas, f"{child}: replicas"
        service = live(kube, Child("v1", "Service", child), namespace)
        assert_owned(service, pool)
        assert_labelled(service, "model-server", child, **marks)
        assert service["spec"].get("clusterIP") == "None", f"{child}: Service is not headless"
        ports = {(p.get("name"), p["port"]) for p in service["spec"]["ports"]}
        assert ("http", 8000) in ports, f"{child}: Service ports {ports}"
        assert service["spec"]["selector"] == {"app.kubernetes.io/instance": child}
        pdb = live(kube, Child("policy/v1", "PodDisruptionBudget", child), namespace)
        assert_owned(pdb, pool)
        assert_labelled(pdb, "model-server", child, **marks)
        assert selects(pdb["spec"]["selector"], pods), f"{child}: the PDB misses the pods"
        if model.vllm.autoscaling is not None:
            hpa = live(kube, Child("autoscaling/v2", "HorizontalPodAutoscaler", child), namespace)
            assert_owned(hpa, pool)
            target = {k: hpa["spec"]["scaleTargetRef"].get(k) for k in ("kind", "name")}
            assert target == {"kind": "Deployment", "name": child}, f"{child}: HPA {target}"
            bounds = (hpa["spec"].get("minReplicas"), hpa["spec"]["maxReplicas"])
            scaling = model.vllm.autoscaling
            assert bounds == (scaling.min_replicas, scaling.max_replicas), f"{child}: {bounds}"
        deployments.append(deployment)
    return deployments


def check_status(obj: Mapping[str, Any], deployments: list[dict[str, Any]]) -> dict[str, Any]:
    """Conditions observed for this generation, and honest: Ready True only when every
    Deployment's rollout is complete (``rollout_incomplete``), otherwise Progressing or Degraded
    True with a reason."""
    name, generation = obj["metadata"]["name"], obj["metadata"]["generation"]
    status = obj.get("status") or {}
    assert status.get("observedGeneration") == generation, f"{name}: status {status}"
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    assert "Ready" in conditions, f"{name}: no Ready condition: {status}"
    for condition in conditions.values():
        assert condition["status"] in ("True", "False", "Unknown"), condition
        assert REASON.match(condition.get("reason") or ""), f"{name}: reason of {condition}"
        assert condition.get("observedGeneration") == generation, f"{name}: {condition}"
    incomplete = [why for d in deployments if (why := rollout_incomplete(d)) is not None]
    if conditions["Ready"]["status"] == "True":
        assert not incomplete, f"{name}: Ready True while rollouts are incomplete: {incomplete}"
    else:
        why = [
            t for t in ("Progressing", "Degraded") if conditions.get(t, {}).get("status") == "True"
        ]
        assert why, f"{name}: not Ready and neither Progressing nor Degraded: {conditions}"
    return status


def pool_status(kube: Kube, pool: Mapping[str, Any]) -> dict[str, Any]:
    namespace, name = pool["metadata"]["namespace"], pool["metadata"]["name"]
    current = live(kube, Child(API_VERSION, "ModelPool", name), namespace)
    status = check_status(current, check_pool_children(kube, current))
    names = sorted(m.get("name") for m in status.get("models") or [])
    assert names == sorted(m.name for m in pool_spec(current).models), f"{name}: {status}"
    return status
