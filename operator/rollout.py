"""A Deployment's rollout as the Deployment controller itself defines it (pure).

The one readiness rule of the operator: ``status`` judges every vLLM model's Deployment and every
gateway Deployment with ``Rollout``; ``handlers`` builds one per indexed Deployment. A rollout is
*complete* exactly when the controller would call it so (``DeploymentComplete`` in the
controller, ``kubectl rollout status``):

- the controller has observed the latest spec (``status.observedGeneration >= generation``);
- every desired replica runs the new template (``updatedReplicas == spec.replicas``);
- no old pod is left (``status.replicas == spec.replicas``);
- every replica is available (``availableReplicas == spec.replicas``, ``unavailableReplicas``
  0);
- the ``Progressing`` condition, when present, is ``True`` with ``NewReplicaSetAvailable``
  (the reason the controller sets on completion).

A rollout is *stalled* when the controller has observed the latest spec and its ``Progressing``
condition says ``ProgressDeadlineExceeded`` (a stale condition of an older generation does not
count: a new rollout starts a new deadline). ``waiting`` says, like ``kubectl rollout status``,
what a rollout that is not complete waits for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

COMPLETE_REASON = "NewReplicaSetAvailable"
STALLED_REASON = "ProgressDeadlineExceeded"


@dataclass(frozen=True, slots=True)
class Rollout:
    """What a Deployment's spec asks for and its status reports."""

    desired: int  # spec.replicas (1 when unset, as the API server defaults it)
    replicas: int = 0  # status.replicas: pods of every ReplicaSet, old ones included
    updated: int = 0  # status.updatedReplicas: pods of the new template
    ready: int = 0  # status.readyReplicas
    available: int = 0  # status.availableReplicas: ready for minReadySeconds
    unavailable: int = 0  # status.unavailableReplicas
    generation: int = 0  # metadata.generation
    observed: int = 0  # status.observedGeneration
    progressing: str | None = None  # the Progressing condition's reason, if any
    progressing_status: str | None = None  # its status: "True", "False" or "Unknown"
    progressing_message: str = ""

    @classmethod
    def of(cls, deployment: Mapping[str, Any]) -> Rollout:
        spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
        progressing = next(
            (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None
        )
        replicas = spec.get("replicas")
        return cls(
            desired=1 if replicas is None else _count(replicas),
            replicas=_count(status.get("replicas")),
            updated=_count(status.get("updatedReplicas")),
            ready=_count(status.get("readyReplicas")),
            available=_count(status.get("availableReplicas")),
            unavailable=_count(status.get("unavailableReplicas")),
            generation=_count((deployment.get("metadata") or {}).get("generation")),
            observed=_count(status.get("observedGeneration")),
            progressing=None if progressing is None else str(progressing.get("reason") or ""),
            progressing_status=None if progressing is None else str(progressing.get("status")),
            progressing_message="" if progressing is None else str(progressing.get("message", "")),
        )

    @property
    def current(self) -> bool:
        """The controller has observed the latest spec."""
        return self.observed >= self.generation

    @property
    def stalled(self) -> bool:
        """The current rollout exceeded its progress deadline."""
        return self.current and self.progressing == STALLED_REASON

    @property
    def complete(self) -> bool:
        """Every replica updated and available, none old, the latest spec observed."""
        return self.waiting is None

    @property
    def waiting(self) -> str | None:
        """What the rollout waits for (None once complete), in ``kubectl rollout status`` terms."""
        if not self.current:
            return f"waiting for the Deployment controller to observe generation {self.generation}"
        if self.stalled:
            detail = f": {self.progressing_message}" if self.progressing_message else ""
            return f"rollout exceeded its progress deadline{detail}"
        if self.updated < self.desired:
            return f"{self.updated} of {self.desired} replicas updated"
        if self.replicas > self.updated:
            old = self.replicas - self.updated
            return f"{old} old replica{'s' if old != 1 else ''} pending termination"
        if self.available < self.desired or self.unavailable > 0:
            return f"{self.available} of {self.desired} updated replicas available"
        if self.updated != self.desired or self.replicas != self.desired:
            return f"{self.replicas} replicas for {self.desired} desired"
        if self.progressing is not None and (
            self.progressing != COMPLETE_REASON or self.progressing_status != "True"
        ):
            return f"Progressing is {self.progressing_status} ({self.progressing})"
        return None


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0
