"""Canary secrets: keys planted in the environment and in Secret files never come out anywhere.

A real gateway (``start_gateway``) with every telemetry sink captured: the gateway's log (all
levels), the access log, spans (in-memory exporter, prompt capture on), ``/metrics``,
``/debug/decisions`` (asked with the admin token, itself a canary), ``/readyz`` and
``/v1/models``. Its upstreams are ``misbehaving`` servers that echo the credential they receive
into their error bodies (OpenAI-kind and Anthropic-kind, as a relayed 4xx, a wrapped 5xx,
before a stream starts, and on a passed-through endpoint, ``/v1/moderations``) plus a healthy
one, reached through failover. ``switchman render`` of
example 03 is given the Secrets (canary values inside) along with the custom resources.

Every client body and header, every log line, span attribute, event and status, every endpoint
and the rendered manifests are scanned: 0 occurrences of any canary. The test also checks the
canaries did reach the upstreams (so the scan is not vacuous).
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import aiohttp
import openai
import processes
import pytest
from conftest import StartGateway
from misbehaving import misbehaving, refusal
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from switchman.gateway.telemetry.accesslog import AccessLog
from switchman.gateway.telemetry.tracing import Tracing

ENV_KEY = "sk-canary-env-7f3a9c0b1d2e4f56a8"
FILE_KEY = "sk-ant-canary-file-0a1b2c3d4e5f6071"
ADMIN_TOKEN = "admin-canary-9e8d7c6b5a493827"
CANARIES = (ENV_KEY, FILE_KEY, ADMIN_TOKEN)
HELLO = [{"role": "user", "content": "hi"}]
EXAMPLE = Path(__file__).parents[2] / "examples" / "03-failover-to-external"


def leaks(text: str) -> list[str]:
    return [canary for canary in CANARIES if canary in text]


def spans_text(exporter: InMemorySpanExporter) -> str:
    parts: list[str] = []
    for span in exporter.get_finished_spans():
        parts += [span.name, str(dict(span.attributes or {})), str(span.status.description)]
        parts += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    return "\n".join(parts)


async def exchange(api: openai.AsyncOpenAI, model: str, *, stream: bool) -> str:
    """Everything the client can see of one request: status, headers, body or stream."""
    try:
        if stream:
            response = await api.chat.completions.with_raw_response.create(
                model=model, messages=HELLO, stream=True
            )
            text = str(dict(response.headers))
            async for chunk in response.parse():
                text += chunk.model_dump_json()
            return text
        raw = await api.chat.completions.with_raw_response.create(model=model, messages=HELLO)
        return f"{raw.status_code} {dict(raw.headers)} {raw.text}"
    except openai.APIStatusError as exc:
        return f"{exc.status_code} {dict(exc.response.headers)} {exc.response.text}"
    except openai.APIError as exc:
        return f"{exc.message} {exc.body}"


async def test_no_canary_leaves_the_gateway(
    start_gateway: StartGateway,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = tmp_path / "anthropic-api-key"
    secret.write_text(FILE_KEY + "\n")
    admin = tmp_path / "admin-token"
    admin.write_text(ADMIN_TOKEN + "\n")
    exporter = InMemorySpanExporter()
    tracing = Tracing.with_processor(SimpleSpanProcessor(exporter), {}, capture_content=True)
    access = io.BytesIO()
    leaky_error = refusal(500, "Internal error")[1]
    denied = refusal(401, "invalid x-api-key")[1]
    async with (
        misbehaving(status=500, error=leaky_error, echo_credential=True) as openai_leaky,
        misbehaving(status=401, error=denied, echo_credential=True) as anthropic_leaky,
        misbehaving(status=401, error=denied, echo_credential=True) as moderation_leaky,
        misbehaving(tokens=4) as good,
    ):
        config: dict[str, Any] = {
            "version": 1,
            "server": {"admin_token": {"file": str(admin)}},
            "upstreams": [
                {"name": "oa", "base_url": openai_leaky.base_url, "api_key": {"env": "OA_KEY"}},
                {
                    "name": "an",
                    "kind": "anthropic",
                    "base_url": anthropic_leaky.url,
                    "api_key": {"file": str(secret)},
                },
                {"name": "good", "base_url": good.base_url, "api_key": {"env": "OA_KEY"}},
                {
                    "name": "mod",
                    "base_url": moderation_leaky.base_url,
                    "api_key": {"env": "OA_KEY"},
                },
            ],
            "models": [
                {"name": "oa-model", "upstream": "oa"},
                {"name": "an-model", "upstream": "an"},
                {"name": "good-model", "upstream": "good"},
                {
                    "name": "mod-model",
                    "upstream": "mod",
                    "capabilities": {"endpoints": ["moderations"]},
                },
            ],
            "routes": [
                {"name": "auto", "candidates": ["oa-model", "an-model", "good-model"]},
                {"name": "only-oa", "candidates": ["oa-model"]},
                {"name": "only-an", "candidates": ["an-model"]},
            ],
        }
        gateway = await start_gateway(
            config,
            environ={"OA_KEY": ENV_KEY},
            tracing=tracing,
            access_log=AccessLog("json", stream=access),
        )
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key="client", max_retries=0
        ) as api:
            seen = [
                await exchange(api, model, stream=stream)
                for model in ("auto", "only-oa", "only-an")
                for stream in (False, True)
            ]
        async with aiohttp.ClientSession() as http:
            moderation = {"model": "mod-model", "input": "hello"}
            async with http.post(f"{gateway.base_url}/moderations", json=moderation) as resp:
                seen.append(f"moderations {resp.status} {dict(resp.headers)} {await resp.text()}")
                assert resp.status == 401
            for path in ("/metrics", "/readyz", "/v1/models", "/debug/decisions?limit=100"):
                headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                async with http.get(gateway.url + path, headers=headers) as resp:
                    seen.append(f"{path} {resp.status} {dict(resp.headers)} {await resp.text()}")

        # The scan is not vacuous: the keys reached the upstreams, which echoed them.
        assert openai_leaky.seen[0].headers["authorization"] == f"Bearer {ENV_KEY}"
        assert anthropic_leaky.seen[0].headers["x-api-key"] == FILE_KEY
        assert moderation_leaky.seen[0].headers["authorization"] == f"Bearer {ENV_KEY}"
        assert any("[redacted]" in text for text in seen)

    access_log = access.getvalue().decode()
    assert access_log  # requests were logged
    captured = capsys.readouterr()
    assert leaks("\n".join(seen)) == []
    assert leaks(caplog.text) == []
    assert leaks(access_log) == []
    assert leaks(spans_text(exporter)) == []
    assert leaks(captured.out + captured.err) == []


async def test_rendered_manifests_never_carry_secret_values(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(
        "\n---\n".join(
            f"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\n"
            f"type: Opaque\nstringData: {{api-key: {value}}}\n"
            for name, value in (("openai-api-key", ENV_KEY), ("anthropic-api-key", FILE_KEY))
        )
    )
    async with processes.switchman(
        "render",
        "-f",
        str(secrets),
        "-f",
        str(EXAMPLE),
        stdout=processes.PIPE,
        stderr=processes.PIPE,
    ) as proc:
        out, err = await proc.communicate()

    assert proc.returncode == 0, err.decode()
    assert "kind: ConfigMap" in out.decode()
    assert "api_key" in out.decode()  # the reference is rendered ...
    assert leaks(out.decode() + err.decode()) == []  # ... never the value
