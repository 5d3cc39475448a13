"""The routing table: which models may serve a request, filtered and ranked best first.

Built from a GatewayConfig by ``runtime`` (one per config generation, replaced whole on reload);
``plan`` is called by ``proxy`` once per request. A name is a route (a virtual model with
candidates, a strategy and scorer weights) or a model (served directly). Filters remove what
cannot serve the request (capabilities, context window, health); scorers (``scoring``) rank the
rest; on routes that weigh quality, ``tiers.TierChoice`` turns the complexity score into the
wanted tier (quality mode, share cap, a route's own weights file, loaded here at build time: a
file that will not load is a ConfigError). Every plan keeps a row per candidate (scores or why
it was removed) for ``/debug/decisions``, built only when read. Live state comes through
``UpstreamView``. ``CompiledRoute`` works out once per config what does not depend on the
request, so a plan reads only the request's features and the live state.
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


# What a plan keeps to build its rows when they are read: the route, why each candidate was
# removed (None: kept), each candidate's total, the request-dependent scorers' values of the kept
# candidates (None: static scorers alone), the kept candidates.
_Detail = tuple["CompiledRoute", list[str | None], list[float], list[list[float]] | None, list[int]]


class Plan:
    """Candidates for one request, best first, and why.

    ``rows`` (one per candidate: its scores, or the filter that removed it) is built on first
    read from what ``plan`` kept: only ``/debug/decisions`` (when someone reads it) looks at
    rows, so the request path does not build them; a recorded trace span reads ``filtered``.
    """

    __slots__ = (
        "_detail",
        "_rows",
        "complexity",
        "order",
        "panic",
        "route",
        "spec",
        "strategy",
        "why",
    )

    def __init__(
        self,
        route: str,
        strategy: str,
        order: list[Model],
        why: str,
        rows: list[Row] | None,
        spec: Route | None,  # None when the client named a model directly
        complexity: float | None = None,
        # Every candidate is out (breakers open, unhealthy, rate limited): the failover loop
        # tries them anyway, replicas whatever their state, rather than fail without an attempt.
        panic: bool = False,
        *,
        detail: _Detail | None = None,
    ) -> None:
        self.route = route
        self.strategy = strategy
        self.order = order
        self.why = why
        self._rows = rows
        self.spec = spec
        self.complexity = complexity
        self.panic = panic
        self._detail = detail

    @property
    def rows(self) -> list[Row]:
        rows = self._rows
        if rows is None:
            rows = self._rows = [] if self._detail is None else _rows(*self._detail)
        return rows

    def filtered(self) -> list[str]:
        """``model: why`` of each candidate a filter removed, as its row says it; from what the
        plan kept, without building the rows (a recorded trace span reads this)."""
        detail = self._detail
        if self._rows is not None or detail is None:
            return [f"{row.model}: {row.removed}" for row in self.rows if row.removed]
        names, removed = detail[0].names, detail[1]
        return [f"{name}: {why}" for name, why in zip(names, removed, strict=True) if why]

    def __repr__(self) -> str:
        return (
            f"Plan(route={self.route!r}, strategy={self.strategy!r}, "
            f"order={[m.name for m in self.order]!r}, why={self.why!r}, panic={self.panic!r})"
        )


# Scorers whose value per candidate is fixed by the config; the others are read per request.
_STATIC = frozenset(("preference", "priority"))


class CompiledRoute:
    """A route's config turned into what ``plan`` needs per request.

    Everything that does not depend on the request is worked out here once per config: each
    candidate's upstream, target, missing capabilities, context window, price, split share,
    and the values of the static scorers (priority, preference) with their weighted terms;
    for a route scored by static scorers alone, the whole ranking.
    """

    __slots__ = (
        "candidates",
        "choice",
        "count",
        "dynamic",
        "floor",
        "lacks",
        "names",
        "order",
        "prices",
        "scorers",
        "spec",
        "split",
        "split_why",
        "static",
        "targets",
        "tier_rank",
        "totals",
        "upstreams",
        "uses_complexity",
        "values",
        "weight",
        "weights",
    )

    def __init__(
        self, spec: Route, models: Mapping[str, Model], scorer: ComplexityScorer | None = None
    ) -> None:
        self.spec = spec
        candidates = self.candidates = tuple(models[name] for name in spec.candidates)
        self.count = len(candidates)
        self.names = tuple(m.name for m in candidates)
        self.upstreams = tuple(m.upstream for m in candidates)
        self.targets = tuple(m.target for m in candidates)
        self.lacks = tuple(_lacks(m) for m in candidates)
        known = [w for m in candidates if (w := m.capabilities.context_window) is not None]
        self.floor = min(known) if known else None  # every window holds a request this big
        self.prices = tuple(
            None if m.price is None else (m.price.input_per_mtok, m.price.output_per_mtok)
            for m in candidates
        )
        self.weights = scoring.weights(spec.strategy, spec.scorers)
        self.weight = sum(w for _, w in self.weights) or 1.0  # the weighted mean's divisor
        self.scorers = tuple(name for name, _ in self.weights)
        self.dynamic = tuple(pair for pair in self.weights if pair[0] not in _STATIC)
        self.uses_complexity = any(name == "quality" for name, _ in self.weights)
        names = list(dict.fromkeys(m.tier for m in candidates))  # in candidate order
        self.choice = TierChoice(spec.complexity, names, scorer)
        ranks = {name: i for i, name in enumerate(self.choice.names)}
        self.tier_rank = [ranks.get(m.tier) for m in candidates]
        self._static_scores()
        self._splits()

    def _static_scores(self) -> None:
        """Per candidate: static scorer values and their weighted terms; the full ranking and
        totals when no scorer depends on the request (the weighted mean ``scoring`` defines)."""
        prefs = self.spec.preference
        values: list[tuple[float, ...]] = []
        for i, name in enumerate(self.names):
            row = []
            for scorer, _ in self.weights:
                if scorer == "preference":
                    row.append(prefs.get(name, 0.0) if prefs else 1.0)
                elif scorer == "priority":
                    row.append(scoring.priority(i, self.count))
            values.append(tuple(row))
        static = [w for name, w in self.weights if name in _STATIC]
        self.values = values  # every scorer's value, when none depends on the request
        self.static = [
            (row, tuple(v * w for v, w in zip(row, static, strict=True))) for row in values
        ]
        self.totals: list[float] | None = None
        self.order: list[int] | None = None
        if not self.dynamic and self.weights:
            self.totals = [sum(terms) / self.weight for _, terms in self.static]
            totals = self.totals
            self.order = sorted(range(self.count), key=lambda i: -totals[i])

    def _splits(self) -> None:
        """strategy weighted: each candidate's split and the reason naming its share."""
        split = self.spec.split
        self.split = [split.get(name, 0.0) for name in self.names]
        whole = sum(split.values())
        self.split_why = [
            f"weighted {100.0 * share / whole:g}% -> {name}" if whole else ""
            for share, name in zip(self.split, self.names, strict=True)
        ]


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
            if _needs(feats) or not supports[model.upstream]:
                upstream, lacks = (model.upstream,), (_lacks(model),)
                _filter_needs(upstream, lacks, [None], feats, supports, name, op)  # raises if none
            view = views.get(model.upstream)
            panic = view is not None and view.unusable(model.target) is not None
            why = "direct (panic: unhealthy)" if panic else "direct"
            rows = [Row(model.name, score=1.0)]
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
        removed: list[str | None] = [None] * route.count
        kept = _filter(route, removed, feats, supports, op)
        panic = False
        healthy = []
        upstreams, targets = route.upstreams, route.targets
        for i in kept:
            problem = views[upstreams[i]].unusable(targets[i])
            if problem is None:
                healthy.append(i)
            else:
                removed[i] = problem
        if healthy:
            kept = healthy
        else:  # every candidate is unhealthy: try them anyway rather than fail outright
            panic = True
            for i in kept:
                removed[i] = None
        complexity = None
        why: str = spec.strategy
        wanted = 0
        if route.uses_complexity and (classifier or route.choice.scorer) is not None:
            scorer = route.choice.scorer or classifier
            assert scorer is not None
            complexity, wanted, why = route.choice.decide(scorer, op, body)
        order, totals, columns = _rank(route, kept, feats, views, wanted)
        if spec.strategy == "weighted":
            order, why = _split(route, order, rng)
        filtered = route.count - removed.count(None) - removed.count("")  # the truthy ones
        if filtered:
            why += f" ({filtered} filtered)"
        if panic:
            why += " (panic: all candidates unhealthy)"
        models = list(map(route.candidates.__getitem__, order))  # (no comprehension's frame)
        detail = (route, removed, totals, columns, kept)
        return Plan(
            spec.name, spec.strategy, models, why, None, spec, complexity, panic, detail=detail
        )


