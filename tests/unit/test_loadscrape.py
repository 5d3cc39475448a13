"""Parsing vLLM's Prometheus text exposition into (running, waiting, kv usage).

Scenario matrix:
- real-looking vLLM text (HELP/TYPE, engine and model_name labels, histograms, counters,
  ``1.0e+00`` values, timestamps): the three gauges are read, everything else ignored
- several label sets (served names / engines): running and waiting summed, KV the fullest
- pre-0.9 ``vllm:gpu_cache_usage_perc`` accepted; KV absent -> 0; KV clamped to [0, 1]
- NaN / Inf samples skipped; label values holding braces, spaces or the metric's own name
- the simulator's exposition (sim/metrics.py) parses to its engine's counts
- junk: empty, HTML, binary, truncated lines, missing running or waiting -> None, never raises
"""

from __future__ import annotations

import pytest

from switchman.gateway.replicas.loadscrape import parse_vllm_metrics
from switchman.sim.engine import Engine
from switchman.sim.metrics import SimMetrics
from switchman.sim.settings import SimSettings

MODEL = 'model_name="meta-llama/Llama-3.1-8B-Instruct"'
VLLM_TEXT = f"""\
# HELP python_gc_objects_collected_total Objects collected during gc
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 12345.0
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{engine="0",{MODEL}}} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",{MODEL}}} 2.0e+00
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{{engine="0",{MODEL}}} 0.4215
# HELP vllm:num_requests_waiting_by_reason Waiting requests by reason.
# TYPE vllm:num_requests_waiting_by_reason gauge
vllm:num_requests_waiting_by_reason{{engine="0",{MODEL},reason="capacity"}} 99.0
# HELP vllm:prefix_cache_queries_total Prefix cache queries.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{{engine="0",{MODEL}}} 1.2e+04
vllm:prefix_cache_queries_created{{engine="0",{MODEL}}} 1.7e+09
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{{engine="0",le="0.001",{MODEL}}} 0.0
vllm:time_to_first_token_seconds_bucket{{engine="0",le="+Inf",{MODEL}}} 17.0
vllm:time_to_first_token_seconds_count{{engine="0",{MODEL}}} 17.0
vllm:time_to_first_token_seconds_sum{{engine="0",{MODEL}}} 0.9
"""


def test_reads_the_scheduler_gauges_of_real_vllm_text() -> None:
    assert parse_vllm_metrics(VLLM_TEXT) == (3.0, 2.0, 0.4215)


def test_sums_counts_over_label_sets_and_takes_the_fullest_kv() -> None:
    text = (
        'vllm:num_requests_running{engine="0",model_name="a"} 2\n'
        'vllm:num_requests_running{engine="1",model_name="a"} 5\n'
        'vllm:num_requests_waiting{engine="0",model_name="a"} 1\n'
        'vllm:num_requests_waiting{engine="1",model_name="a"} 4\n'
        'vllm:kv_cache_usage_perc{engine="0",model_name="a"} 0.25\n'
        'vllm:kv_cache_usage_perc{engine="1",model_name="a"} 0.75\n'
    )
    assert parse_vllm_metrics(text) == (7.0, 5.0, 0.75)


def test_accepts_the_pre_0_9_kv_gauge_name() -> None:
    text = VLLM_TEXT.replace("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
    assert parse_vllm_metrics(text) == (3.0, 2.0, 0.4215)


def test_missing_kv_gauge_reads_as_zero_and_kv_is_clamped() -> None:
    counts = "vllm:num_requests_running 1\nvllm:num_requests_waiting 0\n"
    assert parse_vllm_metrics(counts) == (1.0, 0.0, 0.0)
    assert parse_vllm_metrics(counts + "vllm:kv_cache_usage_perc 1.7\n") == (1.0, 0.0, 1.0)


def test_skips_nan_and_infinite_samples() -> None:
    text = (
        'vllm:num_requests_running{model_name="a"} NaN\n'
        'vllm:num_requests_running{model_name="b"} 4\n'
        'vllm:num_requests_waiting{model_name="a"} +Inf\n'
        'vllm:num_requests_waiting{model_name="b"} 1\n'
        'vllm:kv_cache_usage_perc{model_name="a"} nan\n'
    )
    assert parse_vllm_metrics(text) == (4.0, 1.0, 0.0)


def test_label_values_with_braces_spaces_and_timestamps() -> None:
    text = (
        'vllm:num_requests_running{model_name="odd } name {x} 9"} 2 1712345678000\n'
        'vllm:num_requests_waiting{model_name="vllm:num_requests_running 5"} 3\n'
    )
    assert parse_vllm_metrics(text) == (2.0, 3.0, 0.0)


def test_parses_the_simulators_exposition() -> None:
    settings = SimSettings(model="tiny")
    metrics = SimMetrics(Engine(settings), "tiny")
    assert parse_vllm_metrics(metrics.render().decode()) == (0.0, 0.0, 0.0)
    legacy = SimMetrics(Engine(settings), "tiny", legacy_kv_metric=True)
    assert parse_vllm_metrics(legacy.render().decode()) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n\n",
        "<html><body>502 Bad Gateway</body></html>",
        "\x00\xff\xfe garbage \x01",
        "vllm:num_requests_running{model_name=\n",
        "vllm:num_requests_running{\nvllm:num_requests_waiting 1\n",
        "vllm:num_requests_running\nvllm:num_requests_waiting one\n",
        "vllm:num_requests_running} 1 {\nvllm:num_requests_waiting 1\n",
        "# vllm:num_requests_running 1\n# vllm:num_requests_waiting 1\n",
        "vllm:num_requests_running 1\n",  # waiting missing
        'vllm:num_requests_waiting_by_reason{reason="x"} 1\nvllm:num_requests_running 1\n',
    ],
)
def test_junk_is_unknown_load_and_never_raises(text: str) -> None:
    assert parse_vllm_metrics(text) is None
