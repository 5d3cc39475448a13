"""Classifier latency: ``Classifier.score`` per request body, from 10 to 8k tokens and beyond.

Builds deterministic request bodies (prose, several-message chats with a system prompt, tool
definitions, code, a completions prompt) at sizes from ~10 tokens to ~8k tokens (~32k
characters; 4 characters a token) plus one 32k-token body to show the cost stays bounded, then
times ``score`` one call at a time in this process (no server, no network): wall-clock
p50/p99/max and the thread's CPU-time p99 per body, best of alternating rounds. The budget
(design, issue 3): p99 <= 1 ms up to 8k tokens. The max is one call in thousands and mostly
shows the scheduler of a shared machine.
Results: bench/results/classifier.md/.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path
from typing import Any

from switchman.gateway.routing.classifier import Classifier

RESULTS = Path(__file__).parent / "results"
BUDGET_US = 1000.0

_TEXT = (
    "the service must handle retries and report latency for each request while the team "
    "compares designs explains trade-offs and writes a summary of the incident in json with a "
    "table of results why does the cache miss when traffic grows what is the capital of the "
    "region translate this paragraph step by step prove that the bound holds for all n"
)
_WORDS = _TEXT.split(" ")
_CODE = """def handle(request, pool):
    conn = await pool.acquire()
    try:
        rows = await conn.fetch("SELECT id, total FROM orders WHERE id = $1", request.id)
        return {"orders": [dict(r) for r in rows], "count": len(rows)}
    finally:
        pool.release(conn)

"""


def _prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)[:chars]


def _tool(i: int) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": f"tool_{i}",
            "description": "Look up a record and return its fields.",
            "parameters": {"type": "object", "properties": {"id": {"type": "string"}}},
        },
    }


def bodies() -> list[tuple[str, int, str, dict[str, Any]]]:
    """(name, approximate tokens, op, body) for every measured case."""
    rng = random.Random(7)
    cases: list[tuple[str, int, str, dict[str, Any]]] = []
    for tokens in (10, 100, 1000, 4000, 8000):
        text = _prose(rng, tokens * 4)
        cases.append((f"prose {tokens}", tokens, "chat", _chat([("user", text)])))
    for tokens in (1000, 8000):
        share = tokens * 4 // 6
        turns = [("system", _prose(rng, share))]
        for i in range(5):
            turns.append(("user" if i % 2 == 0 else "assistant", _prose(rng, share)))
        cases.append((f"chat 6 messages {tokens}", tokens, "chat", _chat(turns)))
    for tokens in (1000, 8000):
        body = _chat([("user", _prose(rng, tokens * 4 - 2000))])
        body["tools"] = [_tool(i) for i in range(16)]
        cases.append((f"16 tools {tokens}", tokens, "chat", body))
    for tokens in (1000, 8000):
        code = (_CODE * (tokens * 4 // len(_CODE) + 1))[: tokens * 4 - 200]
        text = f"Why does this deadlock under load?\n\n```python\n{code}\n```"
        cases.append((f"code {tokens}", tokens, "chat", _chat([("user", text)])))
    parts = _chat([("user", "")])
    parts["messages"][0]["content"] = [
        {"type": "text", "text": _prose(rng, 16000)},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        {"type": "text", "text": _prose(rng, 16000)},
    ]
    cases.append(("content parts + image 8000", 8000, "chat", parts))
    cases.append(("completions 8000", 8000, "completions", {"prompt": _prose(rng, 32000)}))
    cases.append(("prose 32000", 32000, "chat", _chat([("user", _prose(rng, 128000))])))
    return cases


def _chat(turns: list[tuple[str, str]]) -> dict[str, Any]:
    return {"model": "auto", "messages": [{"role": r, "content": c} for r, c in turns]}


def _percentiles(samples: list[int]) -> tuple[float, float, float]:
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return samples[len(samples) // 2] / 1000, p99 / 1000, samples[-1] / 1000


def measure(classifier: Classifier, op: str, body: dict[str, Any], calls: int) -> dict[str, float]:
    """One round: wall-clock p50/p99/max and CPU-time p99 (this thread's), in µs."""
    for _ in range(min(200, calls)):
        classifier.score(op, body)
    wall, cpu = [], []
    for _ in range(calls):
        started, started_cpu = time.perf_counter_ns(), time.thread_time_ns()
        classifier.score(op, body)
        cpu.append(time.thread_time_ns() - started_cpu)
        wall.append(time.perf_counter_ns() - started)
    p50, p99, most = _percentiles(wall)
    return {"p50_us": p50, "p99_us": p99, "max_us": most, "cpu_p99_us": _percentiles(cpu)[1]}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench classifier")
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per body per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best kept")
    args = parser.parse_args(argv)
    classifier = Classifier.load_default()
    cases = bodies()
    best: dict[str, dict[str, float]] = {}
    for round_no in range(args.rounds):
        for name, _, op, body in cases:
            result = measure(classifier, op, body, args.calls)
            # best of rounds, each figure on its own: other processes on a shared machine
            # only ever add time, so the lowest figure is the closest to the classifier's own
            best[name] = {k: min(v, best.get(name, result)[k]) for k, v in result.items()}
            print(
                f"round {round_no} {name:28} {result['p50_us']:7.1f} us p50 "
                f"{result['p99_us']:7.1f} us p99 {result['max_us']:8.1f} us max "
                f"{result['cpu_p99_us']:7.1f} us cpu p99",
                flush=True,
            )
    rows = [
        {"body": name, "tokens": tokens, "body_bytes": len(json.dumps(body)), **best[name]}
        for name, tokens, _, body in cases
    ]
    _write(rows, args.calls, args.rounds)


def _write(rows: list[dict[str, Any]], calls: int, rounds: int) -> None:
    within = [r for r in rows if r["tokens"] <= 8000]
    worst = max(r["p99_us"] for r in within)
    verdict = "met" if worst <= BUDGET_US else "NOT met"
    lines = [
        "# Classifier latency (bench/classifier.py)",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {calls} timed calls of `Classifier.score` per body and "
        f"round, one at a time, in-process, after 200 warm-up calls; {rounds} alternating "
        "rounds, best round kept per figure (the machine is shared: other processes only add "
        "time). Wall-clock p50/p99/max, and the p99 of the calling thread's CPU time, which "
        "preemption does not inflate. Tokens are estimated as characters / 4.",
        "",
        f"Budget p99 <= {BUDGET_US:.0f} µs up to 8k tokens: **{verdict}** (worst p99 "
        f"{worst:.0f} µs).",
        "",
        "| body | ~tokens | body bytes | p50 µs | p99 µs | max µs | CPU p99 µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['body']} | {r['tokens']} | {r['body_bytes']} | {r['p50_us']:.1f} "
            f"| {r['p99_us']:.1f} | {r['max_us']:.1f} | {r['cpu_p99_us']:.1f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "classifier.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS / "classifier.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'classifier.md'}")
