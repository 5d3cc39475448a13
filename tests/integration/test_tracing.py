"""Traces of requests through a real gateway app: spans kept by an in-memory exporter, the
``openai`` SDK as the client, simulators as the upstreams.

Scenario matrix:
- unary success: one SERVER root ``POST /v1/chat/completions`` with one INTERNAL ``route auto``
  and one CLIENT ``chat tiny`` child (parent ids, one trace); GenAI attributes equal the request
  (max_tokens, temperature, top_p) and the response (usage, model, finish reasons); the CLIENT
  span names the sim's address and port;
- fallback over [down sim, good sim]: two CLIENT spans, the first ERROR with ``error.type``, a
  ``switchman.fallback`` event on the SERVER span, ``switchman.attempts`` 2;
- stream: ``time_to_first_chunk`` > 0 and usage on the SERVER span although the client did not
  ask for usage (and still received none);
- stream cut mid-way by the upstream: SERVER (and CLIENT) span ERROR, ``error.type``
  ``stream_broken``;
- unknown model (404): the SERVER span status stays unset (HTTP semconv: 4xx is not a server
  error);
- client ``traceparent``: the SERVER span continues the client's trace under the client's span;
  the upstream receives a ``traceparent`` in the same trace whose parent is the CLIENT span;
- content capture off by default: no ``gen_ai.input/output.messages``, prompt and answer text in
  no attribute or event; on: both recorded, a long prompt cut at ``CONTENT_LIMIT`` with a marker;
- sampler ``traceidratio`` with arg 0: no spans exported, requests succeed, ``traceparent``
  (unsampled, same trace) still sent upstream;
- tracing off: requests succeed, the client's ``traceparent``/``tracestate`` reach the upstream
  unchanged, none is invented when the client sent none.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import openai
import pytest
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from switchman.gateway.telemetry.tracing import CONTENT_LIMIT, Tracing
from switchman.sim.runner import RunningSim

if TYPE_CHECKING:  # the fixture's type; at run time "conftest" may name another tier's
    from conftest import StartGateway, StartSim

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@dataclass
class Traced:
    """A gateway under test, its exported spans (None when tracing is off) and an SDK client."""

    url: str
    exporter: InMemorySpanExporter | None
    client: openai.AsyncOpenAI

    def spans(self) -> list[ReadableSpan]:
        assert self.exporter is not None
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    def of_kind(self, kind: SpanKind) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind == kind]

    async def server_span(self) -> ReadableSpan:
        """The one SERVER span; a stream's ends just after the client read its last byte."""
        for _ in range(200):
            found = self.of_kind(SpanKind.SERVER)
            if found:
                assert len(found) == 1, found
                return found[0]
            await asyncio.sleep(0.01)
        raise AssertionError("no SERVER span was exported")


StartTraced = Callable[..., Awaitable[Traced]]


def _config(sims: list[RunningSim], mid_stream: str = "continue") -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [{"name": f"sim{i}", "base_url": f"{s.url}/v1"} for i, s in enumerate(sims)],
        "models": [
            {"name": f"m{i}", "upstream": f"sim{i}", "upstream_model": "tiny"}
            for i in range(len(sims))
        ],
        "routes": [
            {
                "name": "auto",
                "candidates": [f"m{i}" for i in range(len(sims))],
                "mid_stream": mid_stream,
            }
        ],
    }


@pytest.fixture
async def start_traced(start_gateway: StartGateway) -> AsyncIterator[StartTraced]:
    clients: list[openai.AsyncOpenAI] = []

    async def start_one(
        sims: list[RunningSim],
        *,
        enabled: bool = True,
        environ: Mapping[str, str] | None = None,
        capture_content: bool = False,
        mid_stream: str = "continue",
    ) -> Traced:
        exporter = InMemorySpanExporter() if enabled else None
        tracing = (
            Tracing.with_processor(
                SimpleSpanProcessor(exporter), environ, capture_content=capture_content
            )
            if exporter is not None
            else Tracing(None)
        )
        gateway = await start_gateway(_config(sims, mid_stream), environ={}, tracing=tracing)
        client = openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=10
        )
        clients.append(client)
        return Traced(gateway.url, exporter, client)

    yield start_one
    for client in clients:
        await client.close()


async def _received(sim: RunningSim) -> list[dict[str, Any]]:
    """What the sim received, from its /admin/requests record (header names lower-cased)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.url}/admin/requests") as resp,
    ):
        assert resp.status == 200
        data: list[dict[str, Any]] = (await resp.json())["data"]
        return data


async def _collect(stream: AsyncStream[ChatCompletionChunk], pieces: list[str]) -> list[Any]:
    """Append each chunk's text to ``pieces`` until the stream ends; the usages seen."""
    usages = []
    async for chunk in stream:
        if chunk.usage is not None:
            usages.append(chunk.usage)
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    return usages


def _sampled(flags: str) -> bool:
    """The W3C ``sampled`` bit of a traceparent's flags (other bits, e.g. ``random``, vary)."""
    return bool(int(flags, 16) & 0x01)


