"""The client side of one streamed request, per stream and per event, timed in-process.

``python -m bench stream [--batch N] [--rounds R]``, run by ``bench.__main__``. The stream the
side-by-side benchmark's fake upstream sends (``fake_upstream.stream``: content chunks, a finish
chunk, a usage chunk and ``[DONE]``, all in one read), through the code that handles it after
the upstream's bytes are in hand, one stage at a time and then whole:

- parse: ``sse.SSEParser.feed`` of the read;
- decode: ``openai_compat.OpenAIStream.feed`` of each event (usage, model, finish reasons; the
  usage-only chunk dropped, as the client did not ask for it);
- record: ``continuation.Transcript.add`` of the content chunks the client is sent
  (``mid_stream: continue``, the default), reduced to text every 16 KiB (the long stream);
- client: ``downstream.ClientStream`` commit, the write and the finish, through aiohttp's real
  response and payload writer onto a transport that keeps nothing (no socket);
- chain: ``relay.Relay`` over an upstream whose one read is the whole stream, with a credential
  redactor, committing and finishing a ``ClientStream`` with a transcript: all of the above as
  ``attempt.stream`` runs it, less the upstream HTTP client; and the same with each event in
  its own read, as a model's tokens arrive (a relay pass and a send per event).

Each stage runs on a stream of ``SMALL`` events and one of ``LARGE`` events (more content
chunks); per event is the slope between them, per stream the rest. CPU time of this thread
(``time.thread_time_ns``) over batches, median batch of the best round, so other processes on
the machine weigh little. Results: bench/results/stream_path.md/.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_writer import StreamWriter
from aiohttp.test_utils import make_mocked_request

from bench import fake_upstream
from switchman.gateway.providers.openai_compat import OpenAIStream
from switchman.gateway.providers.sse import SSEParser
from switchman.gateway.serve.continuation import Transcript
from switchman.gateway.serve.downstream import ClientStream
from switchman.gateway.serve.relay import Relay
from switchman.gateway.upstreams.credentials import Redactor

RESULTS = Path(__file__).parent / "results"
SMALL = 8  # content chunks: the fake upstream's stream, 11 events
LARGE = 108  # 111 events
HEADERS = {  # what a decision record adds to a streamed answer (decisions.Decision.headers)
    "x-switchman-route": "chat",
    "x-switchman-model": "m-stream",
    "x-switchman-upstream": "vllm-a",
    "x-request-id": "0123456789abcdef0123456789abcdef",
}


def stream_bytes(words: int) -> bytes:
    """The fake upstream's stream with ``words`` content chunks."""
    old = fake_upstream._WORDS
    fake_upstream._WORDS = [f" w{i}" for i in range(words)]
    try:
        return fake_upstream.stream().encode()
    finally:
        fake_upstream._WORDS = old


