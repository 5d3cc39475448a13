"""The gateway's recording span: what ``Tracing`` hands ``serve.observe`` for a sampled request.

The SDK's span does, per span, what the gateway does not need on its event loop: a lock, a
``BoundedAttributes`` that re-validates every value recursively under its lock, a span-limits
lookup, a sampler call per child, a processor fan-out and a ``ReadableSpan`` copy at ``end``;
together several hundred µs of a sampled request. ``LightSpan`` is both the writable API span
and the ``ReadableSpan`` the processor and exporters receive (as the SDK's own span is): the
attributes live in a plain dict, a value is checked only when it is not a str, int, float or
bool (or a tuple of them), and ``end`` gives the span itself to the processor. Console, gRPC,
in-memory and ``otlpwire`` exporters read it like any ``ReadableSpan`` (``otlpwire`` through
``exported``, one call for what the properties give).

``later(build, *args)`` sets the attributes ``build(*args)`` returns as ``set_attributes`` would
at that point, but calls ``build`` when the span is first read: by the exporter, after ``end``,
on the batch processor's thread instead of the event loop (``serve.observe`` gives every
attribute of a sampled request so, from values that no longer change).

What stays as the SDK does it: a key set again moves to the end (the SDK's dict deletes and
re-inserts), lists are copied as tuples, other values are cleaned as ``BoundedAttributes`` cleans
them (mappings copied, unknown types as ``str`` or dropped, with a warning), at most 128 attributes
and 128 events with the oldest dropped and counted, an OK status is final, an UNSET one is ignored,
and a span ignores writes once ended. Not read: the ``OTEL_*_LIMIT`` variables (the gateway's spans
carry a fixed, small set of attributes). Spans are made and written on the event loop only; the
export thread reads them after ``end`` (and builds the ``later`` ones). A sampled span waits in the
batch queue until its export (a batch of 512 spans), and each container it keeps alive until then
adds to the garbage collector's count of young objects (more collections, measured): a span holds no
events list until it has an event.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Span, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util import types

_logger = logging.getLogger(__name__)

LIMIT = 128  # attributes per span and events per span, as the SDK's defaults
_SCALARS = frozenset((str, int, float, bool))
_PLAIN = (str, bool, int, float, bytes)
UNSET = Status(StatusCode.UNSET)  # a span's status until one is set


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
        ended: Callable[[ReadableSpan], None],
        resource: Resource,
        scope: InstrumentationScope,
    ) -> None:
        # The fields ``ReadableSpan.__init__`` sets (its properties read them), set here
        # without the call: a span is made per sampled request and attempt.
        self._name = name
        self._context = context
        self._kind = kind
        self._instrumentation_info = None
        self._instrumentation_scope = scope
        self._parent = parent
        self._start_time = time_ns()
        self._end_time: int | None = None
        self._values: dict[str, types.AnyValue] = {}  # (``_attributes`` to the SDK)
        self._events: Sequence[Event] = ()  # a list from the first event on (few spans have any)
        self._links = ()
        self._resource = resource
        self._status = UNSET
        self._ended = ended  # the processor's ``on_end``, or what it would do (``tracing``)
        self._dropped_attributes = 0
        self._dropped_events = 0
        self._later: list[Any] = []  # build, args, build, args, ...: see ``later``
        if attributes:
            self.set_attributes(attributes)

    # --- attributes built when read -----------------------------------------------------------

    def later(self, build: Callable[..., Mapping[str, types.AnyValue]], *args: Any) -> None:
        """Set the attributes ``build(*args)`` returns, as ``set_attributes`` would now, but
        call ``build`` only when the span is read (by the exporter, after ``end``: off the
        event loop). ``args`` must be values that no longer change (snapshots)."""
        if self._end_time is not None:
            _logger.warning("Setting attributes on an ended span")
            return
        self._later += build, args

    def _built(self) -> dict[str, types.AnyValue]:
        """The attributes, with those of ``later`` set, in the order they were given. A build
        that fails costs only its own attributes (logged)."""
        later = self._later
        if later:
            self._later = []
            for at in range(0, len(later), 2):
                build = later[at]
                try:
                    self._set(build(*later[at + 1]))
                except Exception:
                    _logger.exception("Span %r: attributes from %r not set", self._name, build)
        return self._values

    # The SDK's ReadableSpan reads ``_attributes`` (``attributes``, ``to_json``): built first.
    @property
    def _attributes(self) -> dict[str, types.AnyValue]:
        return self._built()

    @_attributes.setter
    def _attributes(self, values: dict[str, types.AnyValue]) -> None:
        self._values = values

    # --- the API span -------------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context  # type: ignore[return-value]  # set in __init__, never None

    def is_recording(self) -> bool:
        return self._end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self._end_time is not None:
            _logger.warning("Setting attributes on an ended span")
            return
        if self._later:  # (the order attributes were given in decides which are kept)
            self._built()
        self._set(attributes)

    def _set(self, attributes: Mapping[str, types.AnyValue]) -> None:
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
            kind = type(value)
            # (a tuple of plain values is kept as it is: immutable, what ``clean`` would copy)
            if kind not in _SCALARS and not (
                kind is tuple and _SCALARS.issuperset(map(type, value))  # type: ignore[arg-type]
            ):
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
        self._ended(self)

    # --- the readable span ----------------------------------------------------------------

    def exported(
        self,
    ) -> tuple[
        SpanContext,
        SpanContext | None,
        str,
        SpanKind,
        int,
        int | None,
        Status,
        dict[str, types.AnyValue],
        int,
        Sequence[Event],
        int,
        tuple[()],
        int,
    ]:
        """What an exporter reads of the span, in one call (``otlpwire``; the properties each
        cost a call): context, parent, name, kind, start and end time, status, attributes
        (built), dropped attributes, events, dropped events, links (none), dropped links."""
        values = self._built()
        return (
            self._context,  # type: ignore[return-value]  # set in __init__, never None
            self._parent,
            self._name,
            self._kind,
            self._start_time,
            self._end_time,
            self._status,
            values,
            self._dropped_attributes,
            self._events,
            self._dropped_events,
            (),
            0,
        )

    # --- the readable span: its dropped counts ------------------------------------------------

    @property
    def dropped_attributes(self) -> int:
        self._built()
        return self._dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._dropped_events
