"""The routing table: which models may serve a request, filtered and ranked best first.

Built from a GatewayConfig by ``runtime`` (one per config generation, replaced whole on reload);
``plan`` is called by ``proxy`` once per request. A name is a route (a virtual model with
candidates, a strategy and scorer weights) or a model (served directly). Filters remove what
cannot serve the request (capabilities, context window, health); scorers (``scoring``) rank the
rest; on routes that weigh quality, ``tiers.TierChoice`` turns the complexity score into the
wanted tier (quality mode, share cap, a route's own weights file, loaded here at build time: a
file that will not load is a ConfigError). Every plan keeps a row per candidate (scores or why
it was removed) for ``/debug/decisions``. Live state comes through ``UpstreamView``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from switchman.api.gatewayconfig import ConfigError, GatewayConfig, Model
from switchman.api.routes import Route
from switchman.gateway.errors import InvalidRequest
from switchman.gateway.routing import scoring
from switchman.gateway.routing.classifier import Classifier, WeightsError
from switchman.gateway.routing.features import Features
from switchman.gateway.routing.tiers import ComplexityScorer as ComplexityScorer
from switchman.gateway.routing.tiers import TierChoice


class UpstreamView(Protocol):
    """What routing reads from an upstream's live state."""

    # Why it cannot take requests for the model (its upstream model id) now, or None.
    def unusable(self, model: str | None = None) -> str | None: ...

    def load(self) -> float: ...

    def latency_estimate(self, output_tokens: int) -> float | None: ...


@dataclass(slots=True)
class Row:
    """One candidate in one decision: its scores, or the filter that removed it."""

    model: str
    removed: str | None = None
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Plan:
    """Candidates for one request, best first, and why."""

    route: str
    strategy: str
    order: list[Model]
    why: str
    rows: list[Row]
    spec: Route | None  # None when the client named a model directly
    complexity: float | None = None
    # Every candidate is out (breakers open, unhealthy, rate limited): the failover loop tries
    # them anyway, replicas whatever their state, rather than fail without an attempt.
    panic: bool = False


class CompiledRoute:
    """A route's config turned into what ``plan`` needs per request."""

    __slots__ = ("candidates", "choice", "spec", "tier_rank", "uses_complexity", "weights")

    def __init__(
        self, spec: Route, models: Mapping[str, Model], scorer: ComplexityScorer | None = None
    ) -> None:
        self.spec = spec
        self.candidates = tuple(models[name] for name in spec.candidates)
        self.weights = scoring.weights(spec.strategy, spec.scorers)
        self.uses_complexity = any(name == "quality" for name, _ in self.weights)
        names = list(dict.fromkeys(m.tier for m in self.candidates))  # in candidate order
        self.choice = TierChoice(spec.complexity, names, scorer)
        ranks = {name: i for i, name in enumerate(self.choice.names)}
        self.tier_rank = [ranks.get(m.tier) for m in self.candidates]


class RoutingTable:
    """Name lookup and per-request planning over one config's models and routes."""

    def __init__(self, config: GatewayConfig) -> None:
        """Raises ConfigError when a route's ``complexity.weights`` file cannot be loaded."""
        self.models = {model.name: model for model in config.models}
        loaded: dict[str, Classifier] = {}
        self.routes: dict[str, CompiledRoute] = {}
        for route in config.routes:
            path = route.complexity.weights if route.complexity is not None else None
            if path is not None and path not in loaded:
                try:
                    loaded[path] = Classifier.load(Path(path))
                except WeightsError as exc:
                    raise ConfigError(f"route {route.name!r}: complexity.weights: {exc}") from exc
            scorer = loaded[path] if path is not None else None
            self.routes[route.name] = CompiledRoute(route, self.models, scorer)

    def plan(
        self,
        name: str,
        op: str,
        body: dict[str, Any],
        feats: Features,
        views: Mapping[str, UpstreamView],
        supports: Mapping[str, bool],
        *,
        classifier: ComplexityScorer | None = None,
        rng: random.Random | None = None,
    ) -> Plan | None:
        """Candidates for ``name`` best first, or None when it names no route or model.

        ``supports`` says per upstream whether its protocol serves ``op``; ``classifier`` scores
        prompt complexity for routes that weigh quality; ``rng`` draws weighted splits. Raises
        InvalidRequest when no candidate can serve the request at all (e.g. an image and no
        vision model).
        """
        compiled = self.routes.get(name)
        if compiled is None:
            model = self.models.get(name)
            if model is None:
                return None
            rows = [Row(model.name, score=1.0)]
            _filter_needs((model,), rows, feats, supports, name, op)  # raises when it cannot
            view = views.get(model.upstream)
            panic = view is not None and view.unusable(model.target) is not None
            why = "direct (panic: unhealthy)" if panic else "direct"
            return Plan(name, "direct", [model], why, rows, None, panic=panic)
        return self._plan(
            compiled, op, body, feats, views, supports, classifier, rng or random.Random()
        )

    def _plan(
        self,
        route: CompiledRoute,
        op: str,
        body: dict[str, Any],
        feats: Features,
        views: Mapping[str, UpstreamView],
        supports: Mapping[str, bool],
        classifier: ComplexityScorer | None,
        rng: random.Random,
    ) -> Plan:
        spec = route.spec
        rows = [Row(m.name) for m in route.candidates]
        kept = _filter_needs(route.candidates, rows, feats, supports, spec.name, op)
        kept = _filter_context(route.candidates, kept, rows, feats)
        panic = False
        healthy = []
        for i in kept:
            candidate = route.candidates[i]
            problem = views[candidate.upstream].unusable(candidate.target)
            if problem is None:
                healthy.append(i)
            else:
                rows[i].removed = problem
        if healthy:
            kept = healthy
        else:  # every candidate is unhealthy: try them anyway rather than fail outright
            panic = True
            for i in kept:
                rows[i].removed = None
        complexity = None
        why: str = spec.strategy
        wanted = 0
        if route.uses_complexity and (classifier or route.choice.scorer) is not None:
            scorer = route.choice.scorer or classifier
            assert scorer is not None
            complexity, wanted, why = route.choice.decide(scorer, op, body)
        order = self._rank(route, kept, rows, feats, views, wanted)
        if spec.strategy == "weighted":
            order, why = _split(spec, order, rng)
        removed = sum(1 for r in rows if r.removed)
        if removed:
            why += f" ({removed} filtered)"
        if panic:
            why += " (panic: all candidates unhealthy)"
        models = [route.candidates[i] for i in order]
        return Plan(spec.name, spec.strategy, models, why, rows, spec, complexity, panic)

    def _rank(
        self,
        route: CompiledRoute,
        kept: list[int],
        rows: list[Row],
        feats: Features,
        views: Mapping[str, UpstreamView],
        wanted: int,
    ) -> list[int]:
        """Scores for the kept candidates; their indexes best first (stable on ties)."""
        count = len(route.candidates)
        models = [route.candidates[i] for i in kept]
        parts: dict[str, list[float]] = {}
        for name, _ in route.weights:
            if name == "cost":
                parts[name] = scoring.relative_cost([_cost(m, feats) for m in models])
            elif name == "latency":
                parts[name] = scoring.relative_low(
                    [views[m.upstream].latency_estimate(feats.output_tokens) for m in models]
                )
            elif name == "load":
                parts[name] = scoring.relative_load([views[m.upstream].load() for m in models])
            elif name == "quality":
                parts[name] = [scoring.quality(route.tier_rank[i], wanted) for i in kept]
            elif name == "preference":
                prefs = route.spec.preference
                parts[name] = [prefs.get(m.name, 0.0) if prefs else 1.0 for m in models]
            else:
                parts[name] = [scoring.priority(i, count) for i in kept]
        totals = scoring.combine(parts, route.weights)
        for j, i in enumerate(kept):
            rows[i].score = totals[j]
            rows[i].parts = {name: values[j] for name, values in parts.items()}
        ranked = sorted(range(len(kept)), key=lambda j: -totals[j])
        return [kept[j] for j in ranked]


