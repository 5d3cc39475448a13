"""Lifecycle at the edge: readiness follows whether anything can be served, a vanished config
file is reported, and clients see only what the edge settings allow.

A real gateway (``start_gateway``) in front of simulators. Scenario matrix:

- ``/readyz``: 200 with a usable candidate; 503 ``no_usable_candidate`` when the only upstream
  has no credential, and when every replica's breaker is open after failures; back to 200 when a
  reload brings a usable upstream.
- config file deleted -> ``/readyz`` ``config.file_present`` false, still 200 on the last good
  config, ``switchman_config_file_missing`` 1, requests still served; the file back -> 0.
- ``Server`` header: ``switchman`` (no version) by default, the version with
  ``server_version: true``; ``x-switchman-upstream`` names the replica for a loopback client and
  only the upstream with ``upstream_address: never``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from conftest import Launch, RunningGateway, StartGateway

HELLO = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}


def gateway_config(url: str, **fields: Any) -> dict[str, Any]:
    server = fields.pop("server", {})
    return {
        "version": 1,
        "server": server,
        "upstreams": [{"name": "sim", "base_url": f"{url}/v1", **fields}],
        "models": [{"name": "tiny", "upstream": "sim"}],
    }


async def readyz(http: aiohttp.ClientSession, gateway: RunningGateway) -> tuple[int, Any]:
    async with http.get(f"{gateway.url}/readyz") as resp:
        return resp.status, await resp.json()


async def wait_for(check: Any, within: float = 10.0) -> None:
    """Poll ``check()`` (the gateway polls its file too: no event to wait on) until true."""
    for _ in range(int(within / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true within {within}s")


async def test_readyz_is_503_when_the_only_upstream_has_no_credential(
    start_gateway: StartGateway, launch: Launch, http: aiohttp.ClientSession
) -> None:
    sim = await launch()
    config = gateway_config(sim.url, api_key={"env": "MISSING_KEY"})
    gateway = await start_gateway(config)

    status, body = await readyz(http, gateway)

    assert status == 503
    assert body["status"] == "not_ready"
    assert body["reason"] == "no_usable_candidate"
    assert body["upstreams"]["sim"]["problem"] == "credential env:MISSING_KEY is not set"
    gateway.write_config(gateway_config(sim.url))
    await wait_for(lambda: _ready(http, gateway))


async def _ready(http: aiohttp.ClientSession, gateway: RunningGateway) -> bool:
    return (await readyz(http, gateway))[0] == 200


async def test_readyz_is_503_while_every_breaker_is_open(
    start_gateway: StartGateway, http: aiohttp.ClientSession
) -> None:
    breaker = {"consecutive_failures": 1, "open_s": 30}
    dead = "http://127.0.0.1:9"  # discard port: nothing listens
    gateway = await start_gateway(gateway_config(dead, circuit_breaker=breaker))
    assert (await readyz(http, gateway))[0] == 200

    async with http.post(f"{gateway.base_url}/chat/completions", json=HELLO) as resp:
        assert resp.status == 502

    status, body = await readyz(http, gateway)
    assert status == 503
    assert body["reason"] == "no_usable_candidate"


async def test_deleted_config_file_is_reported_and_the_last_good_one_serves(
    start_gateway: StartGateway, launch: Launch, http: aiohttp.ClientSession
) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url))
    missing = "switchman_config_file_missing"
    assert gateway.metrics.registry.get_sample_value(missing) == 0

    gateway.config_path.unlink()
    await wait_for(lambda: _file_present(http, gateway, False))

    status, body = await readyz(http, gateway)
    assert status == 200
    assert body["config"]["file_present"] is False
    assert gateway.metrics.registry.get_sample_value(missing) == 1
    async with http.post(f"{gateway.base_url}/chat/completions", json=HELLO) as resp:
        assert resp.status == 200
    gateway.write_config(gateway_config(sim.url))
    await wait_for(lambda: _file_present(http, gateway, True))
    assert gateway.metrics.registry.get_sample_value(missing) == 0


async def _file_present(http: aiohttp.ClientSession, gateway: RunningGateway, want: bool) -> bool:
    return bool((await readyz(http, gateway))[1]["config"]["file_present"] is want)


async def test_server_header_hides_the_version_unless_asked(
    start_gateway: StartGateway, launch: Launch, http: aiohttp.ClientSession
) -> None:
    sim = await launch()
    hidden = await start_gateway(gateway_config(sim.url))
    shown = await start_gateway(gateway_config(sim.url, server={"edge": {"server_version": True}}))

    async with http.get(f"{hidden.url}/healthz") as resp:
        assert resp.headers["Server"] == "switchman"
    async with http.get(f"{shown.url}/healthz") as resp:
        assert resp.headers["Server"].startswith("switchman/")
        assert "aiohttp" not in resp.headers["Server"]


async def test_upstream_address_is_shown_to_loopback_and_never_when_configured(
    start_gateway: StartGateway, launch: Launch, http: aiohttp.ClientSession
) -> None:
    sim = await launch()
    local = await start_gateway(gateway_config(sim.url))
    never = await start_gateway(
        gateway_config(sim.url, server={"edge": {"upstream_address": "never"}})
    )

    async with http.post(f"{local.base_url}/chat/completions", json=HELLO) as resp:
        assert resp.headers["x-switchman-upstream"] == f"sim 127.0.0.1:{sim.port}"
    async with http.post(f"{never.base_url}/chat/completions", json=HELLO) as resp:
        assert resp.headers["x-switchman-upstream"] == "sim"
    assert json.dumps(dict(resp.headers)).count(str(sim.port)) == 0
