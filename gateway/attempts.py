"""The record of one request's routing decision and upstream attempts.

The proxy appends an entry per attempt; ``headers()`` turns the record into the ``x-switchman-*``
response headers that explain which model served the request and why. ``Failure`` is how an
attempt reports a failure another candidate may recover from.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchman.api.gatewayconfig import Model
from switchman.gateway.errors import GatewayError
from switchman.gateway.upstreams import UpstreamClient


class Failure(Exception):
    """An attempt failed in a way the next candidate may not: try it.

    ``reason`` is a bounded label (metrics); ``error`` is what the client sees if no candidate
    succeeds.
    """

    def __init__(self, reason: str, error: GatewayError) -> None:
        super().__init__(error.message)
        self.reason = reason
        self.error = error


@dataclass(slots=True)
class Attempt:
    model: str
    upstream: str
    outcome: str


@dataclass(slots=True)
class Decision:
    """Route, reason and attempts of one request; ``model``/``upstream`` once one serves it."""

    route: str
    strategy: str
    candidates: int
    attempts: list[Attempt] = field(default_factory=list)
    model: Model | None = None
    upstream: UpstreamClient | None = None
    outcome: str = "error"

    def record(self, model: Model, upstream: UpstreamClient, outcome: str) -> None:
        self.attempts.append(Attempt(model.name, upstream.name, outcome))

    def serve(self, model: Model, upstream: UpstreamClient) -> None:
        self.record(model, upstream, "ok")
        self.model, self.upstream = model, upstream

    def reason(self) -> str:
        """Short and human-readable, e.g. ``ordered: large (2/2) after small failed: timeout``."""
        if self.strategy == "direct":
            text = "direct: model named by the client"
        else:
            index = len(self.attempts)
            chosen = self.model.name if self.model else "none"
            text = f"{self.strategy}: {chosen} ({index}/{self.candidates})"
        failed = [a for a in self.attempts if a.outcome != "ok"]
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
            headers["x-switchman-upstream"] = f"{self.upstream.name} {self.upstream.endpoint}"
        return headers
