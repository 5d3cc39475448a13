"""Side by side: the fake upstream direct, a minimal relay, LiteLLM proxy and Switchman, each
with 1 and N workers where it has workers, non-streaming and streaming, several concurrencies.

``python -m bench compare [--seconds S] [--rounds R] [--concurrency C ...] [--workers N]
[--targets NAME ...] [--out DIR]``. Every target runs at once for the whole run (idle ones
cost nothing); each round measures every (kind, concurrency) point on every target, targets
in an order rotated per round, so that noise from other work on the machine falls on all of
them alike; each figure is the median over rounds. Load comes from ``wrk`` (``bench.wrk``).
Per point: requests/s, latency p50/p90/p99 (to the last byte; for streams an upper bound of
time to first token, since the upstream sends a whole stream at once), the CPU the target's
processes used per request, and their RSS; then added p50/p99 against ``direct``. Besides the
closed-loop points, ``chat-paced`` and ``chat-stream-paced`` measure every target at
``--paced-concurrency`` (64) and ``--paced-stream-concurrency`` (16) connections paced to
``--paced`` requests/s in all (``bench.wrk``): the latency each adds under a load it can carry,
where a closed loop at those concurrencies saturates every proxy and measures its queue.
Results: ``bench/results/compare.{json,md,png}`` (``bench.report``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs, report, targets, wrk
from bench.fake_upstream import FakeUpstream
from bench.host import host
from bench.load import free_port, wait_ready

RESULTS = Path(__file__).parent / "results"
BODIES = {
    kind: json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Say hello in a short sentence."}],
            "max_tokens": 16,
            **({"stream": True} if kind == "chat-stream" else {}),
        }
    ).encode()
    for kind, model in (("chat", "m"), ("chat-stream", "m-stream"))
}
ALL = ("direct", "relay", "litellm-1", "litellm-N", "switchman-1", "switchman-N")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench compare")
    parser.add_argument("--seconds", type=float, default=4.0, help="per point and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="N")
    parser.add_argument("--targets", nargs="+", default=list(ALL), choices=ALL)
    parser.add_argument("--kinds", nargs="+", default=["chat", "chat-stream"])
    parser.add_argument(
        "--paced", type=float, default=1000.0, help="paced points: requests/s in all (0: none)"
    )
    parser.add_argument("--paced-concurrency", type=int, default=64)
    parser.add_argument("--paced-stream-concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--note", default="", help="a line for the results (what else ran)")
    parser.add_argument("--stem", default="compare", help="result file names (STEM.md, ...)")
    parser.add_argument(
        "--tenancy",
        choices=("redis", "local", "off"),
        default="redis",
        help="Switchman's tenancy: limits shared through Redis (production), in-process, or none",
    )
    return parser


def build(args: argparse.Namespace, workdir: Path) -> tuple[FakeUpstream, list[targets.Target]]:
    """The fake upstream and the chosen targets (not started)."""
    upstream = FakeUpstream(
        workdir / "nginx", [free_port(), free_port()], [free_port(), free_port()]
    )
    a, b = upstream.json_ports, upstream.sse_ports
    chosen: list[targets.Target] = []
    names = [n.replace("-N", f"-{args.workers}") for n in args.targets]
    tenancy, key = None, None
    if args.tenancy != "off" and any(n.startswith("switchman") for n in names):
        redis_url = None
        if args.tenancy == "redis":
            redis_port = free_port()
            chosen.append(targets.redis(redis_port, workdir))
            redis_url = f"redis://127.0.0.1:{redis_port}/0"
        tenancy, key = targets.tenancy_block(workdir, redis_url)
    config = workdir / "gateway.json"
    config.write_text(json.dumps(targets.switchman_config(a, b, tenancy)))
    litellm_config = workdir / "litellm.yaml"
    litellm_config.write_text(targets.litellm_config(a, b))
    collector = free_port()
    for name in names:
        if name == "direct":
            chosen.append(targets.Target("direct", {"chat": a[0], "chat-stream": b[0]}, [], ""))
        elif name == "relay":
            chosen.append(targets.relay(a[0], b[0], (free_port(), free_port()), workdir))
        elif name.startswith("litellm-"):
            if not targets.litellm_available():
                raise SystemExit("LiteLLM is not installed: run `bash bench/setup.sh`")
            workers = int(name.split("-")[1])
            chosen.append(targets.litellm(name, free_port(), litellm_config, workers, workdir))
        else:
            workers = int(name.split("-")[1])
            chosen.append(
                targets.switchman(name, free_port(), config, workers, collector, workdir, key)
            )
    if any(t.name.startswith("switchman") for t in chosen):
        chosen.append(
            targets.Target(
                "collector",
                {},
                [[sys.executable, "-m", "bench.collector", str(collector)]],
                "/stats",
            )
        )
    return upstream, chosen


async def _ready(target: targets.Target) -> None:
    ports = set(target.ports.values()) or {int(target.commands[0][-1])}
    if target.ready_path == "tcp":
        await _connectable(ports.pop())
        return
    for port in ports:
        waiting = asyncio.create_task(
            wait_ready(f"http://127.0.0.1:{port}{target.ready_path}", deadline=180)
        )
        while not waiting.done():
            await asyncio.wait([waiting], timeout=0.5)
            died = [p.returncode for p in target.processes if p.poll() is not None]
            if died and not waiting.done():
                waiting.cancel()
                log = f"; its output: {target.stdout}" if target.stdout else ""
                raise RuntimeError(f"{target.name} exited ({died[0]}) before it was ready{log}")
        waiting.result()


async def _connectable(port: int, deadline: float = 30.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {deadline}s")


PACED = "-paced"  # a kind's suffix: its requests, paced (``chat-paced``)


def measure(
    target: targets.Target,
    kind: str,
    concurrency: int,
    seconds: float,
    rate: float | None = None,
) -> dict[str, Any]:
    """One wrk run against ``target`` (paced to ``rate`` requests/s when given), with its CPU
    and RSS and the machine's busy share."""
    base = kind.removesuffix(PACED)
    pids = procs.tree(target.pid(base)) if target.processes else []
    cpu = procs.cpu_seconds(pids)
    busy0, total0 = procs.machine_jiffies()
    result = wrk.run(
        target.url(base),
        BODIES[base],
        concurrency=concurrency,
        seconds=seconds,
        headers=target.headers,
        rate=rate,
    )
    busy1, total1 = procs.machine_jiffies()
    if pids:
        pids = procs.tree(target.pid(base))
        used = procs.cpu_seconds(pids) - cpu
        if result["requests"]:
            result["cpu_us_per_request"] = used / result["requests"] * 1e6
        result["cpu_cores"] = used / (result["duration_us"] / 1e6)
        result["rss_mb"] = procs.rss_bytes(pids) / 2**20
    result["machine_busy"] = (busy1 - busy0) / max(total1 - total0, 1)
    return result


