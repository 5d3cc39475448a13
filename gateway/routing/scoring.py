"""Scorers and strategy presets: each scorer rates a candidate in [0, 1], a route weighs them.

Pure functions over numbers ``routing`` gathers per request. Relative scorers (cost, latency,
load) give the best candidate 1 and the others their ratio to it, so weights compare like with
like whatever the units. ``WEIGHTS`` is what a strategy name means; a route's ``scorers`` block
overrides single weights. A candidate's score is the weighted mean of its scorer values:
``sum(value * weight)`` in ``SCORERS`` order over the sum of the weights (``table`` adds the
request-dependent terms first, then the static ones it worked out per route).
"""

from __future__ import annotations

from switchman.api.routes import Scorers, Strategy

SCORERS = ("cost", "latency", "load", "quality", "preference", "priority")

# A small priority weight breaks ties by candidate order, so equal scores keep the user's order.
WEIGHTS: dict[Strategy, dict[str, float]] = {
    "priority": {"priority": 1.0},
    "cheapest": {"cost": 1.0, "priority": 0.01},
    "fastest": {"latency": 1.0, "priority": 0.01},
    "least-loaded": {"load": 1.0, "priority": 0.01},
    "complexity": {"quality": 1.0, "cost": 0.05, "priority": 0.01},
    "weighted": {"priority": 1.0},
}


def weights(strategy: Strategy, overrides: Scorers) -> tuple[tuple[str, float], ...]:
    """The route's non-zero scorer weights: the preset with its overrides applied."""
    merged = dict(WEIGHTS[strategy])
    for name in SCORERS:
        value = getattr(overrides, name)
        if value is not None:
            merged[name] = value
    return tuple((name, merged[name]) for name in SCORERS if merged.get(name, 0) > 0)


def relative_low(values: list[float | None]) -> list[float]:
    """Lower is better: the lowest known value scores 1, others min/value; unknown scores 1.

    Unknown (no latency sample yet) scores 1 so a new upstream gets traffic and is measured.
    """
    known = [v for v in values if v is not None]
    if not known:
        return [1.0] * len(values)
    best = min(known)
    eps = 1e-12
    return [1.0 if v is None else (best + eps) / (v + eps) for v in values]


def relative_cost(values: list[float | None]) -> list[float]:
    """Lower is better, like ``relative_low``, but an unknown price scores 0, never 1: a model
    without a price is not free, so ``cheapest`` prefers every priced candidate to it."""
    known = [v for v in values if v is not None]
    if not known:
        return [0.0] * len(values)
    best = min(known)
    eps = 1e-12
    return [0.0 if v is None else (best + eps) / (v + eps) for v in values]


def relative_load(loads: list[float]) -> list[float]:
    """In-flight style loads: (min + 1) / (load + 1), so an idle candidate beats a busy one."""
    best = min(loads) if loads else 0.0
    return [(best + 1.0) / (load + 1.0) for load in loads]


def quality(tier_rank: int | None, wanted: int) -> float:
    """A model's tier against the tier the prompt wants: exact 1, bigger fine, smaller poor."""
    if tier_rank is None:
        return 0.0
    if tier_rank == wanted:
        return 1.0
    if tier_rank > wanted:  # over-provisioned: good answers, higher cost
        return max(0.6 - 0.1 * (tier_rank - wanted - 1), 0.2)
    return max(0.3 - 0.1 * (wanted - tier_rank - 1), 0.0)  # under-powered


def priority(index: int, count: int) -> float:
    """Earlier in the candidate list scores higher: 1 for the first, down to 1/count."""
    return 1.0 - index / count
