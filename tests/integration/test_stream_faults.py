"""Streams through misbehaving upstreams: a complete, non-duplicated answer or one clean error.

A real gateway (``start_gateway``) in front of two ``misbehaving`` servers (not the simulator):
``primary`` (first candidate, breaks the way a test says) and ``fallback``. Clients are the
official ``openai`` SDK consuming the stream, and a raw reader where a test must see every byte.
The answer is ``misbehaving.answer_text(60)`` (60 words, one token each).

- A cut after 40 of 60 words continued on a fallback that ignores the ``instruct`` request and
  restarts: the client gets the 60 words once and usage of 60 completion tokens (the repeat is
  trimmed at the join); the same for a stall; the same when the fallback is asked by ``prefill``
  first, refuses it with a 400 and is then asked by ``instruct`` (an OpenAI-compatible fallback
  and an Anthropic one, which the gateway speaks Messages to); a restart that goes another way
  cannot be joined: one clean ``APIError``, never a corrupt success.
- The continuation target answering 404 / 401 / a content-filter 400 / a prefill-refusal 400
  after the 200 stream started: the body stays one well-formed SSE stream (no second HTTP
  response inside it), ending with one error event naming the original break, not the 4xx.
- A complete stream without ``data: [DONE]`` (finish reason and usage, then EOF): a clean end
  with ``[DONE]`` synthesized, no second attempt, and the primary keeps serving.
- An in-band ``data: {"error": ...}`` event or a malformed chunk mid-stream: never relayed; the
  stream is continued on the fallback and the client gets the whole answer. The same when the
  fault arrives in one read with the whole events before it (decoded as one block).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import misbehaving
import openai
import pytest
from misbehaving import Misbehaving

WORDS = 60
ANSWER = misbehaving.answer_text(WORDS)
TIMEOUTS = {"connect_s": 1.0, "first_byte_s": 2.0, "idle_s": 0.5, "total_s": 10.0}


def config(primary: Misbehaving, fallback: Misbehaving, **fallback_spec: Any) -> dict[str, Any]:
    return {
        "version": 1,
        "upstreams": [
            {
                "name": "primary",
                "base_url": primary.base_url,
                "timeouts": TIMEOUTS,
                "circuit_breaker": {"enabled": False},
            },
            {
                "name": "fallback",
                "base_url": fallback.base_url,
                "timeouts": TIMEOUTS,
                **fallback_spec,
            },
        ],
        "models": [
            {"name": "primary", "upstream": "primary", "upstream_model": "m"},
            {"name": "fallback", "upstream": "fallback", "upstream_model": "m"},
        ],
        "routes": [
            {"name": "chat", "candidates": ["primary", "fallback"], "mid_stream": "continue"}
        ],
    }


@asynccontextmanager
async def pair(
    primary: dict[str, Any], fallback: dict[str, Any]
) -> AsyncIterator[tuple[Misbehaving, Misbehaving]]:
    async with (
        misbehaving.misbehaving(tokens=WORDS, **primary) as first,
        misbehaving.misbehaving(tokens=WORDS, **fallback) as second,
    ):
        yield first, second


def sdk(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="sk-client", max_retries=0, timeout=20)


async def sdk_stream(base_url: str) -> tuple[str, dict[str, Any] | None]:
    """The SDK consuming a stream with usage: (text, usage); raises what the SDK raises."""
    async with sdk(base_url) as client:
        stream = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "count"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
        return text, usage


async def raw_stream(url: str) -> tuple[int, bytes, dict[str, str]]:
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": "count"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
        http.post(url + "/v1/chat/completions", json=body) as response,
    ):
        return response.status, await response.read(), dict(response.headers)


def events(body: bytes) -> list[Any]:
    """Every ``data:`` line as JSON (``[DONE]`` as a string); fails on anything else."""
    out: list[Any] = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), f"not an SSE data event: {block[:80]!r}"
        data = block.removeprefix("data: ")
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


# --- 1. duplicated text presented as success ----------------------------------------------------


@pytest.mark.parametrize(
    ("primary", "fallback", "fallback_spec"),
    [
        pytest.param({"cut_after": 40}, {"on_continue": "restart"}, {}, id="cut-restart"),
        pytest.param({"stall_after": 40}, {"on_continue": "restart"}, {}, id="stall-restart"),
        pytest.param(
            {"cut_after": 40},
            {"on_continue": "restart", "rejects": frozenset({"prefill"})},
            {"continuation": "prefill"},
            id="prefill-refused-then-instruct-restart",
        ),
    ],
)
async def test_a_restarted_continuation_is_trimmed_to_one_whole_answer(
    start_gateway: Any, primary: dict[str, Any], fallback: dict[str, Any], fallback_spec: Any
) -> None:
    async with pair(primary, fallback) as (first, second):
        gateway = await start_gateway(config(first, second, **fallback_spec))
        text, usage = await sdk_stream(gateway.base_url)

    assert text == ANSWER
    assert usage is not None
    assert usage["completion_tokens"] == WORDS
    mechanisms = [s.mechanism for s in second.seen]
    assert mechanisms[-1] == "instruct"
    if fallback_spec:
        assert mechanisms == ["prefill", "instruct"]  # the refused mechanism, then the next


async def test_an_anthropic_fallback_refusing_prefill_is_asked_by_instruct(
    start_gateway: Any,
) -> None:
    fallback = {"on_continue": "restart", "rejects": frozenset({"prefill"})}
    async with pair({"cut_after": 40}, fallback) as (first, second):
        document = config(first, second)
        document["upstreams"][1].update(
            kind="anthropic", base_url=second.url, api_key={"env": "ANTHROPIC_KEY"}
        )
        gateway = await start_gateway(document, environ={"ANTHROPIC_KEY": "sk-ant-fake"})
        text, usage = await sdk_stream(gateway.base_url)

    assert text == ANSWER
    assert usage is not None
    assert usage["completion_tokens"] == WORDS
    assert [s.path for s in second.seen] == ["/v1/messages"] * 2
    assert [s.mechanism for s in second.seen] == ["prefill", "instruct"]


async def test_a_restart_that_goes_another_way_ends_with_one_clean_error(
    start_gateway: Any,
) -> None:
    async with pair({"cut_after": 40}, {"on_continue": "diverge"}) as (first, second):
        gateway = await start_gateway(config(first, second))
        status, body, _ = await raw_stream(gateway.url)
        with pytest.raises(openai.APIError, match="restarted the answer differently"):
            await sdk_stream(gateway.base_url)

    assert status == 200
    got = events(body)
    assert "[DONE]" not in got
    errors = [e for e in got if isinstance(e, dict) and "error" in e]
    assert errors == [got[-1]]
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in got[:-1] if c.get("choices")
    )
    assert ANSWER.startswith(text)  # what was sent is a true prefix: nothing duplicated


# --- 2. a continuation target's 4xx inside a committed stream -----------------------------------


@pytest.mark.parametrize(
    "refusal",
    [
        pytest.param(misbehaving.MODEL_NOT_FOUND, id="404"),
        pytest.param(misbehaving.UNAUTHORIZED, id="401"),
        pytest.param(misbehaving.CONTENT_FILTER, id="content-filter-400"),
        pytest.param(misbehaving.PREFILL_REFUSAL, id="prefill-400"),
    ],
)
async def test_a_refused_continuation_ends_the_stream_with_the_original_failure(
    start_gateway: Any, refusal: tuple[int, dict[str, Any]]
) -> None:
    fallback = {"on_continue": "reject", "continue_status": refusal, "echo_credential": True}
    async with pair({"cut_after": 40}, fallback) as (first, second):
        gateway = await start_gateway(config(first, second))
        status, body, _ = await raw_stream(gateway.url)
        with pytest.raises(openai.APIError) as caught:
            await sdk_stream(gateway.base_url)

    assert status == 200
    assert b"HTTP/1.1" not in body
    got = events(body)  # one well-formed SSE stream throughout
    assert [e for e in got if isinstance(e, dict) and "error" in e] == [got[-1]]
    message = got[-1]["error"]["message"]
    assert "primary" in message
    assert "broke off" in message  # the break, not the refusal
    assert refusal[1]["error"]["message"] not in message
    assert "broke off" in str(caught.value)
    assert b"credential" not in body


# --- 3. a complete stream without [DONE] --------------------------------------------------------


async def test_eof_after_the_finish_reason_is_a_clean_end(start_gateway: Any) -> None:
    async with pair({"no_done": True}, {}) as (first, second):
        gateway = await start_gateway(config(first, second))
        status, body, headers = await raw_stream(gateway.url)
        text, usage = await sdk_stream(gateway.base_url)
        _, _, again = await raw_stream(gateway.url)

    assert status == 200
    got = events(body)
    assert got[-1] == "[DONE]"
    assert got.count("[DONE]") == 1
    assert not [e for e in got if isinstance(e, dict) and "error" in e]
    assert text == ANSWER
    assert usage is not None
    assert usage["completion_tokens"] == WORDS
    assert second.seen == []  # no phantom attempts
    assert len(first.seen) == 3
    assert headers["x-switchman-attempts"] == "1"
    assert again["x-switchman-model"] == "primary"  # not cooled down


# --- 4. in-band error events and malformed chunks ------------------------------------------------


@pytest.mark.parametrize(
    "primary",
    [
        # A short delay between chunks: the client sees the first words before the fault.
        pytest.param({"error_event_after": 20, "delay": 0.005}, id="in-band-error-event"),
        pytest.param({"malformed_after": 20, "delay": 0.005}, id="malformed-chunk"),
    ],
)
async def test_a_broken_chunk_is_never_relayed_and_the_stream_is_continued(
    start_gateway: Any, primary: dict[str, Any]
) -> None:
    async with pair(primary, {}) as (first, second):
        gateway = await start_gateway(config(first, second))
        status, body, _ = await raw_stream(gateway.url)
        text, usage = await sdk_stream(gateway.base_url)

    assert status == 200
    got = events(body)  # every event whole JSON: the malformed one never reached the client
    assert not [e for e in got if isinstance(e, dict) and "error" in e]
    assert got[-1] == "[DONE]"
    assert text == ANSWER
    assert usage is not None
    assert usage["completion_tokens"] == WORDS
    assert [s.mechanism for s in second.seen] == ["instruct", "instruct"]


@pytest.mark.parametrize(
    "primary",
    [
        # No delay: the events before the fault arrive with it in one read, decoded as one block.
        pytest.param({"error_event_after": 20}, id="in-band-error-event-in-a-burst"),
        pytest.param({"malformed_after": 20}, id="malformed-chunk-in-a-burst"),
    ],
)
async def test_a_broken_chunk_among_whole_events_in_one_read_is_never_relayed(
    start_gateway: Any, primary: dict[str, Any]
) -> None:
    async with pair(primary, {}) as (first, second):
        gateway = await start_gateway(config(first, second))
        status, body, _ = await raw_stream(gateway.url)
        text, usage = await sdk_stream(gateway.base_url)

    assert status == 200
    assert b"oops" not in body
    assert b"generation failed" not in body
    got = events(body)  # every event whole JSON, the words once: a fresh answer or a joined one
    assert not [e for e in got if isinstance(e, dict) and "error" in e]
    assert got[-1] == "[DONE]"
    assert text == ANSWER
    assert usage is not None
    assert usage["completion_tokens"] == WORDS
    assert len(second.seen) == 2  # each of the two requests finished on the fallback
