"""How the gateway fails: every error is OpenAI-shaped JSON the SDK maps to the right exception,
failover happens exactly when another candidate may succeed, and streams never end mid-JSON.

A real gateway (``start_gateway``) in front of fake upstreams (``fakes``); clients are the
official ``openai`` SDK, or raw aiohttp where the SDK cannot send the request. Scenario matrix:

- client errors (never reach an upstream): malformed JSON, a JSON array, an empty body, missing
  or non-string ``model``, missing or empty ``messages``, ``stream: "yes"`` -> 400 naming the
  field; unknown model -> 404 ``model_not_found``; unknown path -> 404; GET on a POST endpoint
  -> 405; a body over ``server.max_body_bytes``, with Content-Length or chunked -> 413.
- upstream answers: 429 with ``Retry-After`` on the only candidate -> 429 with it (RateLimitError);
  429 then 200 -> 200 after 2 attempts; nothing listening -> 502; no answer within
  ``timeouts.total_s`` (a whole answer's generation timeout) -> 504 promptly, after one
  regeneration; 500 then 200 -> 200 after 2 attempts; an OpenAI-shaped or old-vLLM-shaped 400
  -> the same 400 and message, the next candidate never tried; a 200 whose body is not JSON ->
  502, not relayed.
- streams: broken off after two chunks (connection dropped, or body ended without ``[DONE]``) or
  stalled past ``timeouts.idle_s`` -> the client's stream ends with an error event (``APIError``),
  every event whole JSON; dying before the first chunk -> the next candidate serves it unseen;
  a client hanging up mid-stream -> the upstream connection is closed (generation cancelled),
  both with aiohttp's handler cancellation (tests) and without it (``web.run_app``).
- across all of the above: bodies are JSON with ``{"error": {message, type, param, code}}`` and no
  traceback; ``/metrics`` counts request outcomes and upstream attempt failures by reason.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import fakes
import openai
import processes
import pytest
from aiohttp import web
from fakes import FakeUpstream, Reply
from prometheus_client.parser import text_string_to_metric_families

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher

Start = Callable[[Reply], Awaitable[FakeUpstream]]

HELLO = [{"role": "user", "content": "hi"}]
FAST = {"connect_s": 0.5, "first_byte_s": 0.3, "idle_s": 0.3, "total_s": 5}


@pytest.fixture
async def upstream() -> AsyncIterator[Start]:
    async with fakes.fake_upstreams() as start:
        yield start


def config(
    upstreams: dict[str, str],
    routes: dict[str, list[str]] | None = None,
    *,
    max_body_bytes: int | None = None,
    mid_stream: str = "terminate",
) -> dict[str, Any]:
    """Upstream name -> base URL; each upstream serves one model of the same name.

    Streams cut mid-way end with an error event (``terminate``) unless a test asks to continue.
    """
    document: dict[str, Any] = {
        "version": 1,
        "upstreams": [
            {"name": name, "base_url": f"{url}/v1", "timeouts": FAST}
            for name, url in upstreams.items()
        ],
        "models": [{"name": name, "upstream": name} for name in upstreams],
        "routes": [
            {"name": n, "candidates": c, "mid_stream": mid_stream}
            for n, c in (routes or {}).items()
        ],
        "server": {"mid_stream": mid_stream},
    }
    if max_body_bytes is not None:
        document["server"]["max_body_bytes"] = max_body_bytes
    return document


def generation_timeout(document: dict[str, Any], name: str, seconds: float) -> dict[str, Any]:
    """Give upstream ``name`` a short ``total_s``: a whole answer's only time limit."""
    for upstream in document["upstreams"]:
        if upstream["name"] == name:
            upstream["timeouts"] = {**FAST, "total_s": seconds}
    return document


def client(gateway: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key="sk-client", max_retries=0)


