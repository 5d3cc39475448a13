"""The record of one request's routing decision and upstream attempts.

``proxy`` opens one per request and the failover loop (``failover``) appends an entry per
attempt; ``headers()`` turns the record into the ``x-switchman-*`` response headers that explain
which model served the request and why; ``decisions`` keeps recent ones for ``/debug/decisions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchman.api.gatewayconfig import Model
from switchman.gateway.upstreams.client import UpstreamClient


@dataclass(slots=True)
class Attempt:
    model: str
    upstream: str
    outcome: str
    endpoint: str | None = None


@dataclass(slots=True)
class Decision:
    """Route, reason and attempts of one request; ``model``/``upstream`` once one serves it."""

    route: str
    strategy: str
    candidates: int
    why: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    model: Model | None = None
    upstream: UpstreamClient | None = None
    endpoint: str | None = None
    outcome: str = "error"
    continued: int = 0  # mid-stream continuations onto another attempt

    def record(
        self, model: Model, upstream: UpstreamClient, outcome: str, endpoint: str | None = None
    ) -> None:
        self.attempts.append(Attempt(model.name, upstream.name, outcome, endpoint))

    def serve(self, model: Model, upstream: UpstreamClient, endpoint: str | None = None) -> None:
        self.record(model, upstream, "ok", endpoint)
        self.model, self.upstream, self.endpoint = model, upstream, endpoint

    def reason(self) -> str:
        """Short and human-readable, e.g. ``priority: large (2/2) after small failed: timeout``."""
        if self.strategy == "direct":
            text = "direct: model named by the client"
        else:
            index = len(self.attempts)
            chosen = self.model.name if self.model else "none"
            text = f"{self.why or self.strategy}: {chosen} ({index}/{self.candidates})"
        attempts = self.attempts
        if len(attempts) == 1 and attempts[0].outcome == "ok":  # the common case: none failed
            return text
        failed = [a for a in attempts if a.outcome != "ok"]
        if failed:
            text += " after " + ", ".join(f"{a.model} failed: {a.outcome}" for a in failed)
        return text

    def headers(self) -> dict[str, str]:
        headers = {
            "x-switchman-route": f"{self.route}; {self.reason()}",
            "x-switchman-attempts": str(len(self.attempts)),
        }
        if self.model is not None and self.upstream is not None:
            headers["x-switchman-model"] = self.model.name
            endpoint = self.endpoint or self.upstream.endpoint
            headers["x-switchman-upstream"] = f"{self.upstream.name} {endpoint}"
        return headers
