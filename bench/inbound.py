"""What the inbound formats add per request and per streamed chunk, timed call by call.

``python -m bench inbound [--iterations N] [--rounds R]``, run by ``bench.__main__``. The edges
of ``gateway/inbound`` on the request path, in one process, with realistic payloads:

- request: an Anthropic Messages body (system, 6 turns, a tool and a tool round trip) and a
  Responses body (instructions, items, a function tool) read as chat (``to_chat``: strict JSON
  parse plus translation), against plain chat's own parse (``serve.request.loads``);
- whole answer: a ``chat.completion`` with text and a tool call re-encoded as a Message / a
  response (``whole``);
- stream: one text-delta chat chunk as the pipeline writes it (SSE bytes) through the writer's
  parse and the Anthropic and Responses encoders, i.e. the added cost per streamed token.

Reports p50/p99 µs per case; the design budgets these against are ≤ 1 ms added time to first
token and ≤ 0.5 ms added p50 per request (docs/architecture.md). Results:
bench/results/inbound.md/.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from switchman.gateway.inbound.anthropic_openai import messages_to_chat
from switchman.gateway.inbound.anthropic_openai_stream import EventEncoder as MessagesEncoder
from switchman.gateway.inbound.anthropic_openai_stream import chat_to_message
from switchman.gateway.inbound.responses_openai import responses_to_chat
from switchman.gateway.inbound.responses_openai_stream import EventEncoder as ResponsesEncoder
from switchman.gateway.inbound.responses_openai_stream import chat_to_response
from switchman.gateway.inbound.translation import Translation
from switchman.gateway.providers.sse import SSEParser
from switchman.gateway.serve.request import loads

RESULTS = Path(__file__).parent / "results"
TOOL = {"name": "lookup", "description": "Look a term up", "input_schema": {"type": "object"}}


def _messages_body() -> bytes:
    turns: list[dict[str, Any]] = []
    for i in range(3):
        turns.append({"role": "user", "content": f"question {i}: " + "why route? " * 40})
        turns.append({"role": "assistant", "content": "because " * 60})
    turns.append(
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"term": "x"}}],
        }
    )
    turns.append(
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "y"}]}
    )
    body = {
        "model": "auto",
        "max_tokens": 512,
        "system": "You are terse. " * 50,
        "messages": turns,
        "tools": [TOOL],
        "stream": True,
    }
    return json.dumps(body).encode()


def _responses_body() -> bytes:
    items: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "input_text", "text": "why route? " * 40}]},
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "routing " * 50},
    ]
    body = {
        "model": "auto",
        "instructions": "Be brief. " * 50,
        "input": items,
        "stream": True,
        "tools": [{"type": "function", "name": "lookup", "parameters": {"type": "object"}}],
    }
    return json.dumps(body).encode()


CHUNK = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"small",'
    b'"choices":[{"index":0,"delta":{"content":" token"},"logprobs":null,'
    b'"finish_reason":null}]}\n\n'
)
WHOLE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "small",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "Let me look. " * 30,
                "tool_calls": [
                    {
                        "id": "c",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"term":"x"}'},
                    }
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 900, "completion_tokens": 120},
}


def _stream_case(encoder: Callable[[], Any]) -> Callable[[], object]:
    parser, enc = SSEParser(), encoder()
    enc.chunk(json.loads(CHUNK[6:-2]))  # past the opening events

    def one() -> object:
        return [enc.chunk(json.loads(e.data)) for e in parser.feed(CHUNK)]

    return one


def cases() -> dict[str, Callable[[], object]]:
    messages, responses = _messages_body(), _responses_body()
    whole = json.dumps(WHOLE).encode()
    message_edge = Translation(
        messages_to_chat, lambda b: MessagesEncoder(), lambda c, b: chat_to_message(c)
    )
    response_edge = Translation(responses_to_chat, ResponsesEncoder, chat_to_response)
    message_edge.to_chat(messages)
    response_edge.to_chat(responses)
    return {
        "request: chat's own parse (baseline)": lambda: loads(messages),
        "request: Messages -> chat": lambda: message_edge.to_chat(messages),
        "request: Responses -> chat": lambda: response_edge.to_chat(responses),
        "whole answer: chat -> Message": lambda: message_edge.whole(whole),
        "whole answer: chat -> response": lambda: response_edge.whole(whole),
        "stream chunk: -> Anthropic event": _stream_case(MessagesEncoder),
        "stream chunk: -> Responses event": _stream_case(lambda: ResponsesEncoder({})),
    }


def _measure(call: Callable[[], object], iterations: int) -> list[float]:
    samples = []
    for _ in range(iterations):
        start = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return sorted(samples)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench inbound")
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    for name, call in cases().items():
        best: list[float] | None = None
        for _ in range(args.rounds):
            samples = _measure(call, args.iterations)
            if best is None or samples[len(samples) // 2] < best[len(best) // 2]:
                best = samples
        assert best is not None
        p50, p99 = best[len(best) // 2], best[int(len(best) * 0.99)]
        rows.append({"case": name, "p50_us": round(p50, 2), "p99_us": round(p99, 2)})
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "iterations": args.iterations,
        "rounds": args.rounds,
    }
    (RESULTS / "inbound.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# Inbound formats: added cost",
        "",
        f"`python -m bench inbound` (Python {meta['python']}, best of {args.rounds} rounds of "
        f"{args.iterations} calls; one process, no I/O).",
        "",
        "| case | p50 µs | p99 µs |",
        "|---|---|---|",
        *(f"| {r['case']} | {r['p50_us']} | {r['p99_us']} |" for r in rows),
        "",
    ]
    (RESULTS / "inbound.md").write_text("\n".join(lines))
    print("\n".join(lines))
