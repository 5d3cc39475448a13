"""Routing plans: filters, scorers, strategies, canary splits and the reasons they give.

Unknowns (a model without ``price`` or ``context_window``): ``cheapest`` ranks an unpriced model
after every priced one (cost score 0, never 1) and among unpriced ones keeps candidate order; an
unknown window is never filtered out (so when no known window fits, only unknown ones stay).
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from switchman.api.gatewayconfig import GatewayConfig, parse
from switchman.gateway.errors import InvalidRequest
from switchman.gateway.routing.features import features
from switchman.gateway.routing.table import Plan, RoutingTable


class View:
    """An upstream's live state as routing sees it."""

    def __init__(
        self, problem: str | None = None, load: float = 0.0, latency: float | None = None
    ) -> None:
        self.problem = problem
        self.load_value = load
        self.latency = latency

    def unusable(self, model: str | None = None) -> str | None:
        return self.problem

    def load(self) -> float:
        return self.load_value

    def latency_estimate(self, output_tokens: int) -> float | None:
        return self.latency


class FixedComplexity:
    thresholds = {"quality": 0.3, "balanced": 0.5, "cost": 0.7}

    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, op: str, body: dict[str, Any]) -> float:
        return self.value


MODELS = [
    # name, tier, vision, tools, context, input $, output $
    ("small", "small", False, True, 4096, 0.1, 0.4),
    ("large", "large", True, True, 32768, 2.5, 10.0),
    ("vision", "large", True, False, 8192, 1.0, 4.0),
]


def config(route: dict[str, Any], models: list[Any] = MODELS) -> GatewayConfig:
    doc = {
        "version": 1,
        "upstreams": [
            {"name": f"u-{name}", "base_url": f"http://{name}:8000/v1"} for name, *_ in models
        ],
        "models": [
            {
                "name": name,
                "upstream": f"u-{name}",
                "tier": tier,
                "capabilities": {"vision": vision, "tools": tools, "context_window": ctx},
                "price": None if pin is None else {"input_per_mtok": pin, "output_per_mtok": pout},
            }
            for name, tier, vision, tools, ctx, pin, pout in models
        ],
        "routes": [{"name": "auto", **route}],
    }
    return parse(__import__("json").dumps(doc))


def plan(
    route: dict[str, Any],
    body: dict[str, Any] | None = None,
    views: dict[str, View] | None = None,
    complexity: float | None = None,
    rng: random.Random | None = None,
    models: list[Any] = MODELS,
) -> Plan:
    table = RoutingTable(config(route, models))
    body = body or {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    live = {f"u-{name}": View() for name, *_ in models}
    live.update(views or {})
    result = table.plan(
        "auto",
        "chat",
        body,
        features("chat", body),
        live,
        dict.fromkeys(live, True),
        classifier=FixedComplexity(complexity) if complexity is not None else None,
        rng=rng,
    )
    assert result is not None
    return result


def names(result: Plan) -> list[str]:
    return [m.name for m in result.order]


def image_body() -> dict[str, Any]:
    return {
        "model": "auto",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
    }


def test_priority_keeps_the_candidate_order() -> None:
    result = plan({"candidates": ["small", "large", "vision"]})
    assert names(result) == ["small", "large", "vision"]
    assert result.why == "priority"


def test_an_image_request_never_reaches_a_text_only_model() -> None:
    result = plan({"candidates": ["small", "large", "vision"]}, body=image_body())
    assert "small" not in names(result)
    assert names(result) == ["large", "vision"]
    removed = {row.model: row.removed for row in result.rows}
    assert removed["small"] == "no image input"
    assert "1 filtered" in result.why


def test_no_capable_model_is_a_clear_400() -> None:
    with pytest.raises(InvalidRequest) as caught:
        plan({"candidates": ["small"]}, body=image_body())
    assert caught.value.status == 400
    assert "image input" in caught.value.message


def test_tools_and_json_schema_filter() -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert names(plan({"candidates": ["vision", "small", "large"]}, body=body)) == [
        "small",
        "large",
    ]


def test_context_window_filter_moves_long_prompts_to_large_windows() -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "word " * 8000}],  # ~10k tokens
    }
    result = plan({"candidates": ["small", "vision", "large"]}, body=body)
    assert names(result) == ["large"]
    assert {r.model: r.removed for r in result.rows}["small"] == "context window"


def test_context_filter_keeps_the_largest_window_when_nothing_fits() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "w" * 400_000}]}
    assert names(plan({"candidates": ["small", "large"]}, body=body)) == ["large"]


