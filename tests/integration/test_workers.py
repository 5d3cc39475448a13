"""``switchman gateway --workers 2``: two processes on one port, read as one pod.

Scenarios:
- both workers serve traffic (the kernel spreads new connections over them), and ``/metrics``
  is coherent whichever worker answers the scrape: every series carries its ``worker``, each
  family is declared once, and the request counts of both workers add up to what was sent;
- ``/debug/decisions`` merges both workers' decisions, newest first, each naming its worker;
- SIGTERM stops the supervisor and both workers cleanly (exit 0, no process left);
- a terminal's Ctrl-C (SIGINT to the whole process group) reaches each worker once: a stream in
  flight finishes, then all exit 0 (a second signal would stop a draining worker at once);
- a worker killed with SIGKILL is started again by the supervisor, and the pod serves and
  scrapes as two workers again (the new one's counters start from zero, under its label);
- a worker that cannot start (the port is held by a socket without SO_REUSEPORT) stops the
  gateway with exit 2 at once instead of restarting forever.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import processes
import pytest
from prometheus_client.parser import text_string_to_metric_families

from switchman.sim.runner import RunningSim, start
from switchman.sim.settings import SimSettings

REQUESTS = 60


@pytest.fixture
async def sim() -> AsyncIterator[RunningSim]:
    async with await start(
        SimSettings(model="tiny", ttft_s=0.0, itl_s=0.0, output_tokens=3)
    ) as running:
        yield running


def _write_config(tmp_path: Path, sim: RunningSim) -> Path:
    config = tmp_path / "gateway.json"
    config.write_text(
        json.dumps(
            {
                "version": 1,
                "upstreams": [{"name": "sim", "base_url": f"{sim.url}/v1"}],
                "models": [{"name": "tiny", "upstream": "sim"}],
                "routes": [{"name": "auto", "candidates": ["tiny"]}],
            }
        )
    )
    return config


async def _send(base: str, count: int) -> None:
    """``count`` chat requests, each on a new connection so that both workers get some."""
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.post(f"{base}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200, await resp.text()
                await resp.read()

        for _ in range(count // 6):
            await asyncio.gather(*(one() for _ in range(6)))


def _requests_by_worker(text: str) -> dict[str, float]:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    by_worker: dict[str, float] = {}
    for sample in families["switchman_requests"].samples:
        worker = sample.labels["worker"]
        by_worker[worker] = by_worker.get(worker, 0.0) + sample.value
    return by_worker


async def _both_listening(base: str) -> None:
    """Wait until a scrape shows both workers (the second may still be starting)."""
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            async with session.get(f"{base}/metrics") as resp:
                if 'worker="1"' in (text := await resp.text()) and 'worker="0"' in text:
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("the second worker never answered")


def _alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


async def test_two_workers_both_serve_and_metrics_read_as_one_pod(
    tmp_path: Path, sim: RunningSim
) -> None:
    config = _write_config(tmp_path, sim)
    port = processes.free_port()
    base = f"http://127.0.0.1:{port}"
    async with processes.gateway(
        config, port, "--workers", "2", "--access-log", "off", stderr=processes.PIPE, grace=20
    ) as proc:
        await processes.wait_http(f"{base}/readyz", proc=proc, deadline=60)
        workers = _children(proc.pid)
        assert len(workers) == 2
        await _both_listening(base)
        await _send(base, REQUESTS)
        scrapes = []
        connector = aiohttp.TCPConnector(force_close=True)  # each scrape may hit either worker
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(6):
                async with session.get(f"{base}/metrics") as resp:
                    assert resp.status == 200
                    scrapes.append(await resp.text())
            async with session.get(f"{base}/debug/decisions?limit=1000") as resp:
                decisions = (await resp.json())["data"]
        for text in scrapes:
            by_worker = _requests_by_worker(text)
            assert set(by_worker) == {"0", "1"}, by_worker  # both workers served traffic
            assert all(count > 0 for count in by_worker.values()), by_worker
            assert sum(by_worker.values()) == REQUESTS  # the pod's total, whoever answered
            assert text.count("# TYPE switchman_requests_total counter") == 1
        assert len(decisions) == REQUESTS
        assert {entry["worker"] for entry in decisions} == {0, 1}
        times = [entry["time"] for entry in decisions]
        assert times == sorted(times, reverse=True)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert not [pid for pid in workers if _alive(pid)]


async def test_ctrl_c_to_the_group_reaches_each_worker_once_and_they_drain(
    tmp_path: Path, slow_sim: RunningSim
) -> None:
    config = _write_config(tmp_path, slow_sim)
    port = processes.free_port()
    base = f"http://127.0.0.1:{port}"
    async with processes.gateway(
        config,
        port,
        *("--workers", "2", "--access-log", "off", "--shutdown-grace", "30"),
        stderr=processes.PIPE,
        grace=20,
        own_group=True,  # as a shell runs it in a terminal
    ) as proc:
        await processes.wait_http(f"{base}/readyz", proc=proc, deadline=60)
        await _both_listening(base)
        workers = _children(proc.pid)
        async with openai.AsyncOpenAI(
            base_url=f"{base}/v1", api_key="unused", max_retries=0
        ) as client:
            stream = await client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            pieces: list[str] = []
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == 2:
                    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: every process of the group
        assert len(pieces) == 40  # drained, not cut off by a second SIGINT
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert not [pid for pid in workers if _alive(pid)]


async def test_a_killed_worker_is_started_again(tmp_path: Path, sim: RunningSim) -> None:
    config = _write_config(tmp_path, sim)
    port = processes.free_port()
    base = f"http://127.0.0.1:{port}"
    async with processes.gateway(
        config, port, "--workers", "2", "--access-log", "off", stderr=processes.PIPE, grace=20
    ) as proc:
        await processes.wait_http(f"{base}/readyz", proc=proc, deadline=60)
        await _both_listening(base)
        before = _children(proc.pid)
        os.kill(before[0], signal.SIGKILL)
        for _ in range(300):
            now = _children(proc.pid)
            if len(now) == 2 and before[0] not in now:
                break
            await asyncio.sleep(0.1)
        else:
            left = _children(proc.pid)
            raise AssertionError(f"no worker started in place of {before[0]}: {left}")
        await _both_listening(base)
        await _send(base, REQUESTS)
        async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
            by_worker = _requests_by_worker(await resp.text())
        assert set(by_worker) == {"0", "1"}
        assert sum(by_worker.values()) == REQUESTS  # the killed worker's counts went with it
        assert proc.returncode is None
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert proc.stderr is not None
    assert "starting it again" in (await proc.stderr.read()).decode()


async def test_a_worker_that_cannot_bind_stops_the_gateway(tmp_path: Path, sim: RunningSim) -> None:
    config = _write_config(tmp_path, sim)
    with socket.socket() as held:  # no SO_REUSEPORT: the workers cannot share it
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        async with processes.gateway(
            config, port, "--workers", "2", stderr=processes.PIPE, grace=10
        ) as proc:
            _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    text = stderr.decode()
    assert "cannot listen" in text
    assert "failed to start" in text
    assert "Traceback" not in text
