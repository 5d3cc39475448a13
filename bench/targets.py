"""The servers ``bench.compare`` puts side by side, each configured as it runs in production.

- ``direct``: the fake upstream itself (``bench.fake_upstream``, nginx), the floor.
- ``relay``: ``bench.relay_baseline``, a minimal aiohttp relay (one process per answer shape).
- ``litellm-1`` / ``litellm-N``: LiteLLM proxy at the version ``bench/setup.sh`` pins, in its
  own virtualenv (``.venv-litellm``), configured per its production best practices (master
  key, ``set_verbose`` off, JSON logs at ERROR, no database: none is needed to proxy), two
  deployments per model name (its load balancing), 1 and N uvicorn workers.
- ``switchman-1`` / ``switchman-N``: ``switchman gateway`` with what a production config turns
  on: a two-candidate least-loaded route per model name, metrics, the JSON access log (stdout,
  into a file), OTLP/HTTP tracing sampled at 10% into a local collector (``bench.collector``),
  tenancy (a client key, request and token rate limits and a daily budget shared through Redis:
  every request is authenticated, admitted and billed); 1 and N workers.

Each target answers ``url(kind)`` for ``kind`` ``chat`` (model ``m``) or ``chat-stream``
(model ``m-stream``); every proxy reaches two upstream ports per model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from switchman.gateway.tenancy.keys import hash_key, new_key

ROOT = Path(__file__).resolve().parent.parent
LITELLM_VENV = ROOT / ".venv-litellm"
MASTER_KEY = "sk-bench-0123456789"


@dataclass
class Target:
    """One server under test: how to start it and where to send each kind of request."""

    name: str
    ports: dict[str, int]  # kind -> port
    commands: list[list[str]]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    stdout: Path | None = None
    cwd: Path | None = None  # LiteLLM's spawned workers must not see the repo's operator/
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    # Which started process serves each kind (relays are one per kind).
    serving: dict[str, int] = field(default_factory=dict)

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.ports[kind]}/v1/chat/completions"

    def start(self) -> None:
        out = open(self.stdout, "ab") if self.stdout else subprocess.DEVNULL  # noqa: SIM115
        for command in self.commands:
            self.processes.append(
                subprocess.Popen(
                    command,
                    env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                    stdout=out,
                    stderr=subprocess.STDOUT if self.stdout else None,
                    start_new_session=True,
                    cwd=self.cwd,
                )
            )

    def pid(self, kind: str) -> int:
        return self.processes[self.serving.get(kind, 0)].pid

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def switchman_config(
    json_ports: list[int], sse_ports: list[int], tenancy: dict[str, Any] | None = None
) -> dict[str, object]:
    """Two upstreams per answer shape, a model on each, a two-candidate route per shape, and
    ``tenancy`` (``tenancy_block``) when given."""
    upstreams, models = [], []
    for shape, ports in (("a", json_ports), ("b", sse_ports)):
        for index, port in enumerate(ports):
            upstreams.append(
                {"name": f"u{shape}{index}", "base_url": f"http://127.0.0.1:{port}/v1"}
            )
            models.append(
                {
                    "name": f"m{shape}{index}",
                    "upstream": f"u{shape}{index}",
                    "upstream_model": "m",
                    "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
                }
            )
    routes = [
        {"name": "m", "candidates": ["ma0", "ma1"], "strategy": "least-loaded"},
        {"name": "m-stream", "candidates": ["mb0", "mb1"], "strategy": "least-loaded"},
    ]
    config: dict[str, object] = {
        "version": 1,
        "upstreams": upstreams,
        "models": models,
        "routes": routes,
    }
    if tenancy is not None:
        config["tenancy"] = tenancy
    return config


def tenancy_block(workdir: Path, redis_url: str | None) -> tuple[dict[str, Any], str]:
    """A tenancy block as production runs it (a key file, a tenant with request and token
    rate limits and a daily budget, shared through Redis when ``redis_url`` is given), with
    limits far above the load so every request runs every check; and the tenant's key."""
    key = new_key()
    keys = workdir / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "bench", "sha256": hash_key(key)}]}))
    tenant = {
        "name": "bench",
        "limits": {"requests_per_minute": 10**9, "tokens_per_minute": 10**12},
        "daily": {"hard_usd": 10**9, "soft_usd": 10**8},
    }
    block: dict[str, Any] = {"keys_file": str(keys), "tenants": [tenant]}
    if redis_url is not None:
        block["redis"] = {"url": redis_url}
    return block, key


def litellm_config(json_ports: list[int], sse_ports: list[int]) -> str:
    """LiteLLM's proxy config (YAML is a superset of JSON)."""
    models = [
        {
            "model_name": name,
            "litellm_params": {
                "model": "openai/m",
                "api_base": f"http://127.0.0.1:{port}/v1",
                "api_key": "fake-key",
            },
        }
        for name, ports in (("m", json_ports), ("m-stream", sse_ports))
        for port in ports
    ]
    return json.dumps(
        {
            "model_list": models,
            "litellm_settings": {"request_timeout": 600, "set_verbose": False, "json_logs": True},
            "general_settings": {
                "master_key": MASTER_KEY,
                "proxy_batch_write_at": 60,
                "disable_error_logs": True,
            },
        },
        indent=2,
    )


def switchman(
    name: str,
    port: int,
    config: Path,
    workers: int,
    collector: int,
    workdir: Path,
    key: str | None = None,
) -> Target:
    command = [sys.executable, "-m", "switchman.cli.main", "gateway", "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING"]
    command += ["--access-log", "json"]
    if workers > 1:
        command += ["--workers", str(workers)]
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
        "OTEL_SERVICE_NAME": name,
    }
    return Target(
        name,
        {"chat": port, "chat-stream": port},
        [command],
        "/readyz",
        env=env,
        headers={"Authorization": f"Bearer {key}"} if key else {},
        stdout=workdir / f"{name}.access.log",
    )


def litellm(name: str, port: int, config: Path, workers: int, workdir: Path) -> Target:
    command = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", str(workers)]
    env = {"LITELLM_LOG": "ERROR", "JSON_LOGS": "True"}
    return Target(
        name,
        {"chat": port, "chat-stream": port},
        [command],
        "/health/liveliness",
        env=env,
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        stdout=workdir / f"{name}.log",
        cwd=workdir,
    )


def relay(
    json_upstream: int, sse_upstream: int, ports: tuple[int, int], workdir: Path | None = None
) -> Target:
    commands = [
        [sys.executable, "-m", "bench.relay_baseline", f"http://127.0.0.1:{upstream}", str(port)]
        for upstream, port in ((json_upstream, ports[0]), (sse_upstream, ports[1]))
    ]
    return Target(
        "relay",
        {"chat": ports[0], "chat-stream": ports[1]},
        commands,
        "/health",
        stdout=workdir / "relay.log" if workdir else None,
        serving={"chat": 0, "chat-stream": 1},
    )


def redis(port: int, workdir: Path) -> Target:
    """The Redis that tenancy's shared limits and budgets live in (Debian ``redis-server``)."""
    binary = shutil.which("redis-server") or "redis-server"
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    return Target("redis", {"tcp": port}, [command], "tcp")


def litellm_available() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()
