"""Failover, circuit breakers, context-length fallback, capability filters, rate-limit cool-downs.

A real gateway (``start_gateway``) in front of simulators whose faults are flipped at run time
(``POST /admin/faults``); what reached each simulator is read from ``/admin/requests``, what the
gateway decided from ``/debug/decisions``, its headers and ``/metrics``. Clients are the
official ``openai`` SDK. Scenario matrix:

- under concurrent load (60 requests, two in three streaming with ``include_usage``; the first
  30 running on the primary when it fails, the next 30 sent after), the first candidate goes
  ``down`` (503), ``down`` closing connections, stalls (whole requests hit the upstream's short
  ``total_s``, streams its ``idle_s``), or is killed: zero client-visible errors, every answer
  equal to the uncut one, streams end with one ``[DONE]`` and no error event; the backup served
  at least everything sent after the fault, and the primary's circuit opened
- circuit breaker: ``consecutive_failures`` opens it (``switchman_circuit_state`` 2), requests
  stop reaching the replica; after ``open_s`` one half-open probe (1) re-opens it while the
  fault lasts, with the open time doubled; once the fault is cleared the next probe closes it (0)
- context length: a prompt the planner estimates too long for the small model's window goes
  straight to the large one (the small simulator is never asked); a window configured large
  while the simulator's ``max_context`` is small is revealed only by the upstream's 400, and
  the large model serves it on a second attempt
- an image request never reaches a text-only model (``vision: false``): served by the vision
  candidate, a clear 400 when every candidate is text-only (route or model named directly); a
  model whose ``vision`` is unset (unknown) is not filtered
- a 429 with ``Retry-After`` moves to the next candidate, and later requests skip the limited
  model without an attempt until Retry-After passes
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from switchman.sim.runner import RunningSim

Launch = Callable[..., Awaitable[RunningSim]]

LOAD = 60
# total_s is a whole answer's only bound (its generation timeout): a stalled primary gives it up
# after 2 s; streams hit first_byte_s or idle_s first.
QUICK = {"connect_s": 0.5, "first_byte_s": 1.0, "idle_s": 1.0, "total_s": 2.0}


def config(
    sims: dict[str, RunningSim],
    routes: dict[str, list[str]],
    *,
    upstreams: dict[str, dict[str, Any]] | None = None,
    models: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One upstream and one model per simulator (named alike, serving ``tiny``); extra upstream
    or model fields by name; routes by name -> candidates."""
    upstreams = upstreams or {}
    models = models or {}
    return {
        "version": 1,
        "upstreams": [
            {"name": n, "base_url": f"{s.url}/v1", "continuation": "vllm", **upstreams.get(n, {})}
            for n, s in sims.items()
        ],
        "models": [
            {"name": n, "upstream": n, "upstream_model": "tiny", **models.get(n, {})} for n in sims
        ],
        "routes": [{"name": n, "candidates": c} for n, c in routes.items()],
    }


def sdk(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="sk-client", max_retries=0, timeout=20)


def question(index: int) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": f"request {index}: what happens when a replica dies"}]


def seen(sim: RunningSim) -> int:
    """Chat requests the simulator received (requests refused by ``down`` are not recorded)."""
    return len(sim.state.recorder.entries())


async def set_faults(http: aiohttp.ClientSession, sim: RunningSim, **changes: Any) -> None:
    async with http.post(sim.url + "/admin/faults", json=changes) as response:
        assert response.status == 200, await response.text()


