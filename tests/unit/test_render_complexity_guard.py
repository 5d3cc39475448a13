"""A RoutingPolicy route's quality mode, share cap and guard reach the GatewayConfig route.

Scenario matrix:
- complexity {mode, maxLargePercent, window}: rendered with the GatewayConfig's names, the
  defaults left out; explicit tiers as before
- guard {minMeanLogprob, requestLogprobs, ...}: every check rendered, and the rendered route
  validates as a GatewayConfig route
"""

from __future__ import annotations

from switchman.api.routes import Route as ConfigRoute
from switchman.api.v1alpha1.routingpolicy import Route
from switchman.operator.render.gatewayconfig import _route


def render(spec: dict[str, object]) -> dict[str, object]:
    route = Route.model_validate({"name": "auto", "candidates": ["small", "large"], **spec})
    out = _route(route, {"small": "pool-a", "large": "pool-b"}, [])
    assert out is not None
    ConfigRoute.model_validate(out)  # the gateway accepts what the operator writes
    return out


def test_mode_and_cap_render_without_defaults() -> None:
    out = render({"strategy": "complexity", "complexity": {"mode": "cost", "maxLargePercent": 25}})
    assert out["complexity"] == {"mode": "cost", "max_large_percent": 25.0}
    tiers = [{"tier": "small", "minComplexity": 0}, {"tier": "large", "minComplexity": 0.6}]
    out = render({"strategy": "complexity", "complexity": {"tiers": tiers}})
    rendered = [{"tier": "small", "min_complexity": 0.0}, {"tier": "large", "min_complexity": 0.6}]
    assert out["complexity"] == {"tiers": rendered}


def test_guard_renders_every_check() -> None:
    out = render({"guard": {"minMeanLogprob": -1.5, "requestLogprobs": True, "truncated": False}})
    assert out["guard"] == {
        "min_mean_logprob": -1.5,
        "request_logprobs": True,
        "empty": True,
        "refusal": True,
        "truncated": False,
        "invalid_json": True,
        "hold_stream_chunks": 0,
    }
    assert "guard" not in render({})
