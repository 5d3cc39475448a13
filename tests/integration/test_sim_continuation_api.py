"""Continuing a cut stream on a simulator, as the gateway will do on another upstream.

Scenario matrix:
- a stream cut by ``cut_after_tokens`` on one simulator, continued (streaming) on a second one with
  ``continue_final_message=true, add_generation_prompt=false``: cut + continuation == the uncut
  answer, finish "stop", usage counts the partial text as prompt and only new tokens as completion
- non-streaming continuation through the openai SDK (``extra_body``) gives the same text
- ``/admin/requests`` shows the flags and the partial message the continuation was sent with
- vLLM-shaped 400s: flags set together, flag without add_generation_prompt=false, final message
  not the assistant's
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionUserMessageParam

from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

QUESTION = {"role": "user", "content": "why was the stream cut"}
USER: ChatCompletionUserMessageParam = {"role": "user", "content": QUESTION["content"]}
CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


@pytest.fixture
async def sims() -> AsyncIterator[tuple[RunningSim, RunningSim]]:
    settings = SimSettings(model="sim", ttft_s=0.0, prefill_s_per_token=0.0, itl_s=0.0)
    first = await start(settings, shutdown_timeout=0.2)
    async with first, await start(settings, shutdown_timeout=0.2) as second:
        yield first, second


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def stream_events(
    http: aiohttp.ClientSession, sim: RunningSim, body: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """The JSON events of a chat stream, and whether it ended with [DONE] (not cut)."""
    events: list[dict[str, Any]] = []
    raw = b""
    async with http.post(sim.url + "/v1/chat/completions", json=body) as response:
        assert response.status == 200
        try:
            async for chunk in response.content.iter_any():
                raw += chunk
        except aiohttp.ClientPayloadError:
            pass
    for event in raw.decode().split("\n\n"):
        if event.startswith("data: {"):
            events.append(json.loads(event.removeprefix("data: ")))
    return events, raw.endswith(b"data: [DONE]\n\n")


def content(events: list[dict[str, Any]]) -> str:
    return "".join(
        event["choices"][0]["delta"].get("content") or "" for event in events if event["choices"]
    )


async def test_cut_stream_continued_elsewhere_equals_the_uncut_answer(
    sims: tuple[RunningSim, RunningSim], http: aiohttp.ClientSession
) -> None:
    cutting, healthy = sims
    request = {"model": "sim", "messages": [QUESTION], "stream": True}
    uncut, done = await stream_events(http, healthy, request)
    assert done
    async with http.post(cutting.url + "/admin/faults", json={"cut_after_tokens": 5}) as response:
        assert response.status == 200
    cut, done = await stream_events(http, cutting, request)
    assert not done
    partial = content(cut)
    assert len(partial.split()) == 5

    messages = [QUESTION, {"role": "assistant", "content": partial}]
    resumed = {
        **request,
        "messages": messages,
        **CONTINUE,
        "stream_options": {"include_usage": True},
    }
    rest, done = await stream_events(http, healthy, resumed)
    assert done
    assert partial + content(rest) == content(uncut)
    assert len(content(uncut).split()) == 16
    finishes = [event["choices"][0]["finish_reason"] for event in rest if event["choices"]]
    assert finishes[-1] == "stop"
    usage = rest[-1]["usage"]
    assert usage["prompt_tokens"] == (1 + 5) + (1 + 5)  # role marker + words, per message
    assert usage["completion_tokens"] == 16 - 5


async def test_non_streaming_continuation_through_the_sdk(
    sims: tuple[RunningSim, RunningSim],
) -> None:
    _, sim = sims
    async with AsyncOpenAI(base_url=sim.url + "/v1", api_key="x", max_retries=0) as client:
        whole = await client.chat.completions.create(model="sim", messages=[USER])
        text = whole.choices[0].message.content or ""
        partial = " ".join(text.split()[:9])
        rest = await client.chat.completions.create(
            model="sim",
            messages=[USER, {"role": "assistant", "content": partial}],
            extra_body=CONTINUE,
        )
    assert partial + (rest.choices[0].message.content or "") == text
    assert rest.choices[0].finish_reason == "stop"
    assert rest.usage is not None
    assert rest.usage.completion_tokens == 16 - 9


async def test_admin_requests_show_what_the_continuation_was_sent_with(
    sims: tuple[RunningSim, RunningSim], http: aiohttp.ClientSession
) -> None:
    _, sim = sims
    messages = [QUESTION, {"role": "assistant", "content": "the model"}]
    body = {"model": "sim", "messages": messages, **CONTINUE}
    async with http.post(sim.url + "/v1/chat/completions", json=body) as response:
        assert response.status == 200
    async with http.get(sim.url + "/admin/requests") as response:
        recorded = (await response.json())["data"]
    sent = recorded[-1]["body"]
    assert sent["continue_final_message"] is True
    assert sent["add_generation_prompt"] is False
    assert sent["messages"][-1] == {"role": "assistant", "content": "the model"}


@pytest.mark.parametrize(
    ("extra", "last", "param", "message"),
    [
        (
            {"continue_final_message": True, "add_generation_prompt": True},
            "assistant",
            "add_generation_prompt",
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True.",
        ),
        (
            {"continue_final_message": True},
            "assistant",
            "add_generation_prompt",
            "continue_final_message and add_generation_prompt are not compatible",
        ),
        (CONTINUE, "user", "messages", "the final message is not from the assistant"),
    ],
)
async def test_invalid_continuations_are_vllm_shaped_400s(
    sims: tuple[RunningSim, RunningSim],
    http: aiohttp.ClientSession,
    extra: dict[str, Any],
    last: str,
    param: str,
    message: str,
) -> None:
    _, sim = sims
    messages = [QUESTION, {"role": last, "content": "the model"}]
    body = {"model": "sim", "messages": messages, **extra}
    async with http.post(sim.url + "/v1/chat/completions", json=body) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["type"] == "BadRequestError"
    assert error["code"] == 400
    assert error["param"] == param
    assert message in error["message"]