def assert_openai_error(payload: Any, *, type_: str, code: str | None) -> dict[str, Any]:
    """The OpenAI error envelope, exactly; returns the inner error."""
    assert isinstance(payload, dict)
    assert set(payload) == {"error"}
    error = payload["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]
    assert "Traceback" not in error["message"]
    assert error["type"] == type_
    assert error["code"] == code
    return dict(error)


async def post(url: str, data: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST raw bytes (or a chunked async generator); the status and the decoded JSON body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url, data=data, headers={"Content-Type": "application/json", **(headers or {})}
        ) as resp,
    ):
        text = await resp.text()
    try:
        return resp.status, json.loads(text)
    except ValueError:
        pytest.fail(f"HTTP {resp.status} {resp.content_type} with a non-JSON body: {text[:200]!r}")


# --- Client errors ----------------------------------------------------------------------------

_MESSAGES = json.dumps(HELLO)


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        pytest.param(b'{"model": "ok", "messages": [', None, id="malformed-json"),
        pytest.param(b'[{"model": "ok"}]', None, id="json-array"),
        pytest.param(b"", None, id="empty-body"),
        pytest.param(f'{{"messages": {_MESSAGES}}}'.encode(), "model", id="missing-model"),
        pytest.param(
            f'{{"model": 7, "messages": {_MESSAGES}}}'.encode(), "model", id="model-not-string"
        ),
        pytest.param(b'{"model": "ok"}', "messages", id="missing-messages"),
        pytest.param(b'{"model": "ok", "messages": []}', "messages", id="empty-messages"),
        pytest.param(
            f'{{"model": "ok", "messages": {_MESSAGES}, "stream": "yes"}}'.encode(),
            "stream",
            id="stream-not-boolean",
        ),
    ],
)
async def test_invalid_request_is_a_400_naming_the_field(
    start_gateway: Any, upstream: Start, raw: bytes, param: str | None
) -> None:
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(config({"ok": fake.url}))

    status, body = await post(f"{gateway.base_url}/chat/completions", raw)

    assert status == 400
    error = assert_openai_error(body, type_="invalid_request_error", code="invalid_request")
    assert error["param"] == param
    assert fake.seen == []


async def test_sdk_raises_bad_request_for_a_non_boolean_stream_flag(
    start_gateway: Any, upstream: Start
) -> None:
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(config({"ok": fake.url}))

    async with client(gateway) as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(
                model="ok", messages=HELLO, extra_body={"stream": "yes"}
            )

    assert caught.value.param == "stream"
    assert fake.seen == []


async def test_unknown_model_is_404_model_not_found(start_gateway: Any, upstream: Start) -> None:
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(config({"ok": fake.url}))

    async with client(gateway) as sdk:
        with pytest.raises(openai.NotFoundError) as caught:
            await sdk.chat.completions.create(model="gpt-9-turbo", messages=HELLO)

    error = assert_openai_error(
        caught.value.response.json(), type_="invalid_request_error", code="model_not_found"
    )
    assert error["param"] == "model"
    assert "gpt-9-turbo" in error["message"]


async def test_unknown_path_and_wrong_method_are_json_404_and_405(
    start_gateway: Any, upstream: Start
) -> None:
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(config({"ok": fake.url}))

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{gateway.base_url}/assistants", json={"model": "ok"}) as resp:
            not_found = (resp.status, resp.content_type, await resp.json())
        async with session.get(f"{gateway.base_url}/chat/completions") as resp:
            not_allowed = (resp.status, resp.content_type, await resp.json())

    assert not_found[:2] == (404, "application/json")
    assert (
        "/v1/assistants"
        in assert_openai_error(not_found[2], type_="invalid_request_error", code="not_found")[
            "message"
        ]
    )
    assert not_allowed[:2] == (405, "application/json")
    assert_openai_error(not_allowed[2], type_="invalid_request_error", code="method_not_allowed")


@pytest.mark.parametrize("path", ["/models/%0A", "/nowhere%0A", "/chat/completions%0Ax", "/%0D%0A"])
async def test_a_path_with_an_encoded_line_break_is_a_json_404(
    start_gateway: Any, upstream: Start, path: str
) -> None:
    # Found by the schemathesis fuzz tier: the catch-all route did not match a decoded newline,
    # so aiohttp's own text/plain 404 answered.
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(config({"ok": fake.url}))

    async with aiohttp.ClientSession() as session:
        for method in ("GET", "POST"):
            async with session.request(method, f"{gateway.base_url}{path}") as resp:
                status, kind, body = resp.status, resp.content_type, await resp.json()
            assert (status, kind) == (404, "application/json"), method
            assert_openai_error(body, type_="invalid_request_error", code="not_found")


