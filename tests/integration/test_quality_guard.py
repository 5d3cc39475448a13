"""The quality guard (cascade) with the OpenAI SDK: low-confidence small answers go large.

Our own aiohttp upstreams: ``small`` answers what each test sets (text, refusal field,
finish_reason, logprobs), ``large`` answers "large answer" (or fails with a 500 when told).

Scenario matrix:
- a refusal, an empty answer, invalid JSON for a json_object request, an answer cut at the
  length limit, a mean token logprob under min_mean_logprob: each is escalated to the large
  model; the client gets the large answer; x-switchman-route says "small failed:
  escalated_<why>"; switchman_escalations_total and the escalated answer's cost are counted
- the same answers pass when the check does not apply: valid JSON, a limit the client set
  (max_tokens), a mean logprob above the bar, a tool call with no text, no guard on the route
- request_logprobs: the guarded small attempt asks for logprobs, the large one does not
- the large model fails after an escalation: the small answer is served (200), never an error
- streams are not guarded unless hold_stream_chunks: then a stream that opens with a refusal is
  escalated before anything reaches the client (the client streams the large answer), and a
  confident one streams from the small model
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpServer

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher


class Upstream:
    """An OpenAI chat upstream whose answer a test sets; it records the bodies it got."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bodies: list[dict[str, Any]] = []
        self.message: dict[str, Any] = {"role": "assistant", "content": f"{name} answer"}
        self.finish_reason = "stop"
        self.logprobs: list[float] | None = None
        self.fail = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        if self.fail:
            return web.json_response({"error": {"message": "boom", "type": "server"}}, status=500)
        if body.get("stream"):
            response = web.StreamResponse(headers={"content-type": "text/event-stream"})
            await response.prepare(request)
            delta = {"index": 0, "delta": self.message, "finish_reason": "stop"}
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                     "choices": [delta]}  # fmt: skip
            await response.write(f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n".encode())
            return response
        choice: dict[str, Any] = {"index": 0, "message": self.message,
                                  "finish_reason": self.finish_reason}  # fmt: skip
        if self.logprobs is not None:
            choice["logprobs"] = {"content": [{"token": "t", "logprob": v, "top_logprobs": []}
                                              for v in self.logprobs]}  # fmt: skip
        return web.json_response({
            "id": "x", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [choice],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500},
        })  # fmt: skip


Start = Callable[..., Any]


@pytest.fixture
async def gateway(
    aiohttp_server: AiohttpServer, tmp_path: Path
) -> AsyncIterator[tuple[Start, Upstream, Upstream]]:
    small, large = Upstream("small"), Upstream("large")
    servers = {u.name: await aiohttp_server(u.app(), host="127.0.0.1") for u in (small, large)}
    started: list[TestServer] = []
    metrics_holder: list[Metrics] = []

    async def start(guard: dict[str, Any] | None) -> tuple[str, Metrics]:
        route: dict[str, Any] = {"name": "auto", "candidates": ["small", "large"]}
        if guard is not None:
            route["guard"] = guard
        document = {
            "version": 1,
            "upstreams": [
                {"name": n, "base_url": f"http://127.0.0.1:{s.port}/v1"} for n, s in servers.items()
            ],
            "models": [
                {
                    "name": "small",
                    "upstream": "small",
                    "tier": "small",
                    "price": {"input_per_mtok": 0.2, "output_per_mtok": 0.8},
                },
                {
                    "name": "large",
                    "upstream": "large",
                    "tier": "large",
                    "price": {"input_per_mtok": 3.0, "output_per_mtok": 12.0},
                },
            ],
            "routes": [route],
        }
        path = tmp_path / "gateway.json"
        path.write_text(json.dumps(document))
        metrics = Metrics()
        watcher = ConfigWatcher(path, metrics, environ={}, interval=60)
        watcher.load_initial()
        server = TestServer(create_app(watcher, metrics), host="127.0.0.1")
        await server.start_server()
        started.append(server)
        metrics_holder.append(metrics)
        return f"http://127.0.0.1:{server.port}/v1", metrics

    yield start, small, large
    for server in started:
        await server.close()


