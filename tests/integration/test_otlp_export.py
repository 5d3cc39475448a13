"""Spans leaving the ``switchman gateway`` process over real OTLP, to receivers run by the test.

The gateway runs as a subprocess configured only by ``OTEL_*`` variables (as in a Deployment);
a simulator in this process is its upstream. Receivers decode what arrives with the
``opentelemetry-proto`` messages, so a wrong encoding fails here, not in a collector.

Scenario matrix:
- OTLP/HTTP (``OTEL_EXPORTER_OTLP_ENDPOINT`` set, protocol defaulted): the receiver's
  ``POST /v1/traces`` gets the SERVER, INTERNAL and CLIENT spans of one request in one trace,
  with GenAI attributes equal to the response and the ``service.name`` resource from
  ``OTEL_SERVICE_NAME``;
- OTLP/gRPC (``OTEL_EXPORTER_OTLP_PROTOCOL=grpc``): the same through a ``grpc.aio``
  TraceService;
- ``OTEL_TRACES_EXPORTER=console``: the spans are printed as JSON on stdout;
- ``OTEL_TRACES_EXPORTER=zipkin``, or a sampler ratio outside [0, 1]: exit 2 at once, the
  message names the variable, no traceback;
- in process, ``Tracing.from_env(mapping)`` exports to the endpoint in that mapping, not to
  whatever ``os.environ`` holds.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import openai
import processes
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from switchman.gateway.telemetry import tracing
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

Received = list[trace_service_pb2.ExportTraceServiceRequest]


# --- receivers ----------------------------------------------------------------------------------


class HttpReceiver:
    """An OTLP/HTTP endpoint keeping every decoded export request."""

    def __init__(self) -> None:
        self.received: Received = []
        self.content_types: list[str] = []
        app = web.Application()
        app.router.add_post("/v1/traces", self._traces)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.content_types.append(request.content_type)
        export = trace_service_pb2.ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.received.append(export)
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        await self._server.close()


class GrpcReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC TraceService keeping every export request."""

    def __init__(self) -> None:
        self.received: Received = []
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def Export(  # the generated servicer's method name
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.received.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()

    async def start(self) -> None:
        await self._server.start()

    async def close(self) -> None:
        await self._server.stop(grace=None)


# --- decoding -----------------------------------------------------------------------------------


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


def _spans(received: Received) -> list[tuple[dict[str, Any], ProtoSpan]]:
    """(resource attributes, span) for every span received so far."""
    out = []
    for export in received:
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                out += [(resource, span) for span in scope_spans.spans]
    return out


async def _wait_for_request_spans(received: Received) -> dict[str, tuple[dict[str, Any], Any]]:
    """The SERVER, INTERNAL and CLIENT spans of one request, keyed by kind name."""
    names = {
        ProtoSpan.SPAN_KIND_SERVER: "server",
        ProtoSpan.SPAN_KIND_INTERNAL: "internal",
        ProtoSpan.SPAN_KIND_CLIENT: "client",
    }
    for _ in range(200):
        found = {names[s.kind]: (r, s) for r, s in _spans(received) if s.kind in names}
        if len(found) == 3:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"spans received: {[s.name for _, s in _spans(received)]}")


# --- the gateway process ------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[RunningSim]:
    async with await start(
        SimSettings(model="tiny", ttft_s=0.005, itl_s=0.001), shutdown_timeout=0.2
    ) as running:
        yield running


def _environment(otel: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(otel)
    return env


@asynccontextmanager
async def _gateway(
    tmp_path: Path, sim: RunningSim, otel: Mapping[str, str]
) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    """A ready gateway process and its port; stopped with SIGTERM (10 s grace) on the way out."""
    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "upstreams": [{"name": "sim", "base_url": f"{sim.url}/v1"}],
                "models": [{"name": "tiny", "upstream": "sim"}],
                "routes": [{"name": "auto", "candidates": ["tiny"]}],
            }
        )
    )
    port = processes.free_port()
    async with processes.gateway(
        config,
        port,
        "--access-log",
        "off",
        "--shutdown-grace",
        "1",
        stdout=processes.PIPE,
        stderr=processes.PIPE,
        env=_environment(otel),
        grace=10,
    ) as proc:
        await processes.wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
        yield proc, port


async def _one_request(port: int) -> openai.types.CompletionUsage:
    async with openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=10
    ) as client:
        resp = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=3
        )
    assert resp.usage is not None
    return resp.usage


