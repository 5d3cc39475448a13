"""A RoutingPolicy's ``spec.gateway.workers`` reaches the gateway container's command line.

Scenarios:
- unset (1): the container runs ``switchman gateway`` without ``--workers`` (one process);
- 4: the container runs it with ``--workers 4``;
- outside 1..64: the spec is refused (``InvalidSpec``), as the CRD's schema refuses it at apply.
"""

from __future__ import annotations

from typing import Any

import pytest

from switchman.operator.render import InvalidSpec, render_policy


def _objects(**gateway: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    pool = {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "ModelPool",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "uid-chat"},
        "spec": {
            "models": [
                {"name": "a", "vllm": {"source": {"huggingFace": {"repo": "Qwen/Qwen2.5-0.5B"}}}}
            ]
        },
    }
    policy = {
        "apiVersion": "switchman.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "chat", "namespace": "ml", "uid": "uid-policy", "generation": 1},
        "spec": {
            "pools": [{"name": "chat"}],
            "routes": [{"name": "auto", "candidates": ["a"]}],
            "gateway": gateway,
        },
    }
    return policy, {"chat": pool}


def _args(**gateway: Any) -> list[str]:
    policy, pools = _objects(**gateway)
    result = render_policy(policy, pools)
    (deployment,) = [m for m in result.manifests if m["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args: list[str] = container["args"]
    return args


def test_one_worker_by_default_runs_one_process() -> None:
    args = _args()
    assert args[0] == "gateway"
    assert "--workers" not in args


def test_workers_reach_the_command_line() -> None:
    args = _args(workers=4)
    assert args[args.index("--workers") + 1] == "4"


@pytest.mark.parametrize("workers", [0, 65])
def test_a_worker_count_out_of_range_is_refused(workers: int) -> None:
    policy, pools = _objects(workers=workers)
    with pytest.raises(InvalidSpec, match="workers"):
        render_policy(policy, pools)
