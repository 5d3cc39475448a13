"""The quality guard against real vLLM: logprobs asked for, returned by vLLM, and judged.

The tiny vLLM model is the small tier, a simulator the large one; the route's guard asks the
small tier for logprobs (the client does not) and escalates an answer whose mean token
log-probability is under ``min_mean_logprob``. With greedy decoding vLLM's answers, and so
their logprobs, are the same on every run, which makes the measurement exact:

    threshold                       | expect
    --------------------------------|-----------------------------------------------------------
    -1000 (never)                   | no escalation; every answer from vLLM, with logprobs the
                                    | client did not ask for; their means recorded
    0 (always: a logprob is < 0)    | every answer escalated to the large tier; the extra cost
                                    | counted equals the small answers' usage at its price
    the median of the recorded means| exactly the prompts whose mean is under it escalated

The tiny model has random weights, so this measures the mechanism (rate, extra cost), not a
quality gain; the printed table (``pytest -s``) is the escalation rate and cost per threshold.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from statistics import median
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.sim.runner import start
from switchman.sim.settings import SimSettings

pytestmark = pytest.mark.vllm

SERVED_NAME = "tiny"
PROMPTS = [f"Question {i}: what comes after {i}?" for i in range(12)]
SMALL_PRICE = {"input_per_mtok": 0.15, "output_per_mtok": 0.60}
LARGE_PRICE = {"input_per_mtok": 2.50, "output_per_mtok": 10.00}
Start = Callable[[float], Any]


def config(vllm_url: str, sim_url: str, threshold: float) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [
            {"name": "vllm-tiny", "base_url": f"{vllm_url}/v1"},
            {"name": "sim", "base_url": f"{sim_url}/v1"},
        ],
        "models": [
            {"name": SERVED_NAME, "upstream": "vllm-tiny", "tier": "small", "price": SMALL_PRICE},
            {
                "name": "big",
                "upstream": "sim",
                "upstream_model": "big",
                "tier": "large",
                "price": LARGE_PRICE,
            },
        ],
        "routes": [
            {
                "name": "auto",
                "candidates": [SERVED_NAME, "big"],
                "guard": {"min_mean_logprob": threshold, "request_logprobs": True},
            }
        ],
    }


@pytest.fixture
async def gateway(vllm: Any, tmp_path: Path) -> AsyncIterator[Start]:
    sim = await start(SimSettings(model="big", ttft_s=0.0, itl_s=0.0), shutdown_timeout=0.2)
    servers: list[TestServer] = []

    async def start_one(threshold: float) -> tuple[str, Metrics]:
        path = tmp_path / f"gateway-{len(servers)}.json"
        path.write_text(json.dumps(config(vllm.url, sim.url, threshold)))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ={})
        watcher.load_initial()
        server = TestServer(create_app(watcher, metrics), host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return f"http://127.0.0.1:{server.port}/v1", metrics

    try:
        yield start_one
    finally:
        for server in servers:
            await server.close()
        await sim.close()


async def ask_all(base_url: str) -> list[tuple[str, Any]]:
    """(serving model, parsed answer) per prompt, greedy and short."""
    out = []
    async with openai.AsyncOpenAI(
        base_url=base_url, api_key="unused", max_retries=0, timeout=120
    ) as client:
        for prompt in PROMPTS:
            raw = await client.chat.completions.with_raw_response.create(
                model="auto",
                messages=[{"role": "user", "content": prompt}],
                max_tokens=8,
                temperature=0,
            )
            out.append((raw.headers["x-switchman-model"], raw.parse()))
    return out


def counter(metrics: Metrics, name: str) -> float:
    families = text_string_to_metric_families(metrics.exposition().decode())
    return sum(s.value for f in families for s in f.samples if s.name == name)


def mean_logprob(answer: Any) -> float:
    tokens = answer.choices[0].logprobs.content
    return sum(t.logprob for t in tokens) / len(tokens)


def served(answers: list[tuple[str, Any]]) -> float:
    """What the served answers cost at their models' prices."""
    prices = {SERVED_NAME: SMALL_PRICE, "big": LARGE_PRICE}
    return sum(cost(answer.usage, prices[model]) for model, answer in answers)


def cost(usage: Any, price: dict[str, float]) -> float:
    return (usage.prompt_tokens * price["input_per_mtok"]
            + usage.completion_tokens * price["output_per_mtok"]) / 1e6  # fmt: skip


async def test_the_guard_escalates_by_real_vllm_logprobs(gateway: Start) -> None:
    rows = []
    base_url, metrics = await gateway(-1000.0)
    never = await ask_all(base_url)
    assert [model for model, _ in never] == [SERVED_NAME] * len(PROMPTS)
    means = [mean_logprob(answer) for _, answer in never]  # vLLM returned what the gateway asked
    assert all(m < 0 for m in means)
    small_costs = [cost(answer.usage, SMALL_PRICE) for _, answer in never]
    assert counter(metrics, "switchman_escalations_total") == 0
    rows.append(("-1000 (never)", 0, 0.0, served(never)))

    base_url, metrics = await gateway(0.0)
    always = await ask_all(base_url)
    assert [model for model, _ in always] == ["big"] * len(PROMPTS)
    assert counter(metrics, "switchman_escalations_total") == len(PROMPTS)
    extra = counter(metrics, "switchman_escalation_cost_usd_total")
    assert extra == pytest.approx(sum(small_costs))
    rows.append(("0 (always)", len(PROMPTS), extra, served(always)))

    bar = median(means)
    base_url, metrics = await gateway(bar)
    split = await ask_all(base_url)
    expected = ["big" if m < bar else SERVED_NAME for m in means]
    assert [model for model, _ in split] == expected
    escalated = sum(1 for m in means if m < bar)
    assert counter(metrics, "switchman_escalations_total") == escalated
    extra = counter(metrics, "switchman_escalation_cost_usd_total")
    assert extra == pytest.approx(
        sum(c for c, m in zip(small_costs, means, strict=True) if m < bar)
    )
    rows.append((f"{bar:.3f} (median)", escalated, extra, served(split)))

    print("\nthreshold            escalated  rate  extra USD   served USD  total vs always-large")
    for name, count, usd, paid in rows:
        print(f"{name:20} {count:9d}  {count / len(PROMPTS):4.0%}  {usd:.7f}  {paid:.7f}  "
              f"{(usd + paid) / rows[1][3]:.0%}")  # fmt: skip
