"""``SpanEncoder`` writes the bytes the SDK's ``encode_spans`` serialises, for every span shape.

Spans come from a real SDK TracerProvider (into an in-memory exporter), so they are the
``ReadableSpan`` objects the batch processor hands an exporter. Each case compares our bytes
with ``encode_spans(spans).SerializePartialToString()`` (what the SDK's HTTP exporter sends);
on a mismatch the assertion shows both requests as protobuf text.

Scenario matrix:
- attribute values: str (empty, unicode, emoji), bool, int (0, negative, int64 limits), float
  (0.0, -0.0, NaN, ±inf), bytes, None, sequences of each (empty, with None, mixed), mappings
  (nested); on span, event, link, scope and resource;
- ints beyond int64: the SDK encoder logs and leaves that one attribute out; so do we;
- span fields: every kind, empty and unicode names, start time 0, status unset/ok/error with
  message, root / local parent / remote parent, trace state, events (bare, with attributes,
  an exception), links (local, remote, with attributes), dropped attribute/event/link counts;
- grouping: several resources and scopes interleaved keep first-seen order; equal resources
  built separately share a group; schema URLs on both;
- a seeded random batch of 300 spans; the memo (small, refilled) changes no byte; an empty
  batch; a lone surrogate in a span name fails the batch as it fails the SDK's.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence
from typing import Any

import pytest
from google.protobuf import text_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from switchman.gateway.telemetry.otlpwire import SpanEncoder, any_value

INT64_MAX, INT64_MIN = (1 << 63) - 1, -(1 << 63)
REMOTE = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "v1"), ("other", "x")]),
)
LOCAL = SpanContext(0x1, 0x2, is_remote=False)

VALUES: dict[str, Any] = {
    "str": "gpt-4o-mini",
    "str.empty": "",
    "str.unicode": "héllo wörld ✓ 日本語 🚀",
    "bool.true": True,
    "bool.false": False,
    "int.zero": 0,
    "int.one": 1,
    "int.negative": -1,
    "int.big": 300,
    "int.max": INT64_MAX,
    "int.min": INT64_MIN,
    "float.zero": 0.0,
    "float.negative_zero": -0.0,
    "float": 0.7,
    "float.nan": math.nan,
    "float.inf": math.inf,
    "float.minus_inf": -math.inf,
    "bytes": b"\x00\xffraw",
    "bytes.empty": b"",
    "none": None,
    "seq.str": ["a", "", "ü"],
    "seq.bool": [True, False],
    "seq.int": [0, -5, INT64_MAX],
    "seq.float": [1.5, math.inf],
    "seq.empty": [],
    "seq.with_none": ["a", None],
    "seq.mixed": [1, "two", 3.0, False],
    "map": {"k": "v", "n": 1, "inner": {"deep": [1, 2]}},
    "map.empty": {},
}


def spans_of(provider: TracerProvider) -> tuple[InMemorySpanExporter, trace.Tracer]:
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory, provider.get_tracer("switchman.gateway")


def assert_same_bytes(spans: Sequence[ReadableSpan], encoder: SpanEncoder | None = None) -> bytes:
    ours = (encoder or SpanEncoder()).encode(spans)
    theirs: bytes = encode_spans(spans).SerializePartialToString()
    if ours != theirs:  # show the difference as text, then fail on the bytes
        parsed = ExportTraceServiceRequest.FromString(ours)
        assert text_format.MessageToString(parsed) == text_format.MessageToString(
            encode_spans(spans)
        )
    assert ours == theirs
    return ours


def test_every_attribute_type_on_a_span_encodes_as_the_sdk_does() -> None:
    memory, tracer = spans_of(TracerProvider())
    tracer.start_span("typed", attributes=VALUES).end()
    for key, value in VALUES.items():  # one attribute alone, so a bad one cannot hide
        tracer.start_span(key, attributes={key: value}).end()
    ours = assert_same_bytes(memory.get_finished_spans())
    parsed = ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0]
    typed = {kv.key: kv.value for kv in parsed.spans[0].attributes}
    assert typed["str.unicode"].string_value == VALUES["str.unicode"]
    assert typed["int.min"].int_value == INT64_MIN
    assert math.isnan(typed["float.nan"].double_value)
    assert typed["none"].WhichOneof("value") is None
    assert [v.int_value for v in typed["seq.int"].array_value.values] == [0, -5, INT64_MAX]


@pytest.mark.parametrize("huge", [INT64_MAX + 1, INT64_MIN - 1, 1 << 64, 1 << 100])
def test_an_int_beyond_int64_is_left_out_and_logged_as_the_sdk_does(
    huge: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK keeps any int on the span; its encoder (protobuf) refuses it, logs, and sends the
    span without that one attribute. Inside a sequence the whole attribute goes."""
    memory, tracer = spans_of(TracerProvider())
    tracer.start_span("huge", attributes={"before": 1, "huge": huge, "after": "x"}).end()
    tracer.start_span("in a list", attributes={"list": [1, huge], "kept": True}).end()
    with caplog.at_level(logging.ERROR, logger="switchman.gateway.telemetry.otlpwire"):
        ours = assert_same_bytes(memory.get_finished_spans())
    spans = ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0].spans
    assert [kv.key for kv in spans[0].attributes] == ["before", "after"]
    assert [kv.key for kv in spans[1].attributes] == ["kept"]
    ours_logged = [r for r in caplog.records if r.name.endswith("otlpwire")]
    assert [r.getMessage().split(":")[0] for r in ours_logged] == [
        "Failed to encode key huge",
        "Failed to encode key list",
    ]


