"""The passthrough endpoints (images, audio, moderations, rerank) through a real gateway.

Upstreams are small aiohttp servers of our own (``Endpoints``) that answer OpenAI's shapes and
record what they received; clients are the official ``openai`` SDK (rerank, which it lacks, with
plain HTTP). Scenario matrix:

- moderations on a route [unreachable, healthy]: served by the second (2 attempts), the upstream
  got the gateway's key (not the client's) and its own model id, ``x-switchman-*`` headers set
- audio transcription (multipart): the file arrives byte for byte, the form's model field is
  rewritten to the upstream model id, the SDK reads the text
- speech: the audio bytes and content type come back as the upstream sent them
- rerank: the JSON answer unchanged; a client 4xx from the upstream passes back unchanged (no
  failover)
- images (not idempotent) on a route [500, healthy]: the 500 is the answer (502), the second is
  never asked; an unreachable first candidate still fails over
- a model that does not declare the endpoint: 400 naming ``model``; an unknown one: 404
- the request metric records the serving model once
- tenants: a key is needed, a model outside the tenant's routes is a 403, the requests-per-minute
  limit a 429 (the upstream asked once)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from switchman.gateway.tenancy.keys import hash_key, new_key

WAV = b"RIFF" + bytes(range(256)) * 64 + b"WAVE-end"


@dataclass
class Endpoints:
    """One OpenAI-compatible upstream serving the passthrough endpoints."""

    server: TestServer
    seen: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/v1"


async def _handle(upstream: Endpoints, request: web.Request) -> web.StreamResponse:
    entry: dict[str, Any] = {"path": request.path, "headers": dict(request.headers)}
    upstream.seen.append(entry)
    if request.content_type == "multipart/form-data":
        form = await request.post()
        audio = form["file"]
        assert isinstance(audio, web.FileField)
        data = audio.file.read()
        entry["body"] = {"model": form["model"], "sha256": hashlib.sha256(data).hexdigest()}
        return web.json_response({"text": f"{len(data)} bytes"})
    body = await request.json()
    entry["body"] = body
    if upstream.status != 200:
        error = {"message": "upstream says no", "type": "invalid_request_error"}
        return web.json_response({"error": error}, status=upstream.status)
    if request.path.endswith("/audio/speech"):
        return web.Response(body=WAV, content_type="audio/wav")
    answers: dict[str, Any] = {
        "/v1/moderations": {"id": "modr-1", "model": body["model"], "results": [_flags()]},
        "/v1/rerank": {"id": "rr", "results": [{"index": 1, "relevance_score": 0.9}]},
        "/v1/images/generations": {"created": 1, "data": [{"b64_json": "aGk="}]},
    }
    return web.json_response(answers[request.path])


def _flags() -> dict[str, Any]:
    return {"flagged": False, "categories": {}, "category_scores": {}}


StartEndpoints = Callable[..., Awaitable[Endpoints]]


@pytest.fixture
async def endpoints() -> AsyncIterator[StartEndpoints]:
    started: list[Endpoints] = []

    async def start(status: int = 200) -> Endpoints:
        app = web.Application()
        upstream = Endpoints(TestServer(app, host="127.0.0.1"), status=status)

        async def handle(request: web.Request) -> web.StreamResponse:
            return await _handle(upstream, request)

        app.router.add_post("/v1/{tail:.+}", handle)
        await upstream.server.start_server()
        started.append(upstream)
        return upstream

    yield start
    for upstream in started:
        await upstream.server.close()


def config(upstreams: dict[str, str], endpoints: list[str]) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [
            {"name": name, "base_url": url, "api_key": {"env": "UPSTREAM_KEY"}}
            for name, url in upstreams.items()
        ],
        "models": [
            {
                "name": name,
                "upstream": name,
                "upstream_model": f"{name}-target",
                "capabilities": {"endpoints": endpoints},
            }
            for name in upstreams
        ]
        + [{"name": "chat-only", "upstream": next(iter(upstreams))}],
        "routes": [{"name": "auto", "candidates": list(upstreams)}],
    }


def sdk(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-client", max_retries=0)


ALL = ["moderations", "audio/transcriptions", "audio/speech", "rerank", "images/generations"]
DEAD = "http://127.0.0.1:9/v1"  # discard port: nothing listens, connections are refused


async def test_moderations_fail_over_and_carry_the_gateways_key(
    endpoints: StartEndpoints, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    good = await endpoints()
    gateway = await start_gateway(
        config({"dead": DEAD, "good": good.base_url}, ALL), environ={"UPSTREAM_KEY": "sk-up"}
    )
    async with sdk(gateway.url) as client:
        raw = await client.moderations.with_raw_response.create(model="auto", input="hello")
        moderation = raw.parse()
    assert moderation.results[0].flagged is False
    assert raw.headers["x-switchman-model"] == "good"
    assert raw.headers["x-switchman-attempts"] == "2"
    (seen,) = good.seen
    assert seen["body"] == {"model": "good-target", "input": "hello"}
    assert seen["headers"]["Authorization"] == "Bearer sk-up"
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}/metrics") as resp:
        text = await resp.text()
    served = [
        line
        for line in text.splitlines()
        if line.startswith("switchman_requests_total{")
        and 'model="good"' in line
        and 'outcome="ok"' in line
    ]
    assert len(served) == 1
    assert served[0].endswith(" 1.0")


async def test_transcription_multipart_arrives_intact(
    endpoints: StartEndpoints, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    good = await endpoints()
    gateway = await start_gateway(
        config({"good": good.base_url}, ALL), environ={"UPSTREAM_KEY": "k"}
    )
    async with sdk(gateway.url) as client:
        text = await client.audio.transcriptions.create(model="auto", file=("a.wav", WAV))
        speech = await client.audio.speech.with_raw_response.create(
            model="good", voice="alloy", input="hi"
        )
    assert text.text == f"{len(WAV)} bytes"
    assert good.seen[0]["body"] == {
        "model": "good-target",
        "sha256": hashlib.sha256(WAV).hexdigest(),
    }
    assert speech.headers["content-type"] == "audio/wav"
    assert speech.content == WAV


async def test_rerank_answers_and_client_errors_pass_back(
    endpoints: StartEndpoints, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    refusing, good = await endpoints(status=400), await endpoints()
    gateway = await start_gateway(
        config({"refusing": refusing.base_url, "good": good.base_url}, ALL),
        environ={"UPSTREAM_KEY": "k"},
    )
    body = {"model": "good", "query": "q", "documents": ["a", "b"]}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{gateway.url}/v1/rerank", json=body) as resp:
            assert resp.status == 200
            assert (await resp.json())["results"][0]["index"] == 1
        async with http.post(f"{gateway.url}/v1/rerank", json={**body, "model": "auto"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["message"] == "upstream says no"
    assert len(good.seen) == 1  # the 400 was the client's answer: no failover


async def test_images_are_not_generated_twice(
    endpoints: StartEndpoints, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    broken, good = await endpoints(status=500), await endpoints()
    gateway = await start_gateway(
        config({"broken": broken.base_url, "good": good.base_url}, ALL),
        environ={"UPSTREAM_KEY": "k"},
    )
    async with sdk(gateway.url) as client:
        with pytest.raises(openai.APIStatusError) as failed:
            await client.images.generate(model="auto", prompt="a cat")
        assert failed.value.status_code == 502
        assert good.seen == []
        gateway.write_config(
            config({"dead": DEAD, "good": good.base_url}, ALL)
        )  # refused connections are safe to fail over
    for _ in range(100):
        if "dead" in gateway.watcher.current.upstreams:
            break
        await asyncio.sleep(0.05)
    async with sdk(gateway.url) as client:
        image = await client.images.generate(model="auto", prompt="a cat")
    assert image.data is not None
    assert image.data[0].b64_json == "aGk="


async def test_undeclared_and_unknown_models(
    endpoints: StartEndpoints, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    good = await endpoints()
    gateway = await start_gateway(
        config({"good": good.base_url}, ["rerank"]), environ={"UPSTREAM_KEY": "k"}
    )
    async with sdk(gateway.url) as client:
        with pytest.raises(openai.BadRequestError) as undeclared:
            await client.moderations.create(model="good", input="x")
        with pytest.raises(openai.BadRequestError) as chat_only:
            await client.moderations.create(model="chat-only", input="x")
        with pytest.raises(openai.NotFoundError):
            await client.moderations.create(model="nope", input="x")
    assert undeclared.value.param == "model"
    assert "moderations" in undeclared.value.message
    assert chat_only.value.param == "model"
    assert good.seen == []


async def test_tenants_are_admitted_as_for_chat(
    tmp_path: Path, endpoints: StartEndpoints, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    good = await endpoints()
    key = new_key()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "team", "sha256": hash_key(key)}]}))
    document = config({"good": good.base_url}, ALL)
    document["tenancy"] = {
        "keys_file": str(keys),
        "tenants": [{"name": "team", "routes": ["auto"], "limits": {"requests_per_minute": 1}}],
    }
    gateway = await start_gateway(document, environ={"UPSTREAM_KEY": "k"})
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key=key, max_retries=0
    ) as client:
        with pytest.raises(openai.PermissionDeniedError):
            await client.moderations.create(model="good", input="x")  # not its route
        await client.moderations.create(model="auto", input="x")
        with pytest.raises(openai.RateLimitError):
            await client.moderations.create(model="auto", input="x")  # one a minute
    async with sdk(gateway.url) as keyless:
        with pytest.raises(openai.AuthenticationError):
            await keyless.moderations.create(model="auto", input="x")
    assert len(good.seen) == 1