def _rank(
    route: CompiledRoute,
    kept: list[int],
    feats: Features,
    views: Mapping[str, UpstreamView],
    wanted: int,
) -> tuple[list[int], list[float], list[list[float]] | None]:
    """The kept candidates' indexes best first (stable on ties); per candidate (by index, the
    kept ones set) the total score; the request-dependent scorers' columns (``_totals``; None
    for a route of static scorers alone)."""
    if route.order is not None and route.totals is not None:  # static scorers only
        order = route.order if len(kept) == route.count else [i for i in route.order if i in kept]
        return order, route.totals, None
    dynamic = route.dynamic
    if len(dynamic) == 1:  # the presets cheapest, fastest, least-loaded: one, then priority
        name, weight = dynamic[0]
        column = _column(name, route, kept, feats, views, wanted)
        totals = [0.0] * route.count
        divisor, static = route.weight, route.static
        for i, value in zip(kept, column, strict=True):
            totals[i] = sum((value * weight, *static[i][1])) / divisor
        columns = [column]
    else:
        totals, columns = _totals(route, kept, feats, views, wanted)
    if len(kept) == 2:  # the common case: no sort
        first, second = kept
        order = [second, first] if totals[second] > totals[first] else kept
    else:
        order = sorted(kept, key=lambda i: -totals[i])
    return order, totals, columns


