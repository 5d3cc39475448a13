"""The gateway's ``/metrics`` exposition, compared with a golden file after a fixed scenario.

This is the test that tells a reviewer when a metric's name, type, help text, label set or bucket
layout changes: such a change shows up as a diff of ``golden/metrics.txt``. Regenerate it with
``SWITCHMAN_UPDATE_GOLDEN=1 pytest tests/integration/test_metrics_golden.py`` and review the diff.

Two simulators (``sim-a`` with an ``api_key`` reference, ``sim-b``) serve models ``a`` and
``b``, route ``auto`` = [a, b]. They have no latency, except 20 ms between the tokens of a's
streams (without it a whole stream may arrive in one read, and the inter-token-latency histogram
would count it or not by chance). Scenario, in order, through the official SDK, every request
carrying a recognisable ``x-request-id`` and prompt:

    step | request                                 | sim faults           | expect
    -----|-----------------------------------------|----------------------|-----------------------
    1    | 3 x chat, route auto                    | -                    | 200 from a
    2    | 1 x chat, model b (direct)              | -                    | 200 from b
    3    | 1 x chat stream, route auto, with usage | -                    | 200 from a, usage
    4    | 1 x chat, route auto                    | a down (503)         | 200 from b, fallback
    5    | 1 x chat stream, route auto             | a cut after 2 tokens | continued on b, whole
    6    | 1 x chat, unknown model                 | -                    | 404 model_not_found

Normalisation keeps what is deterministic and drops what depends on timing: ``_created`` families
(prometheus_client's creation timestamps) are dropped, a histogram's ``_sum`` becomes
``<seconds>``, its buckets collapse to one line per series listing the ``le`` bounds; ``_count``,
counter and gauge values stay exact. Samples are sorted within their family.

Bounded labels: after the scenario the exposition holds no request id, prompt, API key (client's
or upstream's) or unknown model name; ``route``, ``model`` and ``upstream`` values are names from
the config (or ``none``), every other label value is a short reason word.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import openai
import pytest

from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

if TYPE_CHECKING:  # the fixture's types; at run time "conftest" may name another tier's
    from conftest import RunningGateway, StartGateway

GOLDEN = Path(__file__).parent / "golden" / "metrics.txt"
UPDATE_ENV = "SWITCHMAN_UPDATE_GOLDEN"

API_KEY = "sk-secret-1"
REQUEST_ID = "req-7f3a9c-golden"
PROMPT = "zebra quasar marmalade"
UNKNOWN_MODEL = "nope-unknown-model"
STREAM_ITL_S = 0.02

# Label values must come from the config below or be a reason word (never client input).
CONFIG_NAMES = {
    "route": {"auto", "a", "b", "none"},
    "model": {"a", "b", "none"},
    "upstream": {"sim-a", "sim-b", "none"},
    "endpoint": {"sim-a-replica", "sim-b-replica"},
}
REASON_WORD = re.compile(r"[a-z][a-z0-9_]{0,31}")


@pytest.fixture
async def sims() -> AsyncIterator[tuple[RunningSim, RunningSim]]:
    async with (
        await start(
            SimSettings(model="a", ttft_s=0, itl_s=STREAM_ITL_S, prefill_s_per_token=0)
        ) as a,
        await start(SimSettings(model="b", ttft_s=0, itl_s=0, prefill_s_per_token=0)) as b,
    ):
        yield a, b


def gateway_config(a: RunningSim, b: RunningSim) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [
            {"name": "sim-a", "base_url": f"{a.url}/v1", "api_key": {"env": "K"}},
            {"name": "sim-b", "base_url": f"{b.url}/v1"},
        ],
        "models": [
            {
                "name": "a",
                "upstream": "sim-a",
                "price": {"input_per_mtok": 1, "output_per_mtok": 2},
            },
            {
                "name": "b",
                "upstream": "sim-b",
                "price": {"input_per_mtok": 3, "output_per_mtok": 6},
            },
        ],
        "routes": [{"name": "auto", "candidates": ["a", "b"]}],
    }


async def set_faults(sim: RunningSim, **faults: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{sim.url}/admin/faults", json=faults) as resp,
    ):
        assert resp.status == 200, await resp.text()


async def run_scenario(gateway: RunningGateway, a: RunningSim) -> None:
    """The steps of the module docstring's matrix, each checked so the golden file stays sane."""
    messages: Any = [{"role": "user", "content": PROMPT}]
    async with openai.AsyncOpenAI(
        base_url=gateway.base_url,
        api_key="sk-client-key",
        max_retries=0,
        default_headers={"x-request-id": REQUEST_ID},
    ) as client:
        for _ in range(3):
            raw = await client.chat.completions.with_raw_response.create(
                model="auto", messages=messages, max_tokens=4
            )
            assert raw.headers["x-switchman-model"] == "a"
        raw = await client.chat.completions.with_raw_response.create(
            model="b", messages=messages, max_tokens=4
        )
        assert raw.headers["x-switchman-model"] == "b"

        stream = await client.chat.completions.create(
            model="auto",
            messages=messages,
            max_tokens=4,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        assert chunks[-1].usage is not None

        await set_faults(a, down=True)
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=messages, max_tokens=4
        )
        assert raw.headers["x-switchman-model"] == "b"
        assert raw.headers["x-switchman-attempts"] == "2"

        await set_faults(a, down=False, cut_after_tokens=2)
        stream = await client.chat.completions.create(
            model="auto", messages=messages, max_tokens=8, stream=True
        )
        pieces = [c.choices[0].delta.content async for c in stream if c.choices]
        assert len([p for p in pieces if p]) == 8  # 2 from a, 6 from b, as one stream
        await set_faults(a, cut_after_tokens=None)

        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model=UNKNOWN_MODEL, messages=messages)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def normalize(exposition: str) -> str:
    """The deterministic part of a Prometheus text exposition (format 0.0.4), in a stable order.

    Comment lines stay as they are; a family's samples are sorted; see the module docstring for
    what happens to ``_created``, histogram buckets and sums.
    """
    out: list[str] = []
    histograms: set[str] = set()
    samples: list[str] = []
    buckets: dict[str, list[str]] = {}

    def flush() -> None:
        samples.extend(f"{series} le={','.join(les)}" for series, les in buckets.items())
        out.extend(sorted(samples))
        samples.clear()
        buckets.clear()

    for line in exposition.splitlines():
        if line.startswith("# "):
            _, kind, name, rest = [*line.split(" ", 3), ""][:4]
            if name.endswith("_created"):
                continue  # prometheus_client's creation timestamps: a gauge per counter
            if kind == "HELP":
                flush()
            if kind == "TYPE" and rest == "histogram":
                histograms.add(name)
            out.append(line)
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, raw_labels, value = match.groups()
        if name.endswith("_created"):
            continue
        labels = [(k, v) for k, v in _LABEL.findall(raw_labels or "") if k != "le"]
        series = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels) + "}" if labels else "")
        family = name.rsplit("_", 1)[0]
        if family in histograms and name.endswith("_bucket"):
            buckets.setdefault(series, []).append(dict(_LABEL.findall(raw_labels))["le"])
        elif family in histograms and name.endswith("_sum"):
            samples.append(f"{series} <seconds>")
        else:
            samples.append(f"{series} {value}")
    flush()
    return "\n".join(out) + "\n"


