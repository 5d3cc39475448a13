"""Gateway overhead: one simulated backend called directly, through a minimal aiohttp relay
(``bench.relay_baseline``, the floor) and through the gateway.

Starts ``switchman sim`` (all latencies zero), the relay and ``switchman gateway`` as processes,
then drives each with a closed-loop load generator at several concurrencies (non-streaming chat
completions and streams). Reports requests/s and p50/p99 latency per path, the gateway's added
p50 and its throughput relative to the relay (the design budget: at least 0.7). The load
generator shares the machine's cores with both servers, so absolute numbers are low on a
2-core box; the direct-vs-gateway comparison is the point. Results: bench/results/overhead.md/.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.load import BODY, STREAM_BODY, free_port, load, wait_ready

RESULTS = Path(__file__).parent / "results"


def _switchman() -> list[str]:
    return [sys.executable, "-m", "switchman.cli.main"]


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args(argv)

    sim_port, gw_port, relay_port = free_port(), free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="switchman-bench-"))
    config = workdir / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "upstreams": [{"name": "sim", "base_url": f"http://127.0.0.1:{sim_port}/v1"}],
                "models": [{"name": "m", "upstream": "sim"}],
            }
        )
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    sim_cmd = [*_switchman(), "sim", "--model", "m", "--port", str(sim_port)]
    sim_cmd += ["--ttft-ms", "0", "--prefill-ms-per-token", "0", "--itl-ms", "0"]
    gw_cmd = [*_switchman(), "gateway", "--config", str(config), "--port", str(gw_port)]
    gw_cmd += ["--host", "127.0.0.1", "--log-level", "WARNING"]
    relay_cmd = [sys.executable, "-m", "bench.relay_baseline", f"http://127.0.0.1:{sim_port}"]
    relay_cmd.append(str(relay_port))
    procs = [
        await asyncio.create_subprocess_exec(*cmd, env=env, stdout=asyncio.subprocess.DEVNULL)
        for cmd in (sim_cmd, gw_cmd, relay_cmd)
    ]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "seconds_per_point": args.seconds,
        "points": [],
    }
    try:
        await wait_ready(f"http://127.0.0.1:{sim_port}/health")
        await wait_ready(f"http://127.0.0.1:{gw_port}/readyz")
        await wait_ready(f"http://127.0.0.1:{relay_port}/health")
        for kind, body in (("chat", BODY), ("chat-stream", STREAM_BODY)):
            for concurrency in args.concurrency:
                point: dict[str, Any] = {"kind": kind, "concurrency": concurrency}
                for path, port in (
                    ("direct", sim_port),
                    ("relay", relay_port),
                    ("gateway", gw_port),
                ):
                    url = f"http://127.0.0.1:{port}/v1/chat/completions"
                    await load(url, body, concurrency, 0.5)  # warm-up
                    point[path] = await load(url, body, concurrency, args.seconds)
                    print(f"{kind:12} c={concurrency:<3} {path:8} {point[path]}", flush=True)
                point["added_p50_ms"] = point["gateway"]["p50_ms"] - point["direct"]["p50_ms"]
                point["rps_vs_relay"] = point["gateway"]["rps"] / point["relay"]["rps"]
                results["points"].append(point)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            await asyncio.wait_for(proc.wait(), timeout=10)
    _write(results)


def _write(results: dict[str, Any]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "overhead.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Gateway overhead (bench/overhead.py)",
        "",
        f"Machine: {results['machine']}; {results['seconds_per_point']} s per point; simulator "
        "with zero latency; load generator, simulator and gateway share the cores.",
        "",
        "| kind | concurrency | direct rps | relay rps | gateway rps | gateway/relay "
        "| direct p50 ms | relay p50 ms | gateway p50 ms | gateway added p50 ms "
        "| gateway p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in results["points"]:
        d, r, g = p["direct"], p["relay"], p["gateway"]
        lines.append(
            f"| {p['kind']} | {p['concurrency']} | {d['rps']:.0f} | {r['rps']:.0f} "
            f"| {g['rps']:.0f} | {p['rps_vs_relay']:.2f} | {d['p50_ms']:.2f} "
            f"| {r['p50_ms']:.2f} | {g['p50_ms']:.2f} | {p['added_p50_ms']:.2f} "
            f"| {g['p99_ms']:.2f} | {g['errors']} |"
        )
    (RESULTS / "overhead.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {RESULTS / 'overhead.md'}")
