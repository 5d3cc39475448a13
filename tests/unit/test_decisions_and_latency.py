"""The decision ring buffer behind /debug/decisions, and the latency EWMAs of `fastest`."""

from __future__ import annotations

import pytest

from switchman.api.gatewayconfig import Model
from switchman.gateway.routing.table import Plan, Row
from switchman.gateway.serve.attempts import Decision
from switchman.gateway.serve.decisions import DecisionLog
from switchman.gateway.upstreams.latency import Latency

SMALL = Model(name="small", upstream="u")


def decision(route: str, outcome: str = "ok") -> Decision:
    made = Decision(route, "cheapest", 2, "cheapest")
    made.outcome = outcome
    return made


def test_the_log_keeps_the_newest_entries_and_filters_by_route() -> None:
    log = DecisionLog(size=3)
    for i in range(5):
        log.add(f"req-{i}", None, decision("a" if i % 2 else "b"), 200)
    entries = log.read()
    assert [e["request_id"] for e in entries] == ["req-4", "req-3", "req-2"]
    assert [e["request_id"] for e in log.read(route="a")] == ["req-3"]
    assert [e["request_id"] for e in log.read(limit=1)] == ["req-4"]
    log.resize(1)
    assert [e["request_id"] for e in log.read()] == ["req-4"]
    log.resize(0)
    log.add("req-5", None, decision("a"), 200)
    assert log.read() == []


def test_an_entry_shows_candidates_scores_filters_and_attempts() -> None:
    log = DecisionLog()
    plan = Plan(
        route="auto",
        strategy="cheapest",
        order=[SMALL],
        why="cheapest (1 filtered)",
        rows=[
            Row("small", score=0.91234567, parts={"cost": 1.0, "priority": 0.5}),
            Row("vision-only", removed="no image input"),
        ],
        spec=None,
        complexity=0.4242424,
    )
    made = decision("auto")
    made.attempts = []
    log.add("req-1", plan, made, 200)
    (entry,) = log.read()
    assert entry["complexity"] == 0.4242
    assert entry["order"] == ["small"]
    assert entry["candidates"] == [
        {
            "model": "small",
            "removed_by": None,
            "score": 0.9123,
            "scores": {"cost": 1.0, "priority": 0.5},
        },
        {"model": "vision-only", "removed_by": "no image input", "score": None, "scores": {}},
    ]
    assert entry["reason"].startswith("cheapest")


def test_latency_ewmas_learn_ttft_and_per_token_time() -> None:
    latency = Latency(alpha=0.5)
    assert latency.estimate(100) is None
    latency.observe_stream(ttft=0.2, duration=1.2, tokens=11)  # 0.1 s per token after the first
    assert latency.estimate(10) == pytest.approx(0.2 + 0.1 * 10)
    latency.observe_stream(ttft=0.4, duration=0.4, tokens=1)  # no per-token sample
    assert latency.ttft == pytest.approx(0.3)
    assert latency.per_token == pytest.approx(0.1)
    latency.observe_unary(duration=2.3, tokens=20)  # (2.3 - 0.3) / 20 = 0.1
    assert latency.per_token == pytest.approx(0.1)


def test_a_unary_answer_without_usage_seeds_the_ttft_only_once() -> None:
    latency = Latency()
    latency.observe_unary(duration=0.5, tokens=None)
    assert latency.estimate(0) == pytest.approx(0.5)
    latency.observe_unary(duration=5.0, tokens=None)
    assert latency.ttft == pytest.approx(0.5)