async def eventually(
    condition: Callable[[], Awaitable[bool]], within: float = 5.0, every: float = 0.01
) -> None:
    """Poll until ``condition`` holds (fails after ``within`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(every)


async def samples(
    http: aiohttp.ClientSession, url: str, name: str, *labels: str
) -> dict[str, float]:
    """A metric's samples from ``url``/metrics, keyed by ``labels``' values joined by '/'."""
    async with http.get(url + "/metrics") as response:
        text = await response.text()
    return {
        "/".join(sample.labels[label] for label in labels): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def circuit(http: aiohttp.ClientSession, url: str, sim: RunningSim, name: str) -> float:
    states = await samples(http, url, "switchman_circuit_state", "upstream", "endpoint")
    return states[f"{name}/127.0.0.1:{sim.port}"]


async def decisions(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url + "/debug/decisions", params={"limit": "1000"}) as response:
        assert response.status == 200
        return {entry["request_id"]: entry for entry in (await response.json())["data"]}


async def ask(client: openai.AsyncOpenAI, model: str, index: int = 0) -> Any:
    """A whole chat completion with its raw response (headers)."""
    return await client.chat.completions.with_raw_response.create(
        model=model, messages=question(index)
    )


# --- Whole-request faults under concurrent load -----------------------------------------------


async def streamed(client: openai.AsyncOpenAI, index: int) -> tuple[str, list[Any]]:
    """The streamed text and every event (``[DONE]`` as a string); each must be whole JSON."""
    events: list[Any] = []
    async with client.chat.completions.with_streaming_response.create(
        model="chat", messages=question(index), stream=True, stream_options={"include_usage": True}
    ) as response:
        async for line in response.iter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    chunks = [e for e in events if isinstance(e, dict) and e.get("choices")]
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks), events


async def load_one(client: openai.AsyncOpenAI, index: int) -> tuple[str, list[Any]] | str:
    """One request of the load; its text and events, or the error the client saw."""
    try:
        if index % 3 == 2:
            raw = await ask(client, "chat", index)
            return raw.parse().choices[0].message.content or "", []
        return await streamed(client, index)
    except (openai.APIError, ValueError) as exc:  # ValueError: a truncated JSON event
        return f"ERROR {type(exc).__name__}: {exc}"


async def killed(http: aiohttp.ClientSession, sim: RunningSim) -> None:
    await sim.close()


async def stalled(http: aiohttp.ClientSession, sim: RunningSim) -> None:
    await set_faults(http, sim, stall=True, stall_s=30)


async def down_503(http: aiohttp.ClientSession, sim: RunningSim) -> None:
    await set_faults(http, sim, down=True)


async def down_closing(http: aiohttp.ClientSession, sim: RunningSim) -> None:
    await set_faults(http, sim, down=True, down_mode="close")


@pytest.mark.parametrize("fault", [down_503, down_closing, stalled, killed])
async def test_no_client_error_when_the_first_candidate_fails_under_load(
    start_gateway: Any,
    launch: Launch,
    http: aiohttp.ClientSession,
    fault: Callable[[aiohttp.ClientSession, RunningSim], Awaitable[None]],
) -> None:
    primary = await launch(itl_s=0.005)
    backup = await launch()
    async with sdk(backup.url + "/v1") as direct:
        replies = await asyncio.gather(
            *(
                direct.chat.completions.create(model="tiny", messages=question(i))
                for i in range(LOAD)
            )
        )
    expected = [reply.choices[0].message.content for reply in replies]
    document = config(
        {"primary": primary, "backup": backup},
        {"chat": ["primary", "backup"]},
        upstreams={"primary": {"timeouts": QUICK}},
    )
    gateway = await start_gateway(document)

    async def under_way() -> bool:
        return seen(primary) >= LOAD // 4

    half = LOAD // 2
    async with sdk(gateway.base_url) as client:
        # The first half is running on the primary when it fails; the second half arrives after.
        first = [asyncio.ensure_future(load_one(client, i)) for i in range(half)]
        await eventually(under_way)
        in_flight = sum(not task.done() for task in first)
        await fault(http, primary)
        second = [load_one(client, i) for i in range(half, LOAD)]
        answers = [*await asyncio.gather(*first), *await asyncio.gather(*second)]

    assert [a for a in answers if isinstance(a, str)] == []  # no client-visible error
    for index, answer in enumerate(answers):
        assert not isinstance(answer, str)
        text, events = answer
        assert text == expected[index]
        if events:
            assert events.count("[DONE]") == 1
            assert events[-1] == "[DONE]"
            assert not [e for e in events if isinstance(e, dict) and "error" in e]
            assert len([e for e in events if isinstance(e, dict) and e.get("usage")]) == 1
    assert in_flight > 0
    attempts = await samples(
        http, gateway.url, "switchman_upstream_attempts_total", "upstream", "model", "outcome"
    )
    failed = sum(v for k, v in attempts.items() if k.startswith("primary/") and "/ok" not in k)
    assert failed >= 1
    assert attempts["backup/backup/ok"] >= half  # everything sent after the failure, at least
    assert await circuit(http, gateway.url, primary, "primary") == 2  # open


# --- Circuit breaker --------------------------------------------------------------------------


async def test_circuit_opens_probes_half_open_and_closes_when_the_fault_clears(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    flaky = await launch()
    backup = await launch()
    breaker = {"consecutive_failures": 3, "open_s": 0.3, "max_open_s": 5}
    gateway = await start_gateway(
        config(
            {"flaky": flaky, "backup": backup},
            {"chat": ["flaky", "backup"]},
            upstreams={"flaky": {"circuit_breaker": breaker}},
        )
    )
    url = gateway.url

    async def state() -> float:
        return await circuit(http, url, flaky, "flaky")

    async def half_open() -> bool:
        return await state() == 1

    await set_faults(http, flaky, error_rate=1.0)
    async with sdk(gateway.base_url) as client:
        for i in range(3):  # three failures in a row open the circuit
            raw = await ask(client, "chat", i)
            assert (raw.headers["x-switchman-model"], raw.headers["x-switchman-attempts"]) == (
                "backup",
                "2",
            )
        assert await state() == 2
        for i in range(5):  # open: requests no longer reach the replica
            raw = await ask(client, "chat", i)
            assert raw.headers["x-switchman-attempts"] == "1"
            assert "(1 filtered)" in raw.headers["x-switchman-route"]
        assert seen(flaky) == 3

        await eventually(half_open)
        probed = time.monotonic()
        raw = await ask(client, "chat")  # the probe fails: open again, for twice as long
        assert raw.headers["x-switchman-model"] == "backup"
        assert seen(flaky) == 4
        assert await state() == 2

        await set_faults(http, flaky, error_rate=0.0)
        raw = await ask(client, "chat")
        assert raw.headers["x-switchman-model"] == "backup"  # still open: not even tried
        assert seen(flaky) == 4
        await eventually(half_open)
        assert time.monotonic() - probed >= 0.6  # open_s doubled on the re-open

        raw = await ask(client, "chat")  # the probe succeeds: closed
        assert (raw.headers["x-switchman-model"], raw.headers["x-switchman-attempts"]) == (
            "flaky",
            "1",
        )
        assert await state() == 0
        for i in range(3):
            assert (await ask(client, "chat", i)).headers["x-switchman-model"] == "flaky"
        assert seen(flaky) == 8


# --- Context length ---------------------------------------------------------------------------


async def test_long_prompt_skips_a_small_window_by_estimate(
    start_gateway: Any, launch: Launch
) -> None:
    small = await launch(max_model_len=64)
    large = await launch()
    gateway = await start_gateway(
        config(
            {"small": small, "large": large},
            {"chat": ["small", "large"]},
            models={
                "small": {"capabilities": {"context_window": 64}},
                "large": {"capabilities": {"context_window": 32768}},
            },
        )
    )
    long_prompt: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": " ".join(["word"] * 200)}  # ~250 tokens
    ]

    async with sdk(gateway.base_url) as client:
        short = await ask(client, "chat")
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=long_prompt
        )

    assert short.headers["x-switchman-model"] == "small"
    assert raw.headers["x-switchman-model"] == "large"
    assert raw.headers["x-switchman-attempts"] == "1"
    assert "(1 filtered)" in raw.headers["x-switchman-route"]
    assert seen(small) == 1  # only the short prompt
    assert raw.parse().choices[0].finish_reason == "stop"


async def test_upstream_context_error_moves_to_a_larger_window(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    small = await launch()
    large = await launch()
    await set_faults(http, small, max_context=40)
    gateway = await start_gateway(
        config(
            {"small": small, "large": large},
            {"chat": ["small", "large"]},
            # The config overstates the small window: the estimate lets the prompt through.
            models={
                "small": {"capabilities": {"context_window": 32768}},
                "large": {"capabilities": {"context_window": 131072}},
            },
        )
    )
    long_prompt: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": " ".join(["word"] * 60)}
    ]

    async with sdk(gateway.base_url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=long_prompt
        )
        stream = await client.chat.completions.create(
            model="chat", messages=long_prompt, stream=True
        )
        streamed_text = "".join([c.choices[0].delta.content or "" async for c in stream])

    assert raw.headers["x-switchman-model"] == "large"
    assert raw.headers["x-switchman-attempts"] == "2"
    assert "small failed: context_length" in raw.headers["x-switchman-route"]
    assert streamed_text == raw.parse().choices[0].message.content
    assert (seen(small), seen(large)) == (2, 2)
    attempts = await samples(
        http, gateway.url, "switchman_upstream_attempts_total", "upstream", "model", "outcome"
    )
    assert attempts["small/small/context_length"] == 2


# --- Capabilities: images ---------------------------------------------------------------------

IMAGE: list[ChatCompletionMessageParam] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    }
]
TEXT_ONLY = {"text": {"capabilities": {"vision": False}}}


async def test_image_request_goes_to_the_vision_model_only(
    start_gateway: Any, launch: Launch
) -> None:
    text = await launch()
    vision = await launch()
    gateway = await start_gateway(
        config(
            {"text": text, "vision": vision},
            {"chat": ["text", "vision"]},
            models={
                "text": {"capabilities": {"vision": False}},
                "vision": {"capabilities": {"vision": True}},
            },
        )
    )

    async with sdk(gateway.base_url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=IMAGE)
        plain = await ask(client, "chat")

    assert raw.headers["x-switchman-model"] == "vision"
    assert plain.headers["x-switchman-model"] == "text"  # the route still prefers it for text
    # Passed through untouched, and only to the vision model.
    assert [e["body"]["messages"] for e in vision.state.recorder.entries()] == [IMAGE]
    assert [e["body"]["messages"] for e in text.state.recorder.entries()] == [question(0)]


async def test_image_request_may_reach_a_model_whose_vision_is_unknown(
    start_gateway: Any, launch: Launch
) -> None:
    unknown = await launch()
    gateway = await start_gateway(config({"unknown": unknown}, {"chat": ["unknown"]}))

    async with sdk(gateway.base_url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=IMAGE)

    assert raw.headers["x-switchman-model"] == "unknown"  # unset capabilities are not filtered
    assert seen(unknown) == 1


async def test_image_request_with_only_text_candidates_is_a_clear_400(
    start_gateway: Any, launch: Launch
) -> None:
    text = await launch()
    gateway = await start_gateway(config({"text": text}, {"chat": ["text"]}, models=TEXT_ONLY))

    async with sdk(gateway.base_url) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="chat", messages=IMAGE)

    error = caught.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["code"], error["param"]) == (
        "invalid_request_error",
        "invalid_request",
        "model",
    )
    assert "image input" in error["message"]
    assert seen(text) == 0


async def test_image_request_naming_a_text_only_model_is_a_clear_400(
    start_gateway: Any, launch: Launch
) -> None:
    text = await launch()
    gateway = await start_gateway(config({"text": text}, {}, models=TEXT_ONLY))

    async with sdk(gateway.base_url) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="text", messages=IMAGE)

    assert "image input" in caught.value.response.json()["error"]["message"]
    assert seen(text) == 0


# --- Rate limits ------------------------------------------------------------------------------


async def test_rate_limit_moves_on_and_cools_the_upstream_down_until_retry_after(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    limited = await launch()
    backup = await launch()
    await set_faults(http, limited, rate_limit_rate=1.0, retry_after_s=1)
    gateway = await start_gateway(
        config({"limited": limited, "backup": backup}, {"chat": ["limited", "backup"]})
    )

    async with sdk(gateway.base_url) as client:
        limited_at = time.monotonic()  # the 429 (and its cool-down) starts after this
        first = await ask(client, "chat")
        await set_faults(http, limited, rate_limit_rate=0.0)  # only Retry-After holds it back
        skipped = [await ask(client, "chat", i) for i in range(5)]

        async def served_by_limited() -> bool:
            raw = await ask(client, "chat")
            return bool(raw.headers["x-switchman-model"] == "limited")

        await eventually(served_by_limited, every=0.05)
        cooled = time.monotonic() - limited_at

    assert (first.headers["x-switchman-model"], first.headers["x-switchman-attempts"]) == (
        "backup",
        "2",
    )
    assert "limited failed: rate_limited" in first.headers["x-switchman-route"]
    assert "retry-after" not in first.headers
    for raw in skipped:  # no attempt at all while cooling down
        assert (raw.headers["x-switchman-model"], raw.headers["x-switchman-attempts"]) == (
            "backup",
            "1",
        )
    assert cooled >= 1.0
    # One 429, then nothing until the cool-down ended.
    assert seen(limited) == 2
    log = await decisions(http, gateway.url)
    rows = [
        row
        for entry in log.values()
        for row in entry["candidates"]
        if row["model"] == "limited" and row["removed_by"]
    ]
    assert {row["removed_by"] for row in rows} == {"rate_limited"}
    assert len(rows) >= 5
