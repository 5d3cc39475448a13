"""``POST /v1/responses`` and ``GET /v1/models[/{id}]`` driven by the official ``openai`` SDK.

A real gateway in front of the simulator (route ``auto`` over two simulator models). Scenario
matrix:

- ``responses.create`` with instructions and a string input -> ``output_text`` equal to the
  simulator's chat answer for the same conversation, usage equal, ``store`` false, headers of the
  decision present
- streamed -> the documented events in order (created ... completed), deltas joining to the same
  text, one ``response.completed`` carrying usage
- a forced function tool -> a ``function_call`` item (call id, name, JSON arguments); sending its
  ``function_call_output`` back reaches the simulator as a ``tool`` message with that id
- ``text.format`` json_schema reaches the upstream as ``response_format``
- ``previous_response_id`` and ``store: true`` -> the SDK's BadRequestError naming the field,
  the upstream never called
- ``models.retrieve`` of the route and of a model with a slash in its name: owned_by, context
  window, capabilities, endpoints; an unknown id -> NotFoundError; the anthropic SDK's
  ``models.retrieve`` gets Anthropic's shape
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from switchman.sim.runner import RunningSim

Launch = Callable[..., Awaitable[RunningSim]]
INSTRUCTIONS = "You answer briefly."
QUESTION = "What does a router do?"


def config(sim: RunningSim) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [{"name": "sim", "base_url": f"{sim.url}/v1"}],
        "models": [
            {
                "name": "small",
                "upstream": "sim",
                "upstream_model": "tiny",
                "capabilities": {"tools": True, "context_window": 4096},
            },
            {"name": "org/large", "upstream": "sim", "upstream_model": "tiny"},
        ],
        "routes": [{"name": "auto", "candidates": ["small", "org/large"]}],
    }


def sdk(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="sk-client", max_retries=0)


async def expected(sim: RunningSim) -> dict[str, Any]:
    messages = [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": QUESTION},
    ]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{sim.url}/v1/chat/completions", json={"model": "tiny", "messages": messages}
        ) as resp,
    ):
        result: dict[str, Any] = await resp.json()
        return result


async def test_plain_response_is_the_chat_answer(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(config(sim))
    async with sdk(gateway.url) as client:
        raw = await client.responses.with_raw_response.create(
            model="auto", instructions=INSTRUCTIONS, input=QUESTION
        )
        response = raw.parse()
    chat = await expected(sim)
    assert response.output_text == chat["choices"][0]["message"]["content"]
    assert response.usage is not None
    assert response.usage.input_tokens == chat["usage"]["prompt_tokens"]
    assert response.usage.output_tokens == chat["usage"]["completion_tokens"]
    assert response.status == "completed"
    assert response.store is False
    assert response.id.startswith("resp_")
    assert raw.headers["x-switchman-model"] in ("small", "org/large")


async def test_streamed_response_events(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(config(sim))
    async with sdk(gateway.url) as client:
        stream = await client.responses.create(
            model="auto", instructions=INSTRUCTIONS, input=QUESTION, stream=True
        )
        events = [event async for event in stream]
    chat = await expected(sim)
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-1] == "response.completed"
    assert types.count("response.completed") == 1
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == chat["choices"][0]["message"]["content"]
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == text
    assert final.usage is not None
    assert final.usage.output_tokens == chat["usage"]["completion_tokens"]
    assert [e.sequence_number for e in events] == list(range(len(events)))


async def test_function_calls_round_trip(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(config(sim))
    tool = {
        "type": "function",
        "name": "lookup",
        "parameters": {"type": "object", "properties": {"term": {"type": "string"}}},
    }
    async with sdk(gateway.url) as client:
        first = await client.responses.create(
            model="auto",
            input=QUESTION,
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "function", "name": "lookup"},
        )
        call = first.output[0]
        assert call.type == "function_call"
        assert (call.name, json.loads(call.arguments)) == ("lookup", {"term": "w0"})
        second = await client.responses.create(
            model="auto",
            input=[
                {"role": "user", "content": QUESTION},
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": "routes"},
            ],
            text={"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}},
        )
    assert second.status == "completed"
    seen = sim.state.recorder.entries()[-1]["body"]
    assert seen["messages"][1]["tool_calls"][0]["id"] == call.call_id
    assert seen["messages"][2] == {
        "role": "tool",
        "tool_call_id": call.call_id,
        "content": "routes",
    }
    assert seen["response_format"]["json_schema"]["name"] == "a"


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"previous_response_id": "resp_1"}, "previous_response_id"), ({"store": True}, "store")],
)
async def test_stateful_requests_are_refused(
    launch: Launch,
    start_gateway: Callable[..., Awaitable[Any]],
    extra: dict[str, Any],
    param: str,
) -> None:
    sim = await launch()
    gateway = await start_gateway(config(sim))
    async with sdk(gateway.url) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(model="auto", input=QUESTION, **extra)
    assert refused.value.param == param
    assert "stateless" in refused.value.message or "state" in refused.value.message
    assert sim.state.recorder.entries() == []


async def test_models_retrieve(
    launch: Launch, start_gateway: Callable[..., Awaitable[Any]]
) -> None:
    sim = await launch()
    gateway = await start_gateway(config(sim))
    async with sdk(gateway.url) as client:
        route = await client.models.retrieve("auto")
        model = await client.models.retrieve("org/large")
        listed = await client.models.list()
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("nope")
    assert (route.id, route.owned_by) == ("auto", "switchman")
    extra = route.model_extra or {}
    assert extra["capabilities"]["tools"] is True
    assert extra["context_window"] is None  # one candidate's window is unknown
    assert "/v1/messages" in extra["endpoints"]
    assert "/v1/responses" in extra["endpoints"]
    assert (model.id, model.owned_by) == ("org/large", "sim")
    assert [m.id for m in listed.data] == ["auto", "small", "org/large"]
    small = next(m for m in listed.data if m.id == "small")
    assert (small.model_extra or {})["context_window"] == 4096
    async with anthropic.AsyncAnthropic(
        base_url=gateway.url, api_key="sk-client", max_retries=0
    ) as claude:
        info = await claude.models.retrieve("small")
        page = await claude.models.list()
        with pytest.raises(anthropic.NotFoundError) as missing:
            await claude.models.retrieve("nope")
    assert (info.type, info.id, info.display_name) == ("model", "small", "small")
    assert [m.id for m in page.data] == ["auto", "small", "org/large"]
    assert page.has_more is False
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
