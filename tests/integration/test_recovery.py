"""Recovery as fast as the backend, a blast radius of one model, and timeouts that fit the request.

A real gateway (``start_gateway``) in front of fake upstreams (``fakes``) whose answers a test
switches at run time; clients are the official ``openai`` SDK. Scenario matrix:

- blast radius: one upstream serving two models answers 429 (Retry-After 30 s) for ``big`` only:
  ``big`` moves to its backup and is then skipped, while ``small`` on the same upstream and
  replica keeps being served there, with no attempt lost and nothing filtered; likewise 500s
  of one model (a LoRA adapter that fails) open that model's breaker on the replica only
- health check: a primary whose breaker opened (open_s 30 s) is used again as soon as an active
  health check passes after it recovers (well under a second of checks), not after open_s
- panic: the only candidate's breaker is open (open_s 30 s, no health check) and the backend is
  back: the next request is still tried on it (panic mode), succeeds, and closes the breaker;
  ``/readyz`` reported the open circuit per upstream meanwhile
- generation timeout: a whole answer that takes 1.5 s is served although ``first_byte_s`` is
  0.3 s (only ``total_s`` bounds a whole answer); one that runs out of ``total_s`` is regenerated
  ``retry.regenerations`` times (default 1), not on every candidate left, then a clean 504
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import fakes
import openai
import pytest
from aiohttp import web
from fakes import FakeUpstream, Reply, Seen

Start = Callable[[Reply], Awaitable[FakeUpstream]]
FAST = {"connect_s": 0.5, "first_byte_s": 0.3, "idle_s": 0.5, "total_s": 5.0}
HELLO: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def upstream() -> AsyncIterator[Start]:
    async with fakes.fake_upstreams() as start:
        yield start


class Switch:
    """A reply the test switches: with ``failing`` None it answers (and ``/health`` is 200),
    otherwise ``failing`` answers (and ``/health`` is 503)."""

    def __init__(self, failing: Reply | None = None) -> None:
        self.failing = failing
        self.served: list[float] = []  # when each request was answered 200 (monotonic)

    async def __call__(self, seen: Seen, request: web.Request) -> web.StreamResponse:
        if request.path == "/health":  # vLLM's health endpoint: up once the backend is
            return web.Response(status=503 if self.failing else 200)
        if self.failing is not None:
            return await self.failing(seen, request)
        self.served.append(time.monotonic())
        return web.json_response(fakes.chat_completion(seen.body["model"], "fine"))


def upstream_spec(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "base_url": f"{url}/v1", "timeouts": FAST, **extra}


def sdk(gateway: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.base_url, api_key="sk-client", max_retries=0)


async def ask(client: openai.AsyncOpenAI, model: str) -> Any:
    return await client.chat.completions.with_raw_response.create(model=model, messages=HELLO)


async def readyz(gateway: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/readyz") as resp:
        body: dict[str, Any] = await resp.json()
        return body


async def test_a_429_of_one_model_does_not_eject_the_other_models_of_the_upstream(
    start_gateway: Any, upstream: Start
) -> None:
    limited = fakes.openai_error(429, "quota of big spent", headers={"Retry-After": "30"})

    async def shared(seen: Seen, request: web.Request) -> web.StreamResponse:
        if seen.body["model"] == "big":
            return await limited(seen, request)
        return web.json_response(fakes.chat_completion(seen.body["model"], "small answer"))

    provider = await upstream(shared)
    backup = await upstream(fakes.openai_chat("backup answer"))
    gateway = await start_gateway(
        {
            "version": 1,
            "upstreams": [
                upstream_spec("provider", provider.url),
                upstream_spec("backup", backup.url),
            ],
            "models": [
                {"name": "big", "upstream": "provider"},
                {"name": "small", "upstream": "provider"},
                {"name": "spare", "upstream": "backup"},
            ],
            "routes": [
                {"name": "big-route", "candidates": ["big", "spare"]},
                {"name": "small-route", "candidates": ["small", "spare"]},
            ],
        }
    )

    async with sdk(gateway) as client:
        first = await ask(client, "big-route")
        later = [await ask(client, "big-route") for _ in range(3)]
        small = [await ask(client, "small-route") for _ in range(5)]

    assert first.headers["x-switchman-model"] == "spare"
    assert first.headers["x-switchman-attempts"] == "2"
    for raw in later:  # big is held for its Retry-After: no attempt on it
        assert (raw.headers["x-switchman-model"], raw.headers["x-switchman-attempts"]) == (
            "spare",
            "1",
        )
        assert "(1 filtered)" in raw.headers["x-switchman-route"]
    for raw in small:  # same upstream, same replica, other model: untouched
        assert (raw.headers["x-switchman-model"], raw.headers["x-switchman-attempts"]) == (
            "small",
            "1",
        )
        assert "filtered" not in raw.headers["x-switchman-route"]
        assert raw.parse().choices[0].message.content == "small answer"
    assert [s.body["model"] for s in provider.seen] == ["big"] + ["small"] * 5


async def test_a_breaker_trip_of_one_model_does_not_eject_the_other_models_of_the_replica(
    start_gateway: Any, upstream: Start
) -> None:
    broken = fakes.openai_error(500, "adapter failed to load", type_="server_error")

    async def shared(seen: Seen, request: web.Request) -> web.StreamResponse:
        if seen.body["model"] == "adapter":
            return await broken(seen, request)
        return web.json_response(fakes.chat_completion(seen.body["model"], "base answer"))

    vllm = await upstream(shared)
    backup = await upstream(fakes.openai_chat("backup answer"))
    breaker = {"consecutive_failures": 2, "open_s": 30.0, "max_open_s": 30.0}
    gateway = await start_gateway(
        {
            "version": 1,
            "upstreams": [
                upstream_spec("vllm", vllm.url, circuit_breaker=breaker),
                upstream_spec("backup", backup.url),
            ],
            "models": [
                {"name": "adapter", "upstream": "vllm"},
                {"name": "base", "upstream": "vllm"},
                {"name": "spare", "upstream": "backup"},
            ],
            "routes": [
                {"name": "adapter-route", "candidates": ["adapter", "spare"]},
                {"name": "base-route", "candidates": ["base", "spare"]},
            ],
            "server": {"retry": {"per_candidate": 1}},
        }
    )

    async with sdk(gateway) as client:
        tripping = [await ask(client, "adapter-route") for _ in range(4)]
        base = [await ask(client, "base-route") for _ in range(4)]
        status = await readyz(gateway)

    assert [r.headers["x-switchman-model"] for r in tripping] == ["spare"] * 4
    # Two 500s open the adapter's breaker on that replica; then it is skipped without an attempt.
    assert [r.headers["x-switchman-attempts"] for r in tripping] == ["2", "2", "1", "1"]
    for raw in base:  # the replica and its other model are untouched
        assert (raw.headers["x-switchman-model"], raw.headers["x-switchman-attempts"]) == (
            "base",
            "1",
        )
    (row,) = status["upstreams"]["vllm"]["endpoints"]
    assert (row["breaker"], row["model_breakers"]) == ("closed", {"adapter": "open"})


async def test_a_passing_health_check_brings_a_recovered_primary_back_at_once(
    start_gateway: Any, upstream: Start
) -> None:
    switch = Switch(fakes.openai_error(503, "overloaded", type_="server_error"))
    primary = await upstream(switch)
    backup = await upstream(fakes.openai_chat("backup answer"))
    breaker = {"consecutive_failures": 1, "open_s": 30.0, "max_open_s": 30.0}
    # unhealthy_after 100: the checks never take it out, so only its breaker keeps it out.
    check = {"path": "/health", "interval_s": 0.2, "healthy_after": 1, "unhealthy_after": 100}
    gateway = await start_gateway(
        {
            "version": 1,
            "upstreams": [
                upstream_spec("primary", primary.url, circuit_breaker=breaker, health_check=check),
                upstream_spec("backup", backup.url),
            ],
            "models": [
                {"name": "primary", "upstream": "primary"},
                {"name": "backup", "upstream": "backup"},
            ],
            "routes": [{"name": "chat", "candidates": ["primary", "backup"]}],
        }
    )

    async with sdk(gateway) as client:
        failed_over = await ask(client, "chat")
        assert failed_over.headers["x-switchman-model"] == "backup"
        status = await readyz(gateway)
        assert status["upstreams"]["primary"]["circuit"]["open"] == 1
        switch.failing = None  # the backend recovers: /health and chat answer 200 again
        recovered = time.monotonic()
        while True:
            raw = await ask(client, "chat")
            if raw.headers["x-switchman-model"] == "primary":
                break
            assert time.monotonic() - recovered < 5.0, "primary not used again within 5 s"
            await asyncio.sleep(0.05)
        back_after = time.monotonic() - recovered

    assert back_after < 2.0  # open_s is 30 s: the health check, not the clock, let it back
    assert (await readyz(gateway))["upstreams"]["primary"]["circuit"]["closed"] == 1


async def test_panic_mode_tries_the_only_candidate_and_its_success_closes_the_breaker(
    start_gateway: Any, upstream: Start
) -> None:
    switch = Switch(fakes.openai_error(503, "overloaded", type_="server_error"))
    only = await upstream(switch)
    breaker = {"consecutive_failures": 1, "open_s": 30.0, "max_open_s": 30.0}
    gateway = await start_gateway(
        {
            "version": 1,
            "upstreams": [upstream_spec("only", only.url, circuit_breaker=breaker)],
            "models": [{"name": "only", "upstream": "only"}],
            "routes": [{"name": "chat", "candidates": ["only"]}],
            "server": {"retry": {"max_attempts": 1}},
        }
    )

    async with sdk(gateway) as client:
        with pytest.raises(openai.APIStatusError):
            await ask(client, "chat")
        opened = await readyz(gateway)
        switch.failing = None
        raw = await ask(client, "chat")
        direct = await ask(client, "only")

    assert opened["upstreams"]["only"]["circuit"] == {"closed": 0, "half_open": 0, "open": 1}
    assert "panic" in raw.headers["x-switchman-route"]
    assert raw.parse().choices[0].message.content == "fine"
    assert "panic" not in direct.headers["x-switchman-route"]  # the success closed it
    assert len(only.seen) == 3
    assert (await readyz(gateway))["upstreams"]["only"]["circuit"]["closed"] == 1


def slow_answer(seconds: float) -> Reply:
    """A whole answer whose headers come after ``seconds`` (a long non-streamed generation)."""

    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response(fakes.chat_completion(seen.body["model"], "long answer"))

    return reply


async def test_a_long_whole_answer_is_bounded_by_total_not_by_first_byte(
    start_gateway: Any, upstream: Start
) -> None:
    slow = await upstream(slow_answer(1.5))
    gateway = await start_gateway(
        {
            "version": 1,
            "upstreams": [upstream_spec("slow", slow.url)],  # first_byte_s 0.3, total_s 5
            "models": [{"name": "slow", "upstream": "slow"}],
        }
    )
    async with sdk(gateway) as client:
        raw = await ask(client, "slow")

    assert raw.parse().choices[0].message.content == "long answer"
    assert raw.headers["x-switchman-attempts"] == "1"
    assert len(slow.seen) == 1


@pytest.mark.parametrize(("regenerations", "sent"), [(None, 2), (0, 1), (2, 3)])
async def test_a_generation_that_ran_out_of_time_is_regenerated_only_as_allowed(
    start_gateway: Any, upstream: Start, regenerations: int | None, sent: int
) -> None:
    fakes_ = [await upstream(slow_answer(30)) for _ in range(4)]
    names = ["a", "b", "c", "d"]
    retry: dict[str, Any] = {"max_attempts": 4, "per_candidate": 1}
    if regenerations is not None:
        retry["regenerations"] = regenerations
    timeouts = {**FAST, "total_s": 0.4}
    gateway = await start_gateway(
        {
            "version": 1,
            "upstreams": [
                {"name": n, "base_url": f"{f.url}/v1", "timeouts": timeouts}
                for n, f in zip(names, fakes_, strict=True)
            ],
            "models": [{"name": n, "upstream": n} for n in names],
            "routes": [{"name": "chat", "candidates": names, "retry": retry}],
        }
    )
    started = time.monotonic()
    async with sdk(gateway) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await ask(client, "chat")
    elapsed = time.monotonic() - started

    assert caught.value.status_code == 504
    assert sum(len(f.seen) for f in fakes_) == sent  # each one paid for a whole generation
    assert elapsed < 0.4 * sent + 1.5
