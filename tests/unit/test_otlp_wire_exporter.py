"""``WireSpanExporter`` posts our encoding through the SDK's OTLP/HTTP exporter machinery.

A small HTTP receiver on a thread records each POST (path, headers, body), answering with the
status the test sets. The exporter under test is built as ``tracing`` builds it.

Scenario matrix:
- a batch arrives as the bytes the SDK's own exporter sends for it (same receiver), with the
  protobuf content type and the configured headers;
- compression from the argument and from ``OTEL_EXPORTER_OTLP_TRACES_COMPRESSION``: gzip body;
- the receiver answers 400: FAILURE (the SDK's client decides, no retry);
- a batch over ``max_request_size``, or an exporter already shut down: FAILURE, nothing sent;
- our encoder refusing a batch: the SDK's exporter takes it whole (here it succeeds);
- ``tracing`` builds this exporter for OTLP/HTTP and keeps the SDK's gRPC exporter.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from switchman.gateway.telemetry import tracing
from switchman.gateway.telemetry.otlpwire import WireSpanExporter


class Receiver:
    """Records every POST; answers ``status`` with an empty protobuf body."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.posts.append((self.path, headers, body))
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/v1/traces"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()


@pytest.fixture
def spans() -> Sequence[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "switchman-gateway"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("switchman.gateway")
    with tracer.start_as_current_span("POST /v1/chat/completions", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("route gpt-4o", attributes={"switchman.route": "m"}):
            pass
        attempt = tracer.start_span("chat gpt-4o", kind=SpanKind.CLIENT)
        attempt.set_attributes({"gen_ai.usage.input_tokens": 12, "server.port": 8000})
        attempt.end()
    return memory.get_finished_spans()


def sdk_bytes(spans: Sequence[ReadableSpan]) -> bytes:
    data: bytes = encode_spans(spans).SerializePartialToString()
    return data


def test_a_batch_arrives_as_the_sdk_exporter_sends_it(
    receiver: Receiver, spans: Sequence[ReadableSpan]
) -> None:
    headers = {"authorization": "Bearer t0ken", "x-tenant": "acme"}
    ours = WireSpanExporter(endpoint=receiver.url, headers=headers, timeout=5)
    theirs = OTLPSpanExporter(endpoint=receiver.url, headers=headers, timeout=5)
    assert ours.export(spans) is SpanExportResult.SUCCESS
    assert theirs.export(spans) is SpanExportResult.SUCCESS
    (path, sent, body), (_, sdk_sent, sdk_body) = receiver.posts
    assert path == "/v1/traces"
    assert body == sdk_body
    assert len(body) > 100
    assert sent["content-type"] == sdk_sent["content-type"] == "application/x-protobuf"
    assert (sent["authorization"], sent["x-tenant"]) == ("Bearer t0ken", "acme")


@pytest.mark.parametrize("from_env", [False, True])
def test_gzip_compression_from_argument_or_environment(
    receiver: Receiver,
    spans: Sequence[ReadableSpan],
    monkeypatch: pytest.MonkeyPatch,
    from_env: bool,
) -> None:
    if from_env:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip")
        exporter = WireSpanExporter(endpoint=receiver.url, timeout=5)
    else:
        exporter = WireSpanExporter(endpoint=receiver.url, timeout=5, compression=Compression.Gzip)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    ((_, sent, body),) = receiver.posts
    assert sent["content-encoding"] == "gzip"
    assert gzip.decompress(body) == sdk_bytes(spans)


def test_a_refusing_receiver_fails_the_export(
    receiver: Receiver, spans: Sequence[ReadableSpan]
) -> None:
    receiver.status = 400
    exporter = WireSpanExporter(endpoint=receiver.url, timeout=5)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert len(receiver.posts) == 1  # 400 is not retried


def test_a_batch_over_the_size_limit_is_dropped_unsent(
    receiver: Receiver, spans: Sequence[ReadableSpan]
) -> None:
    exporter = WireSpanExporter(endpoint=receiver.url, timeout=5, max_request_size=64)
    assert exporter.export(spans) is SpanExportResult.FAILURE
    roomy = WireSpanExporter(endpoint=receiver.url, timeout=5, max_request_size=1 << 20)
    assert roomy.export(spans) is SpanExportResult.SUCCESS
    assert len(receiver.posts) == 1


def test_a_shut_down_exporter_sends_nothing(
    receiver: Receiver, spans: Sequence[ReadableSpan]
) -> None:
    exporter = WireSpanExporter(endpoint=receiver.url, timeout=5)
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert receiver.posts == []


def test_a_batch_our_encoder_refuses_goes_to_the_sdk_exporter(
    receiver: Receiver, spans: Sequence[ReadableSpan], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = WireSpanExporter(endpoint=receiver.url, timeout=5)

    def refuse(batch: Sequence[ReadableSpan]) -> bytes:
        raise RuntimeError("not this one")

    monkeypatch.setattr(exporter._encoder, "encode", refuse)
    assert exporter.export(spans) is SpanExportResult.SUCCESS
    ((_, _, body),) = receiver.posts
    assert body == sdk_bytes(spans)


def test_tracing_builds_it_for_otlp_http_and_keeps_the_sdk_grpc_exporter(
    receiver: Receiver,
) -> None:
    http = tracing._exporter({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url})
    assert isinstance(http, WireSpanExporter)
    grpc = tracing._exporter(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    )
    assert isinstance(grpc, GrpcExporter)
    assert not isinstance(grpc, WireSpanExporter)
