"""What the gateway decided and why: shadow mirrors, ``/debug/decisions`` and routing strategies.

A real gateway (``start_gateway``, or ``create_app`` with the complexity classifier) in front of
simulators; what each simulator received is read from ``/admin/requests``. Clients are the
official ``openai`` SDK. Scenario matrix:

- shadow ``percent: 100``: the shadow model's simulator receives each request (streamed or not)
  with its own model id; the client never waits for the slow shadow; outcomes are counted in
  ``switchman_shadow_requests_total``; shadow failures (500s, closed connections, a dead
  simulator) never reach the client; mirrors beyond ``max_in_flight`` are skipped
- ``/debug/decisions``: route, strategy, candidates with scores and the filter that removed
  one, attempts with their outcome and replica; ``route`` and ``limit`` filters; no prompt text;
  with ``server.admin_token`` a missing or wrong bearer token is an OpenAI-shaped 403 (the
  token is never echoed) and the right one is served
- strategies end to end, explained by ``x-switchman-route``: a weighted 10/90 split over 400
  requests lands within a few points; ``cheapest`` picks the cheaper model; ``complexity``
  (with ``switchman.gateway.routing.classifier``) sends a trivial prompt to the small tier and a
  hard one to the large tier
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.sim.runner import RunningSim

Launch = Callable[..., Awaitable[RunningSim]]

SECRET_PROMPT = "the launch code is PROMPT-MARKER-7f3a"
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


# Defaults of the `launch` fixture (conftest) for this module's simulators.
SIM_DEFAULTS = {"ttft_s": 0.002, "itl_s": 0.0}


def config(
    sims: dict[str, RunningSim],
    routes: list[dict[str, Any]],
    *,
    models: dict[str, dict[str, Any]] | None = None,
    server: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One upstream and one model per simulator (named alike, serving ``tiny``)."""
    models = models or {}
    return {
        "version": 1,
        "server": server or {},
        "upstreams": [{"name": n, "base_url": f"{s.url}/v1"} for n, s in sims.items()],
        "models": [
            {"name": n, "upstream": n, "upstream_model": "tiny", **models.get(n, {})} for n in sims
        ],
        "routes": routes,
    }


def sdk(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="sk-client", max_retries=0, timeout=20)


def seen(sim: RunningSim) -> list[Any]:
    return [entry["body"] for entry in sim.state.recorder.entries()]


