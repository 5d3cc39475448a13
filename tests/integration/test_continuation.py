"""Mid-stream failures under concurrent load: cut streams are continued whole, or ended cleanly.

A real gateway (``start_gateway``) in front of two simulators: ``primary`` (first candidate,
breaks mid-answer) and ``backup`` (healthy), both ``continuation: vllm``. The simulators answer
deterministically per prompt, so a continued answer can be compared with the answer an uncut
simulator gives for the same prompt. Clients are the official ``openai`` SDK (raw stream lines
through ``with_streaming_response`` where the test must see every event and ``[DONE]``).

Scenario matrix (``mid_stream: continue``, 48 concurrent requests, two in three streaming with
``include_usage``):

- ``cut_after_tokens``: the connection closes after 5 tokens on every primary request
- ``stall_after_tokens``: the primary holds after 5 tokens; the upstream's short ``idle_s``
  timeout detects it
- ``stall`` at the first chunk: the role chunk arrives, then nothing (a stream committed with
  no text yet is continued from the start); whole requests hit ``total_s`` (2 s)
- killed: the primary simulator is shut down while its streams are half way

  For each: zero client-visible errors; every stream has one id, no error event, exactly one
  ``[DONE]`` (last), exactly one usage chunk whose completion tokens equal the uncut answer's,
  and text equal to the uncut answer; whole responses are equal to the uncut answer too; the
  gateway counts the mid-stream failovers.

``mid_stream: terminate`` (a cut and a stall): the stream ends with one well-formed OpenAI error
event, every event whole JSON, no ``[DONE]``, and the backup is never asked to continue.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from switchman.sim.runner import RunningSim

Launch = Callable[..., Awaitable[RunningSim]]

REQUESTS = 100
CUT_AT = 5
# total_s bounds a whole (non-streamed) answer: a stalled primary gives it up after 2 s.
PRIMARY_TIMEOUTS = {"connect_s": 0.5, "first_byte_s": 1.0, "idle_s": 1.0, "total_s": 2.0}


def config(primary: RunningSim, backup: RunningSim, *, mid_stream: str) -> dict[str, Any]:
    """Route ``chat`` = [primary, backup]; the primary has short timeouts and no breaker, so
    every request tries it first and every one of its faults is seen."""
    return {
        "version": 1,
        "upstreams": [
            {
                "name": "primary",
                "base_url": f"{primary.url}/v1",
                "continuation": "vllm",
                "timeouts": PRIMARY_TIMEOUTS,
                "circuit_breaker": {"enabled": False},
            },
            {"name": "backup", "base_url": f"{backup.url}/v1", "continuation": "vllm"},
        ],
        "models": [
            {"name": "primary", "upstream": "primary", "upstream_model": "tiny"},
            {"name": "backup", "upstream": "backup", "upstream_model": "tiny"},
        ],
        "routes": [
            {
                "name": "chat",
                "candidates": ["primary", "backup"],
                # Default retry policy: continuing a stream is never charged to the retry
                # budget, so a burst of 100 cut streams all continue.
                "mid_stream": mid_stream,
            }
        ],
    }


def sdk(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="sk-client", max_retries=0, timeout=20)


def prompt(index: int) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": f"question number {index}: why do streams break"}]


@dataclass
class Answer:
    """What the client got for one request."""

    index: int
    stream: bool
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    events: list[Any] = field(default_factory=list)  # parsed JSON events, "[DONE]" as a string
    usage: dict[str, Any] | None = None
    error: str | None = None


async def stream_once(client: openai.AsyncOpenAI, index: int) -> Answer:
    """A streamed chat completion read line by line; every data line must be JSON or [DONE]."""
    answer = Answer(index, stream=True)
    async with client.chat.completions.with_streaming_response.create(
        model="chat",
        messages=prompt(index),
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        answer.headers = dict(response.headers)
        async for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            answer.events.append(data if data == "[DONE]" else json.loads(data))
    chunks = [e for e in answer.events if isinstance(e, dict) and e.get("choices")]
    answer.text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    usages = [e["usage"] for e in answer.events if isinstance(e, dict) and e.get("usage")]
    answer.usage = usages[-1] if usages else None
    return answer


async def whole_once(client: openai.AsyncOpenAI, index: int) -> Answer:
    raw = await client.chat.completions.with_raw_response.create(
        model="chat", messages=prompt(index)
    )
    completion = raw.parse()
    usage = completion.usage.model_dump() if completion.usage else None
    return Answer(
        index,
        stream=False,
        headers=dict(raw.headers),
        text=completion.choices[0].message.content or "",
        usage=usage,
    )


async def one(client: openai.AsyncOpenAI, index: int, delay: float) -> Answer:
    await asyncio.sleep(delay)  # pacing the load generator, not waiting for the gateway
    try:
        if index % 3 == 2:
            return await whole_once(client, index)
        return await stream_once(client, index)
    except (openai.APIError, ValueError) as exc:  # ValueError: a truncated JSON event
        return Answer(index, stream=index % 3 != 2, error=f"{type(exc).__name__}: {exc}")


async def uncut_answers(sim: RunningSim, count: int) -> dict[int, tuple[str, int]]:
    """Per prompt, the text and completion tokens an unfaulted simulator answers."""
    async with sdk(sim.url + "/v1") as client:
        replies = await asyncio.gather(
            *(
                client.chat.completions.create(model="tiny", messages=prompt(i))
                for i in range(count)
            )
        )
    out = {}
    for i, reply in enumerate(replies):
        assert reply.usage is not None
        out[i] = (reply.choices[0].message.content or "", reply.usage.completion_tokens)
    return out


def assert_whole(answer: Answer, expected: tuple[str, int]) -> None:
    text, completion_tokens = expected
    assert answer.error is None, answer.error
    assert answer.text == text, f"request {answer.index}: {answer.text!r} != {text!r}"
    assert answer.usage is not None
    assert answer.usage["completion_tokens"] == completion_tokens
    assert answer.usage["total_tokens"] == (
        answer.usage["prompt_tokens"] + answer.usage["completion_tokens"]
    )
    if not answer.stream:
        return
    events = answer.events
    assert events.count("[DONE]") == 1
    assert events[-1] == "[DONE]"
    chunks = [e for e in events if isinstance(e, dict)]
    assert not [e for e in chunks if "error" in e], "an error event reached the client"
    assert len({c["id"] for c in chunks}) == 1, "a continued stream must keep its id"
    assert len([c for c in chunks if c.get("usage")]) == 1, "one usage total per stream"
    roles = [c for c in chunks if c["choices"] and "role" in c["choices"][0]["delta"]]
    assert len(roles) == 1
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert [f for f in finishes if f] == ["stop"]


async def counter(http: aiohttp.ClientSession, url: str, name: str) -> float:
    async with http.get(url + "/metrics") as response:
        text = await response.text()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def recent_decisions(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """The gateway's decision log by request id (the test client is on loopback)."""
    async with http.get(url + "/debug/decisions", params={"limit": "1000"}) as response:
        assert response.status == 200
        return {entry["request_id"]: entry for entry in (await response.json())["data"]}