def label_values(exposition: str) -> dict[str, set[str]]:
    """Every label name in the exposition (``le`` aside) and the values it takes."""
    seen: dict[str, set[str]] = {}
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if line.startswith("#") or not match:
            continue
        for name, value in _LABEL.findall(match.group(2) or ""):
            if name != "le":
                seen.setdefault(name, set()).add(value)
    return seen


async def test_metrics_exposition_matches_golden_file(
    start_gateway: StartGateway, sims: tuple[RunningSim, RunningSim]
) -> None:
    a, b = sims
    gateway = await start_gateway(gateway_config(a, b), environ={"K": API_KEY})
    await run_scenario(gateway, a)
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/metrics") as resp:
        assert resp.status == 200
        exposition = await resp.text()

    # Replica addresses are the simulators' ephemeral ports: named for a stable comparison.
    endpoints = {a.url.split("//")[1]: "sim-a-replica", b.url.split("//")[1]: "sim-b-replica"}
    for address, name in endpoints.items():
        exposition = exposition.replace(f'endpoint="{address}"', f'endpoint="{name}"')
    actual = normalize(exposition)
    if os.environ.get(UPDATE_ENV) == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(actual)
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing: run with {UPDATE_ENV}=1 to write it", pytrace=False)
    expected = GOLDEN.read_text()
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), "golden", "actual", lineterm=""
        )
        pytest.fail(
            f"/metrics differs from {GOLDEN.name}; if on purpose, rerun with {UPDATE_ENV}=1 "
            "and commit the golden file:\n" + "\n".join(diff),
            pytrace=False,
        )

    for secret in (API_KEY, REQUEST_ID, PROMPT, *PROMPT.split(), UNKNOWN_MODEL, "sk-client-key"):
        assert secret not in exposition, f"{secret!r} leaked into /metrics"
    for name, values in label_values(exposition).items():
        allowed = CONFIG_NAMES.get(name)
        for value in values:
            if allowed is not None:
                assert value in allowed, f"label {name}={value!r} is not a configured name"
            else:
                assert REASON_WORD.fullmatch(value), f"label {name}={value!r} is not a reason word"
