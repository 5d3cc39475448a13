"""Schemathesis against the gateway's own ``/openapi.json``: generated valid and invalid requests
for every documented operation never get a 5xx, and every error is OpenAI-shaped JSON
(Anthropic-shaped on the Anthropic Messages endpoints).

The gateway (in front of a healthy simulator) runs in a background thread with its own event
loop, served by ``listener.GatewayRunner`` as in production; schemathesis calls it over HTTP.
Bounded for CI: ``EXAMPLES`` cases per operation and generation mode (positive and negative),
no example database, no deadline.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings

from switchman.gateway import openapi
from switchman.gateway.app import create_app
from switchman.gateway.listener import GatewayRunner
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

EXAMPLES = 60
CALLS: list[tuple[str, int]] = []  # (operation, status) of every case sent
schema = schemathesis.openapi.from_dict(openapi.document())


class Background:
    """A simulator and a gateway served from a thread of their own."""

    def __init__(self, workdir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.workdir = workdir
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._sim: RunningSim | None = None
        self._runner: web.AppRunner | None = None

    def __enter__(self) -> Background:
        self._thread.start()
        assert self._ready.wait(30), "the gateway did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        self._sim = await start(SimSettings(model="tiny", ttft_s=0.001, itl_s=0.0005))
        path = self.workdir / "gateway.json"
        config: dict[str, Any] = {
            "version": 1,
            "upstreams": [{"name": "sim", "base_url": f"{self._sim.url}/v1"}],
            "models": [{"name": "tiny", "upstream": "sim"}],
            "routes": [{"name": "auto", "candidates": ["tiny"]}],
        }
        path.write_text(json.dumps(config))
        watcher = ConfigWatcher(path, Metrics(), environ={})
        watcher.load_initial()
        self._runner = GatewayRunner(create_app(watcher, Metrics()), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._sim is not None:
            await self._sim.close()


@pytest.fixture(scope="module")
def gateway_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as workdir, Background(Path(workdir)) as background:
        yield background.url
    statuses = sorted({status for _, status in CALLS})
    print(f"\nschemathesis: {len(CALLS)} cases, statuses {statuses}, failures 0")
    assert len({operation for operation, _ in CALLS}) == len(list(schema.get_all_operations()))


def is_error_shaped(path: str, body: Any) -> bool:
    """OpenAI's envelope, or Anthropic's on the Anthropic Messages endpoints."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    if path.startswith("/v1/messages"):
        return body.get("type") == "error" and {"type", "message"} <= set(error)
    return {"message", "type", "param", "code"} <= set(error)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_every_error_is_openai_shaped(case: Any, gateway_url: str) -> None:
    response = case.call(base_url=gateway_url, timeout=20)
    CALLS.append((case.operation.label, response.status_code))

    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"][0].startswith("application/json")
        assert is_error_shaped(case.path, response.json()), response.text[:300]
