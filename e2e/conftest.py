"""Fixtures for the e2e tier: one real vLLM OpenAI server per session, the Switchman gateway in
front of it, and OpenAI SDK clients pointed at the gateway.

vLLM lives in a virtualenv of its own (``make vllm-env`` builds it with ``e2e/vllm/setup.sh``,
tiny model included) named by ``SWITCHMAN_VLLM_VENV``; ``make test-e2e`` sets it. Without it the
tests fail and say how to get it: CI must really run this tier. ``SWITCHMAN_SKIP_VLLM=1`` is the
one way to skip it on purpose (e.g. a laptop without 3 GB to spare).

Both servers run as subprocesses in their own process group on free ports of 127.0.0.1, with
their logs in pytest's temporary directory; a server that does not come up fails the session with
the tail of its log. Both start from a scratch directory, not the repository root: the root holds
a package named ``operator`` that would shadow the standard library's for ``python -m``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import yaml
from terminal import free_port, progress, stop_group, tail

VENV_ENV = "SWITCHMAN_VLLM_VENV"
SKIP_ENV = "SWITCHMAN_SKIP_VLLM"
MODEL_DIR = "tiny-llama"  # inside the venv, written by e2e/vllm/setup.sh
SERVED_NAME = "tiny"
MAX_MODEL_LEN = 512
VLLM_START_TIMEOUT = float(os.environ.get("SWITCHMAN_VLLM_START_TIMEOUT", "300"))
GATEWAY_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Server:
    """A subprocess serving HTTP on 127.0.0.1."""

    url: str
    log: Path
    process: subprocess.Popen[bytes]


def _get_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _start(
    name: str,
    argv: list[str],
    env: dict[str, str],
    workdir: Path,
    probe: str,
    timeout: float,
    say: Callable[[str], None],
) -> Server:
    """Start ``argv`` and wait until ``GET probe`` answers 200, or fail with the log's tail."""
    log = workdir / f"{name}.log"
    url = probe.rsplit("/", 1)[0]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(url=url, log=log, process=process)
    started = time.monotonic()
    next_note = started + 10
    while True:
        if _get_status(probe) == 200:
            say(f"e2e: {name} ready at {url} after {time.monotonic() - started:.0f} s")
            return server
        elapsed = time.monotonic() - started
        if process.poll() is not None or elapsed > timeout:
            why = (
                f"exited with code {process.returncode}"
                if process.poll() is not None
                else f"not ready after {timeout:.0f} s"
            )
            _stop(server)
            pytest.fail(
                f"{name} {why}; command: {' '.join(argv)}\nlog {log}, last lines:\n{tail(log)}",
                pytrace=False,
            )
        if time.monotonic() >= next_note:
            say(f"e2e: waiting for {name} ({elapsed:.0f} s, log {log})")
            next_note += 10
        time.sleep(0.25)


def _stop(server: Server, grace: float = 20.0) -> None:
    """Stop the server's whole process group (vLLM forks an engine and a worker)."""
    stop_group(server.process, grace)


@pytest.fixture(scope="session")
def vllm_venv() -> Path:
    """The virtualenv holding vLLM and the tiny model; fail (never silently skip) without it."""
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{SKIP_ENV}=1: the real-vLLM e2e tier is skipped on purpose")
    hint = (
        "run `make vllm-env` (or `make test-e2e`, which sets it), or set "
        f"{SKIP_ENV}=1 to skip this tier on purpose"
    )
    value = os.environ.get(VENV_ENV)
    if not value:
        pytest.fail(f"{VENV_ENV} is not set: {hint}", pytrace=False)
    venv = Path(value)
    missing = [
        p for p in (venv / "bin" / "python", venv / MODEL_DIR / "config.json") if not p.exists()
    ]
    if missing:
        pytest.fail(f"{VENV_ENV}={venv} is incomplete (no {missing[0]}): {hint}", pytrace=False)
    return venv


@pytest.fixture(scope="session")
def vllm(
    vllm_venv: Path, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Server]:
    """One vLLM OpenAI server for the whole session (~30-60 s to start, ~3 GB of RAM)."""
    workdir = tmp_path_factory.mktemp("vllm")
    port = free_port()
    env = {
        **os.environ,
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "HF_HUB_OFFLINE": "1",
        "VLLM_CACHE_ROOT": str(workdir / "cache"),
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    }
    argv = [
        str(vllm_venv / "bin" / "python"),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(vllm_venv / MODEL_DIR),
        "--served-model-name",
        SERVED_NAME,
        "--enforce-eager",
        "--max-model-len",
        str(MAX_MODEL_LEN),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    say = progress(pytestconfig)
    say(f"e2e: starting vLLM on port {port} (30-60 s)")
    server = _start(
        "vllm", argv, env, workdir, f"http://127.0.0.1:{port}/health", VLLM_START_TIMEOUT, say
    )
    yield server
    _stop(server)


def gateway_config(vllm_url: str) -> dict[str, object]:
    """The GatewayConfig (version 1) that puts the tiny vLLM model behind route ``auto``."""
    return {
        "version": 1,
        "upstreams": [{"name": "vllm-tiny", "kind": "openai", "base_url": f"{vllm_url}/v1"}],
        "models": [
            {
                "name": SERVED_NAME,
                "upstream": "vllm-tiny",
                "upstream_model": SERVED_NAME,
                "capabilities": {"context_window": MAX_MODEL_LEN},
            }
        ],
        "routes": [{"name": "auto", "candidates": [SERVED_NAME]}],
    }


@pytest.fixture(scope="session")
def gateway(
    vllm: Server, tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Server]:
    """``switchman gateway`` in front of the vLLM server, ready once ``/readyz`` says 200."""
    workdir = tmp_path_factory.mktemp("gateway")
    config = workdir / "gateway.yaml"
    config.write_text(yaml.safe_dump(gateway_config(vllm.url), sort_keys=False))
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "switchman.cli.main",
        "gateway",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--shutdown-grace",
        "2",
    ]
    server = _start(
        "gateway",
        argv,
        dict(os.environ),
        workdir,
        f"http://127.0.0.1:{port}/readyz",
        GATEWAY_START_TIMEOUT,
        progress(pytestconfig),
    )
    yield server
    _stop(server, grace=10.0)


@pytest.fixture
def client(gateway: Server) -> Iterator[openai.OpenAI]:
    # No SDK retries: a retried request would hide what the gateway answered the first time.
    with openai.OpenAI(
        base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60
    ) as sdk:
        yield sdk


@pytest.fixture
async def async_client(gateway: Server) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0, timeout=60
    ) as sdk:
        yield sdk


@pytest.fixture
def vllm_json(vllm: Server) -> Callable[[str, dict[str, object]], tuple[int, dict[str, object]]]:
    """POST straight to vLLM (bypassing the gateway), for comparing answers."""

    def post(path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(
            f"{vllm.url}/v1{path}",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    return post
