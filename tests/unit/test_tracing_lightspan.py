"""``Tracing``'s own spans (``lightspan.LightSpan``) record what the SDK's spans record.

The oracle is the SDK itself: the same calls go to an SDK span (from a ``TracerProvider``'s
tracer) and to the gateway's span, and what an exporter receives must match. Ids come from one
counting id generator per side, so both sides draw the same ids in the same order; times differ
(each side reads the clock) and are zeroed before comparing.

Scenario matrix:
- a request as ``serve.observe`` records it (SERVER root, ``route`` child with attributes at
  start, a CLIENT attempt failing with ``error.type``, a ``switchman.fallback`` event, a
  second CLIENT attempt re-setting a key, closing attributes), as a root and under a client's
  sampled ``traceparent`` with ``tracestate``: the OTLP request (``encode_spans``, what the
  gRPC and HTTP exporters send) is equal, and so is the console exporter's JSON;
- ``otlpwire.SpanEncoder`` writes the same bytes as ``encode_spans`` for these spans;
- attribute values: lists (copied: changing the caller's list later changes nothing), tuples,
  mixed and nested sequences, mappings, None, bytes, int/str subclasses, an object with its own
  ``__str__``, one without: the same values as the SDK keeps;
- a key set again moves to the end; over 128 attributes and over 128 events the oldest go and
  are counted; as the SDK;
- status: ERROR with a description, OK is final, UNSET is ignored, ``Status`` + description;
- ``record_exception``: the same event as the SDK's;
- after ``end``: attributes, events, status and name are ignored, a second ``end`` does not
  reach the processor again, ``is_recording`` is False;
- ``Tracing.inject`` writes what the SDK's W3C propagator writes for the span (root sampled or
  not by the ratio, under a client's sampled or unsampled ``traceparent`` with ``tracestate``);
- roots the ratio turns down: fresh valid ids each, ``traceparent`` as the propagator's, no
  access-log trace id; with a provider's own id generator, its ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from switchman.gateway.telemetry import tracing
from switchman.gateway.telemetry.lightspan import LIMIT, LightSpan
from switchman.gateway.telemetry.otlpwire import SpanEncoder
from switchman.gateway.telemetry.tracing import Tracing

CLIENT = {
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "tracestate": "vendor=v1,other=x",
}

UNSAMPLED_CLIENT = {**CLIENT, "traceparent": CLIENT["traceparent"][:-2] + "00"}


class Counting(IdGenerator):
    """Ids 1, 2, 3, ... (trace and span ids from one counter)."""

    def __init__(self) -> None:
        self.next = 0x1000

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return self.next << 64 | self.next


class Sides:
    """The SDK's spans and the gateway's, each into its own in-memory exporter."""

    def __init__(self) -> None:
        resource = tracing._resource({})
        sampler = ParentBased(ALWAYS_ON)
        self.sdk_spans = InMemorySpanExporter()
        sdk = TracerProvider(resource=resource, sampler=sampler, id_generator=Counting())
        sdk.add_span_processor(SimpleSpanProcessor(self.sdk_spans))
        self.tracer = sdk.get_tracer("switchman.gateway")
        self.ours_spans = InMemorySpanExporter()
        ours = TracerProvider(resource=resource, sampler=sampler, id_generator=Counting())
        processor = SimpleSpanProcessor(self.ours_spans)
        ours.add_span_processor(processor)
        self.traced = Tracing(ours, processor=processor)

    def sdk_root(self, headers: Mapping[str, str]) -> Span:
        parent = TraceContextTextMapPropagator().extract(carrier=headers)
        return self.tracer.start_span("POST /v1/chat/completions", parent, SpanKind.SERVER)

    def sdk_child(
        self, parent: Span, name: str, kind: SpanKind, attributes: Mapping[str, Any] | None
    ) -> Span:
        context = trace.set_span_in_context(parent)
        return self.tracer.start_span(name, context, kind, attributes=attributes)

    def ours_root(self, headers: Mapping[str, str]) -> Span:
        span = self.traced.server_span("POST", "/v1/chat/completions", headers)
        assert isinstance(span, LightSpan)
        return span

    def ours_child(
        self, parent: Span, name: str, kind: SpanKind, attributes: Mapping[str, Any] | None
    ) -> Span:
        span = self.traced.child_span(parent, name, kind, attributes=attributes)
        assert isinstance(span, LightSpan)
        return span


Child = Callable[[Span, str, SpanKind, Mapping[str, Any] | None], Span]


def _request(root: Span, child: Child) -> None:
    """The span calls ``serve.observe`` makes for a request served by its second attempt."""
    root.set_attributes(
        {"http.request.method": "POST", "url.path": "/v1/chat/completions", "x.id": "r-1"}
    )
    root.set_attributes(
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "auto",
            "gen_ai.request.max_tokens": 64,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.stream": False,
        }
    )
    candidates = ["small", "large"]
    route = child(
        root,
        "route auto",
        SpanKind.INTERNAL,
        {"switchman.route": "auto", "switchman.route.candidates": candidates, "x.c": 0.5},
    )
    candidates.append("changed after the span started")
    route.end()
    attempt = {"gen_ai.provider.name": "openai", "server.port": 8000, "switchman.model": "small"}
    first = child(root, "chat small", SpanKind.CLIENT, attempt)
    tracing.end(first, "timeout")
    root.add_event("switchman.fallback", {"switchman.model": "small", "error.type": "timeout"})
    second = child(root, "chat large", SpanKind.CLIENT, {**attempt, "switchman.model": "large"})
    second.set_attributes(
        {
            "switchman.model": "large",  # set again: moves to the end
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.usage.input_tokens": 12,
        }
    )
    tracing.end(second)
    root.set_attributes({"http.response.status_code": 200, "switchman.attempts": 2})
    tracing.end(root)


def _timeless(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The OTLP request the SDK encoder makes of ``spans``, every time set to 0."""
    request = encode_spans(spans)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                span.start_time_unix_nano = span.end_time_unix_nano = 0
                for event in span.events:
                    event.time_unix_nano = 0
    return request