async def set_faults(http: aiohttp.ClientSession, sim: RunningSim, **changes: Any) -> None:
    async with http.post(sim.url + "/admin/faults", json=changes) as response:
        assert response.status == 200, await response.text()


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# --- mid_stream: continue, under load -------------------------------------------------------


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param({"cut_after_tokens": CUT_AT}, id="cut-after-tokens"),
        pytest.param({"stall_after_tokens": CUT_AT, "stall_s": 30}, id="stall-after-tokens"),
        pytest.param({"stall": True, "stall_s": 30}, id="stall-at-first-chunk"),
    ],
)
async def test_every_cut_stream_is_continued_whole_under_load(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession, faults: dict[str, Any]
) -> None:
    primary = await launch()
    backup = await launch()
    expected = await uncut_answers(backup, REQUESTS)
    await set_faults(http, primary, **faults)
    gateway = await start_gateway(config(primary, backup, mid_stream="continue"))

    async with sdk(gateway.base_url) as client:
        answers = await asyncio.gather(*(one(client, i, i * 0.002) for i in range(REQUESTS)))

    errors = [a.error for a in answers if a.error]
    assert errors == []
    decisions = await recent_decisions(http, gateway.url)
    for answer in answers:
        assert_whole(answer, expected[answer.index])
        # Every request met the fault on the primary and finished on the backup. A stream's
        # headers went out with its first chunk (from the primary): the decision log has the rest.
        decision = decisions[answer.headers["x-request-id"]]
        assert [a["model"] for a in decision["attempts"]] == ["primary", "backup"]
        assert decision["attempts"][1]["outcome"] == "ok"
        assert decision["continued"] <= int(answer.stream)
        if not answer.stream:
            assert answer.headers["x-switchman-model"] == "backup"
            assert answer.headers["x-switchman-attempts"] == "2"
    # Streams are continued after their first chunk (a primary too slow to send one, on a
    # loaded machine, fails over before anything is committed, which is fine too).
    continued = sum(decisions[a.headers["x-request-id"]]["continued"] for a in answers)
    assert continued >= sum(a.stream for a in answers) * 3 // 4
    assert await counter(http, gateway.url, "switchman_midstream_failovers_total") == continued
    # The primary records a request when its handler ends, which for a stalled stream is when it
    # sees the gateway's hang-up: on a loaded machine, after the answers are in.
    await eventually(lambda: len(primary.state.recorder.entries()) >= REQUESTS)
    assert len(primary.state.recorder.entries()) == REQUESTS