async def eventually(condition: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def shadow_outcomes(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with http.get(url + "/metrics") as response:
        text = await response.text()
    return {
        sample.labels["outcome"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "switchman_shadow_requests_total"
        and sample.labels["route"] == "chat"
        and sample.labels["model"] == "shadow"
    }


def shadowed(sims: dict[str, RunningSim], **shadow: Any) -> dict[str, Any]:
    return config(
        sims,
        [{"name": "chat", "candidates": ["main"], "shadow": {"model": "shadow", **shadow}}],
        models={"shadow": {"upstream_model": "tiny"}},
    )


# --- Shadow traffic ---------------------------------------------------------------------------


async def test_shadow_gets_every_request_and_the_client_never_waits_for_it(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    main = await launch()
    shadow = await launch(ttft_s=1.5)
    gateway = await start_gateway(shadowed({"main": main, "shadow": shadow}, percent=100))
    questions: list[list[ChatCompletionMessageParam]] = [
        [{"role": "user", "content": f"question {i}"}] for i in range(6)
    ]

    latencies = []
    async with sdk(gateway.base_url) as client:
        for i, messages in enumerate(questions):
            started = time.monotonic()
            if i % 2:
                stream = await client.chat.completions.create(
                    model="chat", messages=messages, stream=True
                )
                text = "".join([c.choices[0].delta.content or "" async for c in stream])
            else:
                reply = await client.chat.completions.create(model="chat", messages=messages)
                text = reply.choices[0].message.content or ""
            latencies.append(time.monotonic() - started)
            assert text

    assert max(latencies) < 0.75, latencies  # the shadow takes 1.5 s to its first token

    async def all_mirrored() -> bool:
        return len(seen(shadow)) == len(questions)

    async def all_answered() -> bool:
        return (await shadow_outcomes(http, gateway.url)).get("ok") == len(questions)

    await eventually(all_mirrored)
    assert [body["messages"] for body in seen(shadow)] == questions
    assert [bool(body.get("stream")) for body in seen(shadow)] == [bool(i % 2) for i in range(6)]
    assert seen(main) == seen(shadow)  # the same bodies, model id included
    await eventually(all_answered, within=10)


async def kill(http: aiohttp.ClientSession, sim: RunningSim) -> None:
    await sim.close()


async def fail(http: aiohttp.ClientSession, sim: RunningSim) -> None:
    async with http.post(sim.url + "/admin/faults", json={"error_rate": 1.0}) as response:
        assert response.status == 200


async def hang_up(http: aiohttp.ClientSession, sim: RunningSim) -> None:
    faults = {"down": True, "down_mode": "close"}
    async with http.post(sim.url + "/admin/faults", json=faults) as response:
        assert response.status == 200


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [(fail, "status_5xx"), (hang_up, "unreachable"), (kill, "unreachable")],
    ids=["500s", "closed-connections", "killed"],
)
async def test_shadow_failures_never_reach_the_client(
    start_gateway: Any,
    launch: Launch,
    http: aiohttp.ClientSession,
    fault: Callable[[aiohttp.ClientSession, RunningSim], Awaitable[None]],
    outcome: str,
) -> None:
    main = await launch()
    shadow = await launch()
    await fault(http, shadow)
    gateway = await start_gateway(shadowed({"main": main, "shadow": shadow}, percent=100))

    async with sdk(gateway.base_url) as client:
        replies = [await client.chat.completions.create(model="chat", messages=HELLO)]
        stream = await client.chat.completions.create(model="chat", messages=HELLO, stream=True)
        chunks = [c async for c in stream]

    assert replies[0].choices[0].message.content
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == (
        replies[0].choices[0].message.content
    )

    async def counted() -> bool:
        return (await shadow_outcomes(http, gateway.url)).get(outcome) == 2

    await eventually(counted)
    assert "ok" not in await shadow_outcomes(http, gateway.url)


async def test_mirrors_beyond_max_in_flight_are_skipped(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    main = await launch()
    shadow = await launch(ttft_s=1.0)
    gateway = await start_gateway(
        shadowed({"main": main, "shadow": shadow}, percent=100, max_in_flight=2)
    )

    async with sdk(gateway.base_url) as client:
        for _ in range(5):
            await client.chat.completions.create(model="chat", messages=HELLO)

    assert await shadow_outcomes(http, gateway.url) == {"skipped": 3}

    async def two_mirrored() -> bool:
        return len(seen(shadow)) == 2

    await eventually(two_mirrored)


# --- /debug/decisions -------------------------------------------------------------------------


async def test_debug_decisions_explain_candidates_scores_filters_and_attempts(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    sims = {"narrow": await launch(), "broken": await launch(), "ok": await launch()}
    async with http.post(sims["broken"].url + "/admin/faults", json={"error_rate": 1}) as resp:
        assert resp.status == 200
    gateway = await start_gateway(
        config(
            sims,
            [{"name": "chat", "candidates": ["narrow", "broken", "ok"]}],
            models={"narrow": {"capabilities": {"context_window": 16}}},
        )
    )
    prompt: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": f"{SECRET_PROMPT}; " + "pad " * 40}
    ]

    async with sdk(gateway.base_url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=prompt)
        await client.chat.completions.create(model="ok", messages=prompt)  # a direct request
    async with http.get(gateway.url + "/debug/decisions") as response:
        assert response.status == 200
        text = await response.text()
    async with http.get(gateway.url + "/debug/decisions?route=chat&limit=5") as response:
        only_chat = (await response.json())["data"]
    async with http.get(gateway.url + "/debug/decisions?limit=1") as response:
        newest = (await response.json())["data"]

    assert "PROMPT-MARKER" not in text
    assert "pad pad" not in text
    entries = json.loads(text)["data"]
    assert [e["route"] for e in entries] == ["ok", "chat"]  # newest first
    assert [e["route"] for e in only_chat] == ["chat"]
    assert [e["route"] for e in newest] == ["ok"]
    entry = only_chat[0]
    assert entry["request_id"] == raw.headers["x-request-id"]
    assert (entry["strategy"], entry["status"], entry["outcome"], entry["model"]) == (
        "priority",
        200,
        "ok",
        "ok",
    )
    assert entry["reason"] in raw.headers["x-switchman-route"]
    rows = {row["model"]: row for row in entry["candidates"]}
    assert rows["narrow"]["removed_by"] == "context window"
    assert rows["narrow"]["score"] is None
    assert rows["broken"]["removed_by"] is None
    assert rows["broken"]["score"] > rows["ok"]["score"] > 0  # priority: earlier is better
    assert set(rows["ok"]["scores"]) == {"priority"}
    assert entry["order"] == ["broken", "ok"]
    assert [(a["model"], a["outcome"]) for a in entry["attempts"]] == [
        ("broken", "status_5xx"),
        ("ok", "ok"),
    ]
    assert entry["attempts"][1]["endpoint"] == f"127.0.0.1:{sims['ok'].port}"
    assert entry["endpoint"] == f"127.0.0.1:{sims['ok'].port}"
    assert len(seen(sims["narrow"])) == 0


async def test_debug_decisions_need_the_admin_token_when_one_is_set(
    start_gateway: Any, launch: Launch, http: aiohttp.ClientSession
) -> None:
    sims = {"ok": await launch()}
    token = "s3cret-admin-token"
    gateway = await start_gateway(
        config(sims, [], server={"admin_token": {"env": "SWITCHMAN_ADMIN_TOKEN"}}),
        environ={"SWITCHMAN_ADMIN_TOKEN": token},
    )
    async with sdk(gateway.base_url) as client:
        await client.chat.completions.create(model="ok", messages=HELLO)
    url = gateway.url + "/debug/decisions"

    answers = []
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
        async with http.get(url, headers=headers) as response:
            answers.append((response.status, response.content_type, await response.text()))
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        assert [e["route"] for e in (await response.json())["data"]] == ["ok"]

    for status, content_type, text in answers:  # loopback is not enough once a token is set
        assert (status, content_type) == (403, "application/json")
        assert token not in text
        payload = json.loads(text)
        assert set(payload) == {"error"}
        assert set(payload["error"]) == {"message", "type", "param", "code"}
        assert (payload["error"]["type"], payload["error"]["code"]) == (
            "permission_error",
            "forbidden",
        )


# --- Strategies end to end --------------------------------------------------------------------


async def test_weighted_split_lands_close_to_its_percentages(
    start_gateway: Any, launch: Launch
) -> None:
    sims = {"minor": await launch(ttft_s=0.0), "major": await launch(ttft_s=0.0)}
    route = {
        "name": "chat",
        "candidates": ["minor", "major"],
        "strategy": "weighted",
        "split": {"minor": 10, "major": 90},
    }
    gateway = await start_gateway(config(sims, [route]))
    limit = asyncio.Semaphore(16)

    async def one() -> tuple[str, str]:
        async with limit:
            raw = await client.chat.completions.with_raw_response.create(
                model="chat", messages=HELLO
            )
        return raw.headers["x-switchman-model"], raw.headers["x-switchman-route"]

    async with sdk(gateway.base_url) as client:
        answers = await asyncio.gather(*(one() for _ in range(400)))

    minor = sum(model == "minor" for model, _ in answers)
    assert 0.04 <= minor / 400 <= 0.16, minor  # 10% +- 4 standard deviations at n = 400
    assert len(seen(sims["minor"])) == minor
    for model, why in answers:
        share = "10" if model == "minor" else "90"
        assert why == f"chat; weighted {share}% -> {model}: {model} (1/2)"


async def test_cheapest_picks_the_cheaper_model(start_gateway: Any, launch: Launch) -> None:
    sims = {"pricey": await launch(), "cheap": await launch()}
    gateway = await start_gateway(
        config(
            sims,
            [{"name": "chat", "candidates": ["pricey", "cheap"], "strategy": "cheapest"}],
            models={
                "pricey": {"price": {"input_per_mtok": 10, "output_per_mtok": 30}},
                "cheap": {"price": {"input_per_mtok": 0.1, "output_per_mtok": 0.3}},
            },
        )
    )

    async with sdk(gateway.base_url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=HELLO)

    assert raw.headers["x-switchman-model"] == "cheap"
    assert raw.headers["x-switchman-route"] == "chat; cheapest: cheap (1/2)"
    assert (len(seen(sims["pricey"])), len(seen(sims["cheap"]))) == (0, 1)


@pytest.fixture
async def classified_gateway(tmp_path: Path) -> AsyncIterator[Callable[[dict[str, Any]], Any]]:
    """``start(config)`` -> base URL of a gateway app built with the packaged classifier
    (``start_gateway`` builds apps without one)."""
    module = pytest.importorskip("switchman.gateway.routing.classifier")
    classifier_type = getattr(module, "Classifier", None)
    if classifier_type is None:
        pytest.skip("switchman.gateway.routing.classifier does not expose Classifier yet")
    servers: list[TestServer] = []

    async def start_one(document: dict[str, Any]) -> str:
        path = tmp_path / "classified.json"
        path.write_text(json.dumps(document))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ={}, interval=60)
        watcher.load_initial()
        app = create_app(watcher, metrics, classifier=classifier_type.load_default())
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}/v1"

    yield start_one
    for server in servers:
        await server.close()


TRIVIAL = "hi"
HARD = (
    "Design a distributed, fault-tolerant key-value store with linearizable reads; explain the "
    "consensus protocol and its failure modes, then write the Raft leader election in Rust with "
    "tests, and prove that two leaders can never be elected in the same term."
)


async def test_complexity_sends_trivial_prompts_small_and_hard_ones_large(
    classified_gateway: Callable[[dict[str, Any]], Any], launch: Launch
) -> None:
    sims = {"small": await launch(), "large": await launch()}
    route = {
        "name": "chat",
        "candidates": ["small", "large"],
        "strategy": "complexity",
        "complexity": {
            "tiers": [
                {"tier": "small", "min_complexity": 0},
                {"tier": "large", "min_complexity": 0.5},
            ]
        },
    }
    base_url = await classified_gateway(
        config(sims, [route], models={"small": {"tier": "small"}, "large": {"tier": "large"}})
    )

    async with sdk(base_url) as client:
        answers = {}
        for prompt in (TRIVIAL, HARD):
            raw = await client.chat.completions.with_raw_response.create(
                model="chat", messages=[{"role": "user", "content": prompt}]
            )
            answers[prompt] = (raw.headers["x-switchman-model"], raw.headers["x-switchman-route"])

    assert answers[TRIVIAL][0] == "small"
    assert "< 0.50 -> small: small (1/2)" in answers[TRIVIAL][1]
    assert answers[HARD][0] == "large"
    assert ">= 0.50 -> large: large (1/2)" in answers[HARD][1]
    assert [b["messages"][0]["content"] for b in seen(sims["large"])] == [HARD]