def _parent_id(span: ReadableSpan) -> int:
    assert span.parent is not None, f"{span.name} has no parent"
    return span.parent.span_id


def _strings(span: ReadableSpan) -> list[str]:
    """Every string in the span's attributes and event attributes."""
    values: list[Any] = list((span.attributes or {}).values())
    for event in span.events:
        values += list((event.attributes or {}).values())
    out: list[str] = []
    for value in values:
        out += [str(v) for v in value] if isinstance(value, tuple | list) else [str(value)]
    return out


async def test_unary_request_makes_server_route_and_client_spans_with_genai_attributes(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim])

    resp = await gw.client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "say something"}],
        max_tokens=5,
        temperature=0.5,
        top_p=0.9,
    )

    spans = gw.spans()
    assert len(spans) == 3, [s.name for s in spans]
    server = await gw.server_span()
    (route,) = gw.of_kind(SpanKind.INTERNAL)
    (client,) = gw.of_kind(SpanKind.CLIENT)
    assert server.name == "POST /v1/chat/completions"
    assert route.name == "route auto"
    assert client.name == "chat tiny"
    assert server.parent is None
    assert _parent_id(route) == server.context.span_id
    assert _parent_id(client) == server.context.span_id
    assert {s.context.trace_id for s in spans} == {server.context.trace_id}

    attrs = server.attributes or {}
    assert resp.usage is not None
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.request.model"] == "auto"
    assert attrs["gen_ai.request.max_tokens"] == 5
    assert attrs["gen_ai.request.temperature"] == 0.5
    assert attrs["gen_ai.request.top_p"] == 0.9
    assert attrs["gen_ai.response.model"] == resp.model == "tiny"
    assert attrs["gen_ai.response.finish_reasons"] == tuple(c.finish_reason for c in resp.choices)
    assert attrs["gen_ai.usage.input_tokens"] == resp.usage.prompt_tokens > 0
    assert attrs["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens == 5
    assert attrs["http.response.status_code"] == 200
    assert attrs["switchman.attempts"] == 1
    assert attrs["switchman.route.reason"] == "priority: m0 (1/1)"
    assert "error.type" not in attrs
    assert server.status.status_code != StatusCode.ERROR

    assert (route.attributes or {})["switchman.route.candidates"] == ("m0",)

    client_attrs = client.attributes or {}
    assert client_attrs["gen_ai.operation.name"] == "chat"
    assert client_attrs["gen_ai.provider.name"] == "openai"
    assert client_attrs["gen_ai.request.model"] == "tiny"
    assert client_attrs["server.address"] == "127.0.0.1"
    assert client_attrs["server.port"] == sim.port
    assert client_attrs["gen_ai.usage.output_tokens"] == resp.usage.completion_tokens
    assert "error.type" not in client_attrs
    assert client.status.status_code != StatusCode.ERROR


async def test_fallback_records_a_failed_client_span_and_a_fallback_event(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    down = await start_sim(down=True)
    good = await start_sim()
    gw = await start_traced([down, good])

    resp = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    assert resp.choices[0].message.content

    server = await gw.server_span()
    first, second = gw.of_kind(SpanKind.CLIENT)
    assert (first.attributes or {})["server.port"] == down.port
    assert first.status.status_code == StatusCode.ERROR
    assert (first.attributes or {})["error.type"] == "status_5xx"
    assert (second.attributes or {})["server.port"] == good.port
    assert second.status.status_code != StatusCode.ERROR
    assert "error.type" not in (second.attributes or {})
    assert _parent_id(first) == _parent_id(second) == server.context.span_id

    (event,) = [e for e in server.events if e.name == "switchman.fallback"]
    assert dict(event.attributes or {}) == {
        "switchman.model": "m0",
        "switchman.upstream": "sim0",
        "error.type": "status_5xx",
    }
    attrs = server.attributes or {}
    assert attrs["switchman.attempts"] == 2
    assert attrs["switchman.route.reason"] == "priority: m1 (2/2) after m0 failed: status_5xx"
    assert attrs["http.response.status_code"] == 200
    assert server.status.status_code != StatusCode.ERROR


async def test_stream_records_time_to_first_chunk_and_usage_the_client_did_not_ask_for(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim])

    stream = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "count"}], max_tokens=4, stream=True
    )
    pieces: list[str] = []
    usages = await _collect(stream, pieces)
    assert len(pieces) == 4
    assert usages == []  # the usage the gateway asked upstream for stays invisible

    server = await gw.server_span()
    attrs = server.attributes or {}
    duration_s = ((server.end_time or 0) - (server.start_time or 0)) / 1e9
    assert 0 < attrs["gen_ai.response.time_to_first_chunk"] <= duration_s  # type: ignore[operator]
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["gen_ai.usage.input_tokens"] > 0  # type: ignore[operator]
    assert attrs["gen_ai.response.model"] == "tiny"
    assert attrs["gen_ai.response.finish_reasons"] == ("length",)
    assert server.status.status_code != StatusCode.ERROR


