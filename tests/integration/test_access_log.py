"""The access log: one structured line per request, from a real gateway app (simulators as
upstreams, the ``openai`` SDK as client) into a logger whose handler keeps the lines in a list,
and from the ``switchman gateway`` process onto its stdout.

Scenario matrix:
- unary success, tracing on: exactly one JSON line; ``request_id`` equals the ``x-request-id``
  response header (generated, or the client's own), ``trace_id`` the SERVER span's trace id;
  route, model, upstream, attempts, status, outcome, ``duration_ms`` > 0, no ``ttft_ms``;
  tokens equal the response's usage; ``cost_usd`` = tokens x the model's configured prices;
- stream: ``ttft_ms`` > 0 (and within ``duration_ms``), tokens equal what was streamed;
- tracing off: ``trace_id`` is null;
- fallback: attempts 2, the serving model and upstream;
- unknown model: status 404, outcome ``client_error``, route/model/upstream ``none``;
- every candidate down: status 502, outcome ``error``;
- secrecy: neither the prompt text nor the upstream API key (``api_key: {env: K}``) appears in
  any line, although the upstream did receive the key;
- ``text`` format: one ``key=value`` line, null fields left out; ``off``: nothing; a logger above
  INFO: nothing;
- CLI: ``switchman gateway --access-log json`` writes one JSON line per request to stdout.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import openai
import processes
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from switchman.gateway.telemetry.accesslog import AccessLog, Format
from switchman.gateway.telemetry.tracing import Tracing
from switchman.sim.runner import RunningSim

if TYPE_CHECKING:  # the fixture's type; at run time "conftest" may name another tier's
    from conftest import StartGateway, StartSim

SECRET = "sk-secret-xyz"
PROMPT = "quokka marmalade 4471"
INPUT_PER_MTOK = 1000.0
OUTPUT_PER_MTOK = 2000.0


class ListHandler(logging.Handler):
    """Keeps each formatted message."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Logged:
    """A gateway under test with its access lines, its spans (tracing on) and an SDK client."""

    url: str
    handler: ListHandler
    exporter: InMemorySpanExporter | None
    client: openai.AsyncOpenAI

    @property
    def lines(self) -> list[str]:
        return self.handler.lines

    async def records(self, count: int) -> list[dict[str, Any]]:
        """Exactly ``count`` JSON lines; a stream's is written just after the client's last byte."""
        for _ in range(200):
            if len(self.lines) >= count:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)  # a line too many would show up now
        assert len(self.lines) == count, self.lines
        return [json.loads(line) for line in self.lines]


StartLogged = Callable[..., Awaitable[Logged]]


def _config(sims: list[RunningSim]) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [
            {"name": f"sim{i}", "base_url": f"{s.url}/v1", "api_key": {"env": "K"}}
            for i, s in enumerate(sims)
        ],
        "models": [
            {
                "name": f"m{i}",
                "upstream": f"sim{i}",
                "upstream_model": "tiny",
                "price": {"input_per_mtok": INPUT_PER_MTOK, "output_per_mtok": OUTPUT_PER_MTOK},
            }
            for i in range(len(sims))
        ],
        "routes": [{"name": "auto", "candidates": [f"m{i}" for i in range(len(sims))]}],
    }


@pytest.fixture
async def start_logged(start_gateway: StartGateway) -> AsyncIterator[StartLogged]:
    clients: list[openai.AsyncOpenAI] = []

    async def start_one(
        sims: list[RunningSim],
        *,
        fmt: Format = "json",
        traced: bool = True,
        level: int = logging.INFO,
    ) -> Logged:
        logger = logging.getLogger(f"test.access.{uuid.uuid4().hex}")
        logger.propagate = False
        logger.setLevel(level)
        handler = ListHandler()
        logger.addHandler(handler)
        exporter = InMemorySpanExporter() if traced else None
        tracing = Tracing.with_processor(SimpleSpanProcessor(exporter)) if exporter else None
        gateway = await start_gateway(
            _config(sims),
            environ={"K": SECRET},
            tracing=tracing,
            access_log=AccessLog(fmt, logger),
        )
        client = openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key="client-key", max_retries=0, timeout=10
        )
        clients.append(client)
        return Logged(gateway.url, handler, exporter, client)

    yield start_one
    for client in clients:
        await client.close()