async def test_streams_survive_their_upstream_being_killed_half_way(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    # Slow tokens: the kill lands while every stream is between its first and last token.
    primary = await launch(itl_s=0.05)
    backup = await launch()
    expected = await uncut_answers(backup, REQUESTS)
    document = config(primary, backup, mid_stream="continue")
    document["upstreams"][0]["circuit_breaker"] = {"consecutive_failures": 3}
    gateway = await start_gateway(document)

    async with sdk(gateway.base_url) as client:
        load = asyncio.gather(*(one(client, i, i * 0.002) for i in range(REQUESTS)))
        await eventually(lambda: primary.state.engine.generation_tokens >= 2 * REQUESTS)
        await primary.close()
        answers = await load

    errors = [a.error for a in answers if a.error]
    assert errors == []
    for answer in answers:
        assert_whole(answer, expected[answer.index])
    decisions = await recent_decisions(http, gateway.url)
    continued = [a for a in answers if decisions[a.headers["x-request-id"]]["continued"]]
    assert continued, "no stream was cut by the kill"
    assert all(a.stream for a in continued)
    assert await counter(http, gateway.url, "switchman_midstream_failovers_total") == len(continued)


# --- mid_stream: terminate ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "code"),
    [
        pytest.param({"cut_after_tokens": 3}, "upstream_unavailable", id="cut"),
        pytest.param({"stall_after_tokens": 3, "stall_s": 30}, "upstream_timeout", id="stall"),
    ],
)
async def test_terminate_ends_the_stream_with_one_whole_error_event(
    start_gateway: Any,
    launch: Launch,
    http: aiohttp.ClientSession,
    faults: dict[str, Any],
    code: str,
) -> None:
    primary = await launch()
    backup = await launch()
    await set_faults(http, primary, **faults)
    gateway = await start_gateway(config(primary, backup, mid_stream="terminate"))
    body = {"model": "chat", "messages": prompt(0), "stream": True}

    async def raw_stream() -> str:
        async with http.post(f"{gateway.base_url}/chat/completions", json=body) as response:
            assert response.status == 200
            return (await response.read()).decode()

    texts = await asyncio.gather(*(raw_stream() for _ in range(8)))
    async with sdk(gateway.base_url) as client:
        stream = await client.chat.completions.create(model="chat", messages=prompt(0), stream=True)
        with pytest.raises(openai.APIError) as caught:
            async for _ in stream:
                pass

    assert type(caught.value) is openai.APIError  # an error event, not a broken connection
    for text in texts:
        assert text.endswith("\n\n")
        events = [e.removeprefix("data: ") for e in text[:-2].split("\n\n")]
        assert "[DONE]" not in events
        parsed = [json.loads(event) for event in events]  # whole JSON, never truncated
        contents = [p["choices"][0]["delta"].get("content") for p in parsed[:-1]]
        assert len([c for c in contents if c]) == 3
        assert set(parsed[-1]) == {"error"}
        error = parsed[-1]["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert (error["type"], error["code"]) == ("api_error", code)
    assert backup.state.recorder.entries() == []