def _assert_request_spans(
    found: dict[str, tuple[dict[str, Any], Any]], usage: openai.types.CompletionUsage, sim_port: int
) -> None:
    resource, server = found["server"]
    _, route = found["internal"]
    _, client = found["client"]
    assert resource["service.name"] == "switchman-test"
    assert server.name == "POST /v1/chat/completions"
    assert route.name == "route auto"
    assert client.name == "chat tiny"
    assert server.trace_id == route.trace_id == client.trace_id
    assert route.parent_span_id == client.parent_span_id == server.span_id
    attrs = _attributes(server.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "auto"
    assert attrs["gen_ai.request.max_tokens"] == 3
    assert attrs["gen_ai.response.model"] == "tiny"
    assert attrs["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == usage.completion_tokens == 3
    assert attrs["http.response.status_code"] == 200
    client_attrs = _attributes(client.attributes)
    assert client_attrs["gen_ai.provider.name"] == "openai"
    assert client_attrs["server.address"] == "127.0.0.1"
    assert client_attrs["server.port"] == sim_port


# --- tests --------------------------------------------------------------------------------------


async def test_gateway_exports_request_spans_over_otlp_http(
    tmp_path: Path, sim: RunningSim
) -> None:
    receiver = HttpReceiver()
    await receiver.start()
    try:
        async with _gateway(
            tmp_path,
            sim,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_SERVICE_NAME": "switchman-test",
            },
        ) as (proc, port):
            usage = await _one_request(port)
            found = await _wait_for_request_spans(receiver.received)
    finally:
        await receiver.close()
    _assert_request_spans(found, usage, sim.port)
    assert set(receiver.content_types) == {"application/x-protobuf"}
    assert proc.returncode == 0


async def test_gateway_exports_request_spans_over_otlp_grpc(
    tmp_path: Path, sim: RunningSim
) -> None:
    receiver = GrpcReceiver()
    await receiver.start()
    try:
        async with _gateway(
            tmp_path,
            sim,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_SERVICE_NAME": "switchman-test",
            },
        ) as (proc, port):
            usage = await _one_request(port)
            found = await _wait_for_request_spans(receiver.received)
    finally:
        await receiver.close()
    _assert_request_spans(found, usage, sim.port)
    assert proc.returncode == 0


async def test_console_exporter_prints_the_spans_on_stdout(tmp_path: Path, sim: RunningSim) -> None:
    printed = ""
    async with _gateway(
        tmp_path,
        sim,
        {
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_SERVICE_NAME": "switchman-test",
        },
    ) as (proc, port):
        assert proc.stdout is not None
        await _one_request(port)
        while '"name": "POST /v1/chat/completions"' not in printed:
            line = await asyncio.wait_for(proc.stdout.readline(), 10)
            assert line, f"stdout closed; got {printed!r}"
            printed += line.decode()
        # The rest of that span's JSON object.
        while not printed.rstrip().endswith("}") or printed.count("{") != printed.count("}"):
            printed += (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
    assert '"kind": "SpanKind.SERVER"' in printed
    assert '"gen_ai.operation.name": "chat"' in printed
    assert '"gen_ai.usage.output_tokens": 3' in printed
    assert '"service.name": "switchman-test"' in printed


@pytest.mark.parametrize(
    ("otel", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "traceidratio",
             "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            "OTEL_TRACES_SAMPLER_ARG",
        ),
    ],
    ids=["unknown-exporter", "ratio-out-of-range"],
)  # fmt: skip
async def test_gateway_refuses_to_start_on_a_bad_tracing_variable(
    tmp_path: Path, otel: dict[str, str], variable: str
) -> None:
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps({"version": 1, "upstreams": [], "models": [], "routes": []}))
    async with processes.switchman(
        "gateway",
        "--config",
        str(config),
        stdout=processes.PIPE,
        stderr=processes.PIPE,
        env=_environment(otel),
    ) as proc:
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    text = stderr.decode()
    assert proc.returncode == 2, text
    assert variable in text
    assert "Traceback" not in text


async def test_from_env_exports_to_the_endpoint_in_the_mapping_it_was_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    # Bounds the exporter's retries should it send somewhere else (it reads this from os.environ).
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    receiver = HttpReceiver()
    await receiver.start()
    traced = tracing.Tracing.from_env(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "switchman-test"}
    )
    provider = traced.provider
    assert provider is not None
    try:
        tracing.end(traced.server_span("POST", "/v1/chat/completions", {}))
        # Exports run in the SDK's thread; the receiver needs this event loop to answer.
        await asyncio.to_thread(provider.force_flush, 3000)
        received = [s.name for _, s in _spans(receiver.received)]
    finally:
        await asyncio.to_thread(provider.shutdown)
        await receiver.close()
    assert received == ["POST /v1/chat/completions"]
