"""Tenancy overhead: authentication plus a Redis-backed limit check, against tenancy off.

Starts a real ``redis-server`` (127.0.0.1, free port, no persistence), one zero-latency
``switchman sim`` and, one at a time, a gateway process (``bench.gateway_variant``, metrics on)
per variant: ``off`` (no ``tenancy`` block), ``local`` (keys, limits and budget in the process),
``redis`` (the same, shared through Redis, synchronised every ``sync_s``: no Redis round trip on
the request path) and ``strict`` (``sync_s: 0``: one EVALSHA to admit, one to settle after the
response). The tenant's limits are far above the load, so every request runs every check (RPM,
TPM, daily and monthly budgets) and none is refused. Same closed-loop load for each (chat, whole
answers; concurrency 1 and 16), alternating rounds, best round kept. The budget (issue 12):
``redis`` adds at most 0.3 ms p50 at concurrency 16. Results: bench/results/tenancy.md/.json.

``micro [SECONDS] [LABEL]`` (also ``python -m bench tenancy micro ...``) measures the CPU of
tenancy alone, in this process: per request the key lookup (``Tenancy.tenant_of``),
``Tenancy.admit`` (the rate-limit headers included) and ``Ticket.settle`` (and, in strict mode,
the settle task it starts), 16 requests at a time, for ``local`` (no Redis), ``strict`` (Redis,
``sync_s: 0``) and ``synced`` (Redis, the default ``sync_s``; the background syncs included),
against a real redis-server, and the same loop with nothing in it (``harness``). CPU is
``time.process_time`` of this process (Redis's own CPU is not counted) divided by the requests;
the same script run on an older checkout gives the before (``LABEL``: ``before``, ``after``;
results: bench/results/tenancy-micro.json and a section of tenancy.md that the load benchmark
keeps).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.load import BODY, free_port, load, wait_ready
from switchman.gateway.tenancy.keys import hash_key, new_key

RESULTS = Path(__file__).parent / "results"
MICRO = RESULTS / "tenancy-micro.json"
MICRO_HEADING = "## Per-request CPU of tenancy (micro)"
VARIANTS = ("off", "local", "redis", "strict")
BUDGET_MS = 0.3


def _config(
    sim_port: int, workdir: Path, key: str, redis_url: str | None, sync_s: float | None = None
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "version": 1,
        "upstreams": [{"name": "sim", "base_url": f"http://127.0.0.1:{sim_port}/v1"}],
        "models": [
            {"name": "m", "upstream": "sim", "price": {"input_per_mtok": 1, "output_per_mtok": 2}}
        ],
    }
    if redis_url is None and not key:
        return config
    keys = workdir / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "bench", "sha256": hash_key(key)}]}))
    limits = {"requests_per_minute": 10**8, "tokens_per_minute": 10**10}
    tenant = {"name": "bench", "limits": limits, "daily": {"hard_usd": 10**6}}
    config["tenancy"] = {"keys_file": str(keys), "tenants": [tenant]}
    if redis_url is not None:
        config["tenancy"]["redis"] = {"url": redis_url}
        if sync_s is not None:
            config["tenancy"]["redis"]["sync_s"] = sync_s
    return config


async def _start_redis(workdir: Path) -> tuple[asyncio.subprocess.Process, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not on PATH: make redis")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *[binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        *["--appendonly", "no", "--dir", str(workdir)],
        stdout=asyncio.subprocess.DEVNULL,
    )
    await asyncio.sleep(0.3)
    return proc, f"redis://127.0.0.1:{port}/0"


async def main(argv: list[str]) -> None:
    if argv[:1] == ["micro"]:  # python -m bench tenancy micro [SECONDS] [LABEL]
        await micro(argv[1:])
        return
    seconds = float(argv[0]) if argv else 4.0
    rounds = int(argv[1]) if len(argv) > 1 else 2
    workdir = Path(tempfile.mkdtemp(prefix="switchman-bench-tenancy-"))
    key = new_key()
    sim_port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    redis, redis_url = await _start_redis(workdir)
    sim = await asyncio.create_subprocess_exec(
        *[
            sys.executable,
            "-m",
            "switchman.cli.main",
            "sim",
            "--model",
            "m",
            "--port",
            str(sim_port),
        ],
        *["--ttft-ms", "0", "--prefill-ms-per-token", "0", "--itl-ms", "0"],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
    configs = {
        "off": _config(sim_port, workdir, "", None),
        "local": _config(sim_port, workdir, key, None),
        "redis": _config(sim_port, workdir, key, redis_url),
        "strict": _config(sim_port, workdir, key, redis_url, sync_s=0),
    }
    best: dict[tuple[str, int], dict[str, float]] = {}
    try:
        await wait_ready(f"http://127.0.0.1:{sim_port}/health")
        for round_no in range(rounds):
            for variant in VARIANTS:
                path = workdir / f"{variant}.json"
                path.write_text(json.dumps(configs[variant]))
                await _measure(path, variant, key, seconds, round_no, best, env)
    finally:
        for proc in (sim, redis):
            proc.terminate()
            await proc.wait()
    _write(best, seconds, rounds)


async def _measure(
    config: Path,
    variant: str,
    key: str,
    seconds: float,
    round_no: int,
    best: dict[tuple[str, int], dict[str, float]],
    env: dict[str, str],
) -> None:
    port = free_port()
    gateway = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "bench.gateway_variant", str(config), str(port), "metrics"],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
    )
    headers = {} if variant == "off" else {"authorization": f"Bearer {key}"}
    try:
        await wait_ready(f"http://127.0.0.1:{port}/readyz")
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        for concurrency in (1, 16):
            await load(url, BODY, concurrency, 0.5, headers)
            result = await load(url, BODY, concurrency, seconds, headers)
            if result["errors"]:
                raise SystemExit(f"{variant}: {result['errors']} requests failed")
            held = best.get((variant, concurrency))
            if held is None or result["p50_ms"] < held["p50_ms"]:
                best[(variant, concurrency)] = result
            print(
                f"round {round_no} {variant:6} c={concurrency:<3} {result['rps']:.0f} rps "
                f"p50 {result['p50_ms']:.3f} ms p99 {result['p99_ms']:.3f} ms",
                flush=True,
            )
    finally:
        gateway.terminate()
        await gateway.wait()


def _write(best: dict[tuple[str, int], dict[str, float]], seconds: float, rounds: int) -> None:
    rows: list[dict[str, Any]] = []
    lines = [
        "# Tenancy overhead (bench/tenancy_overhead.py)",
        "",
        f"{os.cpu_count()} cores; zero-latency simulator; real redis-server on 127.0.0.1; "
        f"{seconds} s per point, best of {rounds} alternating rounds (lowest p50); load "
        "generator, simulator, Redis and gateway share the cores. Budget: redis adds "
        f"<= {BUDGET_MS} ms p50 at concurrency 16.",
        "",
        "| concurrency | variant | rps | p50 ms | p99 ms | added p50 ms vs off |",
        "|---|---|---|---|---|---|",
    ]
    for concurrency in (1, 16):
        base = best[("off", concurrency)]
        for variant in VARIANTS:
            r = best[(variant, concurrency)]
            added = r["p50_ms"] - base["p50_ms"]
            rows.append(
                {"variant": variant, "concurrency": concurrency, **r, "added_p50_ms": added}
            )
            lines.append(
                f"| {concurrency} | {variant} | {r['rps']:.0f} | {r['p50_ms']:.3f} "
                f"| {r['p99_ms']:.3f} | {added:+.3f} |"
            )
    added16 = best[("redis", 16)]["p50_ms"] - best[("off", 16)]["p50_ms"]
    verdict = "within" if added16 <= BUDGET_MS else "OVER"
    lines += ["", f"redis at concurrency 16: {added16:+.3f} ms p50, {verdict} the budget."]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tenancy.json").write_text(json.dumps(rows, indent=2) + "\n")
    (RESULTS / "tenancy.md").write_text("\n".join(lines) + "\n" + _micro_section())
    print(f"wrote {RESULTS / 'tenancy.md'}")


async def micro(argv: list[str]) -> None:
    from switchman.api.gatewayconfig import GatewayConfig
    from switchman.api.tenancy import Redis
    from switchman.gateway.telemetry.metrics import Metrics
    from switchman.gateway.tenancy.admission import Tenancy

    seconds = float(argv[0]) if argv else 2.0
    label = argv[1] if len(argv) > 1 else "current"
    measured: dict[str, dict[str, float]] = {}
    workdir = Path(tempfile.mkdtemp(prefix="switchman-bench-tenancy-micro-"))
    key = new_key()
    redis, redis_url = await _start_redis(workdir)
    try:
        synced = "sync_s" in Redis.model_fields  # an older checkout: strict only
        for variant in ("local", "strict", "synced") if synced else ("local", "strict"):
            url = None if variant == "local" else redis_url
            config = _config(1, workdir, key, url, 0 if variant == "strict" and synced else None)
            parsed = GatewayConfig.model_validate(config)
            tenancy = Tenancy(Metrics(), {})
            tenancy.configure(parsed.tenancy)
            await _micro_run(tenancy, parsed.models[0], key, 0.3)  # warm: scripts, connections
            cpu, wall = time.process_time(), time.monotonic()
            done = await _micro_run(tenancy, parsed.models[0], key, seconds)
            await tenancy.close()  # the last bills and deltas are part of the cost
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            print(
                f"{variant:7} {done:7d} requests  {cpu / done * 1e6:7.1f} us CPU/request  "
                f"{done / wall:8.0f} requests/s",
                flush=True,
            )
            measured[variant] = {"requests": done, "cpu_us": cpu / done * 1e6, "rps": done / wall}
        cpu, wall = time.process_time(), time.monotonic()
        done = await _micro_run(None, None, key, seconds)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
        print(f"harness {done:7d} requests  {cpu / done * 1e6:7.1f} us CPU/request", flush=True)
        measured["harness"] = {"requests": done, "cpu_us": cpu / done * 1e6, "rps": done / wall}
    finally:
        redis.terminate()
        await redis.wait()
    RESULTS.mkdir(exist_ok=True)
    found = json.loads(MICRO.read_text()) if MICRO.exists() else {}
    found[label] = {"seconds": seconds, "cores": os.cpu_count(), "variants": measured}
    MICRO.write_text(json.dumps(found, indent=2) + "\n")
    md = RESULTS / "tenancy.md"
    text = md.read_text() if md.exists() else "# Tenancy overhead (bench/tenancy_overhead.py)\n"
    md.write_text(text.split("\n" + MICRO_HEADING)[0].rstrip("\n") + "\n" + _micro_section())
    print(f"wrote {MICRO} and {md}")


def _micro_section() -> str:
    """tenancy.md's section of the micro results (every label measured)."""
    if not MICRO.exists():
        return ""
    found = json.loads(MICRO.read_text())
    lines = [
        "",
        MICRO_HEADING,
        "",
        "`python -m bench.tenancy_overhead micro SECONDS LABEL`: key lookup + `Tenancy.admit` + "
        "`Ticket.settle` (and strict mode's settle task, synchronised mode's background syncs, "
        "the final flush), 16 requests at a time, in one process against a real redis-server "
        "on 127.0.0.1; CPU is the process's `time.process_time()` per request (Redis's own CPU "
        "not counted). `before`: the same script on the checkout before issue 15's tenancy "
        "work (strict only: it had no sync). `harness`: the same loop with nothing in it (the "
        "16 coroutines gathered per round); *net* is a variant less its run's harness, tenancy's "
        "own CPU (runs before the harness row existed show none).",
        "",
        "| checkout | variant | CPU µs / request | net µs | requests/s |",
        "|---|---|---|---|---|",
    ]
    for label, run in found.items():
        harness = run["variants"].get("harness")
        for variant, r in run["variants"].items():
            net = (
                ""
                if harness is None or variant == "harness"
                else f"{r['cpu_us'] - harness['cpu_us']:.1f}"
            )
            lines.append(f"| {label} | {variant} | {r['cpu_us']:.1f} | {net} | {r['rps']:.0f} |")
    return "\n".join(lines) + "\n"


async def _micro_run(tenancy: Any, model: Any, key: str, seconds: float) -> int:
    """Requests through tenancy alone, 16 at a time, for ``seconds``; how many (``tenancy``
    None: the loop alone, the harness)."""
    from switchman.gateway.providers.exchange import Usage

    usage = Usage(prompt_tokens=12, completion_tokens=20)

    async def one() -> None:
        if tenancy is None:
            return
        tenant = tenancy.tenant_of(key)
        assert tenant is not None
        ticket, _ = await tenancy.admit(tenant, "m", True, [model], (30, 20))
        ticket.settle("m", model, usage, 4.2e-5)

    done = 0
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        await asyncio.gather(*(one() for _ in range(16)))
        await asyncio.sleep(0)  # let settle tasks and the sync run
        done += 16
    return done


if __name__ == "__main__":
    if sys.argv[1:2] == ["micro"]:
        asyncio.run(micro(sys.argv[2:]))
    else:
        asyncio.run(main(sys.argv[1:]))
