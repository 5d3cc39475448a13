"""``POST /v1/messages`` driven by the official ``anthropic`` SDK through a real gateway.

Upstreams: the simulator (OpenAI-compatible, vLLM's shapes; forced tool calls and ``/tokenize``)
and ``misbehaving`` servers (an Anthropic upstream; an OpenAI one that cuts streams). The route
``auto`` has both simulator models as candidates, so every request goes through routing exactly as
chat does. Scenario matrix:

- plain: ``messages.create`` with a system prompt and two turns -> the text the simulator gives
  the same conversation over chat, usage equal to its usage, ``x-switchman-route`` present, the
  simulator received a chat request (system first, the turns in order)
- streamed: ``messages.stream`` -> the same text, final message usage equal, ``message_start``
  once and ``message_stop`` last (raw events checked)
- tools, whole and streamed: a forced tool -> ``tool_use`` with the simulator's call id and
  parsed input; the tool_result sent back arrives upstream as a ``tool`` message with that id
- count_tokens: equals the simulator's ``/tokenize`` and the input tokens of a real request
  (``x-switchman-token-count: upstream``); an Anthropic upstream's own count_tokens gets the
  client's body (model rewritten, ``cache_control`` kept); an upstream that cannot count gives the
  gateway's estimate (``x-switchman-token-count: estimate``)
- errors, each as the SDK's exception class with Anthropic's error type: unknown model
  (NotFoundError), missing max_tokens (BadRequestError), server tool sent to a translated upstream
  (BadRequestError), every upstream down (OverloadedError, 529), unknown path under
  /v1/messages (NotFoundError shape), a declared body over the limit with
  ``Expect: 100-continue`` (413 ``request_too_large`` before the body is invited)
- Anthropic upstream: the client's body arrives untouched but for ``model`` (``cache_control``
  and ``thinking`` kept), with the client's ``anthropic-beta``, the gateway's ``x-api-key`` (never
  the client's), and the answer comes back to the SDK as a Message
- a server tool on a route [OpenAI-compatible, Anthropic]: the first candidate is skipped and the
  Anthropic one serves it untouched (the simulator never called)
- a stream cut mid-way (OpenAI upstream cuts after 5 words, ``mid_stream: continue``) continues on
  the backup as one Anthropic event stream: one ``message_start``, one ``message_delta`` whose
  output tokens are the one total chat reports for the same cut, text equal to the uncut answer
- prompt caching: the same long system prompt twice -> the second Message reports
  ``cache_read_input_tokens`` (the simulator's prefix cache) with ``input_tokens`` the uncached
  rest; the access log line carries ``cached_input_tokens`` and a cost at the cached price
- an Anthropic upstream's whole answer reaches the client as it is (thinking block included);
  its stream reaches the client event for event (thinking blocks with their
  signature, ping, usage); cut after 5 words, it continues on an OpenAI-compatible backup in the
  same message and text block; cut inside a tool call, it is not continued as text but ends with
  one ``error`` event
- prefix affinity: three replicas, a repeated system prompt stays on one of them and every
  repeat reads it from that replica's cache
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anthropic
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from misbehaving import answer_text, misbehaving

from switchman.gateway.telemetry.accesslog import AccessLog
from switchman.sim.runner import RunningSim

Launch = Callable[..., Awaitable[RunningSim]]
SYSTEM = "You answer briefly."
TURNS: list[Any] = [
    {"role": "user", "content": "What is a gateway?"},
    {"role": "assistant", "content": "A door."},
    {"role": "user", "content": "And an inference gateway?"},
]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city"],
    },
}


def sim_config(*sims: RunningSim, extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    upstreams = [
        {"name": f"sim{i}", "base_url": f"{sim.url}/v1", "continuation": "vllm"}
        for i, sim in enumerate(sims)
    ]
    models = [
        {"name": f"small{i}", "upstream": f"sim{i}", "upstream_model": "tiny"}
        for i in range(len(sims))
    ]
    return {
        "version": 1,
        "upstreams": upstreams + (extra or []),
        "models": models,
        "routes": [{"name": "auto", "candidates": [m["name"] for m in models]}],
    }


def client(base: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=base, api_key="sk-client", max_retries=0, timeout=20)


async def chat_answer(sim: RunningSim, messages: list[dict[str, Any]]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        body = {"model": "tiny", "messages": messages, "max_tokens": 64}
        async with http.post(f"{sim.url}/v1/chat/completions", json=body) as resp:
            assert resp.status == 200
            result: dict[str, Any] = await resp.json()
            return result


async def test_plain_message_is_the_chat_answer_of_the_same_conversation(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(sim_config(sim))
    async with client(gateway.url) as sdk:
        raw = await sdk.messages.with_raw_response.create(
            model="auto", max_tokens=64, system=SYSTEM, messages=TURNS
        )
        message = await raw.parse()
    expected = await chat_answer(sim, [{"role": "system", "content": SYSTEM}, *TURNS])
    assert message.content[0].type == "text"
    assert message.content[0].text == expected["choices"][0]["message"]["content"]
    assert message.usage.input_tokens == expected["usage"]["prompt_tokens"]
    assert message.usage.output_tokens == expected["usage"]["completion_tokens"]
    assert message.stop_reason == "end_turn"
    assert message.id.startswith("msg_")
    assert raw.headers["x-switchman-route"].startswith("auto")
    seen = sim.state.recorder.entries()[0]["body"]
    assert [m["role"] for m in seen["messages"]] == ["system", "user", "assistant", "user"]


async def test_streamed_message_has_the_same_text_and_one_usage(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(sim_config(sim))
    async with client(gateway.url) as sdk:
        whole = await sdk.messages.create(model="auto", max_tokens=64, messages=TURNS)
        async with sdk.messages.stream(model="auto", max_tokens=64, messages=TURNS) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
    assert whole.content[0].type == "text"
    assert text == whole.content[0].text
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens
    events = await raw_events(gateway.url, {"model": "auto", "max_tokens": 64, "messages": TURNS})
    names = [e["type"] for e in events]
    assert names.count("message_start") == 1
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "ping"


async def raw_events(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/messages", json={**body, "stream": True}) as resp,
    ):
        assert resp.status == 200
        assert resp.content_type == "text/event-stream"
        data = (await resp.read()).decode()
    events = []
    for block in data.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        event = json.loads(lines["data"])
        assert lines["event"] == event["type"]
        events.append(event)
    return events


@pytest.mark.parametrize("streamed", [False, True])
async def test_forced_tool_call_keeps_its_id_both_ways(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]], streamed: bool
) -> None:
    sim = await launch()
    gateway = await start_gateway(sim_config(sim))
    ask: dict[str, Any] = {
        "model": "auto",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Weather in Oslo?"}],
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    async with client(gateway.url) as sdk:
        if streamed:
            async with sdk.messages.stream(**ask) as stream:
                message = await stream.get_final_message()
        else:
            message = await sdk.messages.create(**ask)
        assert message.stop_reason == "tool_use"
        use = message.content[-1]
        assert use.type == "tool_use"
        assert use.name == "get_weather"
        assert use.input == {"city": "w0", "days": 1}
        assert use.id.startswith("call_")
        follow_up = [
            *ask["messages"],
            {"role": "assistant", "content": [use.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "12C"}],
            },
        ]
        done = await sdk.messages.create(model="auto", max_tokens=16, messages=follow_up)
    assert done.stop_reason in ("end_turn", "max_tokens")
    seen = sim.state.recorder.entries()[-1]["body"]["messages"]
    assert seen[1]["tool_calls"][0]["id"] == use.id
    assert json.loads(seen[1]["tool_calls"][0]["function"]["arguments"]) == use.input
    assert seen[2] == {"role": "tool", "tool_call_id": use.id, "content": "12C"}


async def test_count_tokens_uses_the_models_tokenizer(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(sim_config(sim))
    async with client(gateway.url) as sdk:
        raw = await sdk.messages.with_raw_response.count_tokens(
            model="auto", system=SYSTEM, messages=TURNS
        )
        counted = await raw.parse()
        real = await sdk.messages.create(model="auto", max_tokens=8, system=SYSTEM, messages=TURNS)
    assert raw.headers["x-switchman-token-count"] == "upstream"
    assert counted.input_tokens == real.usage.input_tokens
    assert counted.input_tokens > 5


async def test_errors_have_anthropic_types(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(sim_config(sim))
    async with client(gateway.url) as sdk:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await sdk.messages.create(model="nope", max_tokens=8, messages=TURNS)
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        with pytest.raises(anthropic.BadRequestError) as server_tool:
            await sdk.messages.create(
                model="auto",
                max_tokens=8,
                messages=TURNS,
                tools=[{"type": "web_search_20250305", "name": "web_search"}],
            )
        assert "web_search" in server_tool.value.message
        async with (
            aiohttp.ClientSession() as http,
            http.post(sim.url + "/admin/faults", json={"down": True}) as resp,
        ):
            assert resp.status == 200
        with pytest.raises(anthropic.OverloadedError) as down:
            await sdk.messages.create(model="auto", max_tokens=8, messages=TURNS)
        assert down.value.status_code == 529
        assert down.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    async with aiohttp.ClientSession() as http:
        body = {"model": "auto", "messages": TURNS}
        async with http.post(f"{gateway.url}/v1/messages", json=body) as resp:
            assert resp.status == 400
            error = await resp.json()
        assert error["type"] == "error"
        assert error["error"]["type"] == "invalid_request_error"
        assert "max_tokens" in error["error"]["message"]
        async with http.post(f"{gateway.url}/v1/messages/batches", json=body) as resp:
            assert resp.status == 404
            assert (await resp.json())["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("streamed", [False, True])
async def test_anthropic_upstream_gets_the_body_untouched(
    start_gateway: Callable[..., Awaitable[Any]], streamed: bool
) -> None:
    async with misbehaving(tokens=6) as upstream:
        config = {
            "version": 1,
            "upstreams": [
                {
                    "name": "claude",
                    "kind": "anthropic",
                    "base_url": upstream.url,
                    "api_key": {"env": "CLAUDE_KEY"},
                    "anthropic": {"version": "2026-10-21"},
                }
            ],
            "models": [{"name": "sonnet", "upstream": "claude", "upstream_model": "claude-x"}],
        }
        gateway = await start_gateway(config, environ={"CLAUDE_KEY": "sk-ant-gateway"})
        system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
        ask: dict[str, Any] = {
            "model": "sonnet",
            "max_tokens": 64,
            "system": system,
            "messages": TURNS,
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "extra_headers": {
                "anthropic-beta": "prompt-caching-2024-07-31",
                "anthropic-version": "2023-06-01",  # the client's, not the upstream's configured
            },
        }
        async with client(gateway.url) as sdk:
            if streamed:
                async with sdk.messages.stream(**ask) as stream:
                    message = await stream.get_final_message()
            else:
                message = await sdk.messages.create(**ask)
    assert message.content[0].type == "text"
    assert message.content[0].text == answer_text(6)
    assert message.usage.output_tokens == 6
    seen = upstream.seen[0]
    assert seen.path == "/v1/messages"
    assert seen.body == {
        **{k: v for k, v in ask.items() if k != "extra_headers"},
        "model": "claude-x",
        "stream": streamed,
    }
    assert seen.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["x-api-key"] == "sk-ant-gateway"


async def test_a_cut_stream_continues_as_one_anthropic_message(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    async with (
        misbehaving(tokens=30, cut_after=5) as primary,
        misbehaving(tokens=30) as backup,
    ):
        config = {
            "version": 1,
            "upstreams": [
                {"name": "primary", "base_url": primary.base_url, "continuation": "vllm"},
                {"name": "backup", "base_url": backup.base_url, "continuation": "vllm"},
            ],
            "models": [
                {"name": "a", "upstream": "primary"},
                {"name": "b", "upstream": "backup"},
            ],
            "routes": [{"name": "auto", "candidates": ["a", "b"], "mid_stream": "continue"}],
        }
        gateway = await start_gateway(config)
        body = {"model": "auto", "max_tokens": 100, "messages": TURNS}
        events = await raw_events(gateway.url, body)
        async with client(gateway.url) as sdk, sdk.messages.stream(**body) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            final = await stream.get_final_message()
        chat_usage = await chat_stream_usage(gateway.url, TURNS)
    names = [e["type"] for e in events]
    assert names.count("message_start") == 1
    assert names.count("message_delta") == 1
    assert names[-1] == "message_stop"
    assert "error" not in names
    deltas = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert "".join(deltas) == answer_text(30)
    assert text == answer_text(30)
    # One usage total for the whole continued answer: the one chat reports for the same cut.
    assert final.usage.output_tokens == chat_usage["completion_tokens"]
    assert events[-2]["usage"]["output_tokens"] == chat_usage["completion_tokens"]
    assert final.usage.output_tokens >= 25  # the backup's 25 words at least: never just a part
    assert [s.mechanism for s in backup.seen].count("vllm") == 3  # every request continued


async def chat_stream_usage(url: str, messages: list[Any]) -> dict[str, Any]:
    body = {
        "model": "auto",
        "max_tokens": 100,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/chat/completions", json=body) as resp,
    ):
        data = (await resp.read()).decode()
    chunks = [json.loads(line[6:]) for line in data.splitlines() if line.startswith("data: {")]
    usages = [c["usage"] for c in chunks if c.get("usage")]
    assert len(usages) == 1
    usage: dict[str, Any] = usages[0]
    return usage


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(json.loads(record.getMessage()))


async def test_prompt_cache_reads_are_reported_logged_and_priced(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    config = sim_config(sim)
    price = {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_input_per_mtok": 0.3}
    config["models"][0]["price"] = price
    logger = logging.getLogger(f"test.inbound.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    lines = Lines()
    logger.addHandler(lines)
    gateway = await start_gateway(config, access_log=AccessLog("json", logger))
    system = [
        {
            "type": "text",
            "text": " ".join(f"rule{i}" for i in range(200)),
            "cache_control": {"type": "ephemeral"},
        }
    ]
    async with client(gateway.url) as sdk:
        first = await sdk.messages.create(
            model="auto",
            max_tokens=8,
            system=system,
            messages=TURNS[:1],  # type: ignore[arg-type]
        )
        second = await sdk.messages.create(
            model="auto",
            max_tokens=8,
            system=system,
            messages=TURNS[:1],  # type: ignore[arg-type]
        )
    assert first.usage.cache_read_input_tokens == 0
    read = second.usage.cache_read_input_tokens
    assert read is not None
    assert read >= 192  # the 200-word system prompt, in whole 16-token blocks
    prompt = first.usage.input_tokens
    assert second.usage.input_tokens + read == prompt
    for _ in range(100):
        if len(lines.records) >= 2:
            break
        await asyncio.sleep(0.01)
    line = lines.records[1]
    assert (line["input_tokens"], line["cached_input_tokens"]) == (prompt, read)
    output = second.usage.output_tokens
    expected = ((prompt - read) * 3.0 + read * 0.3 + output * 15.0) / 1e6
    assert line["cost_usd"] == pytest.approx(expected, abs=1e-8)


async def test_a_server_tool_skips_to_the_anthropic_candidate(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    async with misbehaving(tokens=4) as claude:
        config = sim_config(
            sim,
            extra=[
                {
                    "name": "claude",
                    "kind": "anthropic",
                    "base_url": claude.url,
                    "api_key": {"env": "CLAUDE_KEY"},
                }
            ],
        )
        config["models"].append({"name": "sonnet", "upstream": "claude"})
        config["routes"] = [{"name": "auto", "candidates": ["small0", "sonnet"]}]
        gateway = await start_gateway(config, environ={"CLAUDE_KEY": "sk-ant-gateway"})
        tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
        async with client(gateway.url) as sdk:
            raw = await sdk.messages.with_raw_response.create(
                model="auto",
                max_tokens=16,
                messages=TURNS,
                tools=[tool],  # type: ignore[list-item]
            )
            message = await raw.parse()
    assert raw.headers["x-switchman-model"] == "sonnet"
    assert message.content[0].type == "text"
    assert claude.seen[0].body["tools"] == [tool]
    assert sim.state.recorder.entries() == []


async def test_prefix_affinity_keeps_a_repeated_system_prompt_on_one_replica(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    replicas = [await launch() for _ in range(3)]
    config = {
        "version": 1,
        "upstreams": [
            {
                "name": "pool",
                "base_url": f"{replicas[0].url}/v1",
                "discovery": {"static": [f"127.0.0.1:{sim.port}" for sim in replicas]},
                "balance": {"policy": "least-loaded", "prefix_affinity": True},
            }
        ],
        "models": [{"name": "pool", "upstream": "pool", "upstream_model": "tiny"}],
    }
    gateway = await start_gateway(config)
    async with client(gateway.url) as sdk:
        for seed in range(3):
            system = " ".join(f"policy{seed}-{i}" for i in range(120))
            served, reads = set(), []
            for question in range(4):
                raw = await sdk.messages.with_raw_response.create(
                    model="pool",
                    max_tokens=4,
                    system=system,
                    messages=[{"role": "user", "content": f"question {question}"}],
                )
                served.add(raw.headers["x-switchman-upstream"])
                reads.append((await raw.parse()).usage.cache_read_input_tokens)
            assert len(served) == 1, served  # the prefix stays where its cache is warm
            assert reads[0] == 0
            assert all(read and read >= 112 for read in reads[1:]), reads


async def test_count_tokens_asks_an_anthropic_upstream_or_estimates(
    start_gateway: Callable[..., Awaitable[Any]],
) -> None:
    seen: list[tuple[str, dict[str, str], Any]] = []

    async def count(request: web.Request) -> web.Response:
        seen.append((request.path, dict(request.headers), await request.json()))
        return web.json_response({"input_tokens": 42})

    app = web.Application()
    app.router.add_post("/v1/messages/count_tokens", count)
    anthropic_server = TestServer(app, host="127.0.0.1")
    await anthropic_server.start_server()
    async with misbehaving(tokens=3) as plain:  # OpenAI-compatible, no /tokenize
        config = {
            "version": 1,
            "upstreams": [
                {
                    "name": "claude",
                    "kind": "anthropic",
                    "base_url": f"http://127.0.0.1:{anthropic_server.port}",
                    "api_key": {"env": "CLAUDE_KEY"},
                },
                {"name": "plain", "base_url": plain.base_url},
            ],
            "models": [
                {"name": "sonnet", "upstream": "claude", "upstream_model": "claude-x"},
                {"name": "other", "upstream": "plain"},
            ],
        }
        gateway = await start_gateway(config, environ={"CLAUDE_KEY": "sk-ant-gateway"})
        system = [{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}]
        async with client(gateway.url) as sdk:
            native = await sdk.messages.with_raw_response.count_tokens(
                model="sonnet",
                system=system,  # type: ignore[arg-type]
                messages=TURNS,
            )
            estimated = await sdk.messages.with_raw_response.count_tokens(
                model="other", system=SYSTEM, messages=TURNS
            )
    await anthropic_server.close()
    assert (await native.parse()).input_tokens == 42
    assert native.headers["x-switchman-token-count"] == "upstream"
    ((path, headers, body),) = seen
    assert path == "/v1/messages/count_tokens"
    assert headers["x-api-key"] == "sk-ant-gateway"
    assert body == {"model": "claude-x", "system": system, "messages": TURNS}
    assert estimated.headers["x-switchman-token-count"] == "estimate"
    words = len(SYSTEM) + sum(len(t["content"]) for t in TURNS)
    assert 0 < (await estimated.parse()).input_tokens <= words


NATIVE_EVENTS: list[dict[str, Any]] = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_native",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1},
        },
    },
    {"type": "ping"},
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "Let me think."},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "signature_delta", "signature": "c2ln"},
    },
    {"type": "content_block_stop", "index": 0},
    {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " world"}},
    {"type": "content_block_stop", "index": 1},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 7},
    },
    {"type": "message_stop"},
]


async def test_an_anthropic_upstreams_stream_reaches_the_client_as_it_is(
    start_gateway: Callable[..., Awaitable[Any]],
) -> None:
    async def messages(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        await response.prepare(request)
        for event in NATIVE_EVENTS:
            data = json.dumps(event).encode()
            await response.write(b"event: " + event["type"].encode() + b"\ndata: " + data + b"\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    config = {
        "version": 1,
        "upstreams": [
            {"name": "claude", "kind": "anthropic", "base_url": f"http://127.0.0.1:{server.port}"}
        ],
        "models": [{"name": "sonnet", "upstream": "claude", "upstream_model": "claude-x"}],
    }
    gateway = await start_gateway(config)
    body = {
        "model": "sonnet",
        "max_tokens": 64,
        "messages": TURNS,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    events = await raw_events(gateway.url, body)
    async with client(gateway.url) as sdk, sdk.messages.stream(**body) as stream:
        final = await stream.get_final_message()
    await server.close()
    assert events == NATIVE_EVENTS  # every event, ping and thinking included, as it was
    assert [block.type for block in final.content] == ["thinking", "text"]
    thinking = final.content[0]
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == ("Let me think.", "c2ln")
    assert final.content[1].type == "text"
    assert final.content[1].text == "Hello world"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (10, 7)
    assert final.usage.cache_read_input_tokens == 4


async def test_a_cut_anthropic_stream_continues_on_an_openai_upstream_as_one_message(
    start_gateway: Callable[..., Awaitable[Any]],
) -> None:
    async with (
        misbehaving(tokens=30, cut_after=5) as claude,
        misbehaving(tokens=30) as backup,
    ):
        config = {
            "version": 1,
            "upstreams": [
                {"name": "claude", "kind": "anthropic", "base_url": claude.url},
                {"name": "backup", "base_url": backup.base_url, "continuation": "vllm"},
            ],
            "models": [
                {"name": "a", "upstream": "claude"},
                {"name": "b", "upstream": "backup"},
            ],
            "routes": [{"name": "auto", "candidates": ["a", "b"], "mid_stream": "continue"}],
        }
        gateway = await start_gateway(config)
        body = {"model": "auto", "max_tokens": 100, "messages": TURNS}
        events = await raw_events(gateway.url, body)
    names = [e["type"] for e in events]
    assert names.count("message_start") == 1
    assert names.count("message_delta") == 1
    assert names[-1] == "message_stop"
    assert "error" not in names
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert text == answer_text(30)
    blocks = {e["index"] for e in events if e["type"].startswith("content_block")}
    assert blocks == {0}  # the continuation went on in the cut text block
    assert [s.mechanism for s in backup.seen] == ["vllm"]


async def test_an_oversized_body_with_expect_is_refused_in_anthropics_shape(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    config = sim_config(sim)
    config["server"] = {"max_body_bytes": 1024}
    gateway = await start_gateway(config)
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4096\r\nExpect: 100-continue\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.server.port)
    try:
        writer.write(head)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["type"] == "error"
    assert body["error"]["type"] == "request_too_large"


async def test_an_anthropic_stream_cut_inside_a_tool_call_is_not_continued_as_text(
    start_gateway: Callable[..., Awaitable[Any]],
) -> None:
    opening = [
        NATIVE_EVENTS[0],
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": "Os'},
        },
    ]

    async def messages(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_type = "text/event-stream"
        await response.prepare(request)
        for event in opening:
            data = json.dumps(event).encode()
            await response.write(b"event: " + event["type"].encode() + b"\ndata: " + data + b"\n\n")
        assert request.transport is not None
        request.transport.close()  # cut inside the tool call's arguments
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with misbehaving(tokens=30) as backup:
        config = {
            "version": 1,
            "upstreams": [
                {
                    "name": "claude",
                    "kind": "anthropic",
                    "base_url": f"http://127.0.0.1:{server.port}",
                },
                {"name": "backup", "base_url": backup.base_url, "continuation": "vllm"},
            ],
            "models": [{"name": "a", "upstream": "claude"}, {"name": "b", "upstream": "backup"}],
            "routes": [{"name": "auto", "candidates": ["a", "b"], "mid_stream": "continue"}],
        }
        gateway = await start_gateway(config)
        events = await raw_events(
            gateway.url, {"model": "auto", "max_tokens": 64, "messages": TURNS}
        )
    await server.close()
    names = [e["type"] for e in events]
    assert names[:3] == ["message_start", "content_block_start", "content_block_delta"]
    assert names[-1] == "error"
    assert names.count("error") == 1
    assert "message_stop" not in names
    assert all(e["delta"]["type"] == "input_json_delta" for e in events if "delta" in e)
    assert [s.mechanism for s in backup.seen if s.mechanism != "fresh"] == []


async def test_a_whole_anthropic_answer_reaches_the_client_as_it_is(
    start_gateway: Callable[..., Awaitable[Any]],
) -> None:
    answer = {
        "id": "msg_whole",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"},
            {"type": "text", "text": "Hi", "citations": None},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "cache_read_input_tokens": 3, "output_tokens": 2},
    }

    async def messages(request: web.Request) -> web.Response:
        return web.json_response(answer)

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    config = {
        "version": 1,
        "upstreams": [
            {"name": "claude", "kind": "anthropic", "base_url": f"http://127.0.0.1:{server.port}"}
        ],
        "models": [{"name": "sonnet", "upstream": "claude", "upstream_model": "claude-x"}],
    }
    gateway = await start_gateway(config)
    async with aiohttp.ClientSession() as http:
        body = {"model": "sonnet", "max_tokens": 64, "messages": TURNS}
        async with http.post(f"{gateway.url}/v1/messages", json=body) as resp:
            assert resp.status == 200
            assert resp.headers["x-switchman-model"] == "sonnet"
            got = await resp.json()
    await server.close()
    assert got == answer