def _console(span: ReadableSpan) -> dict[str, Any]:
    printed: dict[str, Any] = json.loads(span.to_json())
    printed.pop("start_time"), printed.pop("end_time")
    for event in printed["events"]:
        event.pop("timestamp")
    return printed


@pytest.mark.parametrize("headers", [{}, CLIENT], ids=["root", "client-traceparent"])
def test_a_request_exports_as_the_sdks_spans_would(headers: dict[str, str]) -> None:
    sides = Sides()

    _request(sides.sdk_root(headers), sides.sdk_child)
    _request(sides.ours_root(headers), sides.ours_child)

    sdk, ours = sides.sdk_spans.get_finished_spans(), sides.ours_spans.get_finished_spans()
    assert [type(span) for span in ours] == [LightSpan] * 4
    assert _timeless(ours) == _timeless(sdk)
    assert [_console(span) for span in ours] == [_console(span) for span in sdk]
    assert SpanEncoder().encode(ours) == encode_spans(ours).SerializePartialToString()
    if headers:
        assert all(span.context.trace_state.to_header() == CLIENT["tracestate"] for span in ours)
        assert ours[-1].parent is not None
        assert ours[-1].parent.is_remote


class Shown:
    """A value whose own ``__str__`` the SDK keeps."""

    def __str__(self) -> str:
        return "shown"


class Level(IntEnum):
    HIGH = 3


class Name(str):
    pass


ODD_VALUES: dict[str, Any] = {
    "none": None,
    "bytes": b"\x00raw",
    "tuple": ("a", "b"),
    "mixed": ["a", 1, None, 2.5],
    "nested": [["a"], ("b",)],
    "empty": [],
    "mapping": {"a": 1, "b": [1, 2]},
    "int-subclass": Level.HIGH,
    "str-subclass": Name("n"),
    "own-str": Shown(),
    "no-str": object(),
}