async def _chunked(payload: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(payload), 256):
        yield payload[start : start + 256]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_body_over_the_limit_is_413(
    start_gateway: Any, upstream: Start, framing: str
) -> None:
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(config({"ok": fake.url}, max_body_bytes=1024))
    payload = json.dumps({"model": "ok", "messages": [{"role": "user", "content": "x" * 2000}]})
    data = payload.encode() if framing == "content-length" else _chunked(payload.encode())

    status, body = await post(f"{gateway.base_url}/chat/completions", data)

    assert status == 413
    assert_openai_error(body, type_="invalid_request_error", code="request_too_large")
    assert fake.seen == []


async def test_body_just_under_the_limit_is_served(start_gateway: Any, upstream: Start) -> None:
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(config({"ok": fake.url}, max_body_bytes=1024))
    base = json.dumps({"model": "ok", "messages": [{"role": "user", "content": ""}]})
    payload = json.dumps({"model": "ok", "messages": [{"role": "user", "content": "x" * 900}]})
    assert len(base) < len(payload) <= 1024

    status, body = await post(f"{gateway.base_url}/chat/completions", _chunked(payload.encode()))

    assert status == 200
    assert body["choices"][0]["message"]["content"] == "Hello from upstream"


# --- Upstream failures (whole responses) ------------------------------------------------------


async def test_rate_limit_on_the_only_candidate_is_429_with_retry_after(
    start_gateway: Any, upstream: Start
) -> None:
    limited = await upstream(
        fakes.openai_error(
            429,
            "Rate limit reached for requests",
            type_="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": "7"},
        )
    )
    gateway = await start_gateway(config({"limited": limited.url}))

    async with client(gateway) as sdk:
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.chat.completions.create(model="limited", messages=HELLO)

    response = caught.value.response
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.headers["x-switchman-attempts"] == "1"
    error = assert_openai_error(
        response.json(), type_="rate_limit_error", code="rate_limit_exceeded"
    )
    assert "Rate limit reached" in error["message"]


async def test_rate_limit_on_first_candidate_falls_over_to_second(
    start_gateway: Any, upstream: Start
) -> None:
    limited = await upstream(fakes.openai_error(429, "slow down", headers={"Retry-After": "7"}))
    ok = await upstream(fakes.openai_chat("second"))
    gateway = await start_gateway(
        config({"limited": limited.url, "ok": ok.url}, {"chat": ["limited", "ok"]})
    )

    async with client(gateway) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(model="chat", messages=HELLO)

    assert raw.parse().choices[0].message.content == "second"
    assert raw.headers["x-switchman-attempts"] == "2"
    assert raw.headers["x-switchman-model"] == "ok"
    assert "limited failed: rate_limited" in raw.headers["x-switchman-route"]
    assert "retry-after" not in raw.headers
    assert (len(limited.seen), len(ok.seen)) == (1, 1)


async def test_unreachable_upstream_is_502(start_gateway: Any) -> None:
    gateway = await start_gateway(config({"gone": f"http://127.0.0.1:{processes.free_port()}"}))

    async with client(gateway) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model="gone", messages=HELLO)

    assert caught.value.status_code == 502
    error = assert_openai_error(
        caught.value.response.json(), type_="api_error", code="upstream_unavailable"
    )
    assert "gone" in error["message"]


async def test_silent_upstream_is_504_once_the_generation_timeout_passes(
    start_gateway: Any, upstream: Start
) -> None:
    silent = await upstream(fakes.hangs())
    gateway = await start_gateway(generation_timeout(config({"silent": silent.url}), "silent", 0.3))

    started = time.monotonic()
    async with client(gateway) as sdk:
        with pytest.raises(openai.InternalServerError) as caught:
            await sdk.chat.completions.create(model="silent", messages=HELLO)
    elapsed = time.monotonic() - started

    assert caught.value.status_code == 504
    assert_openai_error(caught.value.response.json(), type_="api_error", code="upstream_timeout")
    assert 0.3 <= elapsed < 2
    await asyncio.wait_for(silent.disconnected.wait(), 1)  # the gateway hung up on it