class _NullTransport:
    """A socket that takes everything at once (counts writes: each is a send on a real one)."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: Any) -> None:
        self.writes += 1

    def writelines(self, data: Any) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


class _Protocol:
    def __init__(self, transport: _NullTransport) -> None:
        self.transport = transport
        self._paused = False
        self.ssl_context = None
        self.peername = ("127.0.0.1", 40000)
        self.sockname = ("127.0.0.1", 8080)

    async def _drain_helper(self) -> None:
        return None


class _Upstream:
    """What ``Relay`` reads (``relay.Body``): the whole stream in one read (or the given
    reads), then EOF."""

    def __init__(self, data: bytes | list[bytes]) -> None:
        self._reads = [b"", *reversed(data)] if isinstance(data, list) else [b"", data]

    async def read(self) -> bytes:
        return self._reads.pop()


_TEMPLATE: list[web.Request] = []


def _request(transport: _NullTransport) -> web.Request:
    """A real aiohttp request with a fresh payload writer (the template's parsed message)."""
    loop = asyncio.get_running_loop()
    if not _TEMPLATE:
        headers = {"Host": "gateway", "Content-Type": "application/json"}
        _TEMPLATE.append(make_mocked_request("POST", "/v1/chat/completions", headers=headers))
    template = _TEMPLATE[0]
    protocol = _Protocol(transport)
    writer = StreamWriter(protocol, loop)  # type: ignore[arg-type]
    return web.Request(
        template._message,
        template._payload,
        protocol,  # type: ignore[arg-type]
        writer,
        template._task,
        loop,
        client_max_size=1024**2,
    )


def stages(data: bytes) -> dict[str, Callable[[], Awaitable[object]]]:
    """One stream through each stage (an async callable each, for one timing loop)."""
    events = SSEParser().feed(data)
    sent = b"".join(OpenAIStream(False).feed(e) for e in events)
    # what a transcript reduces while the answer goes on (a finish reason would stop it)
    content = b"".join(e.raw for e in events if b'"finish_reason":null' in e.data)
    redactor = Redactor(["sk-bench-0123456789abcdef"])
    transport = _NullTransport()

    async def parse() -> object:
        return SSEParser().feed(data)

    async def decode() -> object:
        decoder = OpenAIStream(False)
        return b"".join(decoder.feed(e) for e in events)

    async def record() -> object:
        transcript = Transcript()
        transcript.add(content)
        return transcript

    async def client() -> object:
        stream = ClientStream(_request(transport), False, Transcript())
        await stream.commit(HEADERS)
        await stream.write(sent)
        return await stream.finish(b"data: [DONE]\n\n")

    async def chain(reads: bytes | list[bytes] = data) -> object:
        stream = ClientStream(_request(transport), False, Transcript())
        relay = Relay(
            _Upstream(reads),
            OpenAIStream(False),
            idle=30.0,
            deadline=asyncio.get_running_loop().time() + 60,
            redactor=redactor,
        )
        first = await relay.first("bench")
        await stream.commit(HEADERS)
        return await relay.rest(stream, first, "bench")

    tokens = [e.raw for e in events]

    async def token_chain() -> object:
        return await chain(tokens)

    async def request_only() -> object:  # the chain's fixture, subtracted from it
        return _request(transport)

    return {
        "parse": parse,
        "decode": decode,
        "record": record,
        "client": client,
        "chain": chain,
        "chain, one event per read": token_chain,
        "fixture": request_only,
    }


async def _batch(call: Callable[[], Awaitable[object]], size: int) -> float:
    start = time.thread_time_ns()
    for _ in range(size):
        await call()
    return (time.thread_time_ns() - start) / 1000 / size


async def _time(call: Callable[[], Awaitable[object]], size: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        samples = sorted([await _batch(call, size) for _ in range(15)])
        best = min(best, samples[len(samples) // 2])
    return best


async def _writes(data: bytes) -> int:
    transport = _NullTransport()
    stream = ClientStream(_request(transport), False, Transcript())
    relay = Relay(
        _Upstream(data),  # type: ignore[arg-type]
        OpenAIStream(False),
        idle=30.0,
        deadline=asyncio.get_running_loop().time() + 60,
    )
    first = await relay.first("bench")
    await stream.commit(HEADERS)
    await relay.rest(stream, first, "bench")
    return transport.writes


async def measure(size: int, rounds: int) -> list[dict[str, Any]]:
    small, large = stream_bytes(SMALL), stream_bytes(LARGE)
    n_small, n_large = len(SSEParser().feed(small)), len(SSEParser().feed(large))
    fast, slow = stages(small), stages(large)
    fixture = await _time(fast["fixture"], size, rounds)
    rows = []
    for name in list(fast)[:-1]:
        a = await _time(fast[name], size, rounds)
        b = await _time(slow[name], size, rounds)
        if name.startswith(("client", "chain")):
            a, b = a - fixture, b - fixture
        per_event = (b - a) / (n_large - n_small)
        rows.append(
            {
                "stage": name,
                f"us_{n_small}_events": round(a, 2),
                f"us_{n_large}_events": round(b, 2),
                "us_per_event": round(per_event, 3),
                "us_per_stream": round(a - per_event * n_small, 2),
            }
        )
    rows.append({"stage": "socket writes per stream (chain)", "writes": await _writes(small)})
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench stream")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stem", default="stream_path")
    parser.add_argument("--note", default="", help="a line under the title (what was measured)")
    args = parser.parse_args(argv)
    rows = asyncio.run(measure(args.batch, args.rounds))
    n = len(SSEParser().feed(stream_bytes(SMALL)))
    big = len(SSEParser().feed(stream_bytes(LARGE)))
    meta = {
        "python": platform.python_version(),
        "batch": args.batch,
        "rounds": args.rounds,
        "note": args.note,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    timed = [r for r in rows if "us_per_event" in r]
    lines = [
        "# The streamed request's client side: CPU per stream and per event",
        "",
        *([args.note, ""] if args.note else []),
        f"`python -m bench stream` (Python {meta['python']}; thread CPU time, median of 15 "
        f"batches of {args.batch} streams, best of {args.rounds} rounds; one process, no "
        "socket). Per event: the slope between a stream of "
        f"{n} and of {big} events; per stream: the rest.",
        "",
        f"| stage | µs, {n}-event stream | µs, {big}-event stream | µs per event | µs per stream |",
        "|---|---|---|---|---|",
        *(
            f"| {r['stage']} | {r[f'us_{n}_events']} | {r[f'us_{big}_events']} | "
            f"{r['us_per_event']} | {r['us_per_stream']} |"
            for r in timed
        ),
        "",
        "record reduces the transcript to text once per 16 KiB of events, which only the long "
        "stream reaches: its per-event figure is that pass, its per-stream figure means nothing.",
        "",
        f"Socket writes per {n}-event stream (one upstream read): {rows[-1]['writes']}.",
        "",
    ]
    (RESULTS / f"{args.stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))