def test_unhealthy_candidates_are_filtered_and_panic_keeps_them_all() -> None:
    views = {"u-small": View(problem="unavailable")}
    result = plan({"candidates": ["small", "large"]}, views=views)
    assert names(result) == ["large"]
    views = {"u-small": View(problem="unavailable"), "u-large": View(problem="rate_limited")}
    result = plan({"candidates": ["small", "large"]}, views=views)
    assert names(result) == ["small", "large"]
    assert "panic" in result.why


def test_cheapest_orders_by_estimated_cost() -> None:
    result = plan({"candidates": ["large", "vision", "small"], "strategy": "cheapest"})
    assert names(result) == ["small", "vision", "large"]
    scores = {r.model: r.parts["cost"] for r in result.rows}
    assert scores["small"] == pytest.approx(1.0)
    assert 0 < scores["large"] < scores["vision"] < 1


UNKNOWNS = [
    *MODELS,
    ("mystery", "small", None, None, None, None, None),  # no price, no window
    ("enigma", "small", None, None, None, None, None),
]


def test_cheapest_ranks_unpriced_models_after_every_priced_one() -> None:
    route = {"candidates": ["mystery", "large", "enigma", "small"], "strategy": "cheapest"}

    result = plan(route, models=UNKNOWNS)

    assert names(result) == ["small", "large", "mystery", "enigma"]
    assert {r.model: r.parts["cost"] for r in result.rows}["mystery"] == 0.0


def test_cheapest_with_no_price_at_all_keeps_candidate_order() -> None:
    route = {"candidates": ["enigma", "mystery"], "strategy": "cheapest"}

    assert names(plan(route, models=UNKNOWNS)) == ["enigma", "mystery"]


def test_unknown_context_window_is_never_filtered() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "word " * 8000}]}
    route = {"candidates": ["small", "mystery", "large"]}

    assert names(plan(route, body=body, models=UNKNOWNS)) == ["mystery", "large"]


def test_unknown_window_is_the_one_kept_when_no_known_window_fits() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "w" * 400_000}]}
    route = {"candidates": ["small", "mystery", "large"]}

    assert names(plan(route, body=body, models=UNKNOWNS)) == ["mystery"]


def test_fastest_orders_by_latency_estimate_and_explores_unknown() -> None:
    views = {"u-small": View(latency=2.0), "u-large": View(latency=0.5)}
    result = plan({"candidates": ["small", "large"], "strategy": "fastest"}, views=views)
    assert names(result) == ["large", "small"]
    # Never measured scores like the best measured one, so it gets traffic and a measurement.
    views = {"u-small": View(latency=2.0), "u-large": View(latency=0.5)}
    route = {"candidates": ["small", "vision", "large"], "strategy": "fastest"}
    result = plan(route, views=views)
    assert names(result) == ["vision", "large", "small"]
    assert {r.model: r.parts["latency"] for r in result.rows}["vision"] == 1.0


def test_least_loaded_prefers_the_idle_candidate() -> None:
    views = {"u-small": View(load=12.0), "u-large": View(load=1.0)}
    result = plan({"candidates": ["small", "large"], "strategy": "least-loaded"}, views=views)
    assert names(result) == ["large", "small"]


@pytest.mark.parametrize(
    ("complexity", "first", "reason"),
    [
        (0.1, "small", "complexity 0.10 < 0.60 -> small"),
        (0.81, "large", "complexity 0.81 >= 0.60 -> large"),
    ],
)
def test_complexity_picks_the_tier_and_says_why(complexity: float, first: str, reason: str) -> None:
    route = {
        "candidates": ["small", "large"],
        "strategy": "complexity",
        "complexity": {
            "tiers": [
                {"tier": "small", "min_complexity": 0},
                {"tier": "large", "min_complexity": 0.6},
            ]
        },
    }
    result = plan(route, complexity=complexity)
    assert names(result)[0] == first
    assert result.why == reason
    assert result.complexity == complexity
    assert len(result.order) == 2  # the other tier stays as the fallback


def test_complexity_without_thresholds_spreads_the_candidate_tiers() -> None:
    route = {"candidates": ["small", "large"], "strategy": "complexity"}
    assert names(plan(route, complexity=0.7))[0] == "large"
    assert names(plan(route, complexity=0.3))[0] == "small"


def test_scorer_overrides_mix_with_the_preset() -> None:
    # cheapest, but latency weighs more: the fast expensive model wins.
    views = {"u-small": View(latency=10.0), "u-large": View(latency=0.1)}
    route = {"candidates": ["small", "large"], "strategy": "cheapest", "scorers": {"latency": 3}}
    assert names(plan(route, views=views)) == ["large", "small"]


def test_preference_scorer() -> None:
    route = {
        "candidates": ["small", "large"],
        "strategy": "priority",
        "scorers": {"priority": 0, "preference": 1},
        "preference": {"small": 0.2, "large": 0.9},
    }
    assert names(plan(route)) == ["large", "small"]


