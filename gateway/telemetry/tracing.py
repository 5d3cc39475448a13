"""OpenTelemetry traces for the gateway, with the GenAI semantic conventions.

``Tracing.from_env`` builds a private TracerProvider (never the global one) from the standard
``OTEL_*`` variables; ``serve.observe`` opens one SERVER span per request, an INTERNAL ``route``
span for the routing decision and a CLIENT span per upstream attempt, and sends W3C ``traceparent``
upstream. With no exporter configured, ``Tracing`` is inert and costs one attribute check per
request. Prompt and completion text are recorded only when ``capture_content`` is on, truncated.

Environment (standard unless marked): ``OTEL_SDK_DISABLED``, ``OTEL_TRACES_EXPORTER``
(``otlp``, ``console``, ``none``; defaults to ``otlp`` only when an OTLP endpoint is set),
``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` (``http/protobuf``, ``grpc``),
``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``, ``OTEL_TRACES_SAMPLER`` and ``_ARG``,
``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``; ``SWITCHMAN_CAPTURE_CONTENT`` (ours).
OTLP/HTTP exports through ``otlpwire.WireSpanExporter`` (the SDK's exporter, with an encoder
that writes the protobuf bytes itself); gRPC through the SDK's exporter as it is.

The SDK's provider holds the resource, sampler and id generator and owns the processor (batch:
bounded queue, export thread, flush at shutdown); the spans are ``lightspan.LightSpan``s made
here rather than by its tracer (the SDK's span was most of a sampled request's cost), and are
``ReadableSpan``s to every processor and exporter. A sampled span that ends goes straight to
the SDK batch processor's queue (``_emit``: what its ``on_end`` does), any other processor gets
``on_end``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, MutableMapping
from random import getrandbits
from typing import Any
from urllib.parse import unquote

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.trace.sampling import Decision as SamplingDecision
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.sdk.version import __version__ as sdk_version
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from switchman.gateway.telemetry.lightspan import LightSpan

log = logging.getLogger("switchman.gateway.tracing")

SHUTDOWN_S = 5.0  # spans still queued when the gateway stops get this long to reach a collector
CONTENT_LIMIT = 4096  # characters of captured prompt/completion text per span
_PROPAGATOR = TraceContextTextMapPropagator()
OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}
PROVIDERS = {"openai": "openai", "azure-openai": "azure.ai.openai", "anthropic": "anthropic"}


class TracingConfigError(ValueError):
    """An OTEL_* variable the gateway cannot honour; the message names it."""


def _sampler(environ: Mapping[str, str]) -> tuple[Sampler, TraceIdRatioBased | None]:
    """The sampler ``OTEL_TRACES_SAMPLER`` names, and the ratio sampler that alone decides a
    request arriving without a parent, when there is one (``server_span`` applies it itself)."""
    name = environ.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    fixed: dict[str, Sampler] = {
        "always_on": ALWAYS_ON,
        "always_off": ALWAYS_OFF,
        "parentbased_always_on": ParentBased(ALWAYS_ON),
        "parentbased_always_off": ParentBased(ALWAYS_OFF),
    }
    if name in fixed:
        return fixed[name], None
    if name not in ("traceidratio", "parentbased_traceidratio"):
        known = sorted([*fixed, "traceidratio", "parentbased_traceidratio"])
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER={name!r} is not one of {known}")
    arg = environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0")
    try:
        ratio = float(arg)
    except ValueError as exc:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} is not a number") from exc
    if not 0.0 <= ratio <= 1.0:
        raise TracingConfigError(f"OTEL_TRACES_SAMPLER_ARG={arg!r} must be between 0 and 1")
    ratio_sampler = TraceIdRatioBased(ratio)
    if name == "traceidratio":
        return ratio_sampler, ratio_sampler
    return ParentBased(ratio_sampler), ratio_sampler


def _setting(environ: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` set in ``environ``: ``(name, value)``."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return None


def _headers(environ: Mapping[str, str]) -> dict[str, str] | None:
    found = _setting(environ, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")
    if found is None:
        return None
    return _pairs(found[1])


def _pairs(text: str) -> dict[str, str]:
    """``k=v,k2=v2`` (W3C baggage-like, values URL-encoded) as a dict."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            pairs[unquote(key.strip())] = unquote(value.strip())
    return pairs


