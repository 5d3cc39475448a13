"""The side-by-side benchmark's harness runs end to end (``python -m bench compare``), briefly.

Not a performance test (no figure is judged here; ``make bench`` measures): one short round
of the fake upstream (nginx), the relay and Switchman with every production feature on, driven
by wrk, must produce results for every point without an error, CPU and memory figures for the
servers, spans at the OTLP collector, the targets table and the markdown; the paced point
offers about the rate it was given (far below what the same connections do closed-loop).
LiteLLM is left out (its virtualenv is ``make bench``'s). Needs wrk and nginx (``bash
bench/setup.sh tools``, run by ``make test-integration``). Bounded: about 25 s.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_compare_runs_every_point_and_writes_its_results(tmp_path: Path) -> None:
    missing = [
        tool for tool in ("wrk", "nginx") if shutil.which(tool, path="/usr/sbin:/usr/bin") is None
    ]
    assert not missing, f"{missing} not installed: run `bash bench/setup.sh tools`"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench",
        "compare",
        *("--seconds", "1", "--rounds", "1", "--concurrency", "1", "4", "--workers", "2"),
        *("--targets", "direct", "relay", "switchman-1", "--out", str(tmp_path)),
        *("--paced", "200", "--paced-concurrency", "4", "--paced-stream-concurrency", "4"),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(proc.communicate(), 180)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, output.decode()[-3000:]
    results = json.loads((tmp_path / "compare.json").read_text())
    points = {(p["target"], p["kind"], p["concurrency"]): p for p in results["points"]}
    targets = ("direct", "relay", "switchman-1")
    expected = {
        (target, kind, c) for target in targets for kind in ("chat", "chat-stream") for c in (1, 4)
    }
    paced = {(target, kind + "-paced", 4) for target in targets for kind in ("chat", "chat-stream")}
    assert set(points) == expected | paced
    for key, point in points.items():
        assert point["requests"] > 0, key
        assert point["errors"] == 0, key
        assert point["rps"] > 0, key
        assert point["p50_ms"] <= point["p99_ms"], key
        if not (key[0] == "direct" and key[1].endswith("-paced")):  # nginx's 200: < a jiffy
            assert point["cpu_us_per_request"] > 0, key
        assert point["rss_mb"] > 1, key
        if key[0] != "direct":
            assert "added_p50_ms" in point, key
    assert results["collector"]["spans"] > 0  # 10% of the gateway's requests were exported
    assert results["machine"]["cores"] >= 1
    assert results["settings"]["tenancy"] == "redis"  # every request authenticated and admitted
    checks = {c["target"] for c in results["checks"]}
    assert "rps vs relay, c=16" not in checks  # only concurrencies that ran are judged
    assert "added p50 ms, c=4 paced at 200 rps (not saturated)" in checks
    assert "stream p50 minus relay's, c=4 paced at 200 rps (not saturated) (ms)" in checks
    slow, fast = points[("direct", "chat-paced", 4)], points[("direct", "chat", 4)]
    assert 100 <= slow["rps"] <= 300  # 4 connections, each waiting 20 ms on average
    assert fast["rps"] > 4 * slow["rps"]
    markdown = (tmp_path / "compare.md").read_text()
    assert "| switchman-1 | 4 |" in markdown
    assert "## chat-stream" in markdown
