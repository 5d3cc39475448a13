"""Fixtures for the integration tier: a real gateway app on 127.0.0.1 in this process.

``start_gateway(config)`` writes a GatewayConfig (dict) to a temporary file, loads it, and serves
it on a free port through aiohttp's TestServer; the returned ``RunningGateway`` exposes the URL,
the config path (rewrite it to test hot reload), the watcher and the metrics.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from switchman.gateway.app import create_app
from switchman.gateway.config import ConfigWatcher
from switchman.gateway.metrics import Metrics


@dataclass
class RunningGateway:
    url: str
    config_path: Path
    watcher: ConfigWatcher
    metrics: Metrics
    server: TestServer

    @property
    def base_url(self) -> str:
        """What an OpenAI SDK client takes as ``base_url``."""
        return f"{self.url}/v1"

    def write_config(self, config: dict[str, Any]) -> None:
        """Replace the config file atomically (as a ConfigMap update does)."""
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(config))
        tmp.replace(self.config_path)


StartGateway = Callable[..., Awaitable[RunningGateway]]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[StartGateway]:
    servers: list[TestServer] = []

    async def start(
        config: dict[str, Any], *, environ: dict[str, str] | None = None, interval: float = 0.05
    ) -> RunningGateway:
        path = tmp_path / f"gateway-{len(servers)}.json"
        path.write_text(json.dumps(config))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ=environ or {}, interval=interval)
        watcher.load_initial()
        server = TestServer(create_app(watcher, metrics), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return RunningGateway(f"http://127.0.0.1:{server.port}", path, watcher, metrics, server)

    yield start
    for server in servers:
        await server.close()
