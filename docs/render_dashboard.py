"""Render docs/img/dashboard.png: the Grafana dashboard's own queries over a simulated run.

There is no Grafana here, so this is an honest stand-in for a screenshot: two simulators
(``small`` and ``large``, the demo's latency profiles and prices) and the gateway run in this
process; a real Prometheus scrapes the gateway's ``/metrics`` every second while mixed traffic
runs through a scripted timeline of incidents (a config reload, ``small`` down, an invalid config,
429s, cut streams); then every panel's PromQL, read from
``charts/switchman/dashboards/switchman-gateway.json``, is evaluated by that Prometheus and drawn
with matplotlib in the dashboard's own grid, under the panels' own titles. Grafana's variables are
"All" (``.*``), ``$__rate_interval`` is 10s, ``$__range`` the run's length ("today" is the run).

Run by hand, not by the tests. Needs matplotlib (``.venv/bin/pip install matplotlib``, not a
project dependency) and a Prometheus server binary on PATH (Debian: ``apt-get install
prometheus``)::

    .venv/bin/python docs/render_dashboard.py [--seconds 80] [--out docs/img/dashboard.png]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "charts/switchman/dashboards/switchman-gateway.json"
RATE_INTERVAL = "10s"
WORKERS = 6

SMALL = SimSettings(model="small", ttft_s=0.02, itl_s=0.01, output_tokens=24, seed=1)
LARGE = SimSettings(model="large", ttft_s=0.12, itl_s=0.03, output_tokens=24, seed=2)

CONFIG = """\
version: 1
upstreams:
  - name: sim-small
    kind: openai
    base_url: {small}/v1
    timeouts: {{first_byte_s: 2, idle_s: 2, total_s: 30}}
  - name: sim-large
    kind: openai
    base_url: {large}/v1
    timeouts: {{first_byte_s: 2, idle_s: 2, total_s: 30}}
models:
  - name: small
    upstream: sim-small
    price: {{input_per_mtok: 0.10, output_per_mtok: 0.40}}
  - name: large
    upstream: sim-large
    price: {{input_per_mtok: 2.50, output_per_mtok: 10.00}}
