"""One Prometheus exposition for a pod whose gateway runs several worker processes.

Used by ``workers`` (the ``/metrics`` answer of ``switchman gateway --workers N``). Each worker
counts in its own memory; this merges their expositions into one, every series labelled with
the ``worker`` that holds it. Nothing is summed here on purpose: a restarted worker's counters
start again from zero, and as a series of its own that is an ordinary counter reset
``rate()`` handles, where a pod-wide sum would drop and read as a reset of the whole pod.
Dashboards and alerts aggregate (``sum without (worker)``) as they already do across pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

WORKER_LABEL = "worker"


class _Families(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def label_workers(expositions: Mapping[str, bytes]) -> bytes:
    """The expositions of each worker (by worker name), as one exposition whose every series
    carries ``worker="<name>"``; families keep the order of their first appearance."""
    merged: dict[str, Metric] = {}
    for worker, text in expositions.items():
        for family in text_string_to_metric_families(text.decode()):
            into = merged.get(family.name)
            if into is None:
                into = merged[family.name] = Metric(family.name, family.documentation, family.type)
                into.unit = family.unit
            for sample in family.samples:
                labels = {WORKER_LABEL: worker, **sample.labels}
                into.add_sample(sample.name, labels, sample.value, sample.timestamp)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(merged.values()))
    return generate_latest(registry)
