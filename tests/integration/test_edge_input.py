"""Hostile client input at the gateway's door: every request it cannot serve is an OpenAI-shaped
4xx (with ``param`` where a field is to blame), never a 500 or a traceback, and oversized or slow
bodies are refused before they cost anything.

A real gateway (``start_gateway``) in front of a simulator; clients are raw aiohttp or a raw
socket where the bytes matter. Scenario matrix:

- body: a lone surrogate escape in message content -> 400 ``param=messages[0].content``; JSON
  nested 1,000 and 100,000 levels -> 400; ``NaN`` -> 400; a 5,000-digit integer -> 400 without
  ``sys.set_int_max_str_digits``; invalid UTF-8 -> 400; the upstream never sees any of them.
- ``Expect: 100-continue``: a declared body over ``server.max_body_bytes`` -> 413 JSON and *no*
  ``100 Continue`` first; within the limit -> ``100 Continue`` then the answer; an unknown
  expectation -> 417 JSON.
- a body that stops arriving -> 408 JSON after ``server.edge.body_timeout_s``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from conftest import Launch, StartGateway

BIG = 50 * 1024 * 1024
DEEP = "<deep>"  # marker: a nesting error's param (see the test)


def gateway_config(sim_url: str, **server: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "server": server,
        "upstreams": [{"name": "sim", "base_url": f"{sim_url}/v1"}],
        "models": [{"name": "tiny", "upstream": "sim"}],
    }


def chat(content: str) -> bytes:
    """A chat request whose message content is the raw JSON text ``content``."""
    return (
        b'{"model": "tiny", "messages": [{"role": "user", "content": ' + content.encode() + b"}]}"
    )


def openai_error(body: dict[str, Any]) -> dict[str, Any]:
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert "Traceback" not in error["message"]
    return dict(error)


@pytest.mark.parametrize(
    ("data", "param", "cue"),
    [
        (chat('"\\ud800"'), "messages[0].content", "surrogate"),
        (chat("[" * 1000 + "]" * 1000), DEEP, "levels deep"),
        (chat("[" * 100_000 + "]" * 100_000), DEEP, "levels deep"),
        (b'{"model": "tiny", "messages": [], "temperature": NaN}', None, "NaN"),
        (b'{"model": "tiny", "seed": ' + b"7" * 5000 + b"}", None, "digits"),
        (b'{"model": "tiny\xff"}', None, "UTF-8"),
    ],
    ids=["lone-surrogate", "depth-1000", "depth-100000", "nan", "huge-int", "bad-utf8"],
)
async def test_hostile_body_is_a_400_naming_the_field(
    start_gateway: StartGateway,
    launch: Launch,
    http: aiohttp.ClientSession,
    data: bytes,
    param: str | None,
    cue: str,
) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url))

    async with http.post(
        f"{gateway.base_url}/chat/completions",
        data=data,
        headers={"Content-Type": "application/json"},
    ) as resp:
        body = await resp.json()

    assert resp.status == 400
    error = openai_error(body)
    if param is DEEP:  # the path where the walk found it, or none past the parser's own limit
        assert error["param"] is None or error["param"].startswith("messages[0].content[0]")
    else:
        assert error["param"] == param
    assert cue in error["message"]
    assert "sys." not in error["message"]
    assert len(sim.state.recorder.entries()) == 0


async def exchange(port: int, head: bytes, *, then: bytes = b"", read_s: float = 5.0) -> bytes:
    """Send ``head``, read what comes within ``read_s`` (or until close); optionally send more."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        first = await asyncio.wait_for(reader.read(65536), read_s)
        if not then:
            return first
        writer.write(then)
        await writer.drain()
        rest = b""
        async with asyncio.timeout(read_s):
            while b"\r\n\r\n" not in rest or not rest.rstrip().endswith(b"}"):
                chunk = await reader.read(65536)
                if not chunk:
                    break
                rest += chunk
        return first + rest
    finally:
        writer.close()


def head(length: int, *, expect: str = "100-continue") -> bytes:
    return (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\nExpect: {expect}\r\n\r\n"
    ).encode()


def split(raw: bytes) -> tuple[str, dict[str, Any]]:
    status_line, _, rest = raw.partition(b"\r\n")
    body = rest.partition(b"\r\n\r\n")[2]
    return status_line.decode(), json.loads(body)


async def test_oversized_body_with_expect_is_refused_before_100_continue(
    start_gateway: StartGateway, launch: Launch
) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url))

    raw = await exchange(gateway.server.port, head(BIG))  # type: ignore[arg-type]

    assert b"100 Continue" not in raw
    status, body = split(raw)
    assert status == "HTTP/1.1 413 Request Entity Too Large"
    assert openai_error(body)["code"] == "request_too_large"


async def test_body_within_the_limit_gets_100_continue_then_the_answer(
    start_gateway: StartGateway, launch: Launch
) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url))
    data = chat('"hello"')

    raw = await exchange(gateway.server.port, head(len(data)), then=data)  # type: ignore[arg-type]

    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    assert len(sim.state.recorder.entries()) == 1


async def test_unknown_expectation_is_a_417(start_gateway: StartGateway, launch: Launch) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url))

    raw = await exchange(gateway.server.port, head(10, expect="party"))  # type: ignore[arg-type]

    status, body = split(raw)
    assert status.startswith("HTTP/1.1 417")
    assert openai_error(body)["param"] == "Expect"


async def test_body_that_stops_arriving_is_a_408(
    start_gateway: StartGateway, launch: Launch
) -> None:
    sim = await launch()
    gateway = await start_gateway(gateway_config(sim.url, edge={"body_timeout_s": 0.3}))
    request = head(1000).replace(b"Expect: 100-continue\r\n", b"") + b'{"model": '

    raw = await exchange(gateway.server.port, request)  # type: ignore[arg-type]

    status, body = split(raw)
    assert status == "HTTP/1.1 408 Request Timeout"
    assert openai_error(body)["code"] == "request_timeout"
    assert len(sim.state.recorder.entries()) == 0