async def test_stream_cut_mid_way_marks_the_server_span_stream_broken(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim], mid_stream="terminate")
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{sim.url}/admin/faults", json={"cut_after_tokens": 2}) as resp,
    ):
        assert resp.status == 200

    stream = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "go"}], max_tokens=8, stream=True
    )
    pieces: list[str] = []
    with pytest.raises(openai.APIError):
        await _collect(stream, pieces)
    assert len(pieces) == 2

    server = await gw.server_span()
    assert server.status.status_code == StatusCode.ERROR
    assert (server.attributes or {})["error.type"] == "stream_broken"
    (client,) = gw.of_kind(SpanKind.CLIENT)
    assert client.status.status_code == StatusCode.ERROR
    assert (client.attributes or {})["error.type"] == "stream_broken"


async def test_unknown_model_leaves_the_server_span_status_unset(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim])

    with pytest.raises(openai.NotFoundError):
        await gw.client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )

    server = await gw.server_span()
    assert (server.attributes or {})["http.response.status_code"] == 404
    assert gw.of_kind(SpanKind.CLIENT) == []
    # OTel HTTP semantic conventions: a 4xx answer MUST leave a SERVER span's status unset.
    assert server.status.status_code == StatusCode.UNSET


async def test_client_traceparent_is_continued_and_upstream_gets_the_client_span_as_parent(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim])

    await gw.client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=2,
        extra_headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
    )

    server = await gw.server_span()
    (client,) = gw.of_kind(SpanKind.CLIENT)
    assert format(server.context.trace_id, "032x") == CLIENT_TRACE
    assert server.parent is not None
    assert server.parent.is_remote
    assert format(server.parent.span_id, "016x") == CLIENT_SPAN

    (seen,) = await _received(sim)
    match = TRACEPARENT.match(seen["headers"]["traceparent"])
    assert match is not None, seen["headers"]["traceparent"]
    trace_id, parent_id, flags = match.groups()
    assert trace_id == CLIENT_TRACE
    assert parent_id == format(client.context.span_id, "016x")
    assert _sampled(flags)


async def test_content_is_not_captured_by_default(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim])
    prompt = "quokka marmalade 4471"

    resp = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": prompt}], max_tokens=6
    )
    answer = resp.choices[0].message.content
    assert answer

    spans = gw.spans()
    assert len(spans) == 3
    for span in spans:
        attrs = span.attributes or {}
        assert "gen_ai.input.messages" not in attrs
        assert "gen_ai.output.messages" not in attrs
        for text in _strings(span):
            assert prompt not in text, (span.name, text)
            assert answer not in text, (span.name, text)


async def test_captured_content_records_messages_and_truncates_long_prompts(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim], capture_content=True)
    short = [{"role": "user", "content": "quokka marmalade"}]

    resp = await gw.client.chat.completions.create(
        model="auto",
        messages=short,  # type: ignore[arg-type]
        max_tokens=3,
    )
    server = await gw.server_span()
    attrs = server.attributes or {}
    assert json.loads(str(attrs["gen_ai.input.messages"])) == short
    output = json.loads(str(attrs["gen_ai.output.messages"]))
    assert output[0]["message"]["content"] == resp.choices[0].message.content

    assert gw.exporter is not None
    gw.exporter.clear()
    long = [{"role": "user", "content": "word " * 2000}]
    await gw.client.chat.completions.create(
        model="auto",
        messages=long,  # type: ignore[arg-type]
        max_tokens=3,
    )
    server = await gw.server_span()
    captured = str((server.attributes or {})["gen_ai.input.messages"])
    marker = "…[truncated]"
    assert captured == json.dumps(long, ensure_ascii=False)[:CONTENT_LIMIT] + marker


async def test_unsampled_requests_export_nothing_but_still_propagate_trace_context(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    environ = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    gw = await start_traced([sim], environ=environ)

    plain = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    continued = await gw.client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=2,
        extra_headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"},
    )
    assert plain.choices[0].message.content
    assert continued.choices[0].message.content

    assert gw.spans() == []
    first, second = await _received(sim)
    own = TRACEPARENT.match(first["headers"].get("traceparent", ""))
    assert own is not None, first["headers"]
    assert not _sampled(own.group(3))  # so the upstream does not sample it either
    theirs = TRACEPARENT.match(second["headers"].get("traceparent", ""))
    assert theirs is not None, second["headers"]
    assert theirs.group(1) == CLIENT_TRACE
    assert not _sampled(theirs.group(3))


async def test_tracing_off_passes_the_client_trace_context_upstream_unchanged(
    start_sim: StartSim, start_traced: StartTraced
) -> None:
    sim = await start_sim()
    gw = await start_traced([sim], enabled=False)
    traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"

    with_context = await gw.client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=2,
        extra_headers={"traceparent": traceparent, "tracestate": "vendor=abc"},
    )
    without = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert with_context.choices[0].message.content
    assert without.choices[0].message.content

    first, second = await _received(sim)
    assert first["headers"]["traceparent"] == traceparent
    assert first["headers"]["tracestate"] == "vendor=abc"
    assert "traceparent" not in second["headers"]