async def test_server_error_on_first_candidate_falls_over_to_second(
    start_gateway: Any, upstream: Start
) -> None:
    broken = await upstream(fakes.openai_error(500, "CUDA error", type_="server_error"))
    ok = await upstream(fakes.openai_chat("second"))
    gateway = await start_gateway(
        config({"broken": broken.url, "ok": ok.url}, {"chat": ["broken", "ok"]})
    )

    async with client(gateway) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(model="chat", messages=HELLO)

    assert raw.parse().choices[0].message.content == "second"
    assert raw.headers["x-switchman-attempts"] == "2"
    assert "broken failed: status_5xx" in raw.headers["x-switchman-route"]


CONTEXT_LENGTH = (
    "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens "
    "(4000 in the messages, 1000 in the completion). Please reduce the length of the messages "
    "or completion."
)


def old_vllm_error(status: int, message: str) -> Reply:
    """vLLM before the OpenAI-style envelope: the error fields at the top level."""

    async def reply(seen: fakes.Seen, request: web.Request) -> web.StreamResponse:
        body = {"object": "error", "message": message, "type": "BadRequestError", "param": None}
        return web.json_response({**body, "code": status}, status=status)

    return reply


@pytest.mark.parametrize(
    "rejection",
    [
        pytest.param(fakes.openai_error(400, CONTEXT_LENGTH, type_="BadRequestError"), id="openai"),
        pytest.param(old_vllm_error(400, CONTEXT_LENGTH), id="old-vllm"),
    ],
)
async def test_upstream_400_is_passed_back_and_next_candidate_not_tried(
    start_gateway: Any, upstream: Start, rejection: Reply
) -> None:
    vllm = await upstream(rejection)
    ok = await upstream(fakes.openai_chat())
    document = config({"vllm": vllm.url, "ok": ok.url}, {"chat": ["vllm", "ok"]})
    for model in document["models"]:  # equal known windows: a context error moves nowhere
        model["capabilities"] = {"context_window": 4096}
    gateway = await start_gateway(document)

    async with client(gateway) as sdk:
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.chat.completions.create(model="chat", messages=HELLO)

    assert caught.value.status_code == 400
    assert caught.value.response.json()["error"]["message"] == CONTEXT_LENGTH
    assert caught.value.response.headers["x-switchman-attempts"] == "1"
    assert (len(vllm.seen), len(ok.seen)) == (1, 0)


def html_ok() -> Reply:
    """A 200 that is not the API at all (a captive portal, a misrouted ingress)."""

    async def reply(seen: fakes.Seen, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text="<html><body>Welcome to nginx!</body></html>", content_type="text/html"
        )

    return reply


async def test_upstream_200_with_a_non_json_body_is_a_502_not_relayed(
    start_gateway: Any, upstream: Start
) -> None:
    portal = await upstream(html_ok())
    gateway = await start_gateway(config({"portal": portal.url}))

    status, body = await post(
        f"{gateway.base_url}/chat/completions", json.dumps({"model": "portal", "messages": HELLO})
    )

    assert status == 502
    assert_openai_error(body, type_="api_error", code="upstream_unavailable")


# --- Streams ----------------------------------------------------------------------------------


async def read_events(gateway: Any, model: str) -> tuple[int, list[str]]:
    """Stream a chat completion with raw aiohttp; the status and each event's data."""
    body = {"model": model, "messages": HELLO, "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{gateway.base_url}/chat/completions", json=body) as resp,
    ):
        text = (await resp.read()).decode()
    assert text.endswith("\n\n")
    return resp.status, [e.removeprefix("data: ") for e in text[:-2].split("\n\n")]


async def collect_texts(stream: Any, into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.choices[0].delta.content or "")