routes:
  - name: auto
    candidates: [small, large]
{extra}"""
EXTRA_ROUTE = "  - name: premium\n    candidates: [large, small]\n"

# (start fraction, end fraction, label) of the incidents, for the shading and the header.
INCIDENTS = [(0.25, 0.47, "small down"), (0.62, 0.76, "small 429s"), (0.82, 0.9, "large cuts")]

# Grafana's classic palette and named colours.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0"]
NAMED = {"green": "#73BF69", "red": "#F2495C", "blue": "#5794F2"}
BG, PANEL, BORDER, TEXT, MUTED = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e"


# ---- the run


class Run:
    """Simulators, gateway and Prometheus, and the traffic with its timeline."""

    def __init__(self, seconds: float, workdir: Path) -> None:
        self.seconds = seconds
        self.workdir = workdir
        self.rng = random.Random(7)
        self.sims: list[RunningSim] = []
        self.runner: web.AppRunner | None = None
        self.prometheus: asyncio.subprocess.Process | None = None
        self.prom_url = ""
        self.config = workdir / "gateway.yaml"
        self.started = 0.0

    async def setup(self) -> None:
        small, large = await start(SMALL), await start(LARGE)
        self.sims = [small, large]
        self.write_config("")
        metrics = Metrics()
        watcher = ConfigWatcher(self.config, metrics, environ={}, interval=0.5)
        watcher.load_initial()
        self.runner = web.AppRunner(create_app(watcher, metrics), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.gateway = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        await self.start_prometheus(self.gateway.removeprefix("http://"))

    def write_config(self, extra: str, *, broken: bool = False) -> None:
        small, large = (sim.url for sim in self.sims)
        text = CONFIG.format(small=small, large=large, extra=extra)
        if broken:  # a route naming a model that does not exist: rejected at load
            text += "  - name: typo\n    candidates: [smal]\n"
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.config)

    async def start_prometheus(self, target: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise SystemExit("prometheus not on PATH: apt-get install prometheus")
        port = _free_port()
        config = self.workdir / "prometheus.yml"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "switchman",
                            "static_configs": [
                                {"targets": [target], "labels": {"namespace": "demo"}}
                            ],
                        }
                    ],
                }
            )
        )
        self.prometheus = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.prom_url = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(self.prom_url + "/-/ready") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit("prometheus did not become ready")

    async def close(self) -> None:
        if self.prometheus is not None and self.prometheus.returncode is None:
            self.prometheus.terminate()
            await self.prometheus.wait()
        if self.runner is not None:
            await self.runner.cleanup()
        for sim in self.sims:
            await sim.close()

    async def traffic(self) -> tuple[float, float]:
        """Drive the workers and the timeline; return the (start, end) Unix times to show."""
        await asyncio.sleep(3)  # a few empty scrapes first, as after a deploy
        self.started = time.time()
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as http:
            workers = [asyncio.create_task(self.worker(http, stop)) for _ in range(WORKERS)]
            await self.timeline(http)
            stop.set()
            await asyncio.gather(*workers)
        await asyncio.sleep(3)  # the last scrapes
        return self.started, self.started + self.seconds

    async def timeline(self, http: aiohttp.ClientSession) -> None:
        small, large = self.sims
        s = self.seconds

        async def faults(sim: RunningSim, **changes: Any) -> None:
            async with http.post(sim.url + "/admin/faults", json=changes) as response:
                response.raise_for_status()

        steps: list[tuple[float, Callable[[], Awaitable[None] | None]]] = [
            (0.12, lambda: self.write_config(EXTRA_ROUTE)),
            (INCIDENTS[0][0], lambda: faults(small, down=True)),
            (0.36, lambda: self.write_config(EXTRA_ROUTE, broken=True)),
            # A second bad edit: the first increment of a new counter series is invisible to
            # increase() (the series starts at 1), so one invalid reload alone would not show.
            (0.42, lambda: self.write_config(EXTRA_ROUTE + "  # still wrong\n", broken=True)),
            (INCIDENTS[0][1], lambda: faults(small, down=False)),
            (0.55, lambda: self.write_config(EXTRA_ROUTE.replace("premium", "best"))),
            (INCIDENTS[1][0], lambda: faults(small, rate_limit_rate=0.6)),
            (INCIDENTS[1][1], lambda: faults(small, rate_limit_rate=0.0)),
            (INCIDENTS[2][0], lambda: faults(large, cut_after_tokens=5)),
            (INCIDENTS[2][1], lambda: faults(large, cut_after_tokens=None)),
        ]
        for at, action in steps:
            await asyncio.sleep(max(0.0, self.started + at * s - time.time()))
            result = action()
            if result is not None:
                await result
        await asyncio.sleep(max(0.0, self.started + s - time.time()))

    async def worker(self, http: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        kinds = [
            ("auto", True, 45),
            ("auto", False, 15),
            ("premium", True, 6),
            ("small", True, 14),
            ("large", True, 12),
            ("large", False, 5),
            ("gpt-5", False, 3),  # no such model: a client error
        ]
        weights = [k[2] for k in kinds]
        while not stop.is_set():
            model, stream, _ = self.rng.choices(kinds, weights)[0]
            words = " ".join(["word"] * self.rng.randint(20, 400))
            body: dict[str, Any] = {
                "model": model,
                "messages": [{"role": "user", "content": words}],
                "max_tokens": self.rng.randint(8, 48),
                "stream": stream,
            }
            if stream:
                body["stream_options"] = {"include_usage": True}
            try:
                async with http.post(self.gateway + "/v1/chat/completions", json=body) as r:
                    await r.read()
            except aiohttp.ClientError:
                pass  # a cut stream: the gateway counted it
            await asyncio.sleep(self.rng.uniform(0.0, 0.15))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---- the queries


def promql(expr: str, range_s: int) -> str:
    """A Grafana target's expression with the macros and "All" variables filled in."""
    expr = expr.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "1s")
    expr = expr.replace("$__range", f"{range_s}s")
    return re.sub(r"\$\{[^}]*\}|\$\w+", ".*", expr)


async def evaluate(prom: str, dashboard: dict[str, Any], t0: float, t1: float) -> dict[int, Any]:
    """Panel id → list of (target, result) from Prometheus, range or instant as the panel asks."""
    out: dict[int, Any] = {}
    async with aiohttp.ClientSession() as http:
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                continue
            results = []
            for target in panel["targets"]:
                query = promql(target["expr"], math.ceil(t1 - t0))
                if target.get("instant"):
                    url, params = "/api/v1/query", {"query": query, "time": f"{t1:.3f}"}
                else:
                    url = "/api/v1/query_range"
                    params = {"query": query, "start": f"{t0:.3f}", "end": f"{t1:.3f}", "step": "1"}
                async with http.get(prom + url, params=params) as response:
                    payload = await response.json()
                if payload.get("status") != "success":
                    raise SystemExit(f"{panel['title']}: {payload.get('error')}\n{query}")
                results.append((target, payload["data"]["result"]))
            out[panel["id"]] = results
    return out


# ---- the drawing


def legend(fmt: str, labels: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt) or "value"


