"""Status conditions: ``Ready``, ``Progressing`` and ``Degraded``, their times and their Events.

Pure. ``status`` decides each condition's status, reason and message; this module turns them
into Kubernetes condition dicts (``lastTransitionTime`` kept while a condition's status holds,
``observedGeneration`` stamped) and says which Events a change deserves. ``reconcile`` calls
``merge`` and ``events`` and posts the Events; nothing here reads a clock (callers pass ``now``).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
TYPES = (READY, PROGRESSING, DEGRADED)

Status = Literal["True", "False", "Unknown"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One condition as decided by ``status``: ``status`` None means Unknown."""

    type: str
    status: bool | None
    reason: str
    message: str = ""

    @property
    def wire_status(self) -> Status:
        return "Unknown" if self.status is None else ("True" if self.status else "False")


@dataclass(frozen=True, slots=True)
class Event:
    """A Kubernetes Event to post on the custom resource."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def rfc3339(seconds: float) -> str:
    """``seconds`` since the epoch as the RFC 3339 UTC time Kubernetes uses (second precision)."""
    moment = datetime.datetime.fromtimestamp(int(seconds), tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def find(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """The condition of ``type_`` in a status' condition list, if any."""
    return next((c for c in conditions if c.get("type") == type_), None)


def merge(
    previous: Sequence[Mapping[str, Any]],
    current: Iterable[Condition],
    *,
    generation: int | None,
    now: str,
) -> list[dict[str, Any]]:
    """``current`` as condition dicts; a condition whose status did not change keeps its time."""
    merged = []
    for condition in current:
        before = find(previous, condition.type)
        status = condition.wire_status
        kept = before is not None and before.get("status") == status
        since = before.get("lastTransitionTime") if kept and before is not None else None
        merged.append(
            {
                "type": condition.type,
                "status": status,
                "reason": condition.reason,
                "message": condition.message,
                "lastTransitionTime": since or now,
                "observedGeneration": generation,
            }
        )
    return merged


def events(
    previous: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> list[Event]:
    """Events for notable transitions: a new or changed problem (Warning), becoming Ready."""
    out: list[Event] = []
    degraded = find(current, DEGRADED)
    if degraded is not None and degraded["status"] == "True":
        before = find(previous, DEGRADED)
        key = ("True", degraded["reason"], degraded["message"])
        if before is None or (before["status"], before["reason"], before["message"]) != key:
            out.append(Event("Warning", degraded["reason"], degraded["message"]))
    ready = find(current, READY)
    if ready is not None and ready["status"] == "True":
        before = find(previous, READY)
        if before is None or before["status"] != "True":
            out.append(Event("Normal", READY, ready["message"]))
    return out


def applied(previous_generation: int | None, generation: int | None, count: int) -> Event | None:
    """The Event for the first successful apply of a generation (not for every resync)."""
    if generation is None or previous_generation == generation:
        return None
    noun = "object" if count == 1 else "objects"
    return Event("Normal", "Applied", f"applied {count} {noun} for generation {generation}")