def _split(spec: Route, order: list[int], rng: random.Random) -> tuple[list[int], str]:
    """Weighted: draw the first candidate by split percentages; the rest keep their rank."""
    names = spec.candidates
    weights = [spec.split.get(names[i], 0.0) for i in order]
    total = sum(weights)
    if total <= 0:
        return order, "weighted: no split candidate available"
    draw = rng.random() * total
    pick = 0
    for j, weight in enumerate(weights):
        if weight > 0:
            pick = j
            draw -= weight
            if draw < 0:
                break
    first = order[pick]
    share = 100.0 * spec.split.get(names[first], 0.0) / sum(spec.split.values())
    return [first, *order[:pick], *order[pick + 1 :]], f"weighted {share:g}% -> {names[first]}"


def _cost(model: Model, feats: Features) -> float | None:
    price = model.price
    if price is None:
        return None  # unknown, not free
    return (
        price.input_per_mtok * feats.prompt_tokens + price.output_per_mtok * feats.output_tokens
    ) / 1e6


_ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
_NEEDS = (("vision", "image input"), ("tools", "tool calling"), ("json_schema", "json_schema"))


def _filter_needs(
    candidates: tuple[Model, ...],
    rows: list[Row],
    feats: Features,
    supports: Mapping[str, bool],
    route: str,
    op: str,
) -> list[int]:
    """Hard filters: the endpoint and the capabilities the request needs."""
    kept = []
    missing: list[str] = []
    for i, model in enumerate(candidates):
        if not supports[model.upstream]:
            rows[i].removed = "endpoint"
            continue
        caps = model.capabilities
        lacking = [
            label for need, label in _NEEDS if getattr(feats, need) and getattr(caps, need) is False
        ]
        if lacking:
            rows[i].removed = "no " + lacking[0]
            missing.extend(lacking)
            continue
        kept.append(i)
    if not kept:
        if missing:
            raise InvalidRequest(
                f"no model behind '{route}' supports {', '.join(dict.fromkeys(missing))}, "
                "which this request needs",
                param="model",
            )
        raise InvalidRequest(
            f"'{route}' has no model that serves {_ENDPOINTS.get(op, op)}", param="model"
        )
    return kept


def _filter_context(
    candidates: tuple[Model, ...], kept: list[int], rows: list[Row], feats: Features
) -> list[int]:
    """Models whose context window holds the estimated prompt plus max_tokens.

    An unknown window (unset) is never filtered: the upstream has the last word. The estimate
    is approximate, so when no model passes, the largest window stays and the upstream decides.
    """
    need = feats.total_tokens
    windows = {i: candidates[i].capabilities.context_window for i in kept}
    fits = [i for i in kept if (windows[i] or need) >= need]
    if fits:
        for i in kept:
            if i not in fits:
                rows[i].removed = "context window"
        return fits
    largest = max(w for w in windows.values() if w is not None)
    for i in kept:
        if (windows[i] or 0) < largest:
            rows[i].removed = "context window"
    return [i for i in kept if windows[i] == largest]