def test_span_fields_kinds_status_and_times() -> None:
    memory, tracer = spans_of(TracerProvider())
    for kind in SpanKind:
        tracer.start_span(f"kind {kind.name}", kind=kind).end()
    tracer.start_span("", start_time=0).end(end_time=5)
    tracer.start_span("ünïcode ✓ 🚀", start_time=1, attributes={}).end(end_time=1 << 63)
    for status in (Status(StatusCode.OK), Status(StatusCode.ERROR, "upstream 503 ✗")):
        span = tracer.start_span("status")
        span.set_status(status)
        span.end()
    span = tracer.start_span("error without message")
    span.set_status(Status(StatusCode.ERROR))
    span.end()
    assert_same_bytes(memory.get_finished_spans())


def test_parents_remote_and_local_and_trace_state() -> None:
    memory, tracer = spans_of(TracerProvider())
    remote = trace.set_span_in_context(NonRecordingSpan(REMOTE))
    server = tracer.start_as_current_span("server", context=remote, kind=SpanKind.SERVER)
    with server, tracer.start_as_current_span("route"):
        tracer.start_span("attempt", kind=SpanKind.CLIENT).end()
    tracer.start_span("root").end()
    local_parent = trace.set_span_in_context(NonRecordingSpan(LOCAL))
    tracer.start_span("local parent", context=local_parent).end()
    spans = memory.get_finished_spans()
    ours = assert_same_bytes(spans)
    encoded = ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0].spans
    by_name = {span.name: span for span in encoded}
    assert by_name["server"].trace_state == "vendor=v1,other=x"
    assert by_name["server"].flags == 0x300  # parent known remote
    assert by_name["route"].flags == 0x100
    assert by_name["root"].parent_span_id == b""


def test_events_links_and_their_attributes() -> None:
    memory, tracer = spans_of(TracerProvider())
    links = [
        Link(REMOTE, {"link.kind": "remote", "n": 2}),
        Link(LOCAL),
        Link(LOCAL, {"empty": "", "list": [1.5]}),
    ]
    span = tracer.start_span("with events", links=links)
    span.add_event("bare")
    span.add_event("", {"n": 1, "unicode": "ß", "none": None}, timestamp=123)
    span.add_event("at zero", timestamp=0)
    span.record_exception(ValueError("bad ✗"))
    span.end()
    assert_same_bytes(memory.get_finished_spans())


def test_dropped_counts_under_span_limits() -> None:
    limits = SpanLimits(
        max_span_attributes=2,
        max_events=1,
        max_links=1,
        max_event_attributes=1,
        max_link_attributes=1,
        max_attribute_length=3,
    )
    memory, tracer = spans_of(TracerProvider(span_limits=limits))
    links = [Link(LOCAL, {"a": 1, "b": 2}), Link(REMOTE)]
    span = tracer.start_span("limited", attributes={"a": "long", "b": 2, "c": 3}, links=links)
    span.add_event("one", {"x": 1, "y": 2})
    span.add_event("two")
    span.end()
    ours = assert_same_bytes(memory.get_finished_spans())
    encoded = ExportTraceServiceRequest.FromString(ours).resource_spans[0].scope_spans[0].spans[0]
    assert (encoded.dropped_attributes_count, encoded.dropped_events_count) == (1, 1)
    assert encoded.dropped_links_count == 1


