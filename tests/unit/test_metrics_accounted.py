"""``Metrics.accounted``: the series an accounted request updates, looked up once per labels.

Scenarios:
- requests accounted through ``accounted`` expose exactly what the same updates through
  ``family.labels(...)`` expose (requests, duration histogram, inter-chunk histogram, tokens
  in and out, cost), byte for byte;
- a series is created when first updated, never before: a request without usage, cost or
  inter-chunk gaps adds no tokens, cost or inter-token series (none at zero either);
- the same labels give the same series object; other labels, other series;
- a counter still refuses to go down (negative tokens raise, as ``inc`` does).
"""

from __future__ import annotations

import pytest

from switchman.gateway.telemetry.metrics import Metrics

# (route, model, upstream, outcome, seconds, gap, (input, output) tokens, cost)
_REQUESTS = [
    ("auto", "small", "u1", "ok", 0.02, None, (20, 5), 0.0001),
    ("auto", "small", "u1", "ok", 0.3, 0.01, (7, 70), 0.0003),
    ("auto", "small", "u1", "upstream_error", 1.5, None, None, 0.0),
    ("auto", "large", "u2", "ok", 0.04, 0.002, (3, 4), 0.002),
    ("chat", "small", "u1", "ok", 12.0, None, (1, 0), 0.0),
]


def _by_labels(metrics: Metrics) -> None:
    for route, model, upstream, outcome, seconds, gap, usage, cost in _REQUESTS:
        metrics.requests.labels(route, model, upstream, outcome).inc()
        metrics.request_duration.labels(route, model).observe(seconds)
        if gap is not None:
            metrics.inter_token_latency.labels(route, model).observe(gap)
        if usage is not None:
            metrics.tokens.labels(model, "input").inc(usage[0])
            metrics.tokens.labels(model, "output").inc(usage[1])
        if cost:
            metrics.cost.labels(route, model).inc(cost)


def _accounted(metrics: Metrics) -> None:
    for route, model, upstream, outcome, seconds, gap, usage, cost in _REQUESTS:
        series = metrics.accounted(route, model, upstream, outcome)
        series.requests.inc()
        series.duration.observe(seconds)
        if gap is not None:
            series.inter_chunk(gap)
        if usage is not None:
            series.tokens(*usage)
        if cost:
            series.cost(cost)


def test_accounted_requests_expose_what_label_lookups_expose() -> None:
    expected, got = Metrics(), Metrics()
    _by_labels(expected)
    _accounted(got)
    assert got.exposition() == expected.exposition()
    text = got.exposition().decode()
    assert 'switchman_tokens_total{direction="output",model="small"} 75.0' in text
    assert 'switchman_cost_usd_total{model="large",route="auto"} 0.002' in text


def test_series_appear_only_once_updated() -> None:
    metrics = Metrics()
    series = metrics.accounted("auto", "small", "u1", "ok")
    series.requests.inc()
    series.duration.observe(0.1)
    text = metrics.exposition().decode()
    requests = 'switchman_requests_total{model="small",outcome="ok",route="auto",upstream="u1"}'
    assert f"{requests} 1.0" in text
    for family in ("switchman_tokens_total{", "switchman_cost_usd_total{"):
        assert family not in text
    assert "switchman_inter_token_latency_seconds_count{" not in text
    series.tokens(1, 2)
    series.cost(0.5)
    series.inter_chunk(0.01)
    text = metrics.exposition().decode()
    assert 'switchman_tokens_total{direction="input",model="small"} 1.0' in text
    assert 'switchman_cost_usd_total{model="small",route="auto"} 0.5' in text
    assert 'switchman_inter_token_latency_seconds_count{model="small",route="auto"} 1.0' in text


def test_the_same_labels_give_the_same_series() -> None:
    metrics = Metrics()
    first = metrics.accounted("auto", "small", "u1", "ok")
    assert metrics.accounted("auto", "small", "u1", "ok") is first
    other = metrics.accounted("auto", "small", "u1", "upstream_error")
    assert other is not first
    assert other.duration is first.duration  # (route, model): one histogram for both outcomes
    assert other.requests is not first.requests


def test_tokens_never_go_down() -> None:
    series = Metrics().accounted("auto", "small", "u1", "ok")
    with pytest.raises(ValueError, match="only go up"):
        series.tokens(-1, 0)