def _both(act: Callable[[Span], None]) -> tuple[ReadableSpan, ReadableSpan]:
    """``act`` on an SDK span and on ours, each ended; the two as exported."""
    sides = Sides()
    for root in (sides.sdk_root({}), sides.ours_root({})):
        act(root)
        root.end()
    (sdk,), (ours,) = sides.sdk_spans.get_finished_spans(), sides.ours_spans.get_finished_spans()
    return sdk, ours


def _recorded(span: ReadableSpan) -> tuple[Any, ...]:
    events = [(e.name, dict(e.attributes or {})) for e in span.events]
    status = (span.status.status_code, span.status.description)
    return (span.name, list(dict(span.attributes or {}).items()), events, status,
            span.dropped_attributes, span.dropped_events)  # fmt: skip


def test_odd_attribute_values_are_kept_as_the_sdk_keeps_them() -> None:
    def act(span: Span) -> None:
        span.set_attributes(ODD_VALUES)
        span.set_attribute("one", ["x"])

    sdk, ours = _both(act)

    assert _recorded(ours) == _recorded(sdk)
    assert ours.attributes is not None
    assert ours.attributes["own-str"] == "shown"
    assert ours.attributes["no-str"] is None


def test_a_list_is_copied_when_set() -> None:
    values = ["a"]
    sides = Sides()
    span = sides.ours_root({})
    span.set_attribute("list", values)
    span.add_event("e", {"list": values})
    values.append("b")
    span.end()

    (exported,) = sides.ours_spans.get_finished_spans()
    assert exported.attributes == {"list": ("a",)}
    assert exported.events[0].attributes == {"list": ("a",)}


def test_plain_values_set_again_move_to_the_end_as_the_sdk_moves_them() -> None:
    def act(span: Span) -> None:
        span.set_attributes({"a": 1, "b": "two", "c": 3.0})
        span.set_attributes({"a": 10, "d": True})  # plain values, one key set before
        span.set_attributes({"e": 5})

    sdk, ours = _both(act)

    assert _recorded(ours) == _recorded(sdk)
    assert list(ours.attributes or {}) == ["b", "c", "a", "d", "e"]


def test_keys_set_again_move_to_the_end_and_the_oldest_go_past_the_limit() -> None:
    def act(span: Span) -> None:
        for index in range(LIMIT + 5):
            span.set_attribute(f"k{index}", index)
        span.set_attributes({"k10": "again", "k200": True})
        for index in range(LIMIT + 3):
            span.add_event(f"e{index}", {"i": index})

    sdk, ours = _both(act)

    assert _recorded(ours) == _recorded(sdk)
    assert ours.dropped_attributes == 6
    assert ours.dropped_events == 3
    assert list(ours.attributes or {})[-2:] == ["k10", "k200"]


@pytest.mark.parametrize(
    "calls",
    [
        [(StatusCode.ERROR, "timeout")],
        [(StatusCode.OK, None), (StatusCode.ERROR, "late")],
        [(StatusCode.ERROR, "first"), (StatusCode.UNSET, None)],
        [(Status(StatusCode.ERROR, "as status"), None)],
        [(Status(StatusCode.ERROR, "as status"), "ignored description")],
        [(Status(StatusCode.OK), None), (Status(StatusCode.ERROR, "late"), None)],
    ],
    ids=["error", "ok-is-final", "unset-ignored", "status", "status-and-text", "ok-final-status"],
)
def test_status_follows_the_sdks_rules(calls: list[tuple[Status | StatusCode, str | None]]) -> None:
    def act(span: Span) -> None:
        for status, description in calls:
            span.set_status(status, description)

    sdk, ours = _both(act)

    assert _recorded(ours) == _recorded(sdk)
    assert ours.status.status_code is calls[0][0] or ours.status == calls[0][0]


