"""Fake upstream APIs for the integration tier: small aiohttp servers that record every request
and answer the way the real OpenAI, Azure OpenAI and Anthropic APIs do.

Used by ``test_gateway_providers`` and ``test_gateway_errors``: a test starts one ``FakeUpstream``
per upstream with a ``Reply`` (how it answers), points the gateway's config at ``fake.url`` and
afterwards reads ``fake.seen`` (method, path, query, headers, JSON body of each request) and
``fake.disconnected`` (set when the gateway hung up while the reply was still being written).

Canned answers are checked against the ``openai`` and ``anthropic`` SDKs' own response types
when they are built, so a fake cannot drift from the real wire format without a test failing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import anthropic.types
import openai.types
import openai.types.chat
import pydantic
from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass(frozen=True)
class Seen:
    """One request as the upstream received it; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


Reply = Callable[[Seen, web.Request], Awaitable[web.StreamResponse]]
FAKE: web.AppKey[FakeUpstream] = web.AppKey("fake")


class FakeUpstream:
    """One fake API server answering every path with ``reply``."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.seen: list[Seen] = []
        self.disconnected = asyncio.Event()
        self.released = asyncio.Event()  # ends replies that hang, so shutdown never waits
        app = web.Application()
        app[FAKE] = self
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def port(self) -> int:
        assert self._server.port is not None
        return self._server.port

    @property
    def last(self) -> Seen:
        assert self.seen, "the upstream received no request"
        return self.seen[-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self.seen.append(
            Seen(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
        )
        try:
            return await self.reply(self.seen[-1], request)
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnected.set()
            raise

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        self.released.set()
        await self._server.close()


@asynccontextmanager
async def fake_upstreams() -> AsyncIterator[Callable[[Reply], Awaitable[FakeUpstream]]]:
    """Yields ``start(reply) -> FakeUpstream``; closes every fake on exit."""
    started: list[FakeUpstream] = []

    async def start(reply: Reply) -> FakeUpstream:
        fake = FakeUpstream(reply)
        await fake.start()
        started.append(fake)
        return fake

    try:
        yield start
    finally:
        for fake in started:
            await fake.close()


def _validated(model: type[pydantic.BaseModel], payload: dict[str, Any]) -> dict[str, Any]:
    model.model_validate(payload)
    return payload


# --- OpenAI (and Azure OpenAI, which speaks the same bodies) ------------------------------------

CREATED = 1_700_000_000


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def chat_completion(
    model: str, content: str | None, *, tool_calls: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return _validated(
        openai.types.chat.ChatCompletion,
        {
            "id": "chatcmpl-fake1",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": _usage(12, 5),
            "system_fingerprint": "fp_fake",
        },
    )


def openai_chat(content: str = "Hello from upstream") -> Reply:
    """A whole ``chat.completion`` naming the model the request asked for."""

    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        return web.json_response(chat_completion(seen.body["model"], content))

    return reply


def openai_completion(text: str = " upon a time") -> Reply:
    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        payload = {
            "id": "cmpl-fake1",
            "object": "text_completion",
            "created": CREATED,
            "model": seen.body["model"],
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
            "usage": _usage(4, 4),
        }
        return web.json_response(_validated(openai.types.Completion, payload))

    return reply


EMBEDDING = (0.25, -0.5, 1.0)


def openai_embedding() -> Reply:
    """One embedding per input, float or base64 (float32 little-endian) as requested."""

    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        inputs = seen.body["input"]
        count = len(inputs) if isinstance(inputs, list) else 1
        vector: Any = list(EMBEDDING)
        if seen.body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(EMBEDDING)}f", *EMBEDDING)).decode()
        payload = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": vector} for i in range(count)
            ],
            "model": seen.body["model"],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
        if not isinstance(vector, str):
            _validated(openai.types.CreateEmbeddingResponse, payload)
        return web.json_response(payload)

    return reply


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        return web.json_response(body, status=status, headers=headers)

    return reply


def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return _validated(
        openai.types.chat.ChatCompletionChunk,
        {
            "id": "chatcmpl-fake1",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        },
    )


def _sse(data: dict[str, Any] | str, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


Ending = Literal["done", "eof", "reset", "stall"]


async def _start_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    return response


async def _end(
    request: web.Request, response: web.StreamResponse, ending: Ending
) -> web.StreamResponse:
    if ending == "reset":
        assert request.transport is not None
        request.transport.close()  # a crashed server: no final chunk, the socket just closes
    elif ending == "stall":
        await request.app[FAKE].released.wait()
    else:
        await response.write_eof()
    return response


def openai_stream(
    texts: Sequence[str] = ("Hel", "lo", "!"),
    *,
    ending: Ending = "done",
    delay: float = 0.0,
) -> Reply:
    """OpenAI's chunk sequence: a role chunk, one chunk per text, then (``ending="done"``) the
    finish chunk, the usage-only chunk when ``stream_options.include_usage`` was asked, and
    ``[DONE]``. Other endings break off after the texts: ``eof`` ends the HTTP body cleanly,
    ``reset`` drops the connection, ``stall`` goes silent until the caller hangs up.
    """

    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        model = seen.body["model"]
        # With include_usage, OpenAI puts "usage": null on every chunk and adds a last,
        # choice-less chunk carrying the totals.
        with_usage = bool((seen.body.get("stream_options") or {}).get("include_usage"))
        extra = {"usage": None} if with_usage else {}
        response = await _start_sse(request)
        events = [chunk(model, {"role": "assistant", "content": "", "refusal": None})]
        events += [chunk(model, {"content": text}) for text in texts]
        for event in events:
            await response.write(_sse({**event, **extra}))
            if delay:
                await asyncio.sleep(delay)
        if ending != "done":
            return await _end(request, response, ending)
        await response.write(_sse({**chunk(model, {}, "stop"), **extra}))
        if with_usage:
            usage = {**chunk(model, {}), "choices": [], "usage": _usage(9, len(texts))}
            await response.write(_sse(_validated(openai.types.chat.ChatCompletionChunk, usage)))
        await response.write(_sse("[DONE]"))
        await response.write_eof()
        return response

    return reply


def dies_before_first_chunk() -> Reply:
    """Sends 200 and the stream headers, then drops the connection without a single event."""

    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        response = await _start_sse(request)
        assert request.transport is not None
        request.transport.close()
        return response

    return reply


def hangs() -> Reply:
    """Never answers (until the caller hangs up or the fake is closed)."""

    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        await request.app[FAKE].released.wait()
        return web.json_response({})

    return reply


# --- Anthropic Messages -----------------------------------------------------------------------

_MESSAGE = pydantic.TypeAdapter(anthropic.types.Message)
_STREAM_EVENT = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)


def anthropic_message(model: str) -> dict[str, Any]:
    """A real-shaped Message with a text block and a tool_use block."""
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "text", "text": "I'll look up the weather."},
            {
                "type": "tool_use",
                "id": "toolu_01A09q90qw90lq917835lq9",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "celsius"},
            },
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 34},
    }
    _MESSAGE.validate_python(message)
    return message


def anthropic_reply() -> Reply:
    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        return web.json_response(anthropic_message(seen.body["model"]))

    return reply


def anthropic_events(model: str, texts: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """The documented event flow for one text block, with a ping, as (event name, data)."""
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01StreamFake",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 25, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}},
        )
        for t in texts
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 15},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    for name, data in events:
        if name != "ping":  # the SDK drops pings before typing events
            _STREAM_EVENT.validate_python(data)
    return events


def anthropic_stream(texts: Sequence[str] = ("Hello", " there", "!")) -> Reply:
    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        response = await _start_sse(request)
        for name, data in anthropic_events(seen.body["model"], texts):
            await response.write(_sse(data, event=name))
        await response.write_eof()
        return response

    return reply


def anthropic_error(status: int, type_: str, message: str) -> Reply:
    async def reply(seen: Seen, request: web.Request) -> web.StreamResponse:
        body = {
            "type": "error",
            "error": {"type": type_, "message": message},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
        return web.json_response(body, status=status, headers={"request-id": body["request_id"]})

    return reply


_CREATE_PARAMS = pydantic.TypeAdapter(anthropic.types.MessageCreateParams)


def _drain(value: Any) -> Any:
    # pydantic validates Iterable[...] fields lazily: consume them so every item is checked.
    if isinstance(value, dict):
        return {k: _drain(v) for k, v in value.items()}
    if isinstance(value, list | tuple) or hasattr(value, "__next__"):
        return [_drain(v) for v in value]
    return value


def assert_valid_messages_request(body: dict[str, Any]) -> None:
    """Raise unless ``body`` is a request the anthropic SDK's own types accept, field by field."""
    _drain(_CREATE_PARAMS.validate_python(body))
    streaming = anthropic.types.message_create_params.MessageCreateParamsStreaming
    known = streaming.__required_keys__ | streaming.__optional_keys__
    unknown = set(body) - known
    assert not unknown, f"fields the Messages API does not define: {sorted(unknown)}"
