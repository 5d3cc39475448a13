"""Complexity routes through the gateway with the packaged classifier, driven by the OpenAI SDK.

Scenario matrix:
- strategy complexity with no complexity block (the balanced mode): an English greeting and a
  Spanish lookup go small, an English design task and a German proof go large;
  ``x-switchman-route`` names the mode and the comparison; only the chosen simulator sees them
- mode cost vs mode quality on one prompt whose score lies between their thresholds: cost sends
  it small, quality large, each saying so
- max_large_percent 10 over a stream of hard prompts: after the warm-up most go small and the
  header says "capped at 10% large"
- a route referencing a weights file from ``calibrate`` uses that file's thresholds
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer
from conftest import Launch

from switchman.gateway.app import create_app
from switchman.gateway.routing.classifier import Classifier
from switchman.gateway.routing.classifier.calibrate import calibrate
from switchman.gateway.routing.classifier.dataset import load_examples
from switchman.gateway.routing.classifier.train import render
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.sim.runner import RunningSim

Start = Callable[[dict[str, Any]], Any]
EASY = ("hi!", "¿Cuál es la capital de Perú?")
HARD = (
    "Design a rate limiter for a multi-region API with 50k requests per second; compare token "
    "bucket and sliding window and explain how you handle clock skew.",
    "Beweise, dass es unendlich viele Primzahlen gibt, und verallgemeinere den Beweis.",
)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Start]:
    servers: list[TestServer] = []

    async def start(document: dict[str, Any]) -> str:
        path = tmp_path / "gateway.json"
        path.write_text(json.dumps(document))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ={}, interval=60)
        watcher.load_initial()
        app = create_app(watcher, metrics, classifier=Classifier.load_default())
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}/v1"

    yield start
    for server in servers:
        await server.close()


def document(sims: dict[str, RunningSim], complexity: dict[str, Any] | None) -> dict[str, Any]:
    route: dict[str, Any] = {"name": "auto", "candidates": ["small", "large"],
                             "strategy": "complexity"}  # fmt: skip
    if complexity is not None:
        route["complexity"] = complexity
    return {
        "version": 1,
        "upstreams": [{"name": n, "base_url": f"{s.url}/v1"} for n, s in sims.items()],
        "models": [{"name": n, "upstream": n, "upstream_model": "tiny", "tier": n} for n in sims],
        "routes": [route],
    }


async def ask(base_url: str, prompt: str) -> tuple[str, str]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk", max_retries=0, timeout=20)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": prompt}]
        )
    return raw.headers["x-switchman-model"], raw.headers["x-switchman-route"]


def seen(sim: RunningSim) -> list[str]:
    return [e["body"]["messages"][-1]["content"] for e in sim.state.recorder.entries()]


async def test_the_balanced_mode_by_default(gateway: Start, launch: Launch) -> None:
    sims = {"small": await launch(), "large": await launch()}
    base_url = await gateway(document(sims, None))
    balanced = Classifier.load_default().thresholds["balanced"]
    for prompt in (*EASY, *HARD):
        model, why = await ask(base_url, prompt)
        assert model == ("small" if prompt in EASY else "large"), (prompt, why)
        assert "(balanced) ->" in why
        assert f"{balanced:.2f}" in why
    assert seen(sims["small"]) == list(EASY)
    assert seen(sims["large"]) == list(HARD)


async def test_cost_and_quality_modes_split_a_middling_prompt(
    gateway: Start, launch: Launch
) -> None:
    classifier = Classifier.load_default()
    quality, cost = classifier.thresholds["quality"], classifier.thresholds["cost"]
    prompts = [e.body["messages"][-1]["content"] for e in load_examples("heldout")]
    middling = next(
        p for p in prompts
        if isinstance(p, str) and quality + 0.05 < classifier.score(
            "chat", {"messages": [{"role": "user", "content": p}]}) < cost - 0.05
    )  # fmt: skip
    sims = {"small": await launch(), "large": await launch()}
    for mode, expected in (("cost", "small"), ("quality", "large")):
        base_url = await gateway(document(sims, {"mode": mode}))
        model, why = await ask(base_url, middling)
        assert model == expected
        assert f"({mode}) -> {expected}" in why


async def test_the_cap_sends_hard_prompts_small_past_the_share(
    gateway: Start, launch: Launch
) -> None:
    sims = {"small": await launch(), "large": await launch()}
    base_url = await gateway(document(sims, {"max_large_percent": 10, "window": 50}))
    hard = [e for e in load_examples("train") if e.complex and len(e.body["messages"]) == 1]
    routed = [await ask(base_url, e.body["messages"][0]["content"]) for e in hard[:80]]
    after = routed[50:]  # the cap starts once the window holds 50 scores
    assert sum(1 for model, _ in after if model == "large") <= 6
    assert any("capped at 10% large" in why for _, why in after)


async def test_a_route_uses_its_calibrated_weights_file(
    gateway: Start, launch: Launch, tmp_path: Path
) -> None:
    labels_file = tmp_path / "labels.jsonl"
    rows = load_examples("heldout")[:100]
    labels_file.write_text("".join(
        json.dumps({"messages": e.body["messages"], "label": e.label}) + "\n" for e in rows
    ))  # fmt: skip
    result = calibrate(load_examples("all", labels_file), labels_file, Classifier.load_default())
    weights = tmp_path / "auto-weights.json"
    weights.write_text(render(result.document))
    sims = {"small": await launch(), "large": await launch()}
    base_url = await gateway(document(sims, {"weights": str(weights)}))
    _, why = await ask(base_url, HARD[0])
    assert f"{result.classifier.thresholds['balanced']:.2f} (balanced)" in why
