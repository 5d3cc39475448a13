"""OTLP span encoding: the SDK's ``encode_spans`` + ``SerializePartialToString`` versus
``telemetry.otlpwire.SpanEncoder``, per span, on the gateway's own span shapes.

``python -m bench otlp [--requests N] [--rounds R]``, run by ``bench.__main__``. Makes N
requests' spans through a real ``Tracing`` (its resource, scope and sampler): per request a
SERVER span, a ``route`` span and a CLIENT attempt span, with the attributes ``serve.observe``
sets (a fresh request id each; token counts vary), collected in memory. Then times, in
alternating rounds, both encoders on batches of 512 spans (the batch processor's largest
export) and of 3 spans (one request: what a lightly loaded gateway flushes): µs per span, and
ms per 512-span batch (how long the export thread holds the GIL in one go). The encoder keeps its
memo across batches as the exporter does; a cold encoder per batch is timed too. The bytes are
checked equal first. Results: bench/results/otlp_encode.md/.json. About 10 s.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from switchman.gateway.telemetry import tracing
from switchman.gateway.telemetry.otlpwire import SpanEncoder

RESULTS = Path(__file__).parent / "results"
BATCH = 512


def gateway_spans(requests: int) -> list[ReadableSpan]:
    """``requests`` requests' worth of the spans ``serve.observe`` makes for a chat."""
    memory = InMemorySpanExporter()
    traced = tracing.Tracing.with_processor(SimpleSpanProcessor(memory))
    for index in range(requests):
        server = traced.server_span("POST", "/v1/chat/completions", {})
        assert server is not None
        server.set_attributes(
            {
                "http.request.method": "POST",
                "url.path": "/v1/chat/completions",
                "switchman.request_id": f"req-{index:012x}",
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "m",
                "gen_ai.request.max_tokens": 64,
                "gen_ai.request.temperature": 0.2,
                "gen_ai.request.stream": False,
            }
        )
        route = traced.child_span(server, "route m")
        assert route is not None
        route.set_attributes(
            {
                "switchman.route": "m",
                "switchman.route.strategy": "least-loaded",
                "switchman.route.candidates": ["small", "large"],
                "switchman.route.why": "least-loaded",
            }
        )
        tracing.end(route)
        attempt = traced.child_span(server, "chat small", SpanKind.CLIENT)
        assert attempt is not None
        attempt.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "small",
                "server.address": "10.0.3.17",
                "server.port": 8000,
                "switchman.upstream": "sim",
                "switchman.model": "small",
                "gen_ai.response.model": "small",
                "gen_ai.response.finish_reasons": ["stop"],
                "gen_ai.usage.input_tokens": 20 + index % 50,
                "gen_ai.usage.output_tokens": 10 + index % 200,
            }
        )
        tracing.end(attempt)
        server.set_attributes(
            {"http.response.status_code": 200, "switchman.route.reason": "primary"}
        )
        server.set_attribute("switchman.attempts", 1)
        tracing.end(server)
    return list(memory.get_finished_spans())


def _batches(spans: list[ReadableSpan], size: int) -> list[list[ReadableSpan]]:
    return [spans[i : i + size] for i in range(0, len(spans) - size + 1, size)]


def _sdk(batch: Sequence[ReadableSpan]) -> bytes:
    data: bytes = encode_spans(batch).SerializePartialToString()
    return data


def _time(encode: Callable[[Sequence[ReadableSpan]], bytes], batches: list[Any]) -> list[float]:
    """Seconds per batch, each batch timed on its own."""
    times = []
    for batch in batches:
        start = time.perf_counter()
        encode(batch)
        times.append(time.perf_counter() - start)
    return times


