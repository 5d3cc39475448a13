"""How ``Tracing.from_env`` reads the ``OTEL_*`` variables: exporter, protocol, sampler, resource,
content capture, and the errors that name the variable to fix.

Every case passes a plain dict; ``os.environ``'s own ``OTEL_*`` variables are cleared so none
leaks in. Samplers are checked by what they decide for a root span, a sampled parent and an
unsampled parent (``server_span`` with and without a client ``traceparent``).

Scenario matrix:
- exporter: none by default (inert Tracing: no spans, nothing injected); otlp once
  ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`` is set; explicit ``none`` beats an endpoint;
  ``console``; unknown → TracingConfigError naming ``OTEL_TRACES_EXPORTER``;
- protocol: http/protobuf by default, ``http`` alias, ``grpc``; the TRACES_ variable beats the
  generic one; unknown → TracingConfigError naming the variable that holds it;
- sampler: default parentbased_always_on; always_on, always_off, traceidratio (0 and 1),
  parentbased_always_on/off, parentbased_traceidratio; unknown name, non-numeric or
  out-of-range ratio → TracingConfigError naming the variable;
- ``OTEL_SDK_DISABLED=true`` (any case) → inert even with an endpoint or a bad exporter value;
- resource: ``OTEL_SERVICE_NAME``, default ``switchman-gateway``; ``OTEL_RESOURCE_ATTRIBUTES``
  from the given mapping, its ``service.name`` beating the default but not
  ``OTEL_SERVICE_NAME``;
- content capture: off by default, ``SWITCHMAN_CAPTURE_CONTENT`` truthy values turn it on;
  captured text is cut at ``CONTENT_LIMIT`` with a marker;
- ``trace_id``: hex of a sampled span, None for no span or an unsampled one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

from switchman.gateway.telemetry import tracing
from switchman.gateway.telemetry.tracing import CONTENT_LIMIT, Tracing, TracingConfigError

TRACE = "0af7651916cd43dd8448eb211c80319c"
SAMPLED_PARENT = {"traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}
UNSAMPLED_PARENT = {"traceparent": f"00-{TRACE}-b7ad6b7169203331-00"}
CONSOLE = {"OTEL_TRACES_EXPORTER": "console"}

Build = Callable[[Mapping[str, str]], Tracing]


@pytest.fixture(autouse=True)
def _no_otel_in_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("OTEL_", "SWITCHMAN_")):
            monkeypatch.delenv(name)


@pytest.fixture
def build() -> Iterator[Build]:
    """``Tracing.from_env``, shutting every provider down afterwards (they own threads)."""
    made: list[Tracing] = []

    def from_env(environ: Mapping[str, str]) -> Tracing:
        made.append(Tracing.from_env(environ))
        return made[-1]

    yield from_env
    for traced in made:
        if traced.provider is not None:
            traced.provider.shutdown()


def _decisions(traced: Tracing) -> tuple[bool, bool, bool]:
    """Whether a root span, a child of a sampled parent and of an unsampled one are recorded."""
    out = []
    for headers in ({}, SAMPLED_PARENT, UNSAMPLED_PARENT):
        span = traced.server_span("POST", "/v1/chat/completions", headers)
        assert span is not None
        out.append(span.is_recording())
        span.end()
    return out[0], out[1], out[2]


# --- exporter -----------------------------------------------------------------------------------


def test_no_variables_leave_tracing_inert(build: Build) -> None:
    traced = build({})
    headers: dict[str, str] = {}

    assert traced.provider is None
    assert not traced.enabled
    assert traced.server_span("POST", "/v1/chat/completions", SAMPLED_PARENT) is None
    traced.inject(traced.server_span("POST", "/", {}), headers)
    assert headers == {}


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_an_otlp_endpoint_selects_the_otlp_http_exporter(build: Build, variable: str) -> None:
    environ = {variable: "http://collector:4318"}

    assert isinstance(tracing._exporter(environ), HttpExporter)
    assert build(environ).enabled


def test_explicit_none_exporter_beats_an_endpoint(build: Build) -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_TRACES_EXPORTER": "none",
    }

    assert tracing._exporter(environ) is None
    assert not build(environ).enabled


def test_console_exporter_needs_no_endpoint(build: Build) -> None:
    assert isinstance(tracing._exporter(CONSOLE), ConsoleSpanExporter)
    assert isinstance(tracing._exporter({"OTEL_TRACES_EXPORTER": " Console "}), ConsoleSpanExporter)
    assert build(CONSOLE).enabled


def test_otlp_exporter_named_without_an_endpoint_uses_the_default_one() -> None:
    assert isinstance(tracing._exporter({"OTEL_TRACES_EXPORTER": "otlp"}), HttpExporter)


def test_unknown_exporter_is_refused_naming_the_variable(build: Build) -> None:
    with pytest.raises(TracingConfigError, match="OTEL_TRACES_EXPORTER") as caught:
        build({"OTEL_TRACES_EXPORTER": "zipkin"})
    assert "zipkin" in str(caught.value)


# --- protocol -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocols", "expected"),
    [
        ({}, HttpExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, HttpExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "http"}, HttpExporter),
        ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, GrpcExporter),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}, GrpcExporter),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http"},
            HttpExporter,
        ),
        (
            {"OTEL_EXPORTER_OTLP_PROTOCOL": "http", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
            GrpcExporter,
        ),
    ],
    ids=["default", "http-protobuf", "http", "grpc", "traces-grpc", "traces-http-wins",
         "traces-grpc-wins"],
)  # fmt: skip
def test_otlp_protocol_picks_the_exporter(protocols: dict[str, str], expected: type) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", **protocols}

    assert isinstance(tracing._exporter(environ), expected)


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"]
)
def test_unknown_protocol_is_refused_naming_the_variable(build: Build, variable: str) -> None:
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", variable: "thrift"}

    with pytest.raises(TracingConfigError, match=variable) as caught:
        build(environ)
    assert "thrift" in str(caught.value)


# --- sampler ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sampler", "root", "sampled_parent", "unsampled_parent"),
    [
        ({}, True, True, False),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, True, True, True),
        ({"OTEL_TRACES_SAMPLER": "always_off"}, False, False, False),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
         False, False, False),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1"},
         True, True, True),
        ({"OTEL_TRACES_SAMPLER": "traceidratio"}, True, True, True),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_on"}, True, True, False),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, False, True, False),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"},
         False, True, False),
        ({"OTEL_TRACES_SAMPLER": "ParentBased_TraceIdRatio", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
         True, True, False),
    ],
    ids=["default", "always_on", "always_off", "ratio-0", "ratio-1", "ratio-default-arg",
         "parentbased_always_on", "parentbased_always_off", "parentbased_ratio-0",
         "mixed-case"],
)  # fmt: skip
def test_sampler_decides_root_and_child_spans(
    build: Build,
    sampler: dict[str, str],
    root: bool,
    sampled_parent: bool,
    unsampled_parent: bool,
) -> None:
    traced = build({**CONSOLE, **sampler})

    assert _decisions(traced) == (root, sampled_parent, unsampled_parent)


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
         "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
         "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "-0.1"},
         "OTEL_TRACES_SAMPLER_ARG"),
    ],
    ids=["unknown-name", "not-a-number", "ratio-above-1", "ratio-below-0"],
)  # fmt: skip
def test_bad_sampler_values_are_refused_naming_the_variable(
    build: Build, environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(TracingConfigError, match=variable):
        build({**CONSOLE, **environ})


# --- disabled -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
        {"OTEL_TRACES_EXPORTER": "console"},
        {"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_TRACES_SAMPLER": "sometimes"},
    ],
    ids=["endpoint", "console", "bad-values"],
)
@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
def test_sdk_disabled_makes_tracing_inert(build: Build, other: dict[str, str], value: str) -> None:
    traced = build({"OTEL_SDK_DISABLED": value, **other})

    assert not traced.enabled
    assert traced.server_span("POST", "/v1/chat/completions", {}) is None


def test_sdk_disabled_false_leaves_tracing_on(build: Build) -> None:
    assert build({"OTEL_SDK_DISABLED": "false", **CONSOLE}).enabled


# --- resource -----------------------------------------------------------------------------------


def test_service_name_defaults_to_switchman_gateway(build: Build) -> None:
    provider = build(CONSOLE).provider
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "switchman-gateway"


def test_otel_service_name_names_the_service(build: Build) -> None:
    provider = build({**CONSOLE, "OTEL_SERVICE_NAME": "edge-gw"}).provider
    assert provider is not None
    assert provider.resource.attributes["service.name"] == "edge-gw"


def test_resource_attributes_come_from_the_given_mapping(build: Build) -> None:
    environ = {**CONSOLE, "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,team=ml"}

    provider = build(environ).provider

    assert provider is not None
    assert provider.resource.attributes["deployment.environment"] == "staging"
    assert provider.resource.attributes["team"] == "ml"


def test_service_name_in_resource_attributes_beats_the_default(build: Build) -> None:
    provider = build({**CONSOLE, "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs"}).provider

    assert provider is not None
    assert provider.resource.attributes["service.name"] == "from-attrs"


def test_otel_service_name_beats_service_name_in_resource_attributes(build: Build) -> None:
    environ = {
        **CONSOLE,
        "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs",
        "OTEL_SERVICE_NAME": "from-name",
    }

    provider = build(environ).provider

    assert provider is not None
    assert provider.resource.attributes["service.name"] == "from-name"


# --- content capture ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "on"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("no", False),
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("yes", True),
    ],
)
def test_switchman_capture_content_turns_capture_on(
    build: Build, value: str | None, on: bool
) -> None:
    environ = dict(CONSOLE)
    if value is not None:
        environ["SWITCHMAN_CAPTURE_CONTENT"] = value
    messages = [{"role": "user", "content": "hi"}]

    traced = build(environ)

    assert traced.capture_content is on
    assert traced.content(messages) == (json.dumps(messages) if on else None)


def test_captured_text_is_cut_at_the_content_limit_with_a_marker() -> None:
    traced = Tracing(None, capture_content=True)

    assert traced.content("x" * CONTENT_LIMIT) == "x" * CONTENT_LIMIT
    assert traced.content("é" * (CONTENT_LIMIT + 1)) == "é" * CONTENT_LIMIT + "…[truncated]"
    assert traced.content([{"content": "café"}]) == '[{"content": "café"}]'
    assert traced.content(None) is None


# --- trace_id -----------------------------------------------------------------------------------


def test_trace_id_is_the_hex_id_of_a_sampled_span(build: Build) -> None:
    traced = build(CONSOLE)
    span = traced.server_span("POST", "/", SAMPLED_PARENT)

    assert tracing.trace_id(span) == TRACE
    assert tracing.trace_id(None) is None
    tracing.end(span)


def test_trace_id_is_none_for_an_unsampled_span(build: Build) -> None:
    # As its docstring says: the access log must not point at a trace no backend will have.
    traced = build({**CONSOLE, "OTEL_TRACES_SAMPLER": "always_off"})
    span = traced.server_span("POST", "/", {})

    assert span is not None
    assert not span.is_recording()
    assert tracing.trace_id(span) is None
    tracing.end(span)


def test_ratio_sampler_keeps_its_ratio_on_the_fast_root_path() -> None:
    """Roots are sampled once, on the id the span then carries: a second, independent draw by
    the SDK would sample ratio² of requests instead of ratio."""
    exporter = InMemorySpanExporter()
    traced = Tracing.with_processor(
        SimpleSpanProcessor(exporter),
        {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"},
    )
    sampler = TraceIdRatioBased(0.5)
    recorded = 0
    for _ in range(4000):
        span = traced.server_span("POST", "/", {})
        assert span is not None
        trace_id = span.get_span_context().trace_id
        # The decision is the configured sampler's for exactly this trace id.
        expected = sampler.should_sample(None, trace_id, "x").decision.is_sampled()
        assert span.is_recording() == expected
        recorded += span.is_recording()
        tracing.end(span)
    assert 0.45 < recorded / 4000 < 0.55
    assert len(exporter.get_finished_spans()) == recorded
    assert traced.provider is not None
    traced.provider.shutdown()
