"""The gateway's recording span: what ``Tracing`` hands ``serve.observe`` for a sampled request.

The SDK's span does, per span, what the gateway does not need on its event loop: a lock, a
``BoundedAttributes`` that re-validates every value recursively under its lock, a span-limits
lookup, a sampler call per child, a processor fan-out and a ``ReadableSpan`` copy at ``end``;
together several hundred µs of a sampled request. ``LightSpan`` is both the writable API span
and the ``ReadableSpan`` the processor and exporters receive (as the SDK's own span is): the
attributes live in a plain dict, a value is checked only when it is not a str, int, float or
bool, and ``end`` gives the span itself to the processor. Console, gRPC, in-memory and
``otlpwire`` exporters read it like any ``ReadableSpan``.

What stays as the SDK does it: a key set again moves to the end (the SDK's dict deletes and
re-inserts), lists are copied as tuples, other values are cleaned as ``BoundedAttributes``
cleans them (mappings copied, unknown types as ``str`` or dropped, with a warning), at most 128
attributes and 128 events with the oldest dropped and counted, an OK status is final, an UNSET
one is ignored, and a span ignores writes once ended. Not read: the ``OTEL_*_LIMIT`` variables
(the gateway's spans carry a fixed, small set of attributes). Spans are made and written on the
event loop only; the export thread reads them after ``end``. A sampled span waits in the batch
queue until its export (a batch of 512 spans), and each container it keeps alive until then adds to
the garbage collector's count of young objects (more collections, measured): a span holds no
events list until it has an event.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util import types

_logger = logging.getLogger(__name__)

LIMIT = 128  # attributes per span and events per span, as the SDK's defaults
_SCALARS = frozenset((str, int, float, bool))
_PLAIN = (str, bool, int, float, bytes)
_UNSET = Status(StatusCode.UNSET)


def clean(value: Any) -> Any:
    """An attribute value as the SDK's ``BoundedAttributes`` keeps it (a copy, never the
    caller's list or dict)."""
    if value is None or isinstance(value, _PLAIN):
        return value
    if type(value) is list or type(value) is tuple or isinstance(value, Sequence):
        return tuple([item if type(item) in _SCALARS else clean(item) for item in value])
    if isinstance(value, Mapping):
        cleaned = {}
        for key, item in value.items():
            if isinstance(key, str) and key:
                cleaned[key] = clean(item)
            else:
                _logger.warning("Invalid attribute key %r: dropped", key)
        return cleaned
    _logger.warning("Invalid type %s for an attribute value: its str() or None", type(value))
    own_str = type(value).__str__ is not object.__str__  # type: ignore[comparison-overlap]
    return str(value) if own_str else None


class LightSpan(Span, ReadableSpan):
    """A sampled span of the gateway: the API span ``observe`` writes and the ``ReadableSpan``
    the processor gets at ``end``."""

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: Mapping[str, types.AnyValue] | None,
        processor: SpanProcessor,
        resource: Resource,
        scope: InstrumentationScope,
    ) -> None:
        self._values: dict[str, types.AnyValue] = {}
        ReadableSpan.__init__(
            self,
            name,
            context,
            parent,
            resource,
            self._values,
            (),  # events: a list from the first one on (few spans have any)
            (),
            kind,
            None,
            _UNSET,
            time_ns(),
            None,
            scope,
        )
        self._processor = processor
        self._dropped_attributes = 0
        self._dropped_events = 0
        if attributes:
            self.set_attributes(attributes)

    # --- the API span -------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]  # set in __init__, never None

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            _logger.warning("Setting attributes on an ended span")
            return
        values = self._values
        room = len(values) + len(attributes) <= LIMIT  # then no key can push another out
        if (
            room
            and _SCALARS.issuperset(map(type, attributes.values()))
            and values.keys().isdisjoint(attributes)
        ):  # the usual case, in C: nothing to clean, move or drop
            values.update(attributes)
            return
        for key, value in attributes.items():
            if type(value) not in _SCALARS:
                value = clean(value)
            if key in values:
                del values[key]
            elif not room and len(values) >= LIMIT:
                del values[next(iter(values))]
                self._dropped_attributes += 1
            values[key] = value

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        self.set_attributes({key: value})

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        if self._end_time is not None:
            _logger.warning("Adding an event to an ended span")
            return
        values = clean(attributes) if attributes else {}
        happened = self._events
        if not isinstance(happened, list):
            happened = self._events = []
        if len(happened) >= LIMIT:
            del happened[0]
            self._dropped_events += 1
        happened.append(Event(name, values, timestamp if timestamp is not None else time_ns()))

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, Status):
            if status.status_code is not StatusCode.UNSET:
                self._status = status
        elif status is not StatusCode.UNSET:
            self._status = Status(status, description)

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        kind = type(exception)
        module = kind.__module__
        values: dict[str, types.AnyValue] = {
            "exception.type": kind.__qualname__
            if module in ("builtins", "", None)
            else f"{module}.{kind.__qualname__}",
            "exception.message": str(exception),
            "exception.stacktrace": "".join(traceback.format_exception(exception)),
            "exception.escaped": str(escaped),
        }
        values.update(attributes or {})
        self.add_event("exception", values, timestamp)

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            _logger.warning("Calling end() on an ended span")
            return
        self._end_time = end_time if end_time is not None else time_ns()
        self._processor.on_end(self)

    # --- the readable span: its dropped counts ------------------------------------------------

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._dropped_events
