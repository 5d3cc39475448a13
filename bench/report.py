"""Writes ``bench.compare``'s results: JSON (everything), a markdown table with the targets the
issue sets, and a PNG of latency and throughput against concurrency per target.

``added`` derives the per-point comparisons (added p50/p99 against ``direct``); ``checks``
evaluates the targets from the same run; ``write`` renders all three files. The PNG needs
matplotlib (the ``bench`` extra); without it the PNG is skipped with a note.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Point = dict[str, Any]


def _index(results: dict[str, Any]) -> dict[tuple[str, str, int], Point]:
    return {(p["target"], p["kind"], p["concurrency"]): p for p in results["points"]}


def added(results: dict[str, Any]) -> None:
    """Add ``added_p50_ms``/``added_p99_ms`` (against ``direct`` at the same point)."""
    points = _index(results)
    for (_, kind, concurrency), point in points.items():
        base = points.get(("direct", kind, concurrency))
        if base is not None:
            point["added_p50_ms"] = point["p50_ms"] - base["p50_ms"]
            point["added_p99_ms"] = point["p99_ms"] - base["p99_ms"]


def _find(
    points: dict[tuple[str, str, int], Point], prefix: str, kind: str, c: int
) -> Point | None:
    for (name, k, concurrency), point in points.items():
        if name.startswith(prefix) and k == kind and concurrency == c:
            return point
    return None


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and whether this run met it."""
    points = _index(results)
    n = results["settings"]["workers"]
    out: list[dict[str, Any]] = []

    def check(what: str, value: float | None, goal: str, ok: bool | None) -> None:
        out.append({"target": what, "value": value, "goal": goal, "met": ok})

    for c in (16, 64):
        sw = points.get(("switchman-1", "chat", c))
        lite = points.get(("litellm-1", "chat", c))
        relay = points.get(("relay", "chat", c))
        if sw and lite:
            ratio = sw["rps"] / max(lite["rps"], 1e-9)
            check(f"rps vs LiteLLM (1 worker each), c={c}", ratio, ">= 50x", ratio >= 50)
        if sw and relay:
            ratio = sw["rps"] / relay["rps"]
            check(f"rps vs relay, c={c}", ratio, ">= 0.70", ratio >= 0.70)
    for c, goal in ((1, 0.5), (64, 2.0)):
        sw = points.get(("switchman-1", "chat", c))
        if sw and "added_p50_ms" in sw:
            value = sw["added_p50_ms"]
            check(f"added p50 ms, c={c}", value, f"<= {goal}", value <= goal)
    _paced_checks(points, results["settings"], check)
    sw = points.get(("switchman-1", "chat-stream", 16))
    relay = points.get(("relay", "chat-stream", 16))
    if sw and relay:
        value = sw["p50_ms"] - relay["p50_ms"]
        check("stream time-to-last-byte p50 minus relay's, c=16 (ms)", value, "<= 1", value <= 1)
    for c in (16, 64):
        one = points.get(("switchman-1", "chat", c))
        many = points.get((f"switchman-{n}", "chat", c))
        if one and many and n > 1:
            ratio = many["rps"] / one["rps"]
            check(
                f"{n} workers vs 1, c={c}",
                ratio,
                ">= 1.7 (needs a free core for wrk)",
                ratio >= 1.7,
            )
    return out


