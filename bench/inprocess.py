"""In-process cost split: the gateway's CPU per request with each production feature alone and
all of them together, for whole answers and for streams.

``python -m bench inprocess [--rounds R] [--requests N] [--batches B] [--variants V ...]
[--shapes whole,stream]``. Each run is one fresh process (``python -m bench.inprocess child``)
that holds, on one uvloop event loop, the gateway app composed as ``switchman gateway`` composes
it (``switchman.gateway.app.compose``, served by ``GatewayRunner`` on an ``AcceptorSite``, the
start-up GC freeze of ``cli/gateway.py``), four fake upstreams (asyncio protocols that answer
every request with ``bench.fake_upstream``'s whole answer or its stream of 11 SSE events in one
read, framed by Content-Length as nginx's ``return`` frames them) and 16 keep-alive raw-socket
clients sending ``bench.compare``'s requests back to back. The config is ``bench.compare``'s
(``targets.switchman_config``: a two-candidate least-loaded route per shape).

Variants, each a fresh process with its config read at compose:

- ``off``: no tenancy block, the access log off, no tracing;
- ``tenancy``: ``targets.tenancy_block`` (a client key, request and token rate limits and a
  daily budget, shared through a real ``redis-server`` the benchmark starts on a free port with
  a temporary directory); every request authenticated, admitted and billed;
- ``log``: the JSON access log (the process's stdout, into a file in the temporary directory);
- ``trace``: OTLP/HTTP tracing sampled at 10% through the standard ``OTEL_*`` variables into
  ``bench.collector`` (a subprocess on a free port);
- ``all``: the three together, what ``bench.compare``'s ``switchman`` target runs;
- ``harness``: no gateway, the clients straight at a fake upstream: the part of every other
  figure that is not the gateway's.

Figures are CPU µs per request of the whole process (``time.process_time``, every thread:
tracing's export thread included) over batches of N requests after a warm-up; the fake
upstreams and the clients are in it and cost the same in every variant, so the differences are
the features' (Redis's and the collector's own CPU is not in it). The main thread's share is
``time.thread_time`` over that. Every (variant, shape) runs once per round, the order rotated
per round, so that drift on the machine falls on all alike; min and median are over every batch
of every round. Each run checks its answers (status 200; the whole body: the completion's text,
or for a stream the de-chunked events' text and a last ``data: [DONE]``; tenancy's rate-limit
headers where tenancy is on), and the benchmark checks one access-log line per request and that
the collector received spans: a wrong answer stops the benchmark. Not run by ``python -m bench``
with no name (about 3.5 minutes at the defaults). Results: bench/results/inprocess.md/.json.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.metadata
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from bench import fake_upstream, procs, targets
from bench.compare import BODIES
from bench.host import host
from bench.load import free_port, wait_ready

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
FEATURES = {
    "off": (),
    "tenancy": ("tenancy",),
    "log": ("log",),
    "trace": ("trace",),
    "all": ("tenancy", "log", "trace"),
    "harness": (),  # no gateway: the clients straight at a fake upstream
}
SHAPES = ("whole", "stream")
KIND = {"whole": "chat", "stream": "chat-stream"}  # bench.compare's request kinds
TEXT = json.loads(fake_upstream.completion())["choices"][0]["message"]["content"]


def upstream_answer(body: str, content_type: str, status: str = "200 OK") -> bytes:
    """An HTTP/1.1 response as nginx's ``return`` sends it (Content-Length, keep-alive)."""
    data = body.encode()
    head = (
        f"HTTP/1.1 {status}\r\nServer: nginx\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(data)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + data


ANSWERS = {
    "whole": upstream_answer(fake_upstream.completion(), "application/json"),
    "stream": upstream_answer(fake_upstream.stream(), "text/event-stream"),
}


@dataclass(frozen=True)
class Run:
    """One measured process: a shape, a variant and what it needs."""

    shape: str
    variant: str
    workdir: str
    requests: int = 4000  # per batch, all clients together
    batches: int = 5
    warm: int = 50  # requests per client before the first batch
    tenancy: dict[str, Any] | None = None  # targets.tenancy_block
    key: str | None = None
    collector: int | None = None  # the OTLP collector's port

    @property
    def per_client(self) -> int:
        return max(1, self.requests // CLIENTS)

    @property
    def total(self) -> int:
        """Requests the run sends, warm-up included."""
        return CLIENTS * (self.warm + self.batches * self.per_client)


class WrongAnswer(Exception):
    """The gateway's answer was not the one the upstream gave (status, body or headers)."""


class _Upstream(asyncio.Protocol):
    """Answers every request it reads (Content-Length framed) with ``answer``."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while (end := self.buf.find(b"\r\n\r\n")) >= 0:
            head = self.buf[:end].lower()
            at = head.find(b"content-length:")
            size = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
            if len(self.buf) < end + 4 + size:
                return
            self.buf = self.buf[end + 4 + size :]
            assert self.transport is not None
            self.transport.write(self.answer)


def parse_response(buf: bytes) -> tuple[bytes, bytes, int] | None:
    """(status line and headers, de-chunked body, bytes used) of the whole response at
    ``buf``'s start, or None while it is incomplete; raises ``WrongAnswer`` on bad framing."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head, at = buf[:end], end + 4
    low = head.lower()
    length = low.find(b"content-length:")
    if length >= 0:
        size = int(low[length + 15 :].split(b"\r\n", 1)[0])
        return (head, buf[at : at + size], at + size) if len(buf) >= at + size else None
    if b"transfer-encoding: chunked" not in low:
        raise WrongAnswer(f"neither Content-Length nor chunked: {head!r}")
    chunks = []
    while (line := buf.find(b"\r\n", at)) >= 0:
        size = int(buf[at:line], 16)
        if len(buf) < line + 4 + size:
            return None
        chunks.append(buf[line + 2 : line + 2 + size])
        at = line + 4 + size
        if size == 0:
            return head, b"".join(chunks), at
    return None


def check(shape: str, head: bytes, body: bytes, *, full: bool, tenancy: bool) -> None:
    """Raise ``WrongAnswer`` unless this is the answer the upstream gave, whole. ``full``: read
    the body's text (the first answer of each client); otherwise a cheap check of its end."""
    if not head.startswith(b"HTTP/1.1 200 "):
        raise WrongAnswer(f"{shape}: {head[:200]!r} {body[:300]!r}")
    if shape == "stream" and not body.endswith(b"data: [DONE]\n\n"):
        raise WrongAnswer(f"stream without its last data: [DONE]: {body[-300:]!r}")
    if shape == "whole" and not body.endswith(b"}"):
        raise WrongAnswer(f"whole answer cut short: {body[-300:]!r}")
    if not full:
        return
    if tenancy != (b"\r\nx-ratelimit-limit-requests:" in head.lower()):
        raise WrongAnswer(f"tenancy {'on' if tenancy else 'off'} but headers {head!r}")
    if shape == "whole":
        text = json.loads(body)["choices"][0]["message"]["content"]
    else:
        events = [e[6:] for e in body.split(b"\n\n") if e.startswith(b"data: {")]
        deltas = [json.loads(e)["choices"] for e in events]
        text = "".join(c[0]["delta"].get("content", "") for c in deltas if c)
    if text != TEXT:
        raise WrongAnswer(f"{shape}: the client got {text!r}, the upstream sent {TEXT!r}")


class _Client(asyncio.Protocol):
    """One keep-alive connection sending ``request`` and checking every answer."""

    def __init__(self, request: bytes, shape: str, tenancy: bool) -> None:
        self.request, self.shape, self.tenancy = request, shape, tenancy
        self.buf = b""
        self.answers = 0
        self.waiter: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            found = parse_response(self.buf)
            if found is None:
                return
            head, body, used = found
            check(self.shape, head, body, full=self.answers == 0, tenancy=self.tenancy)
        except Exception as exc:  # a bad answer fails the run, never hangs it
            self._fail(exc if isinstance(exc, WrongAnswer) else WrongAnswer(repr(exc)))
            return
        self.buf = self.buf[used:]
        self.answers += 1
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(WrongAnswer(f"the gateway closed the connection ({exc!r})"))

    def _fail(self, exc: Exception) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def send(self, count: int) -> None:
        assert self.transport is not None
        for _ in range(count):
            self.waiter = asyncio.get_running_loop().create_future()
            self.transport.write(self.request)
            await self.waiter


def _request(shape: str, key: str | None) -> bytes:
    body = BODIES[KIND[shape]]
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _environ(run: Run) -> dict[str, str]:
    """The ``OTEL_*`` settings ``targets.switchman`` gives the gateway, where tracing is on."""
    if "trace" not in FEATURES[run.variant]:
        return {}
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{run.collector}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
        "OTEL_SERVICE_NAME": "switchman-inprocess",
    }


async def measure(
    run: Run, answers: Mapping[str, bytes] | None = None, *, freeze: bool = False
) -> dict[str, Any]:
    """One run in this process: the samples (CPU µs per request of the process and of this
    thread, per batch). ``answers``: the upstreams' responses by shape (default ``ANSWERS``);
    ``freeze``: the start-up GC freeze of ``switchman gateway`` (a fresh process only)."""
    loop = asyncio.get_running_loop()
    answers = {**ANSWERS, **(answers or {})}
    servers = []
    for shape in ("whole", "whole", "stream", "stream"):
        factory = functools.partial(_Upstream, answers[shape])
        servers.append(await loop.create_server(factory, "127.0.0.1", 0))
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    try:
        if run.variant == "harness":
            _freeze(freeze)
            return await _load(run, ports[0] if run.shape == "whole" else ports[2], False)
        return await _gateway(run, ports, freeze)
    finally:
        for server in servers:
            server.close()


async def _gateway(run: Run, ports: list[int], freeze: bool) -> dict[str, Any]:
    """The run through the gateway composed for it on the upstreams at ``ports``."""
    from switchman.gateway.acceptor import AcceptorSite
    from switchman.gateway.app import compose
    from switchman.gateway.listener import GatewayRunner
    from switchman.gateway.telemetry.accesslog import Format

    tenancy = run.tenancy if "tenancy" in FEATURES[run.variant] else None
    config = Path(run.workdir) / f"gateway-{run.variant}-{run.shape}.json"
    config.write_text(json.dumps(targets.switchman_config(ports[:2], ports[2:], tenancy)))
    log: Format = "json" if "log" in FEATURES[run.variant] else "off"
    runner = GatewayRunner(compose(config, _environ(run), access_log=log), access_log=None)
    await runner.setup()
    try:
        site = AcceptorSite(runner, "127.0.0.1", 0)
        await site.start()
        _freeze(freeze)
        return await _load(run, site.port, tenancy is not None)
    finally:
        await runner.cleanup()


def _freeze(freeze: bool) -> None:
    """What ``cli/gateway.py`` does once the app is composed (a fresh process only)."""
    if freeze:
        gc.freeze()
        gc.set_threshold(7000, 10, 10)


async def _load(run: Run, port: int, tenancy: bool) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = _request(run.shape, run.key if tenancy else None)
    clients = []
    for _ in range(CLIENTS):
        _, client = await loop.create_connection(
            lambda: _Client(request, run.shape, tenancy), "127.0.0.1", port
        )
        clients.append(client)
    try:
        await _batch(clients, run.warm)
        samples = []
        for _ in range(run.batches):
            cpu, main = time.process_time(), time.thread_time()
            await _batch(clients, run.per_client)
            done = CLIENTS * run.per_client
            samples.append(
                [
                    (time.process_time() - cpu) / done * 1e6,
                    (time.thread_time() - main) / done * 1e6,
                ]
            )
    finally:
        for client in clients:
            assert client.transport is not None
            client.transport.close()
    answered = sum(client.answers for client in clients)
    return {"samples": samples, "requests": answered, "pid": os.getpid()}


async def _batch(clients: list[_Client], count: int) -> None:
    sends = asyncio.gather(*(client.send(count) for client in clients))
    try:
        await asyncio.wait_for(sends, timeout=60 + count * 0.05)
    except TimeoutError:
        raise WrongAnswer(f"no answer within {60 + count * 0.05:.0f} s") from None


def _child(spec: Path, out: Path) -> int:
    """``python -m bench.inprocess child SPEC OUT``: measure the run in SPEC (JSON) on uvloop,
    as ``switchman gateway`` serves, and write the result to OUT."""
    from switchman.gateway import listener

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    run = Run(**json.loads(spec.read_text()))

    results: list[dict[str, Any]] = []

    async def go() -> None:
        results.append(await measure(run, freeze=True))

    try:
        listener.run(go())
    except WrongAnswer as exc:
        print(f"{run.variant} {run.shape}: wrong answer: {exc}", file=sys.stderr)
        return 1
    out.write_text(json.dumps(results[0]))
    return 0


def _spans(collector: int | None) -> int:
    if collector is None:
        return 0
    with urllib.request.urlopen(f"http://127.0.0.1:{collector}/stats", timeout=10) as answer:
        spans: int = json.loads(answer.read())["spans"]
        return spans


def run_child(run: Run) -> dict[str, Any]:
    """``run`` in a fresh process; its result, checked: one access-log line per request where
    the log is on (none where it is off), spans at the collector where tracing is on."""
    workdir = Path(run.workdir)
    spec, out, log = workdir / "run.json", workdir / "result.json", workdir / "access.log"
    spec.write_text(json.dumps(asdict(run)))
    out.unlink(missing_ok=True)
    before = _spans(run.collector)
    command = [sys.executable, "-m", "bench.inprocess", "child", str(spec), str(out)]
    with open(log, "wb") as sink:
        proc = subprocess.Popen(command, stdout=sink, cwd=ROOT)
        try:
            code = proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        raise SystemExit(f"inprocess: {run.variant} {run.shape} failed (exit {code}), see above")
    result: dict[str, Any] = json.loads(out.read_text())
    with open(log, "rb") as lines:
        result["log_lines"] = sum(1 for _ in lines)
    log.unlink()
    want = run.total if "log" in FEATURES[run.variant] else 0
    if result["requests"] != run.total or result["log_lines"] != want:
        raise SystemExit(
            f"inprocess: {run.variant} {run.shape}: {result['requests']} answers and "
            f"{result['log_lines']} access-log lines for {run.total} requests"
        )
    if "trace" in FEATURES[run.variant]:
        result["spans"] = _spans(run.collector) - before
        if result["spans"] <= 0:
            raise SystemExit(f"inprocess: {run.variant} {run.shape}: no span reached the collector")
    return result


def _wait_tcp(port: int, deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"inprocess: nothing listens on 127.0.0.1:{port} after {deadline} s")


def _services(
    variants: list[str], workdir: Path, started: list[targets.Target]
) -> tuple[dict[str, Any] | None, str | None, int | None]:
    """Start Redis and the collector where a variant needs them (appended to ``started``):
    the tenancy block, its key and the collector's port."""
    tenancy, key, collector = None, None, None
    if any("tenancy" in FEATURES[v] for v in variants):
        if shutil.which("redis-server") is None:
            raise SystemExit("redis-server is not on PATH: make redis")
        port = free_port()
        started.append(targets.redis(port, workdir))
        started[-1].start()
        _wait_tcp(port)
        tenancy, key = targets.tenancy_block(workdir, f"redis://127.0.0.1:{port}/0")
    if any("trace" in FEATURES[v] for v in variants):
        collector = free_port()
        command = [sys.executable, "-m", "bench.collector", str(collector)]
        started.append(targets.Target("collector", {}, [command], "/stats", cwd=ROOT))
        started[-1].start()
        asyncio.run(wait_ready(f"http://127.0.0.1:{collector}/stats"))
    return tenancy, key, collector


def _rounds(args: argparse.Namespace, workdir: Path) -> dict[tuple[str, str], list[Any]]:
    """Every (variant, shape) once per round, the order rotated per round; the results."""
    started: list[targets.Target] = []
    found: dict[tuple[str, str], list[Any]] = {}
    try:
        tenancy, key, collector = _services(args.variants, workdir, started)
        pairs = [(v, s) for v in args.variants for s in args.shapes]
        for round_no in range(args.rounds):
            shift = round_no * len(pairs) // args.rounds
            for variant, shape in pairs[shift:] + pairs[:shift]:
                run = Run(
                    *(shape, variant, str(workdir), args.requests, args.batches, args.warm),
                    *(tenancy, key, collector),
                )
                result = run_child(run)
                found.setdefault((variant, shape), []).append(result)
                cpu = statistics.median(s[0] for s in result["samples"])
                print(
                    f"round {round_no + 1}/{args.rounds}: {variant} {shape} {cpu:.0f} µs",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        for service in started:
            service.stop()
    return found


def summarise(found: dict[tuple[str, str], list[Any]]) -> list[dict[str, Any]]:
    """Per (variant, shape): min and median CPU µs per request over every batch, the main
    thread's share, the delta over ``off`` and stream - whole (min and median each)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for (variant, shape), results in found.items():
        samples = [s for r in results for s in r["samples"]]
        cpu = [s[0] for s in samples]
        rows[(variant, shape)] = {
            "variant": variant,
            "shape": shape,
            "runs": len(results),
            "batches": len(samples),
            "min_us": round(min(cpu), 1),
            "median_us": round(statistics.median(cpu), 1),
            "main_thread_share": round(statistics.median(s[1] / s[0] for s in samples), 3),
            "spans": sum(r.get("spans", 0) for r in results),
        }
    for (variant, shape), row in rows.items():
        for other, name in ((("off", shape), "vs_off"), ((variant, "whole"), "stream_minus_whole")):
            base = rows.get(other)
            wanted = variant != "harness" if name == "vs_off" else shape == "stream"
            if base is not None and base is not row and wanted:
                row[f"{name}_min_us"] = round(row["min_us"] - base["min_us"], 1)
                row[f"{name}_median_us"] = round(row["median_us"] - base["median_us"], 1)
    return list(rows.values())


def _cell(row: dict[str, Any] | None, name: str) -> str:
    if row is None or f"{name}_min_us" not in row:
        return "—"
    return f"{row[f'{name}_min_us']:+.0f} / {row[f'{name}_median_us']:+.0f}"


def markdown(results: dict[str, Any]) -> str:
    m, s = results["machine"], results["settings"]
    rows = {(r["variant"], r["shape"]): r for r in results["rows"]}
    lines = [
        "# In-process cost split (bench/inprocess.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ".",
        f"Load average at start {m['load_average_at_start']}, at end "
        f"{m['load_average_at_end']}; the machine was {results['machine_busy']:.0%} busy "
        f"during the run (everything on it); {results['seconds']:.0f} s in all.",
        f"Settings: {s['rounds']} rounds (every variant and shape once a round, order rotated), "
        f"each run a fresh process: {s['warm']} requests per client to warm up, then "
        f"{s['batches']} batches of {s['requests']} requests from {CLIENTS} keep-alive clients; "
        "min and median over every batch of every round.",
        "",
        "CPU µs per request of the one process that holds the gateway, the fake upstreams and "
        "the clients (these two cost the same in every variant). Δ: min / median.",
        "",
        "| variant | whole min | whole median | Δ whole vs off | stream min | stream median "
        "| Δ stream vs off | stream - whole | main thread (whole / stream) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant in s["variants"]:
        whole, stream = rows.get((variant, "whole")), rows.get((variant, "stream"))
        share = " / ".join(f"{r['main_thread_share']:.1%}" if r else "—" for r in (whole, stream))
        lines.append(
            f"| {variant} | {_num(whole, 'min_us')} | {_num(whole, 'median_us')} "
            f"| {_cell(whole, 'vs_off')} | {_num(stream, 'min_us')} | {_num(stream, 'median_us')} "
            f"| {_cell(stream, 'vs_off')} | {_cell(stream, 'stream_minus_whole')} | {share} |"
        )
    floor = {shape: row["min_us"] for (name, shape), row in rows.items() if name == "harness"}
    own = [
        f"{variant} {shape} {row['min_us'] - floor[shape]:.0f}"
        for (variant, shape), row in rows.items()
        if variant != "harness" and shape in floor
    ]
    if own:
        lines += [
            "",
            "`harness`: the clients straight at a fake upstream, no gateway: what every other row "
            "also holds. The gateway's own CPU µs per request (min less the harness's min): "
            + ", ".join(own)
            + ".",
        ]
    spans = {f"{r['variant']} {r['shape']}": r["spans"] for r in results["rows"] if r["spans"]}
    if spans:
        lines += [
            "",
            "Spans the collector received: "
            + ", ".join(f"{k} {v}" for k, v in spans.items())
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _num(row: dict[str, Any] | None, key: str) -> str:
    return "—" if row is None else f"{row[key]:.0f}"


def machine() -> dict[str, Any]:
    """What ran it: CPU, cores, memory, kernel, versions, the commit, the load average."""
    versions = {package: importlib.metadata.version(package) for package in ("aiohttp", "uvloop")}
    if (redis := shutil.which("redis-server")) is not None:
        done = subprocess.run([redis, "--version"], capture_output=True, text=True, check=False)
        versions["redis-server"] = done.stdout.split(" v=", 1)[-1].split(" ", 1)[0]
    return host(versions)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench inprocess")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=4000, help="per batch, all clients")
    parser.add_argument("--batches", type=int, default=5, help="per run")
    parser.add_argument("--warm", type=int, default=50, help="requests per client first")
    parser.add_argument("--variants", nargs="+", choices=list(FEATURES), default=list(FEATURES))
    parser.add_argument("--shapes", type=lambda t: t.split(","), default=list(SHAPES))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--stem", default="inprocess", help="result file names (STEM.md, ...)")
    return parser


def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    if set(args.shapes) - set(SHAPES):
        raise SystemExit(f"--shapes: whole and/or stream, not {','.join(args.shapes)}")
    info = machine()
    busy, total = procs.machine_jiffies()
    started = time.monotonic()
    # A SIGTERM stops it as Ctrl-C does: the current run, Redis and the collector end with it.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    workdir = Path(tempfile.mkdtemp(prefix="switchman-bench-inprocess-"))
    try:
        found = _rounds(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    busy2, total2 = procs.machine_jiffies()
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results = {
        "machine": info,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "seconds": time.monotonic() - started,
        "machine_busy": (busy2 - busy) / max(total2 - total, 1),
        "rows": summarise(found),
        "runs": {f"{v} {s}": r for (v, s), r in found.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.stem}.json").write_text(json.dumps(results, indent=2) + "\n")
    text = markdown(results)
    (args.out / f"{args.stem}.md").write_text(text)
    print(text)
    print(f"wrote {args.out / args.stem}.md/.json", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        sys.exit(_child(Path(sys.argv[2]), Path(sys.argv[3])))
    main(sys.argv[1:])