def test_record_exception_adds_the_sdks_exception_event() -> None:
    try:
        raise ValueError("bad value")
    except ValueError as error:
        caught = error

    def act(span: Span) -> None:
        span.record_exception(caught, {"extra": 1}, escaped=True)

    sdk, ours = _both(act)

    assert _recorded(ours) == _recorded(sdk)
    assert ours.events[0].attributes is not None
    assert ours.events[0].attributes["exception.type"] == "ValueError"


def test_an_ended_span_ignores_writes_and_is_exported_once() -> None:
    sides = Sides()
    span = sides.ours_root({})
    span.set_attribute("before", 1)
    span.end()

    span.set_attribute("after", 1)
    span.set_attributes({"after2": 2})
    span.add_event("late")
    span.set_status(StatusCode.ERROR, "late")
    span.update_name("renamed")
    span.end()

    assert not span.is_recording()
    (exported,) = sides.ours_spans.get_finished_spans()
    assert exported.name == "POST /v1/chat/completions"
    assert exported.attributes == {"before": 1}
    assert exported.events == ()
    assert exported.status.status_code is StatusCode.UNSET


def test_update_name_renames_a_running_span() -> None:
    sdk, ours = _both(lambda span: span.update_name("GET /renamed"))

    assert _recorded(ours) == _recorded(sdk)
    assert ours.name == "GET /renamed"


def test_a_provider_without_a_processor_is_refused() -> None:
    with pytest.raises(ValueError, match="processor"):
        Tracing(TracerProvider())


@pytest.mark.parametrize(
    ("environ", "headers"),
    [
        ({}, {}),
        ({}, CLIENT),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}, {}),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"}, {}),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, UNSAMPLED_CLIENT),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, UNSAMPLED_CLIENT),
    ],
    ids=["root", "client", "ratio-0", "ratio-1", "always-on-unsampled-client",
         "parent-unsampled-client"],
)  # fmt: skip
def test_inject_writes_what_the_w3c_propagator_writes(
    environ: dict[str, str], headers: dict[str, str]
) -> None:
    traced = Tracing.with_processor(SimpleSpanProcessor(InMemorySpanExporter()), environ)
    server = traced.server_span("POST", "/v1/chat/completions", headers)
    assert server is not None
    attempt = traced.child_span(server, "chat tiny", SpanKind.CLIENT)
    span = attempt if attempt is not None else server

    ours: dict[str, str] = {}
    traced.inject(span, ours)
    expected: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(expected, trace.set_span_in_context(span))

    assert ours == expected
    assert ours["traceparent"].endswith("-01" if span.is_recording() else "-00")
    assert ("tracestate" in ours) == bool(headers.get("tracestate"))


def test_unsampled_roots_carry_valid_fresh_ids_in_their_traceparent() -> None:
    environ = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    traced = Tracing.with_processor(SimpleSpanProcessor(InMemorySpanExporter()), environ)
    seen = set()
    for _ in range(200):
        span = traced.server_span("POST", "/v1/chat/completions", {})
        assert span is not None
        context = span.get_span_context()
        ours: dict[str, str] = {}
        traced.inject(span, ours)
        expected: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(expected, trace.set_span_in_context(span))
        assert ours == expected
        assert context.is_valid
        assert not span.is_recording()
        assert tracing.trace_id(span) is None
        seen.add(context.trace_id)
    assert len(seen) == 200


def test_a_ratio_sampled_root_takes_its_ids_from_the_providers_id_generator() -> None:
    ratio = TraceIdRatioBased(0.0)
    provider = TracerProvider(sampler=ParentBased(ratio), id_generator=Counting())
    processor = SimpleSpanProcessor(InMemorySpanExporter())
    provider.add_span_processor(processor)
    traced = Tracing(provider, processor=processor, root_ratio=ratio)

    span = traced.server_span("POST", "/", {})

    assert span is not None
    context = span.get_span_context()
    assert (context.trace_id, context.span_id) == (0x1001 << 64 | 0x1001, 0x1002)
