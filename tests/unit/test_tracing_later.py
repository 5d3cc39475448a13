"""Span attributes built when the span is exported (``LightSpan.later``), what ``serve.observe``
records that way, and the batch processor hand-off.

A sampled request's attributes are given to its spans as a build function and the values it
reads (``later``); the function runs when the exporter reads the span, off the event loop.
Scenario matrix:
- ``later`` builds nothing until the span is read, then once, in order with ``set_attributes``
  (a key given again moves to the end, as when set at once); after ``end`` it is ignored; a
  build that raises costs only its own attributes (logged), and the span is still exported;
  past 128 attributes the oldest go and are counted, as with ``set_attributes``;
- a tuple of plain values is kept as it is; a tuple holding a list is copied clean;
- through ``Observation``: the spans exported for a request equal those of the same request with
  the attributes set at once (what was recorded before), their build functions had not run
  before export, and values changed after a report (the request body's model, the plan's
  candidate list) do not reach the spans;
- the SDK's batch processor: sampled spans reach its queue (and the exporter at a flush), a span
  that records but is not sampled (RECORD_ONLY) does not, as with its ``on_end``; another
  processor gets ``on_end`` for every span.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from switchman.gateway.providers.exchange import ResponseInfo, Usage
from switchman.gateway.serve.attempts import Decision as RouteDecision
from switchman.gateway.serve.observe import Observation, Telemetry
from switchman.gateway.telemetry.accesslog import AccessLog
from switchman.gateway.telemetry.lightspan import LIMIT, LightSpan
from switchman.gateway.telemetry.otlpwire import SpanEncoder
from switchman.gateway.telemetry.tracing import Tracing


def _traced() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return Tracing.with_processor(SimpleSpanProcessor(exporter), {}), exporter


def _root(traced: Tracing) -> LightSpan:
    span = traced.server_span("POST", "/v1/chat/completions", {})
    assert isinstance(span, LightSpan)
    return span


def test_later_builds_when_the_span_is_read_and_once() -> None:
    traced, exporter = _traced()
    calls: list[tuple[Any, ...]] = []

    def build(*args: Any) -> dict[str, Any]:
        calls.append(args)
        return {"a": args[0], "b": args[1]}

    span = _root(traced)
    span.later(build, 1, "two")
    span.end()
    (exported,) = exporter.get_finished_spans()
    assert calls == []  # ended and handed over: still not built
    assert exported.attributes == {"a": 1, "b": "two"}
    assert exported.attributes == {"a": 1, "b": "two"}
    assert calls == [(1, "two")]


def test_later_and_set_attributes_keep_the_order_they_were_given_in() -> None:
    traced, exporter = _traced()
    lazy, eager = _root(traced), _root(traced)
    steps: list[Mapping[str, Any]] = [{"a": 1, "b": 2}, {"c": 3, "a": 10}, {"b": "again", "d": 4}]
    lazy.later(lambda: steps[0])
    lazy.set_attributes(steps[1])
    lazy.later(lambda: steps[2])
    for step in steps:
        eager.set_attributes(step)
    lazy.end()
    eager.end()

    built, given = exporter.get_finished_spans()
    assert list((built.attributes or {}).items()) == list((given.attributes or {}).items())
    assert list(built.attributes or {}) == ["c", "a", "b", "d"]


def test_later_on_an_ended_span_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    traced, exporter = _traced()
    span = _root(traced)
    span.set_attribute("before", 1)
    span.end()
    span.later(lambda: {"after": 1})

    (exported,) = exporter.get_finished_spans()
    assert exported.attributes == {"before": 1}
    assert "ended span" in caplog.text


def test_a_failing_build_costs_only_its_own_attributes(caplog: pytest.LogCaptureFixture) -> None:
    traced, exporter = _traced()
    span = _root(traced)
    span.later(lambda: {"first": 1})
    span.later(lambda: {"port": int("not a port")})
    span.later(lambda: {"last": 3})
    span.end()

    with caplog.at_level(logging.ERROR):
        (exported,) = exporter.get_finished_spans()
        assert exported.attributes == {"first": 1, "last": 3}
    assert "not set" in caplog.text
    assert SpanEncoder().encode([exported])  # still exportable


def test_built_attributes_past_the_limit_drop_the_oldest_and_count_them() -> None:
    traced, exporter = _traced()
    span = _root(traced)
    span.later(lambda: {f"k{i}": i for i in range(LIMIT)})
    span.later(lambda: {"k0": "again", "new": True, "k200": 1})
    span.end()

    (exported,) = exporter.get_finished_spans()
    assert exported.dropped_attributes == 2
    names = list(exported.attributes or {})
    assert len(names) == LIMIT
    assert names[:2] == ["k3", "k4"]  # k0 moved to the end; k1, k2 went
    assert names[-3:] == ["k0", "new", "k200"]


def test_a_tuple_of_plain_values_is_kept_and_one_holding_a_list_is_copied() -> None:
    traced, exporter = _traced()
    plain, holding = ("a", 1, 2.5, True), ("a", ["b"])
    span = _root(traced)
    span.later(lambda: {"plain": plain, "holding": holding})
    span.end()

    (exported,) = exporter.get_finished_spans()
    attributes = exported.attributes or {}
    assert attributes["plain"] is plain
    assert attributes["holding"] == ("a", ("b",))


# --- through serve.observe -------------------------------------------------------------------


class _Series:
    def labels(self, *_: Any) -> _Series:
        return self

    def inc(self, *_: Any) -> None:
        pass

    def observe(self, *_: Any) -> None:
        pass

    def __getattr__(self, _: str) -> Any:
        return lambda *a: None


def _metrics() -> Any:
    series = _Series()
    accounted = SimpleNamespace(requests=series, duration=series)
    accounted.inter_chunk = accounted.tokens = accounted.cost = lambda *a: None
    return SimpleNamespace(
        routing_decisions=series,
        complexity=series,
        upstream_attempts=series,
        fallbacks=series,
        time_to_first_token=series,
        accounted=lambda *a: accounted,
    )


class _Plan:
    """A plan whose filtered candidates are counted when read."""

    def __init__(self) -> None:
        self.order = [SimpleNamespace(name="small"), SimpleNamespace(name="large")]
        self.why, self.complexity, self.reads = "least-loaded", 0.25, 0

    def filtered(self) -> list[str]:
        self.reads += 1
        return ["huge: context window"]


def _request(telemetry: Telemetry, plan: _Plan) -> tuple[dict[str, Any], dict[str, str]]:
    """One request as the proxy reports it: failed first attempt, served by the second."""
    small = SimpleNamespace(name="small", target="tiny", price=None, prices=None)
    large = SimpleNamespace(name="large", target="big", price=None, prices=None)
    upstream = SimpleNamespace(
        name="sim",
        endpoint="10.0.3.17:8000",
        spec=SimpleNamespace(provider_name=None, kind="openai"),
    )
    obs = Observation(
        telemetry, method="POST", path="/v1/chat/completions", headers={}, request_id="r-1",
        started=0.0,
    )  # fmt: skip
    body: dict[str, Any] = {"model": "auto", "messages": [], "max_tokens": 64, "top_p": 0.5}
    obs.request("chat", body, False)
    decision = RouteDecision("auto", "least-loaded", 2, "least-loaded")
    obs.routed(decision, plan)  # type: ignore[arg-type]
    headers: dict[str, str] = {}
    obs.attempt(small, upstream, {}, None)  # type: ignore[arg-type]
    decision.record(small, upstream, "timeout")  # type: ignore[arg-type]
    obs.attempt_failed(decision, upstream, "timeout")  # type: ignore[arg-type]
    obs.attempt(large, upstream, headers, "10.0.3.18:8001")  # type: ignore[arg-type]
    decision.serve(large, upstream)  # type: ignore[arg-type]
    decision.outcome = "ok"
    info = ResponseInfo(usage=Usage(12, 3), model="big-1", finish_reasons=["stop"])
    obs.finish(decision, info, 200)
    return body, headers


def _exported(spans: Sequence[ReadableSpan]) -> list[tuple[Any, ...]]:
    return [
        (
            s.name,
            s.kind,
            list((s.attributes or {}).items()),
            s.status.status_code,
            [(e.name, dict(e.attributes or {})) for e in s.events],
        )
        for s in spans
    ]


def test_a_requests_spans_equal_those_with_attributes_set_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    traced, exporter = _traced()
    plan = _Plan()
    body, headers = _request(Telemetry(_metrics(), traced, AccessLog("off")), plan)
    assert plan.reads == 0  # the route span's filtered candidates: read at its export
    body["model"] = "changed after the report"
    plan.order.append(SimpleNamespace(name="changed"))
    lazy = exporter.get_finished_spans()
    recorded = _exported(lazy)  # (read as an exporter reads them: built now)
    assert plan.reads == 1

    def at_once(span: LightSpan, build: Any, *args: Any) -> None:
        span.set_attributes(build(*args))

    monkeypatch.setattr(LightSpan, "later", at_once)
    traced, exporter = _traced()
    _request(Telemetry(_metrics(), traced, AccessLog("off")), _Plan())
    eager = exporter.get_finished_spans()

    assert [s.name for s in lazy] == [
        "route auto",
        "chat tiny",
        "chat big",
        "POST /v1/chat/completions",
    ]
    assert recorded == _exported(eager)
    route, failed, served, server = (dict(s.attributes or {}) for s in lazy)
    assert route["switchman.route.candidates"] == ("small", "large")
    assert route["switchman.route.filtered"] == ("huge: context window",)
    assert failed["error.type"] == "timeout"
    assert (served["server.address"], served["server.port"]) == ("10.0.3.18", 8001)
    assert served["gen_ai.response.finish_reasons"] == ("stop",)
    assert server["gen_ai.request.model"] == "auto"
    assert server["gen_ai.request.max_tokens"] == 64
    assert server["switchman.attempts"] == 2
    assert str(server["switchman.route.reason"]).startswith("least-loaded: large (2/2)")
    assert headers["traceparent"].split("-")[2] == format(lazy[2].context.span_id, "016x")


# --- the hand-off to the processor -------------------------------------------------------------


class _RecordOnly(Sampler):
    """Records a root without sampling it."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "record-only"


