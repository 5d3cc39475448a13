"""``operator.rollout.Rollout``: the Deployment controller's own definition of a complete rollout.

Each case is a Deployment as the controller reports it at one moment of a rollout (the counts
and conditions a real kube-controller-manager writes); ``complete`` must agree with the
controller (``DeploymentComplete`` / ``kubectl rollout status``), ``waiting`` says why not.

    case                     | status                                      | complete | waits for
    -------------------------|---------------------------------------------|----------|----------
    done                     | all updated+available, NewReplicaSetAvailable | yes    | -
    scaled to zero           | 0 of 0                                      | yes      | -
    no Progressing condition | counts complete, no progress deadline       | yes      | -
    seen on a real cluster   | 2/3 updated, 2 ready, 1 unavailable,        | no       | updates
                             | ReplicaSetUpdated                           |          |
    old pods left            | 3 updated, 4 replicas                       | no       | old pods
    not yet available        | 3 updated and ready, 2 available            | no       | available
    unavailable reported     | counts full, unavailableReplicas 1          | no       | available
    new spec not observed    | observedGeneration < generation             | no       | observe
    stalled                  | ProgressDeadlineExceeded, this generation   | no       | deadline
    stale stall              | ProgressDeadlineExceeded, older generation  | no       | observe
    still progressing        | counts full, Progressing ReplicaSetUpdated  | no       | reason
"""

from __future__ import annotations

from typing import Any

import pytest

from switchman.operator.rollout import Rollout


def _deployment(
    desired: int | None = 3, generation: int = 2, reason: str | None = "NewReplicaSetAvailable",
    **status: Any,
) -> dict[str, Any]:  # fmt: skip
    full = {
        "observedGeneration": generation,
        "replicas": desired or 0,
        "updatedReplicas": desired or 0,
        "readyReplicas": desired or 0,
        "availableReplicas": desired or 0,
    }
    if reason is not None:
        status_value = "False" if reason == "ProgressDeadlineExceeded" else "True"
        condition = {"type": "Progressing", "status": status_value, "reason": reason}
        full["conditions"] = [{"type": "Available", "status": "True"}, condition]
    spec = {} if desired is None else {"replicas": desired}
    return {"metadata": {"generation": generation}, "spec": spec, "status": full | status}


CASES = [
    ("done", _deployment(), None),
    ("scaled-to-zero", _deployment(0), None),
    ("replicas-defaulted", _deployment(None, replicas=1, updatedReplicas=1, availableReplicas=1),
     None),
    ("no-progressing-condition", _deployment(reason=None), None),
    (
        "seen-on-a-real-cluster",
        _deployment(
            updatedReplicas=2, readyReplicas=2, availableReplicas=2, unavailableReplicas=1,
            reason="ReplicaSetUpdated",
        ),
        "2 of 3 replicas updated",
    ),
    ("old-pods-left", _deployment(replicas=4), "1 old replica pending termination"),
    ("not-yet-available", _deployment(availableReplicas=2), "2 of 3 updated replicas available"),
    ("unavailable-reported", _deployment(unavailableReplicas=1),
     "3 of 3 updated replicas available"),
    (
        "new-spec-not-observed",
        _deployment(observedGeneration=1),
        "waiting for the Deployment controller to observe generation 2",
    ),
    (
        "stalled",
        _deployment(updatedReplicas=1, availableReplicas=2, reason="ProgressDeadlineExceeded"),
        "rollout exceeded its progress deadline",
    ),
    (
        "stale-stall",
        _deployment(observedGeneration=1, reason="ProgressDeadlineExceeded"),
        "waiting for the Deployment controller to observe generation 2",
    ),
    ("still-progressing", _deployment(reason="ReplicaSetUpdated"),
     "Progressing is True (ReplicaSetUpdated)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("deployment", "waiting"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_complete_follows_the_deployment_controller(
    deployment: dict[str, Any], waiting: str | None
) -> None:
    rollout = Rollout.of(deployment)
    assert rollout.waiting == waiting
    assert rollout.complete is (waiting is None)


def test_stalled_only_for_the_current_generation() -> None:
    stalled = _deployment(reason="ProgressDeadlineExceeded")
    assert Rollout.of(stalled).stalled is True
    assert (
        Rollout.of(_deployment(observedGeneration=1, reason="ProgressDeadlineExceeded")).stalled
        is False
    )
    assert Rollout.of(_deployment()).stalled is False


def test_stall_message_carries_the_controllers_words() -> None:
    deployment = _deployment(reason="ProgressDeadlineExceeded")
    deployment["status"]["conditions"][1]["message"] = (
        'ReplicaSet "g-7f" has timed out progressing.'
    )
    assert Rollout.of(deployment).waiting == (
        'rollout exceeded its progress deadline: ReplicaSet "g-7f" has timed out progressing.'
    )


def test_counts_are_read_from_spec_and_status() -> None:
    rollout = Rollout.of(_deployment(updatedReplicas=2, readyReplicas=1, unavailableReplicas=2))
    assert (rollout.desired, rollout.replicas, rollout.updated, rollout.ready) == (3, 3, 2, 1)
    assert (rollout.available, rollout.unavailable, rollout.current) == (3, 2, True)
    empty = Rollout.of({"metadata": {}})
    assert (empty.desired, empty.ready, empty.current, empty.complete) == (1, 0, True, False)