def _cost(input_tokens: int, output_tokens: int) -> float:
    return round((input_tokens * INPUT_PER_MTOK + output_tokens * OUTPUT_PER_MTOK) / 1e6, 8)


async def test_unary_request_writes_one_json_line_with_ids_usage_and_cost(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    sim = await start_sim()
    gw = await start_logged([sim])

    raw = await gw.client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hello there"}], max_tokens=5
    )
    resp = raw.parse()
    assert resp.usage is not None

    (line,) = await gw.records(1)
    assert gw.exporter is not None
    (server,) = [s for s in gw.exporter.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert line["request_id"] == raw.headers["x-request-id"]
    assert line["trace_id"] == format(server.context.trace_id, "032x")
    assert line["operation"] == "chat"
    assert line["stream"] is False
    assert line["route"] == "auto"
    assert line["model"] == "m0"
    assert line["upstream"] == "sim0"
    assert line["attempts"] == 1
    assert line["status"] == 200
    assert line["outcome"] == "ok"
    assert line["duration_ms"] > 0
    assert line["ttft_ms"] is None
    assert line["input_tokens"] == resp.usage.prompt_tokens > 0
    assert line["output_tokens"] == resp.usage.completion_tokens == 5
    assert line["cost_usd"] == _cost(resp.usage.prompt_tokens, resp.usage.completion_tokens)
    assert line["cost_usd"] > 0


async def test_request_id_in_the_line_is_the_one_the_client_sent(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    sim = await start_sim()
    gw = await start_logged([sim])

    raw = await gw.client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=2,
        extra_headers={"x-request-id": "client-req-42"},
    )

    (line,) = await gw.records(1)
    assert raw.headers["x-request-id"] == "client-req-42"
    assert line["request_id"] == "client-req-42"


async def test_stream_line_has_time_to_first_token_and_streamed_usage(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    sim = await start_sim()
    gw = await start_logged([sim])

    stream = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "count"}], max_tokens=4, stream=True
    )
    pieces = [
        c.choices[0].delta.content async for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) == 4

    (line,) = await gw.records(1)
    assert line["stream"] is True
    assert line["status"] == 200
    assert line["outcome"] == "ok"
    assert 0 < line["ttft_ms"] <= line["duration_ms"]
    assert line["output_tokens"] == 4
    assert line["input_tokens"] > 0
    assert line["cost_usd"] == _cost(line["input_tokens"], 4)


async def test_trace_id_is_null_when_tracing_is_off(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    sim = await start_sim()
    gw = await start_logged([sim], traced=False)

    await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )

    (line,) = await gw.records(1)
    assert line["trace_id"] is None
    assert line["status"] == 200


async def test_fallback_line_counts_both_attempts_and_names_the_serving_model(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    down = await start_sim(down=True)
    good = await start_sim()
    gw = await start_logged([down, good])

    await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )

    (line,) = await gw.records(1)
    assert line["attempts"] == 2
    assert line["model"] == "m1"
    assert line["upstream"] == "sim1"
    assert line["status"] == 200
    assert line["outcome"] == "ok"


async def test_unknown_model_is_logged_as_a_client_error_without_a_route(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    sim = await start_sim()
    gw = await start_logged([sim])

    with pytest.raises(openai.NotFoundError):
        await gw.client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}]
        )

    (line,) = await gw.records(1)
    assert line["status"] == 404
    assert line["outcome"] == "client_error"
    assert line["route"] == "none"
    assert line["model"] == "none"
    assert line["upstream"] == "none"
    assert line["attempts"] == 0
    assert line["input_tokens"] is None
    assert line["output_tokens"] is None
    assert line["cost_usd"] == 0


