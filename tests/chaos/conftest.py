"""Fixtures for the chaos tier: a gateway in this process, and the figures every scenario adds.

``start_gateway(config)`` serves a GatewayConfig (dict) on 127.0.0.1 through aiohttp's test
server (the config file can be rewritten: ``write_config``); ``figures`` collects one row per
fault scenario and, when the session ends, writes them as JSON and as the Markdown table that
docs/reliability.md publishes (``build/chaos/figures.json`` and ``figures.md``, or the
directory ``SWITCHMAN_CHAOS_FIGURES`` names). The integration tier's misbehaving upstreams and
process helpers are imported from ``tests/integration``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = (
    ("fault", "fault"),
    ("requests", "client requests"),
    ("streams", "of them streamed"),
    ("client_errors", "client-visible errors"),
    ("corrupted", "corrupted or duplicated"),
    ("lost", "lost"),
    ("failed_attempts", "upstream attempts that failed (the fault, seen)"),
    ("upstream_per_request", "upstream requests per client request"),
    ("time_back_to_primary_s", "time back to primary (s)"),
    ("test", "test"),
)


@dataclass
class RunningGateway:
    url: str
    config_path: Path
    watcher: ConfigWatcher

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the config file atomically (as a ConfigMap update does)."""
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config))
        tmp.replace(self.config_path)

    async def attempts(self) -> tuple[float, float]:
        """Upstream attempts so far (every replica and model): all, and those that failed."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as r:
            text = await r.text()
        samples = [
            sample
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "switchman_upstream_attempts_total"
        ]
        failed = sum(s.value for s in samples if s.labels["outcome"] != "ok")
        return sum(s.value for s in samples), failed


StartGateway = Callable[[dict[str, Any]], Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[StartGateway]:
    servers: list[TestServer] = []

    async def start(config: dict[str, Any]) -> RunningGateway:
        path = tmp_path / f"gateway-{len(servers)}.json"
        path.write_text(json.dumps(config))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ={}, interval=0.05)
        watcher.load_initial()
        server = TestServer(create_app(watcher, metrics), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return RunningGateway(f"http://127.0.0.1:{server.port}", path, watcher)

    yield start
    for server in servers:
        await server.close()


def _table(rows: list[dict[str, Any]]) -> str:
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, rule]
    for row in rows:
        cells = ["-" if row.get(key) is None else str(row[key]) for key, _ in COLUMNS]
        cells[-1] = f"`{cells[-1]}`"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def figures() -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    yield rows
    if not rows:
        return
    out = Path(os.environ.get("SWITCHMAN_CHAOS_FIGURES") or ROOT / "build" / "chaos")
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "figures.md").write_text(_table(rows))
