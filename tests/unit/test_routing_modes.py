"""Quality modes, the large-share cap and per-route weights files of complexity routes.

Scenario matrix:
- no complexity block / mode balanced|quality|cost: the scorer's threshold for that mode sends
  a prompt to the top tier (candidate order), below it to the first; the reason names the
  mode; a score exactly at the threshold goes large; three tiers: the middle one spread
  below the threshold
- explicit tiers keep their own thresholds and the old reason text
- max_large_percent: after the warm-up, at most that share of a stream of uniform scores goes
  large, and the reason says "capped at X% large"; below the cap the mode's threshold stands
- ShareCap.cut: at most X% at or above the cut, ties at the edge, 0% and 100%
- complexity.weights: the route scores with its own file (its thresholds, not the gateway's
  classifier); an unreadable or malformed file is a ConfigError naming the route; a config
  reload with such a file is rejected and the last good generation keeps serving
- the config: tiers with mode or max_large_percent are refused
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from test_routing import MODELS, FixedComplexity, View, config

from switchman.api.gatewayconfig import ConfigError, parse
from switchman.gateway.routing.classifier import NAMES
from switchman.gateway.routing.classifier.ngrams import BUCKETS
from switchman.gateway.routing.features import features
from switchman.gateway.routing.share import ShareCap, cut
from switchman.gateway.routing.table import Plan, RoutingTable
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher

BODY = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}


def plan_on(table: RoutingTable, scorer: Any) -> Plan:
    live = {f"u-{name}": View() for name, *_ in MODELS}
    result = table.plan(
        "auto", "chat", BODY, features("chat", BODY), live, dict.fromkeys(live, True),
        classifier=scorer,
    )  # fmt: skip
    assert result is not None
    return result


def route(**complexity: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"candidates": ["small", "large"], "strategy": "complexity"}
    if complexity:
        spec["complexity"] = complexity
    return spec


@pytest.mark.parametrize(
    ("complexity", "score", "first", "reason"),
    [
        ({}, 0.49, "small", "complexity 0.49 < 0.50 (balanced) -> small"),
        ({}, 0.5, "large", "complexity 0.50 >= 0.50 (balanced) -> large"),
        ({"mode": "quality"}, 0.31, "large", "complexity 0.31 >= 0.30 (quality) -> large"),
        ({"mode": "cost"}, 0.69, "small", "complexity 0.69 < 0.70 (cost) -> small"),
        ({"mode": "cost"}, 0.6999, "small", "complexity 0.6999 < 0.7000 (cost) -> small"),
        ({"tiers": [{"tier": "small", "min_complexity": 0},
                    {"tier": "large", "min_complexity": 0.9}]},
         0.8, "small", "complexity 0.80 < 0.90 -> small"),
    ],
)  # fmt: skip
def test_the_mode_threshold_picks_the_tier_and_says_why(
    complexity: dict[str, Any], score: float, first: str, reason: str
) -> None:
    result = plan_on(RoutingTable(config(route(**complexity))), FixedComplexity(score))
    assert result.order[0].name == first
    assert result.why == reason
    assert result.complexity == score


def test_three_tiers_spread_the_middle_one_below_the_threshold() -> None:
    models = [*MODELS, ("medium", "medium", True, True, 8192, 0.5, 2.0)]
    spec = {"candidates": ["small", "medium", "large"], "strategy": "complexity",
            "complexity": {"mode": "balanced"}}  # fmt: skip
    table = RoutingTable(config(spec, models))
    live = {f"u-{name}": View() for name, *_ in models}

    def first(score: float) -> str:
        result = table.plan(
            "auto", "chat", BODY, features("chat", BODY), live, dict.fromkeys(live, True),
            classifier=FixedComplexity(score),
        )  # fmt: skip
        assert result is not None
        return result.order[0].name

    assert [first(s) for s in (0.1, 0.3, 0.6)] == ["small", "medium", "large"]


def test_the_cap_holds_the_large_share_and_says_so() -> None:
    table = RoutingTable(config(route(mode="quality", max_large_percent=20, window=200)))
    rng = random.Random(7)
    large = 0
    reasons = set()
    for i in range(1000):
        result = plan_on(table, FixedComplexity(rng.random()))
        if i >= 200:  # after the warm-up window
            large += result.order[0].name == "large"
            reasons.add(result.why.split("(")[1].split(")")[0])
    assert large / 800 <= 0.23  # 20% of a window that trails the stream by up to 1/64 of it
    assert large / 800 >= 0.15
    assert reasons == {"quality, capped at 20% large"}


def test_below_the_cap_the_mode_threshold_stands() -> None:
    table = RoutingTable(config(route(mode="balanced", max_large_percent=90)))
    for _ in range(200):
        result = plan_on(table, FixedComplexity(0.2))
    assert result.why == "complexity 0.20 < 0.50 (balanced) -> small"


@pytest.mark.parametrize(
    ("scores", "percent", "expected_large"),
    [
        ([i / 100 for i in range(100)], 20, 20),
        ([i / 100 for i in range(100)], 0.5, 0),
        ([0.5] * 50 + [0.9] * 50, 60, 50),  # a tie at the edge: fewer, never more
        ([0.3] * 10, 100, 10),
    ],
)
def test_cut_lets_at_most_the_share_through(
    scores: list[float], percent: float, expected_large: int
) -> None:
    threshold = cut(scores, percent)
    assert sum(1 for s in scores if s >= threshold) == expected_large


def test_no_cap_before_enough_scores() -> None:
    cap = ShareCap(10, 1000)
    for _ in range(40):
        cap.observe(0.99)
    assert cap.threshold(0.5) == (0.5, False)


def _weights(tmp_path: Path, balanced: float, bias: float) -> Path:
    path = tmp_path / "route-weights.json"
    path.write_text(json.dumps({
        "format": "switchman-classifier/v2",
        "weights": dict.fromkeys(NAMES, 0.0),
        "bias": bias,
        "thresholds": {"quality": 0.1, "balanced": balanced, "cost": 0.9},
        "ngram_table": [0.0] * BUCKETS,
    }))  # fmt: skip
    return path


def test_a_route_scores_with_its_own_weights_file(tmp_path: Path) -> None:
    path = _weights(tmp_path, balanced=0.6, bias=0.0)  # scores every prompt 0.5
    table = RoutingTable(config(route(weights=str(path))))
    result = plan_on(table, FixedComplexity(0.99))  # the gateway's classifier is not asked
    assert result.complexity == 0.5
    assert result.why == "complexity 0.50 < 0.60 (balanced) -> small"
    assert plan_on(table, None).complexity == 0.5  # no gateway classifier needed either


@pytest.mark.parametrize(
    ("content", "message"), [(None, "cannot read"), ("{}", "must be a switchman-classifier/v2")]
)
def test_a_bad_weights_file_is_a_config_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "w.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=f"route 'auto': complexity.weights: .*{message}"):
        RoutingTable(config(route(weights=str(path))))


async def test_a_reload_with_a_bad_weights_file_keeps_the_last_good_config(
    tmp_path: Path,
) -> None:
    good = json.loads(config(route()).model_dump_json())
    path = tmp_path / "gateway.json"
    path.write_text(json.dumps(good))
    watcher = ConfigWatcher(path, Metrics(), environ={}, interval=60)
    watcher.load_initial()
    assert watcher.current is not None
    first = watcher.current
    good["routes"][0]["complexity"] = {"weights": str(tmp_path / "absent.json")}
    path.write_text(json.dumps(good, indent=1))
    assert await watcher.check() is False
    assert watcher.current is first
    assert watcher.last_error is not None
    assert "complexity.weights: cannot read" in watcher.last_error


def test_tiers_with_a_mode_are_refused() -> None:
    spec = {"name": "auto", **route(mode="cost", tiers=[{"tier": "small", "min_complexity": 0}])}
    with pytest.raises(ConfigError, match="not with mode or max_large_percent"):
        parse(json.dumps({"version": 1, "upstreams": [], "models": [], "routes": [spec]}))