def test_resources_and_scopes_group_as_the_sdk_groups_them() -> None:
    memory = InMemorySpanExporter()
    first = TracerProvider(resource=Resource({"service.name": "a", "n": 1}, "https://schema/1"))
    again = TracerProvider(resource=Resource({"service.name": "a", "n": 1}, "https://schema/1"))
    other = TracerProvider(resource=Resource({"service.name": "b", "list": ["x", "y"]}))
    for provider in (first, again, other):
        provider.add_span_processor(SimpleSpanProcessor(memory))
    tracers = [
        first.get_tracer("switchman.gateway"),
        other.get_tracer("other.lib", "1.2.3", schema_url="https://scope", attributes={"s": 1}),
        again.get_tracer("switchman.gateway"),  # an equal resource and scope: same group
        first.get_tracer("plugin", "0.1"),
        other.get_tracer("switchman.gateway"),
    ]
    for round_ in range(3):
        for index, tracer in enumerate(tracers):
            tracer.start_span(f"span {round_}.{index}").end()
    ours = assert_same_bytes(memory.get_finished_spans())
    request = ExportTraceServiceRequest.FromString(ours)
    assert [len(rs.scope_spans) for rs in request.resource_spans] == [2, 2]


def test_a_seeded_random_batch_and_a_small_memo_change_no_byte() -> None:
    rng = random.Random(15)
    pool: list[Any] = [*VALUES.values(), "route", "gpt-4o", 8080, 200, 0.25]
    memory, tracer = spans_of(TracerProvider())
    for index in range(300):
        keys = rng.sample(sorted(VALUES), rng.randint(0, 6))
        attributes = {key: rng.choice(pool) for key in keys}
        span = tracer.start_span(f"span {index}", kind=rng.choice(list(SpanKind)))
        span.set_attributes(attributes)
        if rng.random() < 0.3:
            span.add_event("event", {key: rng.choice(pool) for key in keys[:2]})
        span.end()
    spans = memory.get_finished_spans()
    encoder = SpanEncoder(memo_size=8)  # fills and starts afresh many times
    first = assert_same_bytes(spans, encoder)
    assert assert_same_bytes(spans, encoder) == first


def test_the_memo_keeps_short_values_only_and_stays_bounded() -> None:
    """Captured prompts (long, never repeated) would fill memory if remembered."""
    memory, tracer = spans_of(TracerProvider())
    for index in range(50):
        prompt = f"prompt {index} " + "lorem ipsum " * 40
        attributes = {"gen_ai.input.messages": prompt, "n": index, "model": "m"}
        tracer.start_span("captured", attributes=attributes).end()
    encoder = SpanEncoder(memo_size=16)
    assert_same_bytes(memory.get_finished_spans(), encoder)
    remembered = encoder._memo
    assert 0 < len(remembered) <= 16
    assert all(len(field) <= 128 for field in remembered.values())
    assert not any(key == "gen_ai.input.messages" for _, key, _ in remembered)


def test_memo_tells_true_from_one_and_one_from_a_float() -> None:
    memory, tracer = spans_of(TracerProvider())
    for value in (1, True, 1.0, "1", 1, True):
        tracer.start_span("same key", attributes={"k": value}).end()
    assert_same_bytes(memory.get_finished_spans(), SpanEncoder())


def test_an_empty_batch_is_an_empty_request() -> None:
    assert SpanEncoder().encode([]) == encode_spans([]).SerializePartialToString() == b""


def test_a_lone_surrogate_in_a_span_name_fails_the_batch_like_the_sdk() -> None:
    memory, tracer = spans_of(TracerProvider())
    tracer.start_span("bad \ud800").end()
    spans = memory.get_finished_spans()
    with pytest.raises(UnicodeEncodeError):
        encode_spans(spans).SerializePartialToString()
    with pytest.raises(UnicodeEncodeError):
        SpanEncoder().encode(spans)


def test_a_type_otlp_cannot_carry_is_refused() -> None:
    with pytest.raises(TypeError, match="Invalid type"):
        any_value(object())