@pytest.mark.parametrize("ending", ["reset", "eof"], ids=["connection-dropped", "no-done"])
async def test_stream_broken_off_after_two_chunks_ends_with_an_error_event(
    start_gateway: Any, upstream: Start, ending: fakes.Ending
) -> None:
    flaky = await upstream(fakes.openai_stream(("Hel",), ending=ending))
    gateway = await start_gateway(config({"flaky": flaky.url}))

    received: list[str] = []
    async with client(gateway) as sdk:
        stream = await sdk.chat.completions.create(model="flaky", messages=HELLO, stream=True)
        with pytest.raises(openai.APIError) as caught:
            await collect_texts(stream, received)
    status, events = await read_events(gateway, "flaky")

    assert type(caught.value) is openai.APIError  # an error event, not a connection failure
    assert received == ["", "Hel"]
    assert status == 200
    assert len(events) == 3
    assert "[DONE]" not in events
    parsed = [json.loads(event) for event in events]  # whole JSON, never a truncated chunk
    assert [p["choices"][0]["delta"].get("content") for p in parsed[:2]] == ["", "Hel"]
    assert_openai_error(parsed[2], type_="api_error", code="upstream_unavailable")


async def test_stream_stalled_past_idle_timeout_ends_with_an_error_event_promptly(
    start_gateway: Any, upstream: Start
) -> None:
    stalled = await upstream(fakes.openai_stream((), ending="stall"))
    gateway = await start_gateway(config({"stalled": stalled.url}))

    started = time.monotonic()
    async with client(gateway) as sdk:
        stream = await sdk.chat.completions.create(model="stalled", messages=HELLO, stream=True)
        with pytest.raises(openai.APIError) as caught:
            await collect_texts(stream, [])
    elapsed = time.monotonic() - started

    assert type(caught.value) is openai.APIError
    assert "stalled for over" in caught.value.message
    assert elapsed < 2
    assert isinstance(caught.value.body, dict)
    assert (caught.value.body["type"], caught.value.body["code"]) == (
        "api_error",
        "upstream_timeout",
    )
    await asyncio.wait_for(stalled.disconnected.wait(), 1)


async def test_stream_dying_before_first_chunk_is_served_by_next_candidate(
    start_gateway: Any, upstream: Start
) -> None:
    dying = await upstream(fakes.dies_before_first_chunk())
    ok = await upstream(fakes.openai_stream(("fine",)))
    gateway = await start_gateway(
        config({"dying": dying.url, "ok": ok.url}, {"chat": ["dying", "ok"]})
    )

    async with client(gateway) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="chat", messages=HELLO, stream=True
        )
        chunks = [chunk async for chunk in raw.parse()]

    assert raw.headers["x-switchman-attempts"] == "2"
    assert raw.headers["x-switchman-model"] == "ok"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "fine"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (len(dying.seen), len(ok.seen)) == (1, 1)


