"""Upstream misbehaviour at the edge: redirects, credential echoes, oversized answers and TLS.

A real gateway (``start_gateway``) in front of ``misbehaving`` servers, driven by the official
``openai`` SDK. Scenario matrix:

- redirects: a 302 or 307 to another origin is never followed (the other origin sees nothing):
  with a second candidate the request fails over to it; alone, it is a 502 that says "redirect".
- credential echo: an upstream error body quoting the request's credential, as a relayed 4xx
  (401, 400), a wrapped 5xx, a 429, and before a stream's first byte -> the client body, headers
  and the gateway's log never contain the key (it reads ``[redacted]``).
- size caps: a non-streamed answer over ``server.edge.max_response_bytes`` fails the attempt
  (failover to a small answer; alone a 502 naming the cap); a stream past
  ``max_stream_bytes`` ends with one error event, never a truncated success.
- a Secret file with an inner newline: that upstream is unusable (``/readyz`` says why, without
  the value) and the route fails over past it instead of answering 500s.
- unknown context windows: a context-length 400 from a model whose window is unset moves on to
  the next model (window unset too), which serves it.
- TLS: an HTTPS upstream signed by a private CA fails verification by default (502) and is
  served once ``tls.ca_file`` names that CA's bundle.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any

import openai
import pytest
import trustme
from conftest import StartGateway
from misbehaving import Misbehaving, misbehaving, refusal

KEY = "sk-canary-0123456789abcdefXYZ"
HELLO = [{"role": "user", "content": "hi"}]


def gateway_config(*upstreams: tuple[str, str, dict[str, Any]], **edge: Any) -> dict[str, Any]:
    """(name, base_url, extra upstream fields) per upstream; route ``auto`` tries them in order."""
    return {
        "version": 1,
        "server": {"edge": edge},
        "upstreams": [
            {"name": name, "base_url": url, "api_key": {"env": "KEY"}, **extra}
            for name, url, extra in upstreams
        ],
        "models": [{"name": name, "upstream": name} for name, _, _ in upstreams],
        "routes": [{"name": "auto", "candidates": [name for name, _, _ in upstreams]}],
    }


def client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="client-key", max_retries=0, timeout=20)


async def ask(api: openai.AsyncOpenAI, *, stream: bool) -> list[str]:
    """The answer's pieces (one for a whole answer, one per content chunk for a stream)."""
    if not stream:
        answer = await api.chat.completions.create(model="auto", messages=HELLO)
        return [answer.choices[0].message.content or ""]
    pieces: list[str] = []
    async for chunk in await api.chat.completions.create(model="auto", messages=HELLO, stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
    return pieces


async def drain(stream: Any, pieces: list[str]) -> None:
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)


def up(name: str, server: Misbehaving, **extra: Any) -> tuple[str, str, dict[str, Any]]:
    return name, server.base_url, extra


@pytest.mark.parametrize("status", [302, 307])
async def test_redirect_is_not_followed_and_the_next_candidate_serves(
    start_gateway: StartGateway, status: int
) -> None:
    async with (
        misbehaving() as elsewhere,
        misbehaving(redirect=(status, "")) as bad,
        misbehaving(tokens=3) as good,
    ):
        bad.behaviour.redirect = (status, f"{elsewhere.base_url}/chat/completions")
        gateway = await start_gateway(
            gateway_config(up("bad", bad), up("good", good)), environ={"KEY": KEY}
        )
        async with client(gateway.base_url) as api:
            raw = await api.chat.completions.with_raw_response.create(model="auto", messages=HELLO)

        assert raw.headers["x-switchman-model"] == "good"
        assert "bad failed: redirect" in raw.headers["x-switchman-route"]
        assert elsewhere.seen == []


async def test_redirect_alone_is_a_502_naming_it(start_gateway: StartGateway) -> None:
    async with misbehaving() as elsewhere, misbehaving(redirect=(302, "")) as bad:
        bad.behaviour.redirect = (302, f"{elsewhere.base_url}/chat/completions")
        gateway = await start_gateway(gateway_config(up("bad", bad)), environ={"KEY": KEY})

        async with client(gateway.base_url) as api:
            with pytest.raises(openai.APIStatusError) as caught:
                await api.chat.completions.create(model="auto", messages=HELLO)

        assert caught.value.status_code == 502
        assert "redirect" in caught.value.message
        assert elsewhere.seen == []