def test_a_static_ranking_skips_the_filtered_candidates_and_keeps_its_order() -> None:
    # preference and priority alone: the ranking is made once per config; an unhealthy
    # candidate drops out of it without reordering the others.
    route = {
        "candidates": ["small", "large", "vision"],
        "scorers": {"preference": 1},
        "preference": {"small": 0.1, "large": 0.5, "vision": 0.9},
    }
    assert names(plan(route)) == ["vision", "large", "small"]
    result = plan(route, views={"u-large": View(problem="unavailable")})
    assert names(result) == ["vision", "small"]
    rows = {r.model: r for r in result.rows}
    assert rows["large"].removed == "unavailable"
    assert rows["large"].score == 0.0
    assert rows["large"].parts == {}
    assert rows["vision"].parts == pytest.approx({"preference": 0.9, "priority": 1 / 3})
    assert rows["vision"].score == pytest.approx((0.9 + 1 / 3) / 2)
    assert result.why == "priority (1 filtered)"


def test_rows_carry_each_scorer_value_of_a_request_dependent_ranking() -> None:
    views = {"u-small": View(load=3.0), "u-large": View(load=1.0)}
    result = plan({"candidates": ["small", "large"], "strategy": "least-loaded"}, views=views)
    assert names(result) == ["large", "small"]
    rows = {r.model: r for r in result.rows}
    assert rows["small"].parts == {"load": 0.5, "priority": 1.0}
    assert rows["large"].parts == {"load": 1.0, "priority": 0.5}
    assert rows["small"].score == pytest.approx((0.5 + 0.01) / 1.01)


def test_a_route_whose_scorers_all_weigh_zero_keeps_the_candidate_order() -> None:
    # Every weight overridden to 0: nothing ranks, so the user's order stands (no error).
    result = plan({"candidates": ["large", "small"], "scorers": {"priority": 0}})
    assert names(result) == ["large", "small"]
    assert [(r.score, r.parts) for r in result.rows] == [(0.0, {}), (0.0, {})]


def test_canary_split_lands_within_three_percent_over_10000_decisions() -> None:
    route = {
        "candidates": ["small", "large"],
        "strategy": "weighted",
        "split": {"small": 90, "large": 10},
    }
    table = RoutingTable(config(route))
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    feats = features("chat", body)
    live = {f"u-{name}": View() for name, *_ in MODELS}
    supports = dict.fromkeys(live, True)
    rng = random.Random(7)
    firsts: Counter[str] = Counter()
    for _ in range(10_000):
        result = table.plan("auto", "chat", body, feats, live, supports, rng=rng)
        assert result is not None
        assert len(result.order) == 2  # the other one is the fallback
        firsts[result.order[0].name] += 1
    assert abs(firsts["large"] / 10_000 - 0.10) <= 0.03
    assert abs(firsts["small"] / 10_000 - 0.90) <= 0.03


def test_weighted_reason_names_the_share() -> None:
    route = {"candidates": ["small", "large"], "strategy": "weighted", "split": {"large": 100}}
    result = plan(route)
    assert names(result) == ["large", "small"]
    assert result.why == "weighted 100% -> large"


def test_a_model_named_directly_is_served_directly() -> None:
    table = RoutingTable(config({"candidates": ["small"]}))
    body = {"model": "large", "messages": [{"role": "user", "content": "hi"}]}
    result = table.plan("large", "chat", body, features("chat", body), {}, {"u-large": True})
    assert result is not None
    assert names(result) == ["large"]
    assert result.strategy == "direct"
    assert table.plan("nope", "chat", body, features("chat", body), {}, {}) is None


def test_route_config_errors_are_clear() -> None:
    from switchman.api.gatewayconfig import ConfigError

    with pytest.raises(ConfigError, match="needs 'split'"):
        config({"candidates": ["small"], "strategy": "weighted"})
    with pytest.raises(ConfigError, match="not candidates"):
        config({"candidates": ["small"], "strategy": "weighted", "split": {"large": 10}})
    with pytest.raises(ConfigError, match=r"not in complexity\.tiers"):
        config(
            {
                "candidates": ["small", "large"],
                "strategy": "complexity",
                "complexity": {"tiers": [{"tier": "small", "min_complexity": 0}]},
            }
        )
    with pytest.raises(ConfigError, match="ascending"):
        config(
            {
                "candidates": ["small", "large"],
                "complexity": {
                    "tiers": [
                        {"tier": "small", "min_complexity": 0},
                        {"tier": "large", "min_complexity": 0},
                    ]
                },
            }
        )