def _rows(
    route: CompiledRoute,
    removed: list[str | None],
    totals: list[float],
    columns: list[list[float]] | None,
    kept: list[int],
) -> list[Row]:
    """Every candidate's row: the kept ones with their scores, the others why they went."""
    values = route.values if columns is None else _values(route, kept, columns)
    scorers, on = route.scorers, set(kept)
    return [
        Row(name, removed[i], totals[i], dict(zip(scorers, values[i], strict=True)))
        if i in on
        else Row(name, removed[i])
        for i, name in enumerate(route.names)
    ]


def _values(
    route: CompiledRoute, kept: list[int], columns: list[list[float]]
) -> list[tuple[float, ...]]:
    """Per candidate (by index; only the kept ones set): each scorer's value, in ``SCORERS``
    order (the request-dependent ones, then the static ones worked out at build time)."""
    values: list[tuple[float, ...]] = [()] * route.count
    static = route.static
    for j, i in enumerate(kept):
        values[i] = tuple(column[j] for column in columns) + static[i][0]
    return values


def _totals(
    route: CompiledRoute,
    kept: list[int],
    feats: Features,
    views: Mapping[str, UpstreamView],
    wanted: int,
) -> tuple[list[float], list[list[float]]]:
    """Per candidate (by index; only the kept ones are set): the weighted mean of its scorer
    values, summed in ``SCORERS`` order (request-dependent scorers first, then the static terms
    worked out at build time); and the request-dependent scorers' columns (the values of the
    kept candidates, in their order), from which a plan's rows are built when read."""
    totals = [0.0] * route.count
    divisor, static, dynamic = route.weight, route.static, route.dynamic
    columns = [_column(name, route, kept, feats, views, wanted) for name, _ in dynamic]
    if not columns:  # every scorer weight 0: the candidates keep their order, score 0
        for i in kept:
            totals[i] = sum(static[i][1]) / divisor
        return totals, columns
    pairs = zip(columns, dynamic, strict=True)
    weighted = [[v * w for v in column] for column, (_, w) in pairs]
    for i, product in zip(kept, zip(*weighted, strict=True), strict=True):
        totals[i] = sum(product + static[i][1]) / divisor
    return totals, columns


