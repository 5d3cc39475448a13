"""The routing table: which models a request's ``model`` name may be served by, in what order.

Pure and immutable: built from a GatewayConfig by ``runtime`` and replaced whole on reload. A name
is either a route (a virtual model with ordered candidates) or a model (served directly). Later
strategies (scoring, canaries, complexity) reorder candidates here without touching the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass

from switchman.api.gatewayconfig import GatewayConfig, Model


@dataclass(slots=True, frozen=True)
class Resolution:
    """Candidates for one request and why they are in this order."""

    route: str
    candidates: tuple[Model, ...]
    reason: str


class RoutingTable:
    """Name lookup over one config's models and routes."""

    def __init__(self, config: GatewayConfig) -> None:
        self.models = {model.name: model for model in config.models}
        self.routes = {
            route.name: tuple(self.models[name] for name in route.candidates)
            for route in config.routes
        }

    def resolve(self, name: str) -> Resolution | None:
        """Candidates for ``name``, or None when it names neither a route nor a model."""
        route = self.routes.get(name)
        if route is not None:
            return Resolution(route=name, candidates=route, reason="ordered")
        model = self.models.get(name)
        if model is not None:
            return Resolution(route=name, candidates=(model,), reason="direct")
        return None
