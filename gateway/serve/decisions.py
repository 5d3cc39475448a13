"""Recent routing decisions, kept for ``GET /debug/decisions``.

``proxy`` adds one entry per request (references only: formatting happens when someone reads the
log, not on the request path); ``handlers`` serves them newest first. Bounded by the config's
``server.debug_decisions``; per process (each worker keeps its own). Holds no prompt, key or
header: route, models, scores, filters, attempts and outcome only.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from switchman.gateway.routing.table import Plan
from switchman.gateway.serve.attempts import Decision

_Entry = tuple[float, str, Plan | None, Decision, int]


class DecisionLog:
    """A ring buffer of (time, request id, plan, decision, status)."""

    __slots__ = ("_ring",)

    def __init__(self, size: int = 256) -> None:
        self._ring: deque[_Entry] = deque(maxlen=size)

    def resize(self, size: int) -> None:
        if size != self._ring.maxlen:
            self._ring = deque(self._ring, maxlen=size)

    def add(self, request_id: str, plan: Plan | None, decision: Decision, status: int) -> None:
        if self._ring.maxlen:
            self._ring.append((time.time(), request_id, plan, decision, status))

    def read(self, limit: int | None = None, route: str | None = None) -> list[dict[str, Any]]:
        """Newest first, optionally only one route's."""
        out: list[dict[str, Any]] = []
        for at, request_id, plan, decision, status in reversed(self._ring):
            if route is not None and decision.route != route:
                continue
            out.append(_describe(at, request_id, plan, decision, status))
            if limit is not None and len(out) >= limit:
                break
        return out


def _describe(
    at: float, request_id: str, plan: Plan | None, decision: Decision, status: int
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "time": at,
        "request_id": request_id,
        "route": decision.route,
        "strategy": decision.strategy,
        "reason": decision.reason(),
        "status": status,
        "outcome": decision.outcome,
        "model": decision.model.name if decision.model else None,
        "endpoint": decision.endpoint,
        "continued": decision.continued,
        "attempts": [
            {"model": a.model, "upstream": a.upstream, "endpoint": a.endpoint, "outcome": a.outcome}
            for a in decision.attempts
        ],
    }
    if plan is not None:
        entry["complexity"] = None if plan.complexity is None else round(plan.complexity, 4)
        entry["order"] = [m.name for m in plan.order]
        entry["candidates"] = [
            {
                "model": row.model,
                "removed_by": row.removed,
                "score": None if row.removed else round(row.score, 4),
                "scores": {k: round(v, 4) for k, v in row.parts.items()},
            }
            for row in plan.rows
        ]
    return entry