def _column(
    name: str,
    route: CompiledRoute,
    kept: list[int],
    feats: Features,
    views: Mapping[str, UpstreamView],
    wanted: int,
) -> list[float]:
    """One request-dependent scorer's values for the kept candidates, in their order."""
    upstreams = route.upstreams
    if name == "cost":
        prices = route.prices
        return scoring.relative_cost([_cost(prices[i], feats) for i in kept])
    if name == "latency":
        tokens = feats.output_tokens
        return scoring.relative_low([views[upstreams[i]].latency_estimate(tokens) for i in kept])
    if name == "load":
        return scoring.relative_load([views[upstreams[i]].load() for i in kept])
    ranks = route.tier_rank
    return [scoring.quality(ranks[i], wanted) for i in kept]


def _split(route: CompiledRoute, order: list[int], rng: random.Random) -> tuple[list[int], str]:
    """Weighted: draw the first candidate by split percentages; the rest keep their rank."""
    split = route.split
    weights = [split[i] for i in order]
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
    return [first, *order[:pick], *order[pick + 1 :]], route.split_why[first]


def _cost(price: tuple[float, float] | None, feats: Features) -> float | None:
    if price is None:
        return None  # unknown, not free
    return (price[0] * feats.prompt_tokens + price[1] * feats.output_tokens) / 1e6


_ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}
_NEEDS = (("vision", "image input"), ("tools", "tool calling"), ("json_schema", "json_schema"))


def _lacks(model: Model) -> tuple[tuple[str, str], ...]:
    """The (need, label) pairs of ``_NEEDS`` that ``model`` is known not to support."""
    caps = model.capabilities
    return tuple((need, label) for need, label in _NEEDS if getattr(caps, need) is False)


def _needs(feats: Features) -> bool:
    """Whether the request needs any capability a model may lack."""
    return feats.vision or feats.tools or feats.json_schema


def _filter(
    route: CompiledRoute,
    removed: list[str | None],
    feats: Features,
    supports: Mapping[str, bool],
    op: str,
) -> list[int]:
    """The candidates that can serve the request (endpoint, capabilities, context window)."""
    kept = list(range(route.count))
    # ``map`` over the mapping's own lookup: no generator frame per request
    if _needs(feats) or not all(map(supports.__getitem__, route.upstreams)):
        kept = _filter_needs(
            route.upstreams, route.lacks, removed, feats, supports, route.spec.name, op
        )
    floor = route.floor
    if floor is None or feats.total_tokens <= floor:  # every window holds it
        return kept
    return _filter_context(route.candidates, kept, removed, feats)


def _filter_needs(
    upstreams: tuple[str, ...],
    lacks: tuple[tuple[tuple[str, str], ...], ...],
    removed: list[str | None],
    feats: Features,
    supports: Mapping[str, bool],
    route: str,
    op: str,
) -> list[int]:
    """Hard filters: the endpoint and the capabilities the request needs (``lacks``: per
    candidate, what it is known not to support, as ``_lacks`` gives it)."""
    kept = []
    missing: list[str] = []
    for i, upstream in enumerate(upstreams):
        if not supports[upstream]:
            removed[i] = "endpoint"
            continue
        lacking = [label for need, label in lacks[i] if getattr(feats, need)]
        if lacking:
            removed[i] = "no " + lacking[0]
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
    candidates: tuple[Model, ...], kept: list[int], removed: list[str | None], feats: Features
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
                removed[i] = "context window"
        return fits
    largest = max(w for w in windows.values() if w is not None)
    for i in kept:
        if (windows[i] or 0) < largest:
            removed[i] = "context window"
    return [i for i in kept if windows[i] == largest]