def _duration(
    runs: dict[tuple[str, str, int], list[dict[str, Any]]],
    name: str,
    kind: str,
    concurrency: int,
    seconds: float,
) -> float:
    """``seconds``, or longer for a slow target: at least three times the latency this point
    should have (``concurrency`` over the requests/s measured at the next lower concurrency),
    up to 30 s, so that a server slower than the window still completes requests in it."""
    lower = [c for (n, k, c) in runs if n == name and k == kind and c < concurrency]
    if not lower:
        return seconds
    rps = statistics.median(r["rps"] for r in runs[(name, kind, max(lower))])
    return min(max(seconds, 3 * concurrency / max(rps, 1e-3)), 30.0)


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float)]
    out: dict[str, Any] = {k: statistics.median(r[k] for r in runs if k in r) for k in keys}
    out["errors"] = sum(r["errors"] for r in runs)
    out["rounds"] = len(runs)
    return out


def machine() -> dict[str, Any]:
    versions = {}
    for tool, pattern in (("nginx", r"nginx/(\S+)"), ("wrk", r"wrk (\S+)")):
        done = subprocess.run([tool, "-v"], capture_output=True, text=True, check=False)
        found = re.search(pattern, done.stdout + done.stderr)
        versions[tool] = found.group(1) if found else "unknown"
    if targets.litellm_available():
        python = str(targets.LITELLM_VENV / "bin" / "python")
        code = "import importlib.metadata as m; print(m.version('litellm'))"
        done = subprocess.run(  # not from the repo root: its operator/ would shadow the stdlib's
            [python, "-c", code], capture_output=True, text=True, check=False, cwd="/"
        )
        versions["litellm"] = done.stdout.strip() or "unknown"
    return host(versions)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="switchman-compare-"))
    upstream, chosen = build(args, workdir)
    nginx = upstream.start()
    for target in chosen:
        target.start()
        if target.name == "direct":  # its CPU and memory are nginx's
            target.processes = [nginx]
    results: dict[str, Any] = {"machine": machine(), "settings": vars(args) | {"out": None}}
    try:
        for target in chosen:
            await _ready(target)
        measured = [t for t in chosen if t.name not in ("collector", "redis")]
        for target in measured:  # warm-up: connection pools, caches, lazy imports
            for kind in args.kinds:
                wrk.run(
                    target.url(kind), BODIES[kind], concurrency=8, seconds=1, headers=target.headers
                )
        runs: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        started = time.monotonic()
        for round_no in range(args.rounds):
            shift = round_no % len(measured)
            _round(runs, round_no, measured[shift:] + measured[:shift], args)
        results["elapsed_s"] = time.monotonic() - started
        results["machine"]["load_average_at_end"] = os.getloadavg()
        results["points"] = [
            {"target": name, "kind": kind, "concurrency": c, **_median(r)}
            for (name, kind, c), r in runs.items()
        ]
        for target in measured:  # a gateway flushes its last spans as it stops
            target.stop()
        results["collector"] = await _collector_stats(chosen)
    finally:
        for target in chosen:
            target.stop()
        if upstream.process is not None:
            upstream.process.terminate()
            upstream.process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)
    report.added(results)
    return results