def _exporter(environ: Mapping[str, str]) -> SpanExporter | None:
    traces_endpoint = _setting(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    base_endpoint = _setting(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
    default = "otlp" if traces_endpoint or base_endpoint else "none"
    kind = environ.get("OTEL_TRACES_EXPORTER", default).strip().lower()
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    if kind != "otlp":
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={kind!r}: use otlp, console or none")
    found = _setting(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    variable, protocol = found or ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    headers = _headers(environ)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        endpoint = (traces_endpoint or base_endpoint or ("", None))[1]
        return GrpcExporter(endpoint=endpoint, headers=headers)
    if protocol in ("http/protobuf", "http"):
        from switchman.gateway.telemetry.otlpwire import WireSpanExporter

        if traces_endpoint:
            url: str | None = traces_endpoint[1]
        elif base_endpoint:
            url = base_endpoint[1].rstrip("/") + "/v1/traces"
        else:
            url = None
        return WireSpanExporter(endpoint=url, headers=headers)
    raise TracingConfigError(f"{variable}={protocol!r}: use http/protobuf or grpc")


class _Resource(Resource):
    """A Resource whose hash is computed once: the OTLP encoder groups every exported span by
    resource, and the SDK's hash serialises the attributes to JSON each time (it showed in the
    export thread's profile). The attributes never change after start-up."""

    _hash: int | None = None

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = super().__hash__()
        return self._hash

    def __eq__(self, other: object) -> bool:
        return other is self or super().__eq__(other)


def _resource(environ: Mapping[str, str]) -> Resource:
    """service.name: OTEL_SERVICE_NAME, else OTEL_RESOURCE_ATTRIBUTES, else switchman-gateway."""
    attributes: dict[str, str] = {
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": sdk_version,
        "service.name": "switchman-gateway",
    }
    attributes.update(_pairs(environ.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    service = environ.get("OTEL_SERVICE_NAME", "").strip()
    if service:
        attributes["service.name"] = service
    return _Resource(attributes)


_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_NONE = TraceState()  # immutable: one empty state for every span without one
_FLAGS = {_UNSAMPLED: "00", _SAMPLED: "01"}
_SCOPE = InstrumentationScope("switchman.gateway")  # what provider.get_tracer(name) would carry
_LOW64 = (1 << 64) - 1


class _Unsampled(NonRecordingSpan):
    """A root request the ratio sampler turned down (nine in ten at 10%): its trace id (the
    high 128 of ``bits``) and span id (the low 64); the ``SpanContext`` is built only when asked
    for, and ``inject`` writes ``traceparent`` with one hex formatting."""

    def __init__(self, bits: int) -> None:  # no context stored: ``get_span_context`` makes it
        self._bits = bits

    def get_span_context(self) -> SpanContext:
        bits = self._bits
        return SpanContext(bits >> 64, bits & _LOW64, False, _UNSAMPLED, _NONE)

    def traceparent(self) -> str:
        text = self._bits.to_bytes(24, "big").hex()  # (cheaper than a "048x" format)
        return f"00-{text[:32]}-{text[32:]}-00"

    def __repr__(self) -> str:
        return f"_Unsampled({self.get_span_context()!r})"


def _emit(processor: SpanProcessor) -> Callable[[ReadableSpan], None]:
    """What a sampled span is given at its end: ``processor.on_end``, or for the SDK's batch
    processor its queue's ``emit`` straight away (what its ``on_end`` does with a sampled span,
    less three property reads and a call per span). A batch processor of another layout:
    ``on_end``."""
    emit = getattr(getattr(processor, "_batch_processor", None), "emit", None)
    if type(processor) is BatchSpanProcessor and callable(emit):
        return emit  # type: ignore[no-any-return]
    return processor.on_end


class Tracing:
    """Span factory for ``serve.observe``; inert when ``provider`` is None.

    ``provider`` holds the resource, sampler and id generator, and owns ``processor`` (flush,
    shutdown); the spans themselves are ``lightspan.LightSpan``s made here, not by the SDK's
    tracer, and go to ``processor`` when they end.
    """

    def __init__(
        self,
        provider: TracerProvider | None,
        *,
        capture_content: bool = False,
        processor: SpanProcessor | None = None,
        root_ratio: TraceIdRatioBased | None = None,
    ) -> None:
        self.provider = provider
        self.capture_content = capture_content
        self._processor: SpanProcessor | None = None
        if provider is not None:
            if processor is None:
                raise ValueError("a Tracing with a provider needs the processor its spans go to")
            self._processor = processor
            self._emit = _emit(processor)  # (``_span``: only sampled spans are emitted so)
            self._on_end = processor.on_end
            self._sampler = provider.sampler
            self._ids = provider.id_generator
            self._resource = provider.resource
        # A ratio sampler decides a root by its trace id alone: compared here, no SDK call.
        self._root_bound = root_ratio.bound if root_ratio is not None else None
        # RandomIdGenerator's draws, made as one (see ``_root_bits``).
        self._random_ids = provider is not None and type(provider.id_generator) is RandomIdGenerator

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Tracing:
        """The standard OTEL_* variables decide exporter and sampler (see module docstring)."""
        capture = environ.get("SWITCHMAN_CAPTURE_CONTENT", "").lower() in ("1", "true", "yes")
        if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return cls(None)
        exporter = _exporter(environ)
        if exporter is None:
            return cls(None)
        return cls.with_processor(BatchSpanProcessor(exporter), environ, capture_content=capture)

    @classmethod
    def with_processor(
        cls,
        processor: SpanProcessor,
        environ: Mapping[str, str] | None = None,
        *,
        capture_content: bool = False,
    ) -> Tracing:
        """A Tracing exporting through ``processor`` (tests pass an in-memory exporter). The
        processor gets each span at its end (``on_end``); ``on_start`` is not called."""
        environ = environ or {}
        sampler, ratio = _sampler(environ)
        # Shut down by ``Tracing.shutdown`` (bounded), not by the SDK's unbounded exit hook.
        provider = TracerProvider(
            resource=_resource(environ), sampler=sampler, shutdown_on_exit=False
        )
        provider.add_span_processor(processor)
        return cls(provider, capture_content=capture_content, processor=processor, root_ratio=ratio)

    @property
    def enabled(self) -> bool:
        return self._processor is not None

    def server_span(self, method: str, path: str, headers: Mapping[str, str]) -> Span | None:
        """The request's span, continuing the client's ``traceparent`` when it sent one; the
        configured sampler decides (a ratio sampler on a root is one comparison). A request it
        turns down gets a bare non-recording span with fresh ids (still propagated upstream)."""
        if self._processor is None:
            return None
        if self._root_bound is not None and "traceparent" not in headers:
            if self._random_ids:  # (the draw of ``_root_bits`` inline: nine in ten are this)
                bits = getrandbits(192)
                if not (bits >> 64 and bits & _LOW64):
                    bits = self._root_bits()
            else:
                bits = self._root_bits()
            # What TraceIdRatioBased.should_sample computes, without its context lookups
            # (its TRACE_ID_LIMIT is _LOW64: the trace id's low 64 bits are compared).
            if bits >> 64 & _LOW64 >= self._root_bound:
                return _Unsampled(bits)
            name = f"{method} {path}"
            return self._span(name, SpanKind.SERVER, bits >> 64, None, _SAMPLED, _NONE)
        return self._sampled_span(f"{method} {path}", headers)

    def _root_bits(self) -> int:
        """A new root's trace id and span id as one number (trace id in the high 128 bits):
        one random draw, redrawn in the (2^-64) case of an all-zero, invalid, id."""
        if not self._random_ids:
            return self._ids.generate_trace_id() << 64 | self._ids.generate_span_id()
        bits = getrandbits(192)
        while not (bits >> 64 and bits & _LOW64):
            bits = getrandbits(192)
        return bits

    def _sampled_span(self, name: str, headers: Mapping[str, str]) -> Span:
        """A SERVER span as the SDK's ``Tracer.start_span`` samples it."""
        context = _PROPAGATOR.extract(carrier=headers) if "traceparent" in headers else None
        parent = trace.get_current_span(context).get_span_context() if context else None
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
        else:
            parent, trace_id = None, self._ids.generate_trace_id()
        result = self._sampler.should_sample(context, trace_id, name, SpanKind.SERVER)
        sampled = result.decision is SamplingDecision.RECORD_AND_SAMPLE
        flags, state = _SAMPLED if sampled else _UNSAMPLED, result.trace_state or _NONE
        if sampled or result.decision is SamplingDecision.RECORD_ONLY:
            kind = SpanKind.SERVER
            return self._span(name, kind, trace_id, parent, flags, state, result.attributes)
        span_id = self._ids.generate_span_id()
        return NonRecordingSpan(SpanContext(trace_id, span_id, False, flags, state))

    def _span(
        self,
        name: str,
        kind: SpanKind,
        trace_id: int,
        parent: SpanContext | None,
        flags: TraceFlags,
        state: TraceState,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> LightSpan:
        if self._random_ids:  # (what RandomIdGenerator.generate_span_id draws)
            span_id = getrandbits(64)
            while span_id == 0:
                span_id = getrandbits(64)
        else:
            span_id = self._ids.generate_span_id()
        context = SpanContext(trace_id, span_id, False, flags, state)
        ended = self._emit if flags is _SAMPLED else self._on_end
        return LightSpan(name, context, parent, kind, attributes, ended, self._resource, _SCOPE)

    def child_span(
        self,
        parent: Span | None,
        name: str,
        kind: SpanKind = SpanKind.INTERNAL,
        *,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> LightSpan | None:
        """A child of ``parent``, starting with ``attributes``; None when the parent is not
        recorded (children of an unsampled span would be dropped anyway). Every sampler the
        gateway offers records the child of a recorded span, with its flags and trace state."""
        if self._processor is None or parent is None or not parent.is_recording():
            return None
        up = parent.get_span_context()
        return self._span(name, kind, up.trace_id, up, up.trace_flags, up.trace_state, attributes)

    def inject(self, span: Span | None, headers: MutableMapping[str, str]) -> None:
        """Write ``traceparent`` (and ``tracestate``) for ``span`` into upstream headers.

        The W3C format written directly (what TraceContextTextMapPropagator.inject writes),
        without building a Context per request.
        """
        if span is None:
            return
        if type(span) is _Unsampled:
            headers["traceparent"] = span.traceparent()
            return
        ctx = span.get_span_context()
        if type(span) is LightSpan and ctx.trace_state is _NONE:  # (valid ids, no state)
            text = (ctx.trace_id << 64 | ctx.span_id).to_bytes(24, "big").hex()
            headers["traceparent"] = f"00-{text[:32]}-{text[32:]}-{_FLAGS[ctx.trace_flags]}"
            return
        if not ctx.is_valid:
            return
        flags = _FLAGS.get(ctx.trace_flags) or f"{ctx.trace_flags:02x}"
        headers["traceparent"] = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{flags}"
        if ctx.trace_state is not _NONE and ctx.trace_state:
            headers["tracestate"] = ctx.trace_state.to_header()

    def content(self, value: Any) -> str | None:
        """Prompt/completion text for a span attribute, when capture is on; truncated."""
        if not self.capture_content or value is None:
            return None
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return text if len(text) <= CONTENT_LIMIT else text[:CONTENT_LIMIT] + "…[truncated]"

    async def shutdown(self) -> None:
        """Export the spans still queued and stop, within ``SHUTDOWN_S``. The SDK's own shutdown
        waits up to 30 s and retries when the collector is unreachable, which would hold a
        stopping gateway past a pod's grace period: it runs in a daemon thread, and the spans
        it has not sent by then are dropped with a warning."""
        if self.provider is None:
            return
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def finished() -> None:
            if not done.done():  # (cancelled when the wait ran out)
                done.set_result(None)

        def run(provider: TracerProvider) -> None:
            try:
                provider.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(finished)

        threading.Thread(
            target=run, args=(self.provider,), name="otel-shutdown", daemon=True
        ).start()
        try:
            await asyncio.wait_for(done, SHUTDOWN_S)
        except TimeoutError:
            log.warning(
                "tracing: the collector did not take the last spans within %.0f s of shutdown; "
                "they are dropped (check OTEL_EXPORTER_OTLP_ENDPOINT and the collector)",
                SHUTDOWN_S,
            )


def trace_id(span: Span | None) -> str | None:
    """Hex trace id of a sampled span (for the access log), else None: an access line never
    points at a trace that no backend received."""
    if span is None or type(span) is _Unsampled:
        return None
    ctx = span.get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid and ctx.trace_flags.sampled else None


def end(span: Span | None, error: str | None = None) -> None:
    """End a span, marking it failed with ``error.type`` when ``error`` is given."""
    if span is None:
        return
    if error is not None and span.is_recording():
        span.set_attribute("error.type", error)
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()