def _tracing(processor: SpanProcessor, sampler: Sampler | None = None) -> Tracing:
    provider = TracerProvider(sampler=sampler) if sampler else TracerProvider()
    provider.add_span_processor(processor)
    return Tracing(provider, processor=processor)


def test_the_batch_processor_gets_sampled_spans_and_not_record_only_ones() -> None:
    exporter = InMemorySpanExporter()
    batch = BatchSpanProcessor(exporter)
    sampled = _tracing(batch)
    recorded = _tracing(batch, _RecordOnly())
    for traced in (sampled, recorded):
        server = traced.server_span("POST", "/", {})
        assert server is not None
        assert server.is_recording()
        child = traced.child_span(server, "route auto")
        assert child is not None
        child.end()
        server.end()
    batch.force_flush()

    names = [(s.name, s.context.trace_flags.sampled) for s in exporter.get_finished_spans()]
    assert names == [("route auto", True), ("POST /", True)]
    batch.shutdown()  # type: ignore[no-untyped-call]


def test_another_processor_gets_on_end_for_every_span() -> None:
    class Seen(SpanProcessor):
        def __init__(self) -> None:
            self.ended: list[str] = []

        def on_end(self, span: ReadableSpan) -> None:
            self.ended.append(span.name)

    seen = Seen()
    for traced in (_tracing(seen), _tracing(seen, _RecordOnly())):
        server = traced.server_span("GET", "/x", {})
        assert server is not None
        server.end()
    assert seen.ended == ["GET /x", "GET /x"]