async def serve_like_production(config_dict: dict[str, Any], tmp_path: Path) -> web.AppRunner:
    """The gateway app on an AppRunner with ``web.run_app``'s defaults: no handler cancellation
    on client disconnect (the conftest TestServer cancels handlers, production does not)."""
    path = tmp_path / "production.json"
    path.write_text(json.dumps(config_dict))
    metrics = Metrics()
    watcher = ConfigWatcher(path, metrics, environ={}, interval=60)
    watcher.load_initial()
    runner = web.AppRunner(create_app(watcher, metrics), shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


@pytest.mark.parametrize("server", ["test-server", "run-app-defaults"])
async def test_client_hanging_up_mid_stream_cancels_the_upstream_generation(
    start_gateway: Any, upstream: Start, tmp_path: Path, server: str
) -> None:
    slow = await upstream(fakes.openai_stream(["tok"] * 200, delay=0.02))
    document = config({"slow": slow.url})
    runner: web.AppRunner | None = None
    if server == "test-server":
        base_url = (await start_gateway(document)).base_url
    else:
        runner = await serve_like_production(document, tmp_path)
        host, port = runner.addresses[0][:2]
        base_url = f"http://{host}:{port}/v1"
    try:
        body = {"model": "slow", "messages": HELLO, "stream": True}
        async with aiohttp.ClientSession() as session:
            resp = await session.post(f"{base_url}/chat/completions", json=body)
            assert resp.status == 200
            first = await resp.content.readline()
            assert first.startswith(b"data: ")
            resp.close()  # hang up with the generation far from finished

        await asyncio.wait_for(slow.disconnected.wait(), 1)
    finally:
        if runner is not None:
            await runner.cleanup()


# --- Across errors: JSON bodies, no tracebacks, metrics ---------------------------------------


async def provoke_every_error(gateway: Any) -> list[tuple[int, str, str]]:
    """One request per failure kind; (status, content type, body text) of each answer."""
    base = gateway.base_url
    chat = {"messages": HELLO}
    requests: list[tuple[str, str, Any]] = [
        ("POST", "/chat/completions", b"{oops"),
        ("POST", "/chat/completions", b"[]"),
        ("POST", "/chat/completions", json.dumps({"model": "nope", **chat})),
        ("POST", "/nothing-here", b"{}"),
        ("GET", "/chat/completions", None),
        ("POST", "/chat/completions", json.dumps({"model": "ok", "messages": "x" * 3000})),
        *[
            ("POST", "/chat/completions", json.dumps({"model": name, **chat}))
            for name in ("limited", "broken", "silent", "gone", "rejecting")
        ],
    ]
    answers = []
    async with aiohttp.ClientSession() as session:
        for method, path, data in requests:
            async with session.request(method, base + path, data=data) as resp:
                answers.append((resp.status, resp.content_type, await resp.text()))
    return answers


async def start_mix(start_gateway: Any, upstream: Start) -> Any:
    """A gateway over one upstream per failure kind, plus a route ``chat`` = [broken, ok]."""
    mix = {
        "ok": await upstream(fakes.openai_chat()),
        "limited": await upstream(
            fakes.openai_error(429, "slow down", headers={"Retry-After": "7"})
        ),
        "broken": await upstream(fakes.openai_error(500, "boom", type_="server_error")),
        "silent": await upstream(fakes.hangs()),
        "rejecting": await upstream(fakes.openai_error(400, CONTEXT_LENGTH)),
    }
    urls = {name: fake.url for name, fake in mix.items()}
    urls["gone"] = f"http://127.0.0.1:{processes.free_port()}"
    document = config(urls, {"chat": ["broken", "ok"]}, max_body_bytes=2048)
    return await start_gateway(generation_timeout(document, "silent", 0.3))


async def test_every_error_is_openai_shaped_json_without_a_traceback(
    start_gateway: Any, upstream: Start
) -> None:
    gateway = await start_mix(start_gateway, upstream)

    answers = await provoke_every_error(gateway)

    assert [status for status, _, _ in answers] == [
        400, 400, 404, 404, 405, 413, 429, 502, 504, 502, 400,
    ]  # fmt: skip
    for _, content_type, text in answers:
        assert content_type == "application/json"
        assert "Traceback" not in text
        payload = json.loads(text)
        assert set(payload) == {"error"}
        assert set(payload["error"]) == {"message", "type", "param", "code"}


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def test_metrics_count_request_outcomes_and_attempt_failures(
    start_gateway: Any, upstream: Start
) -> None:
    gateway = await start_mix(start_gateway, upstream)
    await provoke_every_error(gateway)
    async with client(gateway) as sdk:
        await sdk.chat.completions.create(model="chat", messages=HELLO)  # broken, then ok

    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/metrics") as resp:
        text = await resp.text()

    requests = samples(text, "switchman_requests_total")
    outcomes = {dict(labels)["outcome"] for labels in requests}
    assert {"ok", "error", "client_error"} <= outcomes
    by_model = {(dict(k)["model"], dict(k)["outcome"]): v for k, v in requests.items()}
    assert by_model[("ok", "ok")] == 1
    print(requests)
    assert by_model[("none", "client_error")] == 1  # the upstream 400, passed back
    attempts = {
        (dict(k)["upstream"], dict(k)["outcome"]): v
        for k, v in samples(text, "switchman_upstream_attempts_total").items()
    }
    assert attempts[("limited", "rate_limited")] == 1
    # Alone it is retried once (no other candidate left), then it is first in the route.
    assert attempts[("broken", "status_5xx")] == 3
    # A lone candidate is regenerated once (retry.regenerations), not on every attempt left.
    assert attempts[("silent", "generation_timeout")] == 2
    assert attempts[("gone", "unreachable")] == 2
    # A context-length 400 would move to a larger window; with none, the 400 goes back.
    assert attempts[("rejecting", "context_length")] == 1
    assert attempts[("ok", "ok")] == 1