def _round(
    runs: dict[tuple[str, str, int], list[dict[str, Any]]],
    round_no: int,
    order: list[targets.Target],
    args: argparse.Namespace,
) -> None:
    """One round: every closed-loop point, then the paced ones, on every target in ``order``."""
    points = [(kind, c, None) for kind in args.kinds for c in args.concurrency]
    if args.paced > 0:
        paced = {"chat": args.paced_concurrency, "chat-stream": args.paced_stream_concurrency}
        points += [(kind + PACED, paced[kind], args.paced) for kind in args.kinds]
    for kind, concurrency, rate in points:
        for target in order:
            seconds = args.seconds
            if rate is None:
                seconds = _duration(runs, target.name, kind, concurrency, args.seconds)
            result = measure(target, kind, concurrency, seconds, rate)
            runs.setdefault((target.name, kind, concurrency), []).append(result)
            print(
                f"round {round_no} {kind:11} c={concurrency:<4} {target.name:12} "
                f"{result['rps']:9.0f} rps  p50 {result['p50_ms']:8.2f} ms  "
                f"p99 {result['p99_ms']:8.2f} ms  "
                f"cpu {result.get('cpu_us_per_request', 0):7.0f} us/req  "
                f"{seconds:4.1f} s  "
                f"errors {result['errors']}",
                flush=True,
            )


async def _collector_stats(chosen: list[targets.Target]) -> dict[str, int] | None:
    import aiohttp

    for target in chosen:
        if target.name == "collector":
            port = int(target.commands[0][-1])
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"http://127.0.0.1:{port}/stats") as resp,
            ):
                stats: dict[str, int] = await resp.json()
                return stats
    return None


async def main(argv: list[str]) -> None:
    args = _parser().parse_args(argv)
    results = await run(args)
    report.write(results, args.out, args.stem)