async def test_all_candidates_down_is_logged_as_a_502_error(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    first = await start_sim(down=True)
    second = await start_sim(down=True)
    gw = await start_logged([first, second])

    with pytest.raises(openai.APIStatusError) as caught:
        await gw.client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.status_code == 502

    (line,) = await gw.records(1)
    assert line["status"] == 502
    assert line["outcome"] == "error"
    assert line["route"] == "auto"
    assert line["model"] == "none"
    assert line["attempts"] == 3  # both, and the last one left retried once
    assert line["cost_usd"] == 0


async def test_lines_hold_neither_prompt_text_nor_the_upstream_api_key(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    down = await start_sim(down=True)
    good = await start_sim()
    gw = await start_logged([down, good])
    messages: Any = [{"role": "user", "content": PROMPT}]

    answer = await gw.client.chat.completions.create(model="auto", messages=messages, max_tokens=3)
    stream = await gw.client.chat.completions.create(
        model="auto", messages=messages, max_tokens=3, stream=True
    )
    async for _ in stream:
        pass
    with pytest.raises(openai.NotFoundError):
        await gw.client.chat.completions.create(model="nope", messages=messages)

    await gw.records(3)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{good.url}/admin/requests") as resp,
    ):
        received = (await resp.json())["data"]
    assert received[0]["headers"]["authorization"] == f"Bearer {SECRET}"  # the key was in play
    completion = answer.choices[0].message.content
    assert completion
    for line in gw.lines:
        assert PROMPT not in line
        assert SECRET not in line
        assert "client-key" not in line
        assert completion not in line


async def test_text_format_writes_one_key_value_line_without_null_fields(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    sim = await start_sim()
    gw = await start_logged([sim], fmt="text", traced=False)

    raw = await gw.client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )

    for _ in range(100):
        if gw.lines:
            break
        await asyncio.sleep(0.01)
    (line,) = gw.lines
    assert not line.startswith("{")
    fields = dict(pair.split("=", 1) for pair in line.split(" "))
    assert fields["request_id"] == raw.headers["x-request-id"]
    assert fields["route"] == "auto"
    assert fields["model"] == "m0"
    assert fields["status"] == "200"
    assert fields["outcome"] == "ok"
    assert fields["output_tokens"] == "2"
    assert "trace_id" not in fields
    assert "ttft_ms" not in fields


async def test_off_writes_nothing(start_sim: StartSim, start_logged: StartLogged) -> None:
    sim = await start_sim()
    gw = await start_logged([sim], fmt="off")

    resp = await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    assert resp.choices[0].message.content
    await asyncio.sleep(0.05)
    assert gw.lines == []


async def test_logger_above_info_gets_no_lines(
    start_sim: StartSim, start_logged: StartLogged
) -> None:
    sim = await start_sim()
    gw = await start_logged([sim], level=logging.WARNING)

    await gw.client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=2
    )
    await asyncio.sleep(0.05)
    assert gw.lines == []


async def test_cli_json_access_log_writes_a_line_per_request_to_stdout(
    start_sim: StartSim, tmp_path: Path
) -> None:
    sim = await start_sim()
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(_config([sim])))
    port = processes.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["K"] = SECRET
    async with processes.gateway(
        config,
        port,
        "--access-log",
        "json",
        "--shutdown-grace",
        "1",
        stdout=processes.PIPE,
        env=env,
        grace=10,
    ) as proc:
        assert proc.stdout is not None
        await processes.wait_http(f"http://127.0.0.1:{port}/readyz", proc=proc)
        async with openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=10
        ) as client:
            ids = []
            for _ in range(2):
                raw = await client.chat.completions.with_raw_response.create(
                    model="auto", messages=[{"role": "user", "content": PROMPT}], max_tokens=2
                )
                ids.append(raw.headers["x-request-id"])

        records: list[dict[str, Any]] = []
        while len(records) < 2:
            text = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
            assert text, "stdout closed before the access lines arrived"
            if text.startswith("{"):
                records.append(json.loads(text))
            else:
                assert "listening" in text, text  # the only other stdout line

    assert [r["request_id"] for r in records] == ids
    for record in records:
        assert record["status"] == 200
        assert record["route"] == "auto"
        assert record["output_tokens"] == 2
        assert record["trace_id"] is None  # no OTEL_* variables: tracing is off
    assert PROMPT not in json.dumps(records)
