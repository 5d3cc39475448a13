"""Replica discovery, load scraping and health checks against real servers on 127.0.0.1.

Scenario matrix:
- scraping a real simulator's /metrics: the background loop fills ``Endpoint.load``; a stalled
  stream shows as one running request; the legacy KV gauge name is read too
- scrape failures (404, junk, timeout, nothing listening) leave no load and never raise
- health checks against simulators: a replica set ``down`` (503 or closed connections) through
  the admin API turns unhealthy after ``unhealthy_after`` checks and is never picked; cleared, it
  turns healthy again; checks hit the server root path, not base_url's /v1
- health check timeouts and non-2xx answers fail, 2xx passes (a controlled server)
- DNS discovery of ``localhost`` with the real resolver: 127.0.0.1 (and ::1 when resolvable),
  the port from ``discovery.port``; only the replica that listens stays healthy and is picked,
  and its ``base`` serves the API
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from switchman.api.gatewayconfig import Upstream
from switchman.api.resilience import HealthCheck, Scrape
from switchman.gateway.replicas.endpoints import EndpointSet
from switchman.gateway.replicas.healthcheck import check_round
from switchman.gateway.replicas.loadscrape import scrape_round
from switchman.gateway.replicas.replica import Endpoint
from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

if TYPE_CHECKING:  # the fixture's type; at run time "conftest" may name another tier's
    from conftest import StartSim

CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def upstream(base_url: str, **fields: Any) -> Upstream:
    return Upstream.model_validate({"name": "pool", "base_url": base_url, **fields})


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Real servers and real intervals: poll until the condition holds (fails on timeout)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def set_faults(http: aiohttp.ClientSession, sim: RunningSim, **faults: Any) -> None:
    async with http.post(f"{sim.url}/admin/faults", json=faults) as response:
        assert response.status == 200


# --- scraping --------------------------------------------------------------------------------


async def test_scrape_loop_reads_a_simulators_load(
    start_sim: StartSim, http: aiohttp.ClientSession
) -> None:
    sim = await start_sim(stall=True, stall_s=30)
    endpoints = EndpointSet(
        upstream(f"{sim.url}/v1", scrape={"interval_s": 0.1, "stale_after_s": 2.0})
    )
    (endpoint,) = endpoints.endpoints
    endpoints.start(lambda: http)
    try:
        await eventually(lambda: endpoint.load is not None)
        assert endpoint.load is not None
        assert (endpoint.load.running, endpoint.load.waiting) == (0.0, 0.0)
        async with http.post(f"{sim.url}/v1/chat/completions", json=CHAT) as response:
            await response.content.readline()  # the first chunk: the stream is now stalled
            await eventually(lambda: endpoint.load is not None and endpoint.load.running == 1)
            assert endpoint.load is not None
            assert endpoint.load.waiting == 0.0
            assert endpoint.load_value() >= 1.0
    finally:
        await endpoints.close()


async def test_scrape_reads_the_legacy_kv_gauge(http: aiohttp.ClientSession) -> None:
    settings = SimSettings(model="tiny", legacy_kv_metric=True)
    async with await start(settings, shutdown_timeout=0.2) as sim:
        endpoints = EndpointSet(upstream(f"{sim.url}/v1", scrape={}))
        assert await scrape_round(http, endpoints.endpoints, Scrape(), "http") == 1
        assert endpoints.endpoints[0].load is not None


@pytest.fixture
async def controlled() -> AsyncIterator[dict[str, Any]]:
    """A server whose /health status, /metrics body and delay the test sets."""
    state: dict[str, Any] = {"status": 200, "metrics": "", "delay": 0.0, "paths": []}

    async def answer(request: web.Request) -> web.Response:
        state["paths"].append((request.path, request.headers.get("Authorization")))
        await asyncio.sleep(state["delay"])
        if request.path == "/metrics":
            return web.Response(text=state["metrics"], status=state["status"])
        return web.Response(status=state["status"])

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state["address"] = f"127.0.0.1:{server.port}"
    yield state
    await server.close()


async def test_scrape_failures_leave_no_load(
    controlled: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    spec = upstream(f"http://{controlled['address']}/v1", scrape={"timeout_s": 0.2})
    endpoints = EndpointSet(spec)
    assert spec.scrape is not None
    cases: list[dict[str, Any]] = [
        {"status": 404, "metrics": "vllm:num_requests_running 1\nvllm:num_requests_waiting 1\n"},
        {"status": 200, "metrics": "<html>not metrics</html>"},
        {"status": 200, "metrics": "vllm:num_requests_running 1\n", "delay": 0.5},
    ]
    for case in cases:
        controlled.update(case)
        assert await scrape_round(http, endpoints.endpoints, spec.scrape, "http") == 0
        assert endpoints.endpoints[0].load is None
    good = (
        "vllm:num_requests_running 2\nvllm:num_requests_waiting 1\nvllm:kv_cache_usage_perc 0.5\n"
    )
    controlled.update(status=200, delay=0.0, metrics=good)
    assert await scrape_round(http, endpoints.endpoints, spec.scrape, "http") == 1
    load = endpoints.endpoints[0].load
    assert load is not None
    assert (load.running, load.waiting, load.kv_usage) == (2.0, 1.0, 0.5)
    # Probes go to the server root, not under base_url's /v1, and carry no credentials.
    assert {path for path, _ in controlled["paths"]} == {"/metrics"}
    assert all(auth is None for _, auth in controlled["paths"])


async def test_scrape_of_nothing_listening_is_no_load(http: aiohttp.ClientSession) -> None:
    endpoints = EndpointSet(upstream("http://127.0.0.1:9/v1", scrape={"timeout_s": 0.5}))
    assert await scrape_round(http, endpoints.endpoints, Scrape(timeout_s=0.5), "http") == 0


# --- health checks ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["503", "close"])
async def test_down_simulator_turns_unhealthy_and_back(
    start_sim: StartSim, http: aiohttp.ClientSession, mode: str
) -> None:
    good, bad = await start_sim(), await start_sim()
    spec = upstream(
        f"{good.url}/v1",
        discovery={"static": [good.url.removeprefix("http://"), bad.url.removeprefix("http://")]},
        health_check={"interval_s": 0.2, "timeout_s": 0.5, "unhealthy_after": 2},
    )
    endpoints = EndpointSet(spec)
    healthy, sick = endpoints.endpoints
    endpoints.start(lambda: http)
    try:
        await set_faults(http, bad, down=True, down_mode=mode)
        await eventually(lambda: not sick.healthy)
        assert sick.streak.failures >= 2
        assert healthy.healthy
        assert {endpoints.pick(None) for _ in range(10)} == {healthy}
        await set_faults(http, bad, down=False)
        await eventually(lambda: sick.healthy)
        assert {endpoints.pick(None) for _ in range(10)} == {healthy, sick}
    finally:
        await endpoints.close()


async def test_check_verdicts_follow_status_and_timeouts(
    controlled: dict[str, Any], http: aiohttp.ClientSession
) -> None:
    spec = HealthCheck(timeout_s=0.2, unhealthy_after=2, healthy_after=2)
    endpoints = EndpointSet(upstream(f"http://{controlled['address']}/v1", health_check={}))
    endpoint: Endpoint = endpoints.endpoints[0]
    verdicts = []
    for case in (
        {"status": 500},
        {"status": 204, "delay": 0.5},  # too slow: a failure
        {"status": 204, "delay": 0.0},
        {"status": 301},
        {"status": 200},
        {"status": 200},
    ):
        controlled.update(case)
        await check_round(http, [endpoint], spec, "http")
        verdicts.append(endpoint.healthy)
    assert verdicts == [True, False, False, False, False, True]
    assert {path for path, _ in controlled["paths"]} == {"/health"}


# --- DNS discovery ---------------------------------------------------------------------------


async def test_dns_discovery_of_localhost(start_sim: StartSim, http: aiohttp.ClientSession) -> None:
    sim = await start_sim()
    spec = upstream(
        "http://localhost:1/v1",
        discovery={"dns": "localhost", "port": sim.port},
        health_check={"timeout_s": 0.5, "unhealthy_after": 1},
    )
    endpoints = EndpointSet(spec)
    assert [e.address for e in endpoints.endpoints] == ["localhost:1"]
    assert await endpoints.refresh()
    found = {e.address: e for e in endpoints.endpoints}
    ipv4 = found[f"127.0.0.1:{sim.port}"]
    assert set(found) <= {f"127.0.0.1:{sim.port}", f"[::1]:{sim.port}"}
    assert spec.health_check is not None
    await check_round(http, endpoints.endpoints, spec.health_check, "http")
    assert ipv4.healthy
    for address, endpoint in found.items():
        assert endpoint.healthy == (endpoint is ipv4), address  # the sim listens on IPv4 only
    assert {endpoints.pick(None) for _ in range(5)} == {ipv4}
    async with http.get(f"{ipv4.base}/models") as response:
        assert response.status == 200
        assert (await response.json())["data"][0]["id"] == "tiny"
