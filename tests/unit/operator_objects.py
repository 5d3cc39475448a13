"""Custom resources and Deployments as the operator's unit tests build them (plain dicts), shared
by ``test_operator_status`` and ``test_operator_reconcile``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from switchman.api.v1alpha1.modelpool import ModelPoolSpec

NS = "ml"
NOW = "2026-01-01T00:00:00Z"
CLOCK = 1_767_225_600.0


def pool(name: str, *models: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    meta = {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": generation}
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "ModelPool",
        "metadata": meta,
        "spec": {"models": list(models)},
    }


def vllm(name: str, **vllm: Any) -> dict[str, Any]:
    return {"name": name, "vllm": {"source": {"huggingFace": {"repo": f"org/{name}"}}, **vllm}}


def external(name: str, secret: str, **more: Any) -> dict[str, Any]:
    ref = {"name": secret, "key": "k"}
    return {"name": name, "external": {"provider": "openai", "credentialsSecret": ref, **more}}


def policy(name: str, *pools: str, candidates: tuple[str, ...] = ("a",)) -> dict[str, Any]:
    return {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": NS, "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "pools": [{"name": p} for p in pools],
            "routes": [{"name": "auto", "candidates": list(candidates)}],
        },
    }


def spec(pool: Mapping[str, Any]) -> ModelPoolSpec:
    return ModelPoolSpec.model_validate(pool["spec"], by_alias=True)


def deployment(
    desired: int = 1, ready: int = 0, generation: int = 1, seen: int = 1, **status: Any
) -> dict[str, Any]:
    """A Deployment whose ``ready`` pods are new, ready and available (none old)."""
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": seen,
            "replicas": desired,
            "readyReplicas": ready,
            "updatedReplicas": desired,
            "availableReplicas": ready,
            "unavailableReplicas": desired - ready,
            **status,
        },
    }


STALLED = [
    {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": 'ReplicaSet "x-1" has timed out progressing.',
    }
]


def conditions(status: Mapping[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}