def _paced_checks(
    points: dict[tuple[str, str, int], Point],
    settings: dict[str, Any],
    check: Callable[[str, float | None, str, bool | None], None],
) -> None:
    """The latency targets at a load every proxy carries (``compare``'s paced points)."""

    def paced(target: str, kind: str) -> Point | None:
        found = [p for (n, k, _), p in points.items() if n == target and k == kind]
        return found[0] if found else None

    rate = f"paced at {settings.get('paced', 0):,.0f} rps (not saturated)"
    sw = paced("switchman-1", "chat-paced")
    if sw and "added_p50_ms" in sw:
        value = sw["added_p50_ms"]
        c = sw["concurrency"]
        check(f"added p50 ms, c={c} {rate}", value, "<= 2.0", value <= 2.0)
    sw, relay = paced("switchman-1", "chat-stream-paced"), paced("relay", "chat-stream-paced")
    if sw and relay:
        value = sw["p50_ms"] - relay["p50_ms"]
        c = sw["concurrency"]
        check(f"stream p50 minus relay's, c={c} {rate} (ms)", value, "<= 1", value <= 1)


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    busy = [p.get("machine_busy", 0) for p in results["points"]]
    lines = [
        "# Side by side (bench/compare.py)",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, kernel {m['kernel']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + ".",
        f"Load average at start {_fmt(list(m['load_average_at_start']))}, at end "
        f"{_fmt(list(m.get('load_average_at_end', [])))}; machine busy during points: median "
        f"{sorted(busy)[len(busy) // 2]:.0%} (everything on the box, the measured servers and "
        "wrk included).",
        f"Settings: {results['settings']['seconds']} s per point, median of "
        f"{results['settings']['rounds']} rounds (targets in rotated order per round); wrk, one "
        "thread; latency is to the last byte (for streams an upper bound of time to first "
        "token: the fake upstream sends the whole stream at once).",
    ]
    if results["settings"].get("note"):
        lines.append(f"Note: {results['settings']['note']}")
    if results.get("collector"):
        lines.append(f"OTLP collector received: {results['collector']}.")
    lines += ["", "## Targets", "", "| target | value | goal | met |", "|---|---|---|---|"]
    for c in checks(results):
        met = "—" if c["met"] is None else ("yes" if c["met"] else "**no**")
        lines.append(f"| {c['target']} | {_fmt(c['value'])} | {c['goal']} | {met} |")
    for kind in sorted({p["kind"] for p in results["points"]}):
        lines += [
            "",
            f"## {kind}",
            "",
            "| target | c | rps | p50 ms | p99 ms | added p50 ms | added p99 ms "
            "| CPU µs/req | CPU cores | RSS MB | errors |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        rows = [p for p in results["points"] if p["kind"] == kind]
        for p in sorted(rows, key=lambda p: (p["concurrency"], p["target"])):
            lines.append(
                f"| {p['target']} | {p['concurrency']} | {p['rps']:,.0f} | {_fmt(p['p50_ms'])} "
                f"| {_fmt(p['p99_ms'])} | {_fmt(p.get('added_p50_ms'))} "
                f"| {_fmt(p.get('added_p99_ms'))} | {_fmt(p.get('cpu_us_per_request'), 0)} "
                f"| {_fmt(p.get('cpu_cores'))} | {_fmt(p.get('rss_mb'), 0)} | {p['errors']} |"
            )
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> bool:
    """Latency p50 and requests/s against concurrency, one line per target, per kind."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    kinds = sorted({p["kind"] for p in results["points"]})
    fig, axes = plt.subplots(2, len(kinds), figsize=(6 * len(kinds), 9), squeeze=False)
    for col, kind in enumerate(kinds):
        names = sorted({p["target"] for p in results["points"] if p["kind"] == kind})
        for name in names:
            rows = sorted(
                (p for p in results["points"] if p["kind"] == kind and p["target"] == name),
                key=lambda p: p["concurrency"],
            )
            xs = [p["concurrency"] for p in rows]
            axes[0][col].plot(xs, [p["p50_ms"] for p in rows], marker="o", label=name)
            axes[1][col].plot(xs, [p["rps"] for p in rows], marker="o", label=name)
        for row, label in ((0, "p50 latency (ms)"), (1, "requests/s")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("concurrency")
            ax.set_ylabel(label)
            ax.set_title(f"{kind}: {label}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write(results: dict[str, Any], out: Path, stem: str = "compare") -> None:
    out.mkdir(parents=True, exist_ok=True)
    results["checks"] = checks(results)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = markdown(results)
    if plot(results, out / f"{stem}.png"):
        text += f"\n![latency and throughput against concurrency]({stem}.png)\n"
    else:
        text += "\n(PNG skipped: matplotlib is not installed; `pip install -e '.[bench]'`.)\n"
    (out / f"{stem}.md").write_text(text)
    print(f"wrote {out / stem}.md/.json")