async def ask(base_url: str, **extra: Any) -> tuple[str, dict[str, str]]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk", max_retries=0, timeout=20)
    async with client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "question"}], **extra
        )
    answer = raw.parse()
    return answer.choices[0].message.content or "", dict(raw.headers)


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.mark.parametrize(
    ("setup", "extra", "why"),
    [
        ({"message": {"role": "assistant", "content": "I'm sorry, but I can't help with that."}},
         {}, "refusal"),
        ({"message": {"role": "assistant", "content": None, "refusal": "no"}}, {}, "refusal"),
        ({"message": {"role": "assistant", "content": "  "}}, {}, "empty"),
        ({"message": {"role": "assistant", "content": "{not json"}},
         {"response_format": {"type": "json_object"}}, "invalid_json"),
        ({"finish_reason": "length"}, {}, "truncated"),
        ({"logprobs": [-3.0, -2.0, -1.0]}, {}, "low_logprob"),
    ],
)  # fmt: skip
async def test_low_confidence_answers_go_to_the_large_model(
    gateway: tuple[Start, Upstream, Upstream], setup: dict[str, Any], extra: dict[str, Any],
    why: str,
) -> None:  # fmt: skip
    start, small, large = gateway
    for key, value in setup.items():
        setattr(small, key, value)
    base_url, metrics = await start({"min_mean_logprob": -1.0})
    text, headers = await ask(base_url, **extra)
    assert text == "large answer"
    assert headers["x-switchman-model"] == "large"
    assert f"small failed: escalated_{why}" in headers["x-switchman-route"]
    assert len(small.bodies) == len(large.bodies) == 1
    assert sample(metrics, "switchman_escalations_total", route="auto", model="small",
                  reason=f"escalated_{why}") == 1  # fmt: skip
    cost = (1000 * 0.2 + 500 * 0.8) / 1e6  # the escalated small answer's usage
    assert sample(metrics, "switchman_escalation_cost_usd_total", route="auto",
                  model="small") == pytest.approx(cost)  # fmt: skip


@pytest.mark.parametrize(
    ("setup", "extra"),
    [
        ({"message": {"role": "assistant", "content": '{"a": 1}'}},
         {"response_format": {"type": "json_object"}}),
        ({"finish_reason": "length"}, {"max_tokens": 5}),
        ({"logprobs": [-0.1, -0.3]}, {}),
        ({"message": {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}},
         {}),
    ],
)  # fmt: skip
async def test_confident_answers_are_served_by_the_small_model(
    gateway: tuple[Start, Upstream, Upstream], setup: dict[str, Any], extra: dict[str, Any]
) -> None:
    start, small, large = gateway
    for key, value in setup.items():
        setattr(small, key, value)
    base_url, metrics = await start({"min_mean_logprob": -1.0})
    _, headers = await ask(base_url, **extra)
    assert headers["x-switchman-model"] == "small"
    assert large.bodies == []
    assert sample(metrics, "switchman_escalations_total", route="auto", model="small") == 0


async def test_no_guard_no_escalation(gateway: tuple[Start, Upstream, Upstream]) -> None:
    start, small, large = gateway
    small.message = {"role": "assistant", "content": "I'm sorry, but I can't help with that."}
    base_url, _ = await start(None)
    text, headers = await ask(base_url)
    assert headers["x-switchman-model"] == "small"
    assert text.startswith("I'm sorry")
    assert large.bodies == []


async def test_request_logprobs_asks_only_the_guarded_attempt(
    gateway: tuple[Start, Upstream, Upstream],
) -> None:
    start, small, large = gateway
    small.logprobs = [-4.0]
    base_url, _ = await start({"min_mean_logprob": -2.0, "request_logprobs": True})
    _, headers = await ask(base_url)
    assert headers["x-switchman-model"] == "large"
    assert small.bodies[0]["logprobs"] is True
    assert "logprobs" not in large.bodies[0]


async def test_the_small_answer_serves_when_the_large_model_fails(
    gateway: tuple[Start, Upstream, Upstream],
) -> None:
    start, small, large = gateway
    small.message = {"role": "assistant", "content": "I'm sorry, but I can't do that."}
    large.fail = True
    base_url, _ = await start({})
    text, headers = await ask(base_url)
    assert headers["x-switchman-model"] == "small"
    assert text == "I'm sorry, but I can't do that."
    route = headers["x-switchman-route"]
    assert "small failed: escalated_refusal" in route
    assert "large failed: upstream_error" in route or "large failed" in route


async def test_streams_are_not_guarded(gateway: tuple[Start, Upstream, Upstream]) -> None:
    start, small, large = gateway
    small.message = {"role": "assistant", "content": "I'm sorry, but I can't help with that."}
    base_url, _ = await start({})
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk", max_retries=0, timeout=20)
    async with client:
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "q"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.startswith("I'm sorry")
    assert large.bodies == []


async def _stream_text(base_url: str) -> str:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="sk", max_retries=0, timeout=20)
    async with client:
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "q"}], stream=True
        )
        return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


async def test_a_held_stream_that_opens_with_a_refusal_is_escalated(
    gateway: tuple[Start, Upstream, Upstream],
) -> None:
    start, small, large = gateway
    small.message = {"role": "assistant", "content": "I'm sorry, but I can't help with that."}
    base_url, metrics = await start({"hold_stream_chunks": 4})
    assert await _stream_text(base_url) == "large answer"
    assert len(small.bodies) == len(large.bodies) == 1
    assert sample(metrics, "switchman_escalations_total", route="auto", model="small",
                  reason="escalated_refusal") == 1  # fmt: skip


async def test_a_held_confident_stream_is_served_by_the_small_model(
    gateway: tuple[Start, Upstream, Upstream],
) -> None:
    start, small, large = gateway
    base_url, _ = await start({"hold_stream_chunks": 4})
    assert await _stream_text(base_url) == "small answer"
    assert len(small.bodies) == 1
    assert large.bodies == []
