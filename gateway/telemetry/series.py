"""Lock-free Prometheus metric families for the request path, exposed through a Collector.

``metrics`` defines the gateway's families with these instead of prometheus_client's Counter,
Gauge and Histogram: those take a lock on every update, which showed up as most of the metrics'
per-request cost. The gateway updates metrics only from its event loop thread and renders them
from the same thread (the ``/metrics`` handler), so plain attribute arithmetic is safe. The API
mirrors prometheus_client's (``family.labels(*values).inc()``) so call sites read the same.
Exposition (names, ``_total``/``_bucket``/``_sum``/``_count`` suffixes, HELP/TYPE) is
prometheus_client's own, via ``generate_latest`` on a registry holding ``SeriesCollector``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class CounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("counters only go up")
        self.value += amount


class GaugeChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount

    def set(self, value: float) -> None:
        self.value = value


class HistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


Child = TypeVar("Child")


class _Family(Generic[Child]):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Child] = {}

    def labels(self, *values: str) -> Child:
        child = self.children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {values}")
            child = self.children[values] = self._new()
        return child

    def _new(self) -> Child:
        raise NotImplementedError


class CounterFamily(_Family[CounterChild]):
    def _new(self) -> CounterChild:
        return CounterChild()

    def metric(self) -> Metric:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        return family


class GaugeFamily(_Family[GaugeChild]):
    def _new(self) -> GaugeChild:
        return GaugeChild()

    def metric(self) -> Metric:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            family.add_metric(values, child.value)
        return family

    def set(self, value: float) -> None:
        """For a family without labels."""
        self.labels().set(value)


class HistogramFamily(_Family[HistogramChild]):
    def __init__(
        self, name: str, documentation: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.bounds = tuple(sorted(float(b) for b in buckets))
        self._les = [floatToGoString(b) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]

    def _new(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def metric(self) -> Metric:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self.children.items():
            cumulative, buckets = 0, []
            for le, count in zip(self._les, child.counts, strict=True):
                cumulative += count
                buckets.append((le, float(cumulative)))
            family.add_metric(values, buckets, child.sum)
        return family


Family = CounterFamily | GaugeFamily | HistogramFamily


class SeriesCollector(Collector):
    """Renders a fixed list of families, in order, at scrape time."""

    def __init__(self, families: Sequence[Family]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            yield family.metric()
