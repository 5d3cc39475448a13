"""The simulator's ``/metrics``: vLLM's metric names and labels over a per-server registry.

Scheduler gauges and token counters are read from the engine's counts at scrape time by a
collector, so serving a request updates no metric objects; only the time-to-first-token
histogram is observed per request (by ``switchman.sim.generation``). Names, labels
(``model_name``, ``engine``) and histogram buckets follow ``vllm/v1/metrics/loggers.py``;
counters are declared without ``_total``, which the exposition format appends. The KV gauge can
take its pre-0.9 name (``vllm:gpu_cache_usage_perc``) to exercise clients of older servers.
Each server owns its ``CollectorRegistry`` (never the global one), so several simulators can
share a process.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from switchman.sim.engine import Engine

LABELS = ("model_name", "engine")
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip


class SimMetrics:
    """The registry behind one simulator's ``/metrics``."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, engine: Engine, model_name: str, *, legacy_kv_metric: bool = False) -> None:
        self.registry = CollectorRegistry()
        values = (model_name, "0")
        kv_name = "vllm:gpu_cache_usage_perc" if legacy_kv_metric else "vllm:kv_cache_usage_perc"
        self.registry.register(_EngineCollector(engine, values, kv_name))
        ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            labelnames=LABELS,
            buckets=TTFT_BUCKETS,
            registry=self.registry,
        )
        self._ttft = ttft.labels(*values)

    def observe_ttft(self, seconds: float) -> None:
        self._ttft.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _EngineCollector(Collector):
    """Reads the engine's state when Prometheus scrapes."""

    def __init__(self, engine: Engine, values: tuple[str, str], kv_name: str) -> None:
        self._engine = engine
        self._values = list(values)
        self._kv_name = kv_name

    def collect(self) -> Iterable[Metric]:
        engine = self._engine
        gauges = (
            ("vllm:num_requests_running", "Number of requests in model execution batches.",
             engine.num_running),
            ("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
             engine.num_waiting),
            (self._kv_name, "KV-cache usage. 1 means 100 percent usage.", engine.kv_cache_usage),
        )  # fmt: skip
        counters = (
            ("vllm:prefix_cache_queries",
             "Prefix cache queries, in terms of number of queried tokens.",
             engine.prefix_cache_queries),
            ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.",
             engine.prefix_cache_hits),
            ("vllm:prompt_tokens", "Number of prefill tokens processed.", engine.prompt_tokens),
            ("vllm:generation_tokens", "Number of generation tokens processed.",
             engine.generation_tokens),
        )  # fmt: skip
        for name, documentation, value in gauges:
            gauge = GaugeMetricFamily(name, documentation, labels=LABELS)
            gauge.add_metric(self._values, value)
            yield gauge
        for name, documentation, value in counters:
            counter = CounterMetricFamily(name, documentation, labels=LABELS)
            counter.add_metric(self._values, value)
            yield counter
