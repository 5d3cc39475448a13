"""OTLP span export that writes the protobuf wire format itself.

The SDK's OTLP encoder (``encode_spans``) builds a protobuf message object per span, attribute and
value, then serialises them: about 75 µs a span, on the batch processor's thread, which shares the
GIL with the event loop. ``SpanEncoder`` writes the same ``ExportTraceServiceRequest`` bytes
straight from the SDK's ``ReadableSpan`` objects (varints, length-delimited fields, fixed64 times),
grouped by resource and scope as ``encode_spans`` groups them and with the same fields set, so a
parsed request equals the SDK's (the unit tests compare them byte for byte). The gateway's own spans
(``LightSpan``) hand over their fields in one call (``exported``) instead of a property each.
``WireSpanExporter`` is the SDK's OTLP/HTTP exporter with only the encoding swapped: endpoint,
headers, compression, timeout, retries and the exporter's own metrics stay the SDK's. The gRPC
exporter keeps the SDK encoder (its stub serialises a message object, not bytes).

Field numbers are those of ``opentelemetry/proto/trace/v1/trace.proto`` and
``common/v1/common.proto``; fields are written in field-number order, as protobuf does.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
from opentelemetry.trace import Link, SpanContext, SpanKind, Status

from switchman.gateway.telemetry.lightspan import UNSET, LightSpan

_logger = logging.getLogger(__name__)

_FIXED64 = struct.Struct("<Q").pack
_DOUBLE = struct.Struct("<d").pack
_FIXED32 = struct.Struct("<I").pack
_INT64 = range(-(1 << 63), 1 << 63)
_ONE_BYTE = [bytes((n,)) for n in range(0x80)]
_MEMO_FIELD_MAX = 128  # bytes of an encoded attribute worth remembering

# Span.kind (field 6, varint) for each SDK kind: the proto enum counts from SPAN_KIND_INTERNAL=1.
_KIND = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
# The same by the kind's id: an Enum member hashes by a Python call, its id in C (members live as
# long as their class).
_KIND_OF = {id(kind): field for kind, field in _KIND.items()}
# SpanFlags: the SDK encoder always says whether the parent (or linked) context is remote.
_HAS_IS_REMOTE, _IS_REMOTE = 0x100, 0x200


def _varint(value: int) -> bytes:
    """A non-negative int (or an int64, as its 64-bit two's complement) as a protobuf varint."""
    if 0 <= value < 0x80:
        return _ONE_BYTE[value]
    value &= (1 << 64) - 1
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: ``tag``, the payload's length, the payload."""
    size = len(payload)
    return tag + (_ONE_BYTE[size] if size < 0x80 else _varint(size)) + payload


def _string(tag: bytes, text: str | None) -> bytes:
    """A proto3 string field: absent when empty or None."""
    return _delimited(tag, text.encode()) if text else b""


def _count(tag: bytes, value: int) -> bytes:
    """A proto3 uint32 field: absent when zero."""
    return tag + _varint(value) if value else b""


def any_value(value: Any) -> bytes:
    """The body of an ``AnyValue`` message; the types and their order are ``encode_spans``'s.

    Raises ValueError for an int outside int64 (as protobuf does) and TypeError for a type
    OTLP has no field for.
    """
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _delimited(b"\x0a", value.encode())
    if isinstance(value, int):
        if value not in _INT64:
            raise ValueError(f"Value out of range: {value}")
        return b"\x18" + _varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _delimited(b"\x3a", value)
    if isinstance(value, Sequence):
        items = b"".join([_delimited(b"\x0a", any_value(item)) for item in value])
        return _delimited(b"\x2a", items)
    if isinstance(value, Mapping):
        pairs = [_delimited(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]
        return _delimited(b"\x32", b"".join(pairs))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _string(b"\x0a", key) + _delimited(b"\x12", any_value(value))


def _flags(context: SpanContext | None) -> bytes:
    """``flags`` (fixed32) as the SDK encoder sets them: is-remote known, and whether it is."""
    remote = context is not None and context.is_remote
    return _FIXED32(_HAS_IS_REMOTE | _IS_REMOTE if remote else _HAS_IS_REMOTE)


def _status(status: Status | None) -> bytes:
    """Span.status (field 15): present, empty for an unset status, whenever the span has one."""
    if status is UNSET:  # (the gateway's spans until one fails: no property read)
        return b"\x7a\x00"
    if status is None:
        return b""
    code = status.status_code.value
    if not code and not status.description:
        return b"\x7a\x00"
    body = _string(b"\x12", status.description) + (b"\x18" + _varint(code) if code else b"")
    return _delimited(b"\x7a", body)


# What ``SpanEncoder.span`` reads of a span: context, parent, name, kind, start and end time,
# status, attributes, dropped attributes, events, dropped events, links, dropped links.
_Fields = tuple[
    SpanContext,
    SpanContext | None,
    str,
    SpanKind,
    int | None,
    int | None,
    Status | None,
    Mapping[str, Any] | None,
    int,
    Sequence[Event],
    int,
    Sequence[Link],
    int,
]


def _fields(span: ReadableSpan) -> _Fields:
    """What is encoded of ``span``: the gateway's own spans hand it over in one call, others
    through the ``ReadableSpan`` properties."""
    if type(span) is LightSpan:
        return span.exported()
    context = span.get_span_context()
    if context is None:
        raise ValueError(f"span {span.name!r} has no span context")
    return (
        context,
        span.parent,
        span.name,
        span.kind,
        span.start_time,
        span.end_time,
        span.status,
        span.attributes,
        span.dropped_attributes,
        span.events,
        span.dropped_events,
        span.links,
        span.dropped_links,
    )


def _head(
    context: SpanContext,
    parent: SpanContext | None,
    name: str,
    kind: SpanKind,
    start: int | None,
    end: int | None,
) -> bytes:
    """A span's fields before its attributes (1-8). Ids are fixed-length bytes fields: tag,
    length (16 or 8), big-endian id."""
    state = context.trace_state
    return (
        b"\x0a\x10"
        + context.trace_id.to_bytes(16, "big")
        + b"\x12\x08"
        + context.span_id.to_bytes(8, "big")
        + _string(b"\x1a", ",".join([f"{k}={v}" for k, v in state.items()]) if state else None)
        + (b"\x22\x08" + parent.span_id.to_bytes(8, "big") if parent else b"")
        + _string(b"\x2a", name)
        + _KIND_OF[id(kind)]
        + (b"\x39" + _FIXED64(start) if start else b"")
        + (b"\x41" + _FIXED64(end) if end else b"")
    )


class SpanEncoder:
    """Spans to the bytes of ``encode_spans(spans).SerializePartialToString()``.

    It remembers the encoded attribute of each (field, key, value) whose value is a str or an
    int and whose encoding is short (models, routes, methods, ports and statuses repeat from
    span to span; captured prompts do not), up to ``memo_size`` of them, none over 128 encoded
    bytes; the memo starts afresh when full. Threads may share an encoder: the memo is only read,
    written and cleared whole.
    """

    def __init__(self, memo_size: int = 1024) -> None:
        self._memo: dict[tuple[bytes, str, str | int], bytes] = {}
        self._memo_size = memo_size

    def encode(self, spans: Iterable[ReadableSpan]) -> bytes:
        """A serialised ``ExportTraceServiceRequest`` carrying ``spans``."""
        out = []
        for resource, scopes in self._grouped(spans).items():
            scope_spans = []
            for scope, encoded in scopes.items():
                parts = [self._scope(scope)]
                parts.extend(_delimited(b"\x12", span) for span in encoded)
                parts.append(_string(b"\x1a", scope.schema_url if scope else None))
                scope_spans.append(_delimited(b"\x12", b"".join(parts)))
            resource_body = _delimited(b"\x0a", self.attributes(b"\x0a", resource.attributes))
            body = resource_body + b"".join(scope_spans) + _string(b"\x1a", resource.schema_url)
            out.append(_delimited(b"\x0a", body))
        return b"".join(out)

    def _grouped(
        self, spans: Iterable[ReadableSpan]
    ) -> dict[Resource, dict[InstrumentationScope | None, list[bytes]]]:
        """Encoded spans by resource, then scope, in first-seen order (as ``encode_spans``
        groups them: by equality). A span with the previous span's very resource and scope
        skips the lookups (the SDK's Resource hashes by serialising its attributes)."""
        groups: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
        last: tuple[Resource, InstrumentationScope | None] | None = None
        bucket: list[bytes] = []
        for span in spans:
            resource, scope = span.resource, span.instrumentation_scope or None
            if last is None or resource is not last[0] or scope is not last[1]:
                bucket = groups.setdefault(resource, {}).setdefault(scope, [])
                last = resource, scope
            bucket.append(self.span(span))
        return groups

    def span(self, span: ReadableSpan) -> bytes:
        """The body of one ``Span`` message, with the fields ``encode_spans`` sets."""
        (context, parent, name, kind, start, end, status, attributes, dropped_attributes) = (
            fields := _fields(span)
        )[:9]
        events, dropped_events, links, dropped_links = fields[9:]
        return b"".join(
            (
                _head(context, parent, name, kind, start, end),
                self.attributes(b"\x4a", attributes),
                _count(b"\x50", dropped_attributes),
                self._events(events) if events else b"",
                _count(b"\x60", dropped_events),
                self._links(links) if links else b"",
                _count(b"\x70", dropped_links),
                _status(status),
                b"\x85\x01",  # field 16, fixed32
                _flags(parent),
            )
        )

    def attributes(self, tag: bytes, attrs: Mapping[str, Any] | None) -> bytes:
        """Each attribute as a ``KeyValue`` field ``tag``. One that cannot be encoded is logged
        and left out, the rest still go (as ``encode_spans`` does)."""
        if not attrs:
            return b""
        memo, out = self._memo, []
        for key, value in attrs.items():
            # Exact types only: True == 1 and 1.0 == 1 would share an entry.
            remember = type(value) is str or type(value) is int
            if remember and (field := memo.get((tag, key, value))) is not None:
                out.append(field)
                continue
            try:
                field = _delimited(tag, _key_value(key, value))
            except Exception as error:  # any bad value costs only itself
                _logger.exception("Failed to encode key %s: %s", key, error)
                continue
            if remember and len(field) <= _MEMO_FIELD_MAX:
                if len(memo) >= self._memo_size:
                    memo.clear()
                memo[tag, key, value] = field
            out.append(field)
        return b"".join(out)

    def _events(self, events: Sequence[Event]) -> bytes:
        out = []
        for event in events:
            body = (
                (b"\x09" + _FIXED64(event.timestamp) if event.timestamp else b"")
                + _string(b"\x12", event.name)
                + self.attributes(b"\x1a", event.attributes)
                + _count(b"\x20", event.dropped_attributes)
            )
            out.append(_delimited(b"\x5a", body))
        return b"".join(out)

    def _links(self, links: Sequence[Link]) -> bytes:
        out = []
        for link in links:
            body = (
                b"\x0a\x10"
                + link.context.trace_id.to_bytes(16, "big")
                + b"\x12\x08"
                + link.context.span_id.to_bytes(8, "big")
                + self.attributes(b"\x22", link.attributes)
                + _count(b"\x28", link.dropped_attributes)
                + b"\x35"
                + _flags(link.context)
            )
            out.append(_delimited(b"\x6a", body))
        return b"".join(out)

    def _scope(self, scope: InstrumentationScope | None) -> bytes:
        """ScopeSpans.scope: an empty ``InstrumentationScope`` when the span has none."""
        if scope is None:
            return _delimited(b"\x0a", b"")
        body = (
            _string(b"\x0a", scope.name)
            + _string(b"\x12", scope.version)
            + self.attributes(b"\x1a", scope.attributes)
        )
        return _delimited(b"\x0a", body)


class WireSpanExporter(OTLPSpanExporter):
    """The SDK's OTLP/HTTP span exporter, encoding with ``SpanEncoder``.

    ``export`` sends through the SDK's own client (headers, compression, timeout, retries) and
    counts in its metrics. What is not the common case goes to the SDK's ``export`` whole: a
    batch this encoder refuses (the SDK's encoder then decides, logs and counts), one over
    ``max_request_size`` (dropped with the SDK's warning), a shut-down exporter, and an
    exporter version without the members used here (a different SDK costs speed, not spans).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        members = ("_client", "_metrics", "_max_request_size", "_shutdown")
        self._wire = all(hasattr(self, name) for name in members)
        self._encoder = SpanEncoder()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not self._wire or self._shutdown:
            return super().export(spans)
        try:
            data = self._encoder.encode(spans)
        except Exception:  # the SDK's encoder gets the batch, and the verdict
            return super().export(spans)
        if 0 < self._max_request_size < len(data):
            return super().export(spans)
        with self._metrics.export_operation(len(spans)) as result:
            answer = self._client.export(data)
            if not answer.success:
                result.error = answer.error
                status = answer.status_code
                result.error_attrs = (
                    {HTTP_RESPONSE_STATUS_CODE: status} if status is not None else None
                )
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
