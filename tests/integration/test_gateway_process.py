"""The ``switchman gateway`` and ``switchman demo`` processes, as a user runs them.

Scenarios:
- gateway on an invalid file: exits 2 at once, says what is wrong and what to do next;
- gateway: /healthz, /readyz (config generation, upstreams), /v1/models (routes and models),
  /openapi.json (every endpoint), /metrics (Prometheus text with switchman_ families);
- gateway SIGTERM while a stream is in flight: the stream completes, then the process exits 0;
- a second SIGTERM while it drains: the process exits at once (143), the stream is cut off;
- demo: prints the snippets, serves route ``auto`` over two simulators, stops cleanly on SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import openai
import processes
import pytest

from switchman.sim.runner import RunningSim


def _config(sim: RunningSim) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [{"name": "sim", "base_url": f"{sim.url}/v1"}],
        "models": [{"name": "tiny", "upstream": "sim"}],
        "routes": [{"name": "auto", "candidates": ["tiny"]}],
    }


async def test_gateway_refuses_to_start_on_an_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("version: 1\nupstreams: []\nmodels: []\n")
    async with processes.switchman(
        "gateway", "--config", str(config), stdout=processes.PIPE, stderr=processes.PIPE
    ) as proc:
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    text = stderr.decode()
    assert "invalid config" in text
    assert "upstreams" in text
    assert "Fix the file" in text
    assert "Traceback" not in text


def _files(tmp_path: Path, sim: RunningSim) -> tuple[Path, int, str]:
    """The gateway's config file on ``sim``, a free port, and the gateway's base URL there."""
    config = tmp_path / "gateway.json"
    config.write_text(json.dumps(_config(sim)))
    port = processes.free_port()
    return config, port, f"http://127.0.0.1:{port}"


async def test_gateway_process_serves_its_endpoints_and_drains_on_sigterm(
    tmp_path: Path, slow_sim: RunningSim
) -> None:
    config, port, base = _files(tmp_path, slow_sim)
    async with processes.gateway(config, port, "--shutdown-grace", "10") as proc:
        await processes.wait_http(f"{base}/readyz")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/healthz") as resp:
                assert (await resp.json())["status"] == "ok"
            async with session.get(f"{base}/readyz") as resp:
                ready = await resp.json()
            assert ready["config"]["generation"] == 1
            assert ready["upstreams"]["sim"]["usable"] is True
            async with session.get(f"{base}/openapi.json") as resp:
                paths = (await resp.json())["paths"]
            assert {
                "/v1/chat/completions",
                "/v1/completions",
                "/v1/embeddings",
                "/v1/models",
                "/healthz",
                "/readyz",
                "/metrics",
            } <= set(paths)

        client = openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        models = await client.models.list()
        assert [m.id for m in models.data] == ["auto", "tiny"]

        stream = await client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "hello"}],
            max_tokens=20,
            stream=True,
        )
        pieces: list[str] = []
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            if len(pieces) == 2:
                proc.send_signal(signal.SIGTERM)  # mid-stream
        assert len(pieces) == 20  # the in-flight stream finished despite the SIGTERM

        assert await asyncio.wait_for(proc.wait(), 15) == 0
        await client.close()


async def test_a_second_sigterm_while_draining_stops_the_gateway_at_once(
    tmp_path: Path, slow_sim: RunningSim
) -> None:
    config, port, base = _files(tmp_path, slow_sim)
    async with (
        processes.gateway(config, port, "--shutdown-grace", "60", stderr=processes.PIPE) as proc,
        openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0) as client,
    ):
        await processes.wait_http(f"{base}/readyz")
        stream = await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=40, stream=True
        )
        pieces: list[str] = []

        async def read() -> None:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == 2:
                    proc.send_signal(signal.SIGTERM)  # drains: the stream goes on
                if len(pieces) == 4:
                    proc.send_signal(signal.SIGTERM)  # stops now

        with pytest.raises(openai.APIError):  # the connection closes mid-stream
            await read()
        # Long before the 60 s grace (the stream alone would take another 1.8 s).
        assert await asyncio.wait_for(proc.wait(), 10) == 128 + signal.SIGTERM
        assert 4 <= len(pieces) < 40
        assert proc.stderr is not None
        assert "SIGTERM again while draining: stopping now" in (await proc.stderr.read()).decode()


async def test_gateway_metrics_are_prometheus_text(
    start_gateway: Any, slow_sim: RunningSim
) -> None:
    gateway = await start_gateway(_config(slow_sim))
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    await client.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hi"}], max_tokens=3
    )
    async with aiohttp.ClientSession() as session, session.get(f"{gateway.url}/metrics") as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    served = 'switchman_requests_total{model="tiny",outcome="ok",route="auto",upstream="sim"} 1.0'
    assert served in text
    assert 'switchman_tokens_total{direction="output",model="tiny"} 3.0' in text
    assert 'switchman_config_reloads_total{result="success"} 1.0' in text
    await client.close()


async def test_demo_serves_auto_and_stops_cleanly_on_ctrl_c() -> None:
    port = processes.free_port()
    async with processes.switchman(
        "demo", "--port", str(port), stdout=processes.PIPE, stderr=processes.PIPE
    ) as proc:
        await processes.wait_http(f"http://127.0.0.1:{port}/readyz")
        client = openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0
        )
        raw = await client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "Hello"}]
        )
        assert raw.headers["x-switchman-model"] == "small"
        assert raw.parse().choices[0].message.content
        await client.close()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0
    out = stdout.decode()
    assert f"curl -s http://127.0.0.1:{port}/v1/chat/completions" in out
    assert 'OpenAI(base_url="http://127.0.0.1:' in out
    assert "/admin/faults" in out
    assert "Traceback" not in stderr.decode()


async def test_demo_is_composed_like_the_gateway_otel_env_and_series() -> None:
    """``switchman demo`` honours the standard OTEL_* variables and exports production's series
    (no ``*_created`` samples), because both commands go through ``app.compose``."""
    port = processes.free_port()
    env = {**os.environ, "OTEL_TRACES_EXPORTER": "console", "OTEL_TRACES_SAMPLER": "always_on"}
    async with processes.switchman(
        "demo", "--port", str(port), env=env, stdout=processes.PIPE, stderr=processes.PIPE
    ) as proc:
        await processes.wait_http(f"http://127.0.0.1:{port}/readyz")
        async with aiohttp.ClientSession() as http:
            body = {"model": "small", "messages": [{"role": "user", "content": "Hi"}]}
            async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as r:
                assert r.status == 200
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                metrics = await r.text()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, stderr.decode()
    assert "switchman_requests_total" in metrics
    assert "_created" not in metrics
    out = stdout.decode()
    # The console exporter prints each finished span as JSON, the server span among them.
    assert '"gen_ai.request.model": "small"' in out
    assert '"kind": "SpanKind.SERVER"' in out
