"""Fixtures for the integration tier: a real gateway app on 127.0.0.1 in this process.

``start_gateway(config)`` writes a GatewayConfig (dict) to a temporary file, loads it, and serves
it on a free port through aiohttp's TestServer, with the ``tracing=`` and ``access_log=`` given
(none by default); the returned ``RunningGateway`` exposes the URL, the config path (rewrite it to
test hot reload), the watcher and the metrics. ``start_sim(**faults)`` starts a simulator serving
``tiny`` (5 ms to the first token, 1 ms between tokens) with those start-up faults. Gateways run
as processes: see ``processes``.

Every test must close the async OpenAI and Anthropic SDK clients it makes (``async with``):
``sdk_clients_closed`` fails one that does not. An unclosed client is closed from its ``__del__``
after the garbage collector has already closed its sockets, so that late close unregisters
whichever new connection has reused the descriptor number in the meantime, and a request on it
then waits for an answer that sits unread in its socket (a hang that took 1 run in 5 under load).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest
import redisproc
from aiohttp.test_utils import TestServer

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.accesslog import AccessLog
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.telemetry.tracing import Tracing
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.sim.faults import Faults
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings


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


@pytest.fixture(autouse=True)
def sdk_clients_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a test that leaves an async SDK client it made unclosed (see the module docstring)."""
    made: weakref.WeakSet[Any] = weakref.WeakSet()
    dropped: list[str] = []

    def check(name: str, http: Any) -> None:  # the client is gone: was its HTTP client closed?
        if not http.is_closed:
            dropped.append(name)

    for cls in (openai.AsyncOpenAI, anthropic.AsyncAnthropic):

        def tracking(self: Any, *args: Any, __init: Any = cls.__init__, **kwargs: Any) -> None:
            __init(self, *args, **kwargs)
            made.add(self)
            weakref.finalize(self, check, type(self).__name__, self._client)

        monkeypatch.setattr(cls, "__init__", tracking)
    yield
    open_ones = [type(client).__name__ for client in made if not client.is_closed()]
    assert not open_ones + dropped, (
        f"unclosed SDK clients {open_ones + dropped}: close each one (async with), or a later "
        "connection can hang (see tests/integration/conftest.py)"
    )


StartGateway = Callable[..., Awaitable[RunningGateway]]
StartSim = Callable[..., Awaitable[RunningSim]]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[StartGateway]:
    servers: list[TestServer] = []

    async def start(
        config: dict[str, Any],
        *,
        environ: dict[str, str] | None = None,
        interval: float = 0.05,
        tracing: Tracing | None = None,
        access_log: AccessLog | None = None,
    ) -> RunningGateway:
        path = tmp_path / f"gateway-{len(servers)}.json"
        path.write_text(json.dumps(config))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ=environ or {}, interval=interval)
        watcher.load_initial()
        app = create_app(watcher, metrics, tracing=tracing, access_log=access_log)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return RunningGateway(f"http://127.0.0.1:{server.port}", path, watcher, metrics, server)

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    running: list[RunningSim] = []

    async def start_one(**faults: Any) -> RunningSim:
        settings = SimSettings(model="tiny", ttft_s=0.005, itl_s=0.001, faults=Faults(**faults))
        sim = await start(settings, shutdown_timeout=0.2)
        running.append(sim)
        return sim

    yield start_one
    for sim in running:
        await sim.close()


Launch = Callable[..., Awaitable[RunningSim]]


@pytest.fixture
async def launch(request: pytest.FixtureRequest) -> AsyncIterator[Launch]:
    """Simulators serving ``tiny`` that remember enough requests for a load test.

    A test module's ``SIM_DEFAULTS`` overrides the default latencies; keyword arguments
    override both (any ``SimSettings`` field).
    """
    defaults: dict[str, Any] = {
        "model": "tiny",
        "ttft_s": 0.005,
        "itl_s": 0.002,
        "record_requests": 1000,
        **getattr(request.module, "SIM_DEFAULTS", {}),
    }
    running: list[RunningSim] = []

    async def launch_one(**overrides: Any) -> RunningSim:
        settings = SimSettings.model_validate({**defaults, **overrides})
        sim = await start(settings, shutdown_timeout=0.2)
        running.append(sim)
        return sim

    yield launch_one
    for sim in running:
        await sim.close()  # idempotent: a test may have killed it already


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def slow_sim() -> AsyncIterator[RunningSim]:
    """A simulator (model ``tiny``) streaming 40 tokens 50 ms apart: slow enough that a stream
    is still running when a test signals the gateway mid-stream."""
    async with await start(
        SimSettings(model="tiny", ttft_s=0.01, itl_s=0.05, output_tokens=40)
    ) as running:
        yield running


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[redisproc.RedisProcess]:
    """A real redis-server on a free port (see ``redisproc``), killed after the test."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = redisproc.RedisProcess(workdir)
    await server.start()
    yield server
    await server.stop()
