"""Closed-loop HTTP load with ``wrk`` (C, one thread): POST bodies from a Lua script, results as
JSON.

Used by ``bench.compare`` and ``bench.memory``. A Python load generator costs as much CPU per
request as the servers it measures, so on a small machine it would measure itself; wrk needs a
few microseconds per request. ``run`` writes a Lua script that sets the method, body and
headers and prints one JSON line from ``done()`` (requests, errors by kind, latency
percentiles in microseconds over every request), and parses it. Latency is to the last byte of
each response. wrk is the Debian ``wrk`` package (``bench/setup.sh`` installs it).

With ``rate`` the load is paced instead of closed: each connection waits a random 0 to 2x
(``concurrency`` / ``rate``) seconds (whole milliseconds, wrk's unit) after each answer before
it sends the next, so the connections drift apart and the server sees about ``rate`` requests/s
arriving independently rather than the next request the moment an answer leaves. That measures
the latency a server adds under a load it can carry; a closed loop measures it saturated, where
the latency is mostly queueing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\n@@{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,'
    .. '"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max))
end
"""


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def script(body: bytes, headers: dict[str, str], pace_ms: int | None = None) -> str:
    """The Lua script wrk runs: POST ``body`` with ``headers``, report JSON at the end; with
    ``pace_ms``, wait a random 0 to 2 x ``pace_ms`` ms between an answer and the next request."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    for name, value in {"Content-Type": "application/json", **headers}.items():
        lines.append(f"wrk.headers[ {_lua_string(name)} ] = {_lua_string(value)}")
    if pace_ms is not None:
        lines.append(f"delay = function() return math.random(0, {2 * pace_ms}) end")
    return "\n".join(lines) + "\n" + _DONE


def pace_ms(concurrency: int, rate: float) -> int:
    """The mean wait per connection (ms) for ``concurrency`` connections to offer ``rate``
    requests/s (the answers' own latency, small under such a load, comes on top)."""
    return max(1, round(concurrency * 1000 / rate))


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    seconds: float,
    headers: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    rate: float | None = None,
) -> dict[str, Any]:
    """Drive ``url`` with ``concurrency`` connections for ``seconds`` (paced to about ``rate``
    requests/s when given); wrk's summary as a dict plus ``rps``, ``errors`` (non-2xx answers,
    socket errors and timeouts) and ``*_ms``."""
    if not available():
        raise RuntimeError("wrk is not installed: run `bash bench/setup.sh` (make bench does)")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        pace = pace_ms(concurrency, rate) if rate else None
        handle.write(script(body, headers or {}, pace))
        lua = handle.name
    try:
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(seconds, 1.0):.0f}s",
                f"--timeout={timeout_s:.0f}s",
                "-s",
                lua,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + timeout_s + 30,
            check=False,
        )
    finally:
        Path(lua).unlink(missing_ok=True)
    marker = out.stdout.rfind("@@")
    if out.returncode != 0 or marker < 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")
    result: dict[str, Any] = json.loads(out.stdout[marker + 2 :].splitlines()[0])
    seconds_run = result["duration_us"] / 1e6
    errors = result["status_errors"] + result["socket_errors"] + result["timeouts"]
    result["errors"] = errors
    result["rps"] = (result["requests"] - errors) / seconds_run if seconds_run else 0.0
    for key in ("p50", "p90", "p99", "mean", "max"):
        result[f"{key}_ms"] = result[f"{key}_us"] / 1000
    return result