def run(requests: int, rounds: int) -> dict[str, Any]:
    spans = gateway_spans(requests)
    warm = SpanEncoder()
    for batch in _batches(spans, BATCH):
        assert warm.encode(batch) == _sdk(batch), "encoders disagree"
    encoders: dict[str, Callable[[Sequence[ReadableSpan]], bytes]] = {
        "sdk encode_spans": _sdk,
        "otlpwire (warm memo)": warm.encode,
        "otlpwire (cold, new encoder per batch)": lambda batch: SpanEncoder().encode(batch),
    }
    samples: dict[tuple[str, int], list[float]] = {}
    for _ in range(rounds):
        for size in (BATCH, 3):
            batches = _batches(spans, size)
            for name, encode in encoders.items():
                per_batch = _time(encode, batches)
                samples.setdefault((name, size), []).append(sum(per_batch) / len(spans) * 1e6)
                if size == BATCH:
                    samples.setdefault((name, -1), []).extend(per_batch)
    cases = []
    for name in encoders:
        bursts = samples[name, -1]
        cases.append(
            {
                "encoder": name,
                "us_per_span_batch_512": min(samples[name, BATCH]),
                "us_per_span_batch_3": min(samples[name, 3]),
                "rounds_us_per_span_batch_512": samples[name, BATCH],
                "ms_per_512_batch_median": statistics.median(bursts) * 1e3,
                "ms_per_512_batch_max": max(bursts) * 1e3,
            }
        )
    return {
        "spans": len(spans),
        "requests": requests,
        "rounds": rounds,
        "cases": cases,
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
    }


def report(result: dict[str, Any], load: tuple[tuple[float, ...], tuple[float, ...]]) -> str:
    sdk, warm = result["cases"][0], result["cases"][1]
    ratio = sdk["us_per_span_batch_512"] / warm["us_per_span_batch_512"]
    lines = [
        "# OTLP span encoding (bench/otlp_encode.py)",
        "",
        f"**Summary.** On the gateway's spans (SERVER + route + CLIENT attempt per request), "
        f"`otlpwire.SpanEncoder` takes {warm['us_per_span_batch_512']:.1f} µs a span against "
        f"the SDK's {sdk['us_per_span_batch_512']:.1f} µs ({ratio:.1f}x less) in 512-span "
        f"batches; a full batch holds the export thread (and the GIL) for "
        f"{warm['ms_per_512_batch_median']:.1f} ms instead of "
        f"{sdk['ms_per_512_batch_median']:.1f} ms (medians). Same bytes (checked).",
        "",
        "| encoder | µs/span, 512-span batches | µs/span, 3-span batches "
        "| ms per 512 batch, median | max |",
        "|---|---|---|---|---|",
    ]
    for case in result["cases"]:
        lines.append(
            f"| {case['encoder']} | {case['us_per_span_batch_512']:.1f} "
            f"| {case['us_per_span_batch_3']:.1f} | {case['ms_per_512_batch_median']:.2f} "
            f"| {case['ms_per_512_batch_max']:.2f} |"
        )
    lines += [
        "",
        f"Machine: {result['machine']}; {result['spans']} spans from {result['requests']} "
        f"requests through a real `Tracing` (its resource and scope). {result['rounds']} "
        "alternating rounds, the best round's µs/span kept (other jobs share this box; every "
        "round is in the JSON); batch times over all rounds. Protobuf "
        f"{_protobuf()}. Load average (1, 5, 15 min) "
        f"{'/'.join(f'{x:.2f}' for x in load[0])} at the start, "
        f"{'/'.join(f'{x:.2f}' for x in load[1])} at the end.",
        "",
    ]
    return "\n".join(lines)


def _protobuf() -> str:
    implementation = importlib.import_module("google.protobuf.internal.api_implementation")
    return f"{version('protobuf')} ({implementation.Type()})"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench otlp")
    parser.add_argument("--requests", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    before = os.getloadavg()
    result = run(args.requests, args.rounds)
    load = (before, os.getloadavg())
    result["load_average"] = {"start": load[0], "end": load[1]}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "otlp_encode.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result, load)
    (RESULTS / "otlp_encode.md").write_text(text)
    print(text)