@pytest.mark.parametrize(
    ("status", "stream"),
    [(401, False), (400, False), (500, False), (429, False), (500, True), (401, True)],
)
async def test_echoed_credential_never_reaches_the_client_or_the_log(
    start_gateway: StartGateway, caplog: pytest.LogCaptureFixture, status: int, stream: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    error = refusal(status, "Incorrect API key provided")[1]
    async with misbehaving(status=status, error=error, echo_credential=True) as leaky:
        gateway = await start_gateway(gateway_config(up("leaky", leaky)), environ={"KEY": KEY})
        async with client(gateway.base_url) as api:
            with pytest.raises(openai.APIStatusError) as caught:
                await ask(api, stream=stream)

        assert leaky.seen[0].headers["authorization"] == f"Bearer {KEY}"  # it did get the key
        seen_by_client = caught.value.response.text + str(dict(caught.value.response.headers))
        assert KEY not in seen_by_client
        assert "[redacted]" in seen_by_client
        assert KEY not in caplog.text


async def test_oversized_answer_fails_over_to_a_small_one(start_gateway: StartGateway) -> None:
    async with misbehaving(tokens=3000) as big, misbehaving(tokens=3) as small:
        gateway = await start_gateway(
            gateway_config(up("big", big), up("small", small), max_response_bytes=4096),
            environ={"KEY": KEY},
        )
        async with client(gateway.base_url) as api:
            raw = await api.chat.completions.with_raw_response.create(model="auto", messages=HELLO)

        assert raw.headers["x-switchman-model"] == "small"
        assert "big failed: response_too_large" in raw.headers["x-switchman-route"]


async def test_oversized_answer_alone_is_a_502_naming_the_cap(
    start_gateway: StartGateway,
) -> None:
    async with misbehaving(tokens=3000) as big:
        gateway = await start_gateway(
            gateway_config(up("big", big), max_response_bytes=4096), environ={"KEY": KEY}
        )
        async with client(gateway.base_url) as api:
            with pytest.raises(openai.APIStatusError) as caught:
                await api.chat.completions.create(model="auto", messages=HELLO)

        assert caught.value.status_code == 502
        assert "4096" in caught.value.message


async def test_stream_past_the_byte_cap_ends_with_an_error_event(
    start_gateway: StartGateway,
) -> None:
    async with misbehaving(tokens=3000, delay=0.005) as big:  # chunk by chunk: committed
        gateway = await start_gateway(
            gateway_config(up("big", big), max_stream_bytes=8192), environ={"KEY": KEY}
        )
        pieces: list[str] = []
        async with client(gateway.base_url) as api:
            stream = await api.chat.completions.create(model="auto", messages=HELLO, stream=True)
            with pytest.raises(openai.APIError) as caught:
                await drain(stream, pieces)

        assert "8192" in caught.value.message
        assert pieces  # the client had the start of the answer, then one error event
        assert len("".join(pieces)) < 8192  # never more than the cap


async def test_secret_file_with_an_inner_newline_is_passed_over(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    secret = tmp_path / "api-key"
    secret.write_text(f"{KEY}\nX-Injected: 1\n")
    async with misbehaving(tokens=3) as broken, misbehaving(tokens=3) as good:
        config = gateway_config(
            up("broken", broken, api_key={"file": str(secret)}), up("good", good)
        )
        gateway = await start_gateway(config, environ={"KEY": KEY})
        async with client(gateway.base_url) as api:
            raw = await api.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
        readyz = gateway.watcher.current.upstreams["broken"].problem  # type: ignore[union-attr]

        assert raw.headers["x-switchman-model"] == "good"
        assert broken.seen == []
        assert readyz == (
            f"credential file:{secret} holds whitespace or a control character "
            "(only one trailing newline is allowed)"
        )


async def test_context_error_with_unknown_windows_moves_on(start_gateway: StartGateway) -> None:
    too_long = refusal(400, "maximum context length is 4096 tokens", code="context_length_exceeded")
    async with misbehaving(status=400, error=too_long[1]) as small, misbehaving(tokens=3) as large:
        gateway = await start_gateway(
            gateway_config(up("small", small), up("large", large)), environ={"KEY": KEY}
        )
        async with client(gateway.base_url) as api:
            raw = await api.chat.completions.with_raw_response.create(model="auto", messages=HELLO)

        assert raw.headers["x-switchman-model"] == "large"
        assert "small failed: context_length" in raw.headers["x-switchman-route"]


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_tls_is_verified_by_default(
    start_gateway: StartGateway, private_ca: trustme.CA
) -> None:
    async with misbehaving(tokens=3, ssl_context=server_context(private_ca)) as secure:
        gateway = await start_gateway(gateway_config(up("tls", secure)), environ={"KEY": KEY})

        async with client(gateway.base_url) as api:
            with pytest.raises(openai.APIStatusError) as caught:
                await api.chat.completions.create(model="auto", messages=HELLO)

        assert caught.value.status_code == 502
        assert secure.seen == []


async def test_tls_with_a_custom_ca_bundle_is_served(
    start_gateway: StartGateway, private_ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    private_ca.cert_pem.write_to_path(str(bundle))
    async with misbehaving(tokens=3, ssl_context=server_context(private_ca)) as secure:
        config = gateway_config(up("tls", secure, tls={"ca_file": str(bundle)}))
        gateway = await start_gateway(config, environ={"KEY": KEY})

        async with client(gateway.base_url) as api:
            answer = await api.chat.completions.create(model="auto", messages=HELLO)

        assert answer.choices[0].message.content == "w0 w1."
        assert len(secure.seen) == 1