def formatter(unit: str) -> Callable[[float, Any], str]:
    def fmt(v: float, _pos: Any = None) -> str:
        if unit == "percentunit":
            return f"{v * 100:.0f}%"
        if unit == "s":
            return f"{v * 1000:.0f} ms" if abs(v) < 1 else f"{v:.2g} s"
        if unit == "currencyUSD":
            return f"${v:.2f}" if abs(v) < 100 else f"${v:,.0f}"
        if unit == "reqps":
            return f"{v:.3g} req/s" if v else "0"
        return f"{v:.3g}"

    return fmt


def draw(dashboard: dict[str, Any], data: dict[int, Any], t0: float, t1: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.ticker import FuncFormatter

    panels = dashboard["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    col_in, row_in, header_in = 0.92, 0.36, 0.9
    width, height = 24 * col_in, rows * row_in + header_in
    fig = plt.figure(figsize=(width, height), facecolor=BG)
    plt.rcParams.update({"font.size": 8.5, "text.color": TEXT, "axes.labelcolor": TEXT})

    def box(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        """Grid units → figure fraction (left, bottom, width, height)."""
        top = header_in + y * row_in
        return (
            x * col_in / width,
            1 - (top + h * row_in) / height,
            w * col_in / width,
            h * row_in / height,
        )

    fig.text(
        0.006,
        1 - 0.32 / height,
        dashboard["title"],
        fontsize=17,
        weight="bold",
        va="center",
    )
    seconds = t1 - t0
    timeline = ", ".join(
        f"{label} {a * seconds:.0f}-{b * seconds:.0f}s" for a, b, label in INCIDENTS
    )
    fig.text(
        0.006,
        1 - 0.68 / height,
        "Rendered from this dashboard's PromQL, evaluated by Prometheus over a "
        f"{seconds:.0f}-second simulated run (scrape 1s, $__rate_interval {RATE_INTERVAL}); "
        f"not a Grafana screenshot.  Shaded: {timeline}.  Config reloads at "
        f"{0.12 * seconds:.0f}s (ok), {0.36 * seconds:.0f}s and {0.42 * seconds:.0f}s (invalid), "
        f"{0.55 * seconds:.0f}s (ok).",
        fontsize=10,
        color=MUTED,
        va="center",
    )
    for panel in panels:
        pos = panel["gridPos"]
        left, bottom, w, h = box(pos["x"], pos["y"], pos["w"], pos["h"])
        if panel["type"] == "row":
            fig.text(left + 0.003, bottom + h / 2, panel["title"], fontsize=12, weight="bold")
            continue
        pad_x, pad_y = 0.06 / width, 0.06 / height
        fig.patches.append(
            FancyBboxPatch(
                (left + pad_x, bottom + pad_y),
                w - 2 * pad_x,
                h - 2 * pad_y,
                boxstyle="round,pad=0,rounding_size=0.002",
                transform=fig.transFigure,
                facecolor=PANEL,
                edgecolor=BORDER,
                linewidth=0.8,
                zorder=-1,  # under the axes
            )
        )
        fig.text(
            left + 3 * pad_x,
            bottom + h - 4.2 * pad_y,
            panel["title"],
            fontsize=10,
            weight="bold",
            va="center",
        )
        results = data[panel["id"]]
        if panel["type"] == "stat":
            _stat(fig, panel, results, (left, bottom, w, h))
        else:
            _timeseries(fig, panel, results, (left, bottom, w, h), t0, t1, FuncFormatter)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72, facecolor=BG)
    print(f"wrote {out} ({fig.get_size_inches()[0] * 72:.0f}x{height * 72:.0f} px)")


def _colors(panel: dict[str, Any]) -> dict[str, str]:
    named = {}
    for override in panel["fieldConfig"].get("overrides", []):
        if override["matcher"]["id"] == "byName":
            for prop in override["properties"]:
                if prop["id"] == "color":
                    fixed = prop["value"]["fixedColor"]
                    named[override["matcher"]["options"]] = NAMED.get(fixed, fixed)
    return named


def _timeseries(
    fig: Any,
    panel: dict[str, Any],
    results: list[Any],
    rect: tuple[float, float, float, float],
    t0: float,
    t1: float,
    formatter_cls: Any,
) -> None:
    left, bottom, w, h = rect
    _, height = fig.get_size_inches()
    defaults = panel["fieldConfig"]["defaults"]
    custom = defaults.get("custom", {})
    stacked = custom.get("stacking", {}).get("mode") == "normal"
    bars = custom.get("drawStyle") == "bars"
    series = []
    for target, result in results:
        for item in result:
            points = {round(float(ts) - t0): float(v) for ts, v in item["values"]}
            series.append((legend(target.get("legendFormat", ""), item["metric"]), points))
    series.sort(key=lambda s: s[0])
    n = max(len(series), 1)
    ncol = 4 if w > 0.45 else 3
    legend_h = (math.ceil(n / ncol) * 0.17 + 0.08) / height
    ax = fig.add_axes(
        (left + 0.05, bottom + legend_h + 0.3 / height, w - 0.062, h - legend_h - 0.72 / height)
    )
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.grid(color=BORDER, linewidth=0.6)
    ax.tick_params(colors=MUTED, labelsize=8, length=0)
    xs = list(range(round(t1 - t0) + 1))
    for a, b, _ in INCIDENTS:
        ax.axvspan(a * (t1 - t0), b * (t1 - t0), color="#F2495C", alpha=0.07, linewidth=0)
    named = _colors(panel)
    # With fixed colours (ok green, error red), keep the others clear of green and red.
    palette = iter([c for c in PALETTE if not named or c not in ("#7EB26D", "#E24D42")] * 4)
    colors = [named.get(name) or next(palette) for name, _ in series]
    if not series:
        ax.text(0.5, 0.5, "No data", transform=ax.transAxes, ha="center", color=MUTED, fontsize=11)
    elif bars:
        base = [0.0] * len(xs)
        for (name, points), color in zip(series, colors, strict=True):
            ys = [points.get(x, 0.0) for x in xs]
            ax.bar(xs, ys, bottom=base, width=1.0, color=color, label=name, alpha=0.85)
            base = [b + y for b, y in zip(base, ys, strict=True)]
    elif stacked:
        ys = [[points.get(x, 0.0) for x in xs] for _, points in series]
        ax.stackplot(xs, ys, colors=colors, labels=[name for name, _ in series], alpha=0.3)
        total = [0.0] * len(xs)
        for y, color in zip(ys, colors, strict=True):
            total = [t + v for t, v in zip(total, y, strict=True)]
            ax.plot(xs, total, color=color, linewidth=1.1)
    else:
        for (name, points), color in zip(series, colors, strict=True):
            ys = [points.get(x, math.nan) for x in xs]
            ax.plot(xs, ys, color=color, linewidth=1.4, label=name)
    ax.set_xlim(0, xs[-1])
    ax.set_ylim(bottom=defaults.get("min", 0))
    if "max" in defaults:
        ax.set_ylim(top=defaults["max"] * 1.02)
    ax.yaxis.set_major_formatter(formatter_cls(formatter(defaults.get("unit", "short"))))
    ax.xaxis.set_major_formatter(formatter_cls(lambda v, _p: f"{v:.0f}s"))
    ax.locator_params(axis="y", nbins=4)
    if series:
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(0, -0.1),
            ncol=ncol,
            frameon=False,
            fontsize=8,
            labelcolor=TEXT,
            handlelength=1.2,
            columnspacing=1.2,
            borderaxespad=0,
        )


def _stat(fig: Any, panel: dict[str, Any], results: list[Any], rect: Any) -> None:
    left, bottom, w, h = rect
    defaults = panel["fieldConfig"]["defaults"]
    mappings = {}
    for mapping in defaults.get("mappings", []):
        for value, shown in mapping.get("options", {}).items():
            mappings[float(value)] = (shown["text"], NAMED.get(shown["color"], shown["color"]))
    values = [
        (legend(target.get("legendFormat", ""), item["metric"]), float(item["value"][1]))
        for target, result in results
        for item in result
    ]
    if not values:
        fig.text(left + w / 2, bottom + h / 2, "No data", ha="center", color=MUTED, fontsize=14)
        return
    step = (h - 0.06) / len(values)
    decimals = defaults.get("decimals")
    for i, (name, value) in enumerate(values):
        text, color = mappings.get(value, (None, NAMED["blue"]))
        if text is None:
            unit = defaults.get("unit", "short")
            text = (
                f"${value:,.{decimals if decimals is not None else 2}f}"
                if unit == "currencyUSD"
                else formatter(unit)(value)
            )
        y = bottom + h - 0.04 - step * (i + 0.55)
        fig.text(left + w / 2, y + step * 0.22, name, ha="center", color=MUTED, fontsize=9)
        fig.text(left + w / 2, y - step * 0.08, text, ha="center", va="center", fontsize=22)
        fig.texts[-1].set(weight="bold", color=color)


async def main(seconds: float, out: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    with tempfile.TemporaryDirectory(prefix="switchman-render-") as tmp:
        run = Run(seconds, Path(tmp))
        try:
            await run.setup()
            print(f"gateway {run.gateway}, prometheus {run.prom_url}: {seconds:.0f}s of traffic")
            t0, t1 = await run.traffic()
            data = await evaluate(run.prom_url, dashboard, t0, t1)
        finally:
            await run.close()
    draw(dashboard, data, t0, t1, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=80.0, help="traffic duration")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/img/dashboard.png")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.out))
