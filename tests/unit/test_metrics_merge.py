"""``telemetry.merge.label_workers``: several workers' expositions as one pod's.

Scenarios:
- two real ``Metrics`` expositions (counters, histograms, gauges with traffic on each) merge
  into one exposition that Prometheus' parser reads: each family declared once, every sample of
  both workers present with its ``worker`` label and its own value (nothing summed, nothing
  lost);
- a family only one worker has (a label set the other never saw) is kept;
- one worker alone merges to its own samples, labelled.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from switchman.cli.workers import WORKER_ENV, worker_identity
from switchman.gateway.telemetry.merge import label_workers
from switchman.gateway.telemetry.metrics import Metrics


def _worker(requests: int, seconds: float, in_flight: int) -> bytes:
    metrics = Metrics()
    for _ in range(requests):
        metrics.requests.labels("auto", "m", "u", "ok").inc()
        metrics.request_duration.labels("auto", "m").observe(seconds)
    metrics.upstream_in_flight.labels("u").set(in_flight)
    return metrics.exposition()


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_two_workers_merge_into_one_exposition_labelled_by_worker() -> None:
    merged = label_workers({"0": _worker(3, 0.02, 2), "1": _worker(5, 0.3, 1)})
    text = merged.decode()
    assert text.count("# TYPE switchman_requests_total counter") == 1
    assert text.count("# TYPE switchman_request_duration_seconds histogram") == 1
    samples = _samples(merged)
    labels = (("model", "m"), ("outcome", "ok"), ("route", "auto"), ("upstream", "u"))
    assert samples[("switchman_requests_total", (*labels, ("worker", "0")))] == 3
    assert samples[("switchman_requests_total", (*labels, ("worker", "1")))] == 5
    duration = (("model", "m"), ("route", "auto"))
    assert samples[("switchman_request_duration_seconds_count", (*duration, ("worker", "0")))] == 3
    assert samples[("switchman_request_duration_seconds_count", (*duration, ("worker", "1")))] == 5
    le_small = (("le", "0.025"), ("model", "m"), ("route", "auto"))
    assert samples[("switchman_request_duration_seconds_bucket", (*le_small, ("worker", "0")))] == 3
    assert samples[("switchman_request_duration_seconds_bucket", (*le_small, ("worker", "1")))] == 0
    gauge = "switchman_upstream_in_flight_requests"
    assert samples[(gauge, (("upstream", "u"), ("worker", "0")))] == 2
    assert samples[(gauge, (("upstream", "u"), ("worker", "1")))] == 1
    # Every sample of every worker is there, and only those.
    each = {w: _samples(_worker(*args)) for w, args in (("0", (3, 0.02, 2)), ("1", (5, 0.3, 1)))}
    assert len(samples) == sum(len(s) for s in each.values())
    assert all(dict(key[1]).get("worker") in ("0", "1") for key in samples)


def test_a_series_only_one_worker_has_is_kept() -> None:
    other = Metrics()
    other.fallbacks.labels("auto", "timeout").inc(2)
    merged = _samples(label_workers({"0": _worker(1, 0.01, 0), "1": other.exposition()}))
    key = ("switchman_fallbacks_total", (("reason", "timeout"), ("route", "auto"), ("worker", "1")))
    assert merged[key] == 2
    assert not [
        k for k in merged if k[0] == "switchman_fallbacks_total" and ("worker", "0") in k[1]
    ]


def test_one_worker_alone_is_its_own_samples_labelled() -> None:
    alone = _worker(2, 0.01, 0)
    merged = _samples(label_workers({"3": alone}))
    plain = _samples(alone)
    assert {(name, tuple(sorted((*labels, ("worker", "3"))))) for name, labels in plain} == set(
        merged
    )


def test_worker_identity_reads_the_supervisors_variable() -> None:
    assert worker_identity({}) is None
    identity = worker_identity({WORKER_ENV: "1/4//tmp/switchman-workers-x"})
    assert identity is not None
    index, count, directory = identity
    assert (index, count, str(directory)) == (1, 4, "/tmp/switchman-workers-x")
