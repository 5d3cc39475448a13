"""The gateway in front of each upstream kind, driven by the official ``openai`` SDK.

A real gateway (``start_gateway``) proxies to fake upstreams (``fakes``) that record what they
receive and answer in the real APIs' wire format. Scenario matrix:

- openai, chat (sync SDK): ``POST /v1/chat/completions`` with the gateway's Bearer key (never the
  client's), ``model`` rewritten, tools / image parts / vendor fields untouched, ``x-request-id``
  and ``traceparent`` forwarded; ``x-switchman-*`` and ``x-request-id`` on the response.
- openai, chat without ``x-request-id``: one generated id, sent upstream and echoed.
- openai, chat stream, usage not asked / asked: upstream is always asked for usage; the client
  gets the usage-only chunk only when it asked.
- openai, chat stream read as raw bytes: chunks in order, every event JSON, ``[DONE]`` last.
- openai, completions and embeddings (base64): their upstream paths; the SDK decodes the answers.
- azure-openai, chat / chat stream / embeddings: deployment URL, ``api-version``, ``api-key`` read
  from a file, no ``Authorization``.
- anthropic, chat with system, tools and a tool turn: ``/v1/messages``, ``x-api-key``,
  ``anthropic-version``, a body the anthropic SDK's types accept; the Message comes back as a
  ChatCompletion with content, tool_calls, finish_reason and usage.
- anthropic, chat stream with / without usage: the event sequence (ping included) as chunks.
- anthropic, ``anthropic.version`` 2023-06-01 / 2026-10-21: temperature and top_p sent / dropped.
- anthropic, upstream 400 ``invalid_request_error``: an OpenAI-shaped 400 with the same message.
- anthropic, embeddings: a 400 naming the model; the upstream is never called.
- credentials, route [missing key, good]: served by the second with 2 attempts; ``/readyz`` names
  ``env:VAR``; no secret value in ``/readyz``, ``/metrics``, headers or error bodies.
- credentials, base URL with userinfo: refused at load without echoing the password.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import fakes
import openai
import pytest
from aiohttp import web
from fakes import FakeUpstream, Reply

from switchman.api.gatewayconfig import ConfigError

Start = Callable[[Reply], Awaitable[FakeUpstream]]

CLIENT_KEY = "sk-client-key-must-not-travel"
OPENAI_SECRET = "sk-test"
DISTINCT_SECRET = "sk-proj-7Hq2XbV9-live"  # long enough that a chance match is impossible
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "kelvin"]}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def upstream() -> AsyncIterator[Start]:
    async with fakes.fake_upstreams() as start:
        yield start


def gateway_config(
    upstreams: list[dict[str, Any]], models: list[dict[str, Any]], routes: list[Any] = ()
) -> dict[str, Any]:
    return {"version": 1, "upstreams": upstreams, "models": models, "routes": list(routes)}


def openai_upstream(name: str, fake: FakeUpstream, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "openai", "base_url": f"{fake.url}/v1", **extra}


def sync_client(base_url: str, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url, api_key=CLIENT_KEY, max_retries=0, default_headers=headers
    )


def async_client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=CLIENT_KEY, max_retries=0)


# --- OpenAI-compatible ------------------------------------------------------------------------


async def test_chat_reaches_openai_upstream_with_gateway_key_and_body_untouched(
    start_gateway: Any, upstream: Start
) -> None:
    fake = await upstream(fakes.openai_chat("Hi there"))
    gateway = await start_gateway(
        gateway_config(
            [openai_upstream("vllm", fake, api_key={"env": "OPENAI_KEY"})],
            [{"name": "chat", "upstream": "vllm", "upstream_model": "meta-llama/Llama-3.1-8B"}],
        ),
        environ={"OPENAI_KEY": OPENAI_SECRET},
    )
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": IMAGE, "detail": "low"}},
            ],
        },
    ]
    vendor = {"guided_json": {"type": "object"}, "top_k": 7, "repetition_penalty": 1.05}
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    def call() -> Any:
        with sync_client(gateway.base_url, traceparent=traceparent) as client:
            return client.chat.completions.with_raw_response.create(
                model="chat",
                messages=messages,
                tools=[WEATHER_TOOL],
                tool_choice="auto",
                temperature=0.2,
                extra_body=vendor,
                extra_headers={"x-request-id": "req-abc.123"},
            )

    raw = await asyncio.to_thread(call)
    completion = raw.parse()

    assert completion.choices[0].message.content == "Hi there"
    assert completion.model == "meta-llama/Llama-3.1-8B"
    seen = fake.last
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers["authorization"] == f"Bearer {OPENAI_SECRET}"
    assert all(CLIENT_KEY not in value for value in seen.headers.values())
    assert seen.headers["x-request-id"] == "req-abc.123"
    assert seen.headers["traceparent"] == traceparent
    assert seen.body == {
        "model": "meta-llama/Llama-3.1-8B",
        "messages": messages,
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        "temperature": 0.2,
        **vendor,
    }
    assert raw.headers["x-switchman-model"] == "chat"
    assert raw.headers["x-switchman-upstream"] == f"vllm 127.0.0.1:{fake.port}"
    assert raw.headers["x-switchman-route"].startswith("chat; direct")
    assert raw.headers["x-switchman-attempts"] == "1"
    assert raw.headers["x-request-id"] == "req-abc.123"


async def test_request_without_id_gets_one_that_upstream_and_client_share(
    start_gateway: Any, upstream: Start
) -> None:
    fake = await upstream(fakes.openai_chat())
    gateway = await start_gateway(
        gateway_config([openai_upstream("vllm", fake)], [{"name": "chat", "upstream": "vllm"}])
    )
    async with async_client(gateway.base_url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )

    request_id = raw.headers["x-request-id"]
    assert len(request_id) >= 16
    assert fake.last.headers["x-request-id"] == request_id
    assert "authorization" not in fake.last.headers  # no api_key configured, none invented


@pytest.mark.parametrize("include_usage", [False, True], ids=["usage-not-asked", "usage-asked"])
async def test_stream_always_asks_upstream_for_usage_and_shows_it_only_when_asked(
    start_gateway: Any, upstream: Start, include_usage: bool
) -> None:
    fake = await upstream(fakes.openai_stream(("Hel", "lo", "!")))
    gateway = await start_gateway(
        gateway_config(
            [openai_upstream("vllm", fake, api_key={"env": "OPENAI_KEY"})],
            [{"name": "chat", "upstream": "vllm", "upstream_model": "qwen"}],
        ),
        environ={"OPENAI_KEY": OPENAI_SECRET},
    )
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    async with async_client(gateway.base_url) as client:
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=True, **options
        )
        chunks = [c async for c in stream]

    assert fake.last.body["stream"] is True
    assert fake.last.body["stream_options"] == {"include_usage": True}
    choice_chunks = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in choice_chunks)
    assert text == "Hello!"
    assert choice_chunks[-1].choices[0].finish_reason == "stop"
    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert len(usage_chunks) == 1
        assert chunks[-1] is usage_chunks[0]
        assert usage_chunks[0].usage is not None
        assert (usage_chunks[0].usage.prompt_tokens, usage_chunks[0].usage.completion_tokens) == (
            9,
            3,
        )
    else:
        assert usage_chunks == []


async def test_stream_relays_every_chunk_in_order_and_ends_with_done(
    start_gateway: Any, upstream: Start
) -> None:
    fake = await upstream(fakes.openai_stream(("a", "b", "c", "d"), delay=0.01))
    gateway = await start_gateway(
        gateway_config([openai_upstream("vllm", fake)], [{"name": "chat", "upstream": "vllm"}])
    )
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{gateway.base_url}/chat/completions", json=body) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["x-switchman-model"] == "chat"
        text = (await resp.read()).decode()

    events = text.split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    datas = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    deltas = [d["choices"][0]["delta"] for d in datas]
    assert deltas[0]["role"] == "assistant"
    assert [d.get("content") for d in deltas[1:-1]] == ["a", "b", "c", "d"]
    assert datas[-1]["choices"][0]["finish_reason"] == "stop"


async def test_completions_and_embeddings_reach_their_upstream_paths(
    start_gateway: Any, upstream: Start
) -> None:
    async def reply(seen: fakes.Seen, request: web.Request) -> web.StreamResponse:
        answer = fakes.openai_embedding() if seen.path.endswith("/embeddings") else None
        return await (answer or fakes.openai_completion())(seen, request)

    fake = await upstream(reply)
    gateway = await start_gateway(
        gateway_config(
            [openai_upstream("vllm", fake)],
            [{"name": "small", "upstream": "vllm", "upstream_model": "Qwen/Qwen2.5-0.5B"}],
        )
    )
    async with async_client(gateway.base_url) as client:
        completion = await client.completions.create(model="small", prompt="Once")
        embedding = await client.embeddings.create(model="small", input=["a", "b"])

    assert completion.choices[0].text == " upon a time"
    assert [v.embedding for v in embedding.data] == [list(fakes.EMBEDDING)] * 2
    completion_call, embedding_call = fake.seen
    assert completion_call.path == "/v1/completions"
    assert completion_call.body == {"model": "Qwen/Qwen2.5-0.5B", "prompt": "Once"}
    assert embedding_call.path == "/v1/embeddings"
    assert embedding_call.body["model"] == "Qwen/Qwen2.5-0.5B"
    assert embedding_call.body["input"] == ["a", "b"]


# --- Azure OpenAI -----------------------------------------------------------------------------


def azure_config(fake: FakeUpstream, key_file: Path) -> dict[str, Any]:
    return gateway_config(
        [
            {
                "name": "azure",
                "kind": "azure-openai",
                "base_url": fake.url,
                "api_key": {"file": str(key_file)},
                "azure": {"deployment": "gpt4o-prod", "api_version": "2024-10-21"},
            }
        ],
        [{"name": "gpt-4o", "upstream": "azure"}],
    )


@pytest.fixture
def azure_key(tmp_path: Path) -> Path:
    path = tmp_path / "azure-api-key"
    path.write_text("azure-secret-0123456789\n")  # mounted Secrets often end in a newline
    return path


async def test_azure_chat_uses_deployment_url_version_and_api_key_header(
    start_gateway: Any, upstream: Start, azure_key: Path
) -> None:
    fake = await upstream(fakes.openai_chat("from azure"))
    gateway = await start_gateway(azure_config(fake, azure_key))

    def call() -> Any:
        with sync_client(gateway.base_url) as client:
            return client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
            )

    completion = await asyncio.to_thread(call)

    assert completion.choices[0].message.content == "from azure"
    seen = fake.last
    assert (seen.method, seen.path) == ("POST", "/openai/deployments/gpt4o-prod/chat/completions")
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == "azure-secret-0123456789"
    assert "authorization" not in seen.headers


async def test_azure_stream_is_relayed(
    start_gateway: Any, upstream: Start, azure_key: Path
) -> None:
    fake = await upstream(fakes.openai_stream(("Az", "ure")))
    gateway = await start_gateway(azure_config(fake, azure_key))

    async with async_client(gateway.base_url) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    assert text == "Azure"
    assert fake.last.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert fake.last.query == {"api-version": "2024-10-21"}
    assert fake.last.body["stream_options"] == {"include_usage": True}


async def test_azure_embeddings_use_the_deployment_embeddings_path(
    start_gateway: Any, upstream: Start, azure_key: Path
) -> None:
    fake = await upstream(fakes.openai_embedding())
    gateway = await start_gateway(azure_config(fake, azure_key))

    async with async_client(gateway.base_url) as client:
        result = await client.embeddings.create(model="gpt-4o", input="hello")

    assert result.data[0].embedding == list(fakes.EMBEDDING)
    assert fake.last.path == "/openai/deployments/gpt4o-prod/embeddings"
    assert fake.last.query == {"api-version": "2024-10-21"}
    assert fake.last.headers["api-key"] == "azure-secret-0123456789"


# --- Anthropic --------------------------------------------------------------------------------

ANTHROPIC_SECRET = "sk-ant-api03-fake-secret"


def anthropic_config(fake: FakeUpstream) -> dict[str, Any]:
    return gateway_config(
        [
            {
                "name": "anthropic",
                "kind": "anthropic",
                "base_url": fake.url,
                "api_key": {"env": "ANTHROPIC_KEY"},
            }
        ],
        [{"name": "claude", "upstream": "anthropic", "upstream_model": "claude-sonnet-4-5"}],
    )


async def start_anthropic(start_gateway: Any, fake: FakeUpstream) -> Any:
    return await start_gateway(anthropic_config(fake), environ={"ANTHROPIC_KEY": ANTHROPIC_SECRET})


async def test_anthropic_chat_is_translated_to_messages_and_back(
    start_gateway: Any, upstream: Start
) -> None:
    fake = await upstream(fakes.anthropic_reply())
    gateway = await start_anthropic(start_gateway, fake)
    call = {"id": "toolu_prev", "type": "function"}
    call["function"] = {"name": "get_weather", "arguments": '{"city": "Oslo"}'}

    def create() -> Any:
        with sync_client(gateway.base_url) as client:
            return client.chat.completions.create(
                model="claude",
                max_tokens=300,
                tools=[WEATHER_TOOL],
                messages=[
                    {"role": "system", "content": "You are a weather bot."},
                    {"role": "user", "content": "Weather in Oslo?"},
                    {"role": "assistant", "content": None, "tool_calls": [call]},
                    {"role": "tool", "tool_call_id": "toolu_prev", "content": "-3C, snow"},
                    {"role": "user", "content": "And in Paris?"},
                ],
            )

    completion = await asyncio.to_thread(create)

    seen = fake.last
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.headers["x-api-key"] == ANTHROPIC_SECRET
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["content-type"] == "application/json"
    assert "authorization" not in seen.headers
    fakes.assert_valid_messages_request(seen.body)
    assert seen.body["model"] == "claude-sonnet-4-5"
    assert seen.body["system"] == "You are a weather bot."
    assert seen.body["max_tokens"] == 300
    assert seen.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_prev",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_prev", "content": "-3C, snow"},
                {"type": "text", "text": "And in Paris?"},
            ],
        },
    ]
    assert seen.body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    choice = completion.choices[0]
    assert choice.message.content == "I'll look up the weather."
    assert choice.finish_reason == "tool_calls"
    (tool_call,) = choice.message.tool_calls
    assert tool_call.id == "toolu_01A09q90qw90lq917835lq9"
    assert tool_call.function.name == "get_weather"
    assert json.loads(tool_call.function.arguments) == {"city": "Paris", "unit": "celsius"}
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 34)
    assert completion.usage.total_tokens == 55


@pytest.mark.parametrize("include_usage", [False, True], ids=["usage-not-asked", "usage-asked"])
async def test_anthropic_stream_becomes_openai_chunks(
    start_gateway: Any, upstream: Start, include_usage: bool
) -> None:
    fake = await upstream(fakes.anthropic_stream(("Hello", " there", "!")))
    gateway = await start_anthropic(start_gateway, fake)
    options = {"stream_options": {"include_usage": True}} if include_usage else {}

    async with async_client(gateway.base_url) as client:
        stream = await client.chat.completions.create(
            model="claude",
            messages=[{"role": "system", "content": "Greet."}, {"role": "user", "content": "hi"}],
            stream=True,
            **options,
        )
        chunks = [c async for c in stream]

    body = fake.last.body
    fakes.assert_valid_messages_request(body)
    assert body["stream"] is True
    assert body["max_tokens"] == 4096  # the configured default: Anthropic requires one
    assert "stream_options" not in body
    choice_chunks = [c for c in chunks if c.choices]
    assert choice_chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in choice_chunks) == "Hello there!"
    assert [c.choices[0].finish_reason for c in choice_chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in choice_chunks[:-1])
    usage_chunks = [c for c in chunks if not c.choices]
    if include_usage:
        assert chunks[-1] is usage_chunks[0]
        usage = usage_chunks[0].usage
        assert usage is not None
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (25, 15, 40)
    else:
        assert usage_chunks == []


@pytest.mark.parametrize(
    ("version", "sent"),
    [("2023-06-01", {"temperature": 0.5, "top_p": 0.9}), ("2026-10-21", {})],
    ids=["2023-06-01-keeps-sampling", "2026-10-21-drops-sampling"],
)
async def test_anthropic_sampling_fields_follow_the_configured_api_version(
    start_gateway: Any, upstream: Start, version: str, sent: dict[str, float]
) -> None:
    fake = await upstream(fakes.anthropic_reply())
    document = anthropic_config(fake)
    document["upstreams"][0]["anthropic"] = {"version": version}
    gateway = await start_gateway(document, environ={"ANTHROPIC_KEY": ANTHROPIC_SECRET})

    async with async_client(gateway.base_url) as client:
        await client.chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "hi"}], temperature=0.5, top_p=0.9
        )

    assert fake.last.headers["anthropic-version"] == version
    assert {k: v for k, v in fake.last.body.items() if k in ("temperature", "top_p")} == sent


async def test_anthropic_error_becomes_openai_error_with_same_status(
    start_gateway: Any, upstream: Start
) -> None:
    message = "messages: text content blocks must be non-empty"
    fake = await upstream(fakes.anthropic_error(400, "invalid_request_error", message))
    gateway = await start_anthropic(start_gateway, fake)

    async with async_client(gateway.base_url) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="claude", messages=[{"role": "user", "content": "hi"}]
            )

    assert caught.value.status_code == 400
    assert caught.value.response.json() == {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    }
    assert len(fake.seen) == 1


async def test_embeddings_for_anthropic_only_model_is_a_clear_400(
    start_gateway: Any, upstream: Start
) -> None:
    fake = await upstream(fakes.anthropic_reply())
    gateway = await start_anthropic(start_gateway, fake)

    async with async_client(gateway.base_url) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.embeddings.create(model="claude", input="hello")

    error = caught.value.response.json()["error"]
    assert error["param"] == "model"
    assert "claude" in error["message"]
    assert "embeddings" in error["message"]
    assert fake.seen == []


# --- Credentials ------------------------------------------------------------------------------


def credentials_config(good: FakeUpstream, secret_file: Path) -> dict[str, Any]:
    return gateway_config(
        [
            openai_upstream("keyless", good, api_key={"env": "MISSING_KEY"}),
            openai_upstream("good", good, api_key={"env": "OPENAI_KEY"}),
            {
                "name": "azure",
                "kind": "azure-openai",
                "base_url": good.url,
                "api_key": {"file": str(secret_file)},
                "azure": {"deployment": "d"},
            },
        ],
        [
            {"name": "needs-key", "upstream": "keyless"},
            {"name": "good-model", "upstream": "good"},
        ],
        [{"name": "chat", "candidates": ["needs-key", "good-model"]}],
    )


async def test_missing_credential_makes_upstream_unusable_and_route_falls_over(
    start_gateway: Any, upstream: Start, tmp_path: Path
) -> None:
    fake = await upstream(fakes.openai_chat("served by good"))
    (tmp_path / "azure-key").write_text("file-secret-abcdef")
    gateway = await start_gateway(
        credentials_config(fake, tmp_path / "azure-key"), environ={"OPENAI_KEY": OPENAI_SECRET}
    )

    async with async_client(gateway.base_url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
        with pytest.raises(openai.InternalServerError) as caught:
            await client.chat.completions.create(
                model="needs-key", messages=[{"role": "user", "content": "hi"}]
            )
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/readyz") as resp:
        readyz = await resp.json()

    assert raw.parse().choices[0].message.content == "served by good"
    # The keyless upstream is filtered out by routing: no attempt is wasted on it.
    assert raw.headers["x-switchman-attempts"] == "1"
    assert raw.headers["x-switchman-model"] == "good-model"
    assert "(1 filtered)" in raw.headers["x-switchman-route"]
    assert len(fake.seen) == 1
    assert fake.last.headers["authorization"] == f"Bearer {OPENAI_SECRET}"
    assert caught.value.status_code == 502
    assert "env:MISSING_KEY" in caught.value.message
    keyless = readyz["upstreams"]["keyless"]
    assert keyless["usable"] is False
    assert "env:MISSING_KEY" in keyless["problem"]
    assert readyz["upstreams"]["good"] == {**readyz["upstreams"]["good"], "usable": True}
    assert readyz["upstreams"]["azure"]["usable"] is True


async def test_secret_values_never_appear_in_readyz_metrics_or_errors(
    start_gateway: Any, upstream: Start, tmp_path: Path
) -> None:
    fake = await upstream(fakes.openai_error(500, "upstream exploded"))
    (tmp_path / "azure-key").write_text("file-secret-abcdef")
    gateway = await start_gateway(
        credentials_config(fake, tmp_path / "azure-key"), environ={"OPENAI_KEY": DISTINCT_SECRET}
    )
    texts: list[str] = []
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    async with aiohttp.ClientSession() as session:
        for path, payload in [
            ("/v1/chat/completions", body),
            ("/v1/chat/completions", {**body, "model": "needs-key"}),
            ("/v1/chat/completions", {**body, "stream": True}),
            ("/v1/embeddings", {"model": "good-model", "input": "x"}),
        ]:
            async with session.post(gateway.url + path, json=payload) as resp:
                assert resp.status == 502
                texts.append(await resp.text())
                texts.append(json.dumps(dict(resp.headers)))
        for path in ("/readyz", "/metrics", "/v1/models"):
            async with session.get(gateway.url + path) as resp:
                texts.append(await resp.text())

    # Called (and failing) each time, retried when it was the last candidate left, until its
    # circuit opened after 5 failures in a row.
    assert len(fake.seen) == 5
    for text in texts:
        assert DISTINCT_SECRET not in text
        assert "file-secret-abcdef" not in text
        assert "Traceback" not in text


async def test_base_url_with_userinfo_is_refused_without_echoing_the_secret(
    start_gateway: Any, upstream: Start
) -> None:
    """Credentials only travel by reference: a base URL carrying user:password is rejected at
    load, and the error names the fix without repeating the password."""
    fake = await upstream(fakes.openai_chat("served"))
    base_url = fake.url.replace("http://", "http://proxyuser:pr0xy-pass@") + "/v1"
    with pytest.raises(ConfigError) as caught:
        await start_gateway(
            gateway_config(
                [{"name": "vllm", "base_url": base_url, "api_key": {"env": "OPENAI_KEY"}}],
                [{"name": "chat", "upstream": "vllm"}],
            ),
            environ={"OPENAI_KEY": OPENAI_SECRET},
        )
    assert "api_key" in str(caught.value)
    assert "pr0xy-pass" not in str(caught.value)
