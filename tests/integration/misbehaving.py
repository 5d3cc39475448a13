"""Misbehaving upstreams: small aiohttp servers that fail the way real backends do.

Not the simulator (``switchman.sim``), which follows our own contracts: these break them. Used by
the continuation, stream-correctness and chaos tests. A test starts one server per upstream with
``async with misbehaving(**behaviour) as server`` (or ``Misbehaving(Behaviour(...))`` and
``start``/``close``), points the gateway at ``server.base_url`` and afterwards reads
``server.seen`` (every request: body, headers, the continuation mechanism it used) and
``server.disconnects`` (requests whose caller hung up while the answer was being written or
generated; ``server.hung_up`` is set at the first).
``server.behaviour`` may be replaced at any time (a backend that recovers, starts failing, ...).

The answer to a prompt is deterministic: ``answer(n)`` = ``"w0 w1 ... w{n-1}."`` streamed one
word per chunk (a word is one token; usage counts the tokens this request generated), so a test
can compare what a client got with the uncut answer. Both OpenAI chat completions
(``POST .../chat/completions``, whole or streamed, ``include_usage`` honoured) and Anthropic
Messages (``POST .../messages``, whole or streamed) are spoken.

A request continues a partial answer when it says so by one of three mechanisms, detected as:
``vllm`` (``continue_final_message: true``), ``prefill`` (the last message is the assistant's)
or ``instruct`` (an assistant message followed by a user turn asking to go on). What the server
then does is ``Behaviour.on_continue``.

Behaviours (``Behaviour`` fields; any combination):

- ``tokens``: answer length in words; ``delay``: seconds between chunks; ``headers_delay``:
  seconds before the response headers (a long non-streamed generation).
- ``cut_after=N``: close the connection (no final chunk) after N words of a *fresh* request.
- ``stall_after=N``: go silent after N words of a fresh request, until the caller hangs up.
- ``malformed_after=N``: after N words send a chunk that is not JSON, then carry on.
- ``error_event_after=N``: after N words send an in-band ``data: {"error": ...}`` event and end
  the body (as vLLM and several providers do when generation fails mid-way).
- ``no_done=True``: send the finish chunk and usage, then EOF without ``data: [DONE]``.
- ``on_continue``: ``"honour"`` (generate only the rest of the answer), ``"restart"`` (ignore the
  instruction and answer from scratch: the text the client already has comes again),
  ``"diverge"`` (answer from scratch, the same first ``DIVERGE_AT`` words, then other ones) or
  ``"reject"`` (answer ``continue_status`` with ``continue_error``).
- ``rejects``: mechanisms refused with a 400 (``{"prefill"}``: "assistant prefill is not
  supported"; ``{"vllm"}``: unknown parameter ``continue_final_message``), whatever
  ``on_continue`` says.
- ``status`` / ``error``: answer every request with this HTTP status and OpenAI-shaped error.
- ``redirect=(status, location)``: answer 302/307 with ``Location`` (another origin).
- ``echo_credential=True``: error bodies quote the request's credential header (a leaky backend;
  the gateway must never relay it).
- ``ssl_context`` (a ``Misbehaving``/``misbehaving`` argument, not a behaviour): serve HTTPS
  with that server context (``url`` is then ``https://...``).
- ``times=K``: misbehave (cut, stall, malformed, error event, no_done, status, redirect) only on
  the first K fresh requests, then answer well.

Helpers: ``refusal(status, message, code=...)`` builds an OpenAI error body;
``PREFILL_REFUSAL``, ``MODEL_NOT_FOUND``, ``UNAUTHORIZED``, ``CONTENT_FILTER`` are the common
continuation-target rejections.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web
from aiohttp.test_utils import TestServer

Mechanism = Literal["fresh", "vllm", "prefill", "instruct"]
CREATED = 1_700_000_000
DIVERGE_AT = 8  # words a diverging restart shares with the answer


def answer(tokens: int) -> list[str]:
    """The deterministic answer, one list item per streamed word (token)."""
    return [("" if i == 0 else " ") + f"w{i}" for i in range(tokens - 1)] + ["."]


def answer_text(tokens: int) -> str:
    return "".join(answer(tokens))


def refusal(status: int, message: str, *, code: str | None = None, type_: str = "") -> Any:
    """(status, OpenAI-shaped error body)."""
    kind = type_ or ("invalid_request_error" if status < 500 else "server_error")
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


PREFILL_REFUSAL = refusal(400, "This model does not support assistant message prefill.")
VLLM_REFUSAL = refusal(400, "Unrecognized request argument supplied: continue_final_message")
MODEL_NOT_FOUND = refusal(404, "The model does not exist.", code="model_not_found")
UNAUTHORIZED = refusal(401, "Incorrect API key provided.", code="invalid_api_key")
CONTENT_FILTER = refusal(400, "The response was filtered.", code="content_filter")


@dataclass
class Behaviour:
    """How a ``Misbehaving`` server answers; see the module docstring."""

    tokens: int = 60
    delay: float = 0.0
    headers_delay: float = 0.0
    cut_after: int | None = None
    stall_after: int | None = None
    malformed_after: int | None = None
    error_event_after: int | None = None
    no_done: bool = False
    on_continue: Literal["honour", "restart", "diverge", "reject"] = "honour"
    continue_status: tuple[int, dict[str, Any]] = MODEL_NOT_FOUND
    rejects: frozenset[str] = frozenset()
    status: int | None = None
    error: dict[str, Any] = field(
        default_factory=lambda: refusal(503, "The server is overloaded.")[1]
    )
    redirect: tuple[int, str] | None = None
    echo_credential: bool = False
    times: int | None = None


@dataclass(frozen=True)
class Seen:
    """One request as the server received it (header names lower-cased)."""

    path: str
    headers: dict[str, str]
    body: Any
    mechanism: Mechanism
    prefix: str  # the partial answer a continuation carried ("" when fresh)


def mechanism_of(body: dict[str, Any], anthropic: bool) -> tuple[Mechanism, str]:
    """Which continuation mechanism a request uses, and the partial answer it carries."""
    messages = body.get("messages") or []
    if not messages:
        return "fresh", ""
    last = messages[-1]
    if last.get("role") == "assistant":
        kind: Mechanism = "vllm" if body.get("continue_final_message") else "prefill"
        return kind, _text(last.get("content"))
    if len(messages) >= 2 and messages[-2].get("role") == "assistant":
        said = _text(last.get("content")).lower()
        if "continue" in said or "cut off" in said:
            return "instruct", _text(messages[-2].get("content"))
    return "fresh", ""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _remainder(words: list[str], prefix: str) -> list[str]:
    """The words of the answer after ``prefix`` (a prefix ending mid-word leaves the word's rest;
    Anthropic prefills arrive right-stripped); the whole answer when it is not a prefix."""
    full = "".join(words)
    for candidate in (prefix, prefix.rstrip()):
        if candidate and full.startswith(candidate):
            size = 0
            for i, word in enumerate(words):
                if size + len(word) > len(candidate):
                    return [word[len(candidate) - size :], *words[i + 1 :]]
                size += len(word)
            return []
    return words


class Misbehaving:
    """One misbehaving upstream server on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        behaviour: Behaviour | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        port: int | None = None,
    ) -> None:
        self.behaviour = behaviour or Behaviour()
        self._ssl = ssl_context
        self.seen: list[Seen] = []
        self.disconnects = 0
        self.hung_up = asyncio.Event()  # set at the first disconnect (await it with a timeout)
        self.fresh = 0
        self.released = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=port)  # port None: a free one

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI-kind upstream takes (``.../v1``)."""
        return f"{self.url}/v1"

    @property
    def continuations(self) -> list[Seen]:
        return [s for s in self.seen if s.mechanism != "fresh"]

    async def start(self) -> None:
        await self._server.start_server(ssl=self._ssl)

    async def close(self) -> None:
        self.released.set()
        await self._server.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        anthropic = request.path.endswith("/messages")
        mechanism, prefix = mechanism_of(body, anthropic)
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.seen.append(Seen(request.path, headers, body, mechanism, prefix))
        b = self.behaviour
        if mechanism == "fresh":
            self.fresh += 1
            if b.times is not None and self.fresh > b.times:
                b = Behaviour(tokens=b.tokens, delay=b.delay)
        try:
            return await self._answer(request, b, body, mechanism, prefix, anthropic, headers)
        except (asyncio.CancelledError, ConnectionResetError):
            self.disconnects += 1
            self.hung_up.set()
            raise

    async def _answer(
        self,
        request: web.Request,
        b: Behaviour,
        body: dict[str, Any],
        mechanism: Mechanism,
        prefix: str,
        anthropic: bool,
        headers: dict[str, str],
    ) -> web.StreamResponse:
        if b.headers_delay:
            await asyncio.sleep(b.headers_delay)
        if b.redirect is not None:
            status, location = b.redirect
            return web.Response(status=status, headers={"Location": location})
        if mechanism != "fresh":
            refused = self._refusal(b, mechanism)
            if refused is not None:
                return self._error(*refused, headers, echo=b.echo_credential)
        elif b.status is not None:
            return self._error(b.status, b.error, headers, echo=b.echo_credential)
        if mechanism == "fresh" or b.on_continue == "restart":
            words = answer(b.tokens)
        elif b.on_continue == "diverge":
            words = answer(b.tokens)[:DIVERGE_AT] + [f" v{i}" for i in range(DIVERGE_AT, b.tokens)]
        else:
            words = _remainder(answer(b.tokens), prefix)
        if mechanism != "fresh":  # faults are for the first attempt; the continuation is clean
            b = replace(
                b, cut_after=None, stall_after=None, malformed_after=None, error_event_after=None
            )
        model = str(body.get("model", "m"))
        if not body.get("stream"):
            return self._whole(model, words, anthropic, b)
        if anthropic:
            return await self._anthropic_stream(request, model, words, b)
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self._openai_stream(request, model, words, usage, b)

    def _refusal(self, b: Behaviour, mechanism: Mechanism) -> tuple[int, dict[str, Any]] | None:
        if mechanism in b.rejects:
            return PREFILL_REFUSAL if mechanism == "prefill" else VLLM_REFUSAL
        if b.on_continue == "reject":
            return b.continue_status
        return None

    @staticmethod
    def _error(
        status: int, error: dict[str, Any], headers: dict[str, str], *, echo: bool
    ) -> web.Response:
        if echo:
            secret = headers.get("authorization") or headers.get("x-api-key") or ""
            secret = secret or headers.get("api-key", "")
            error = {
                "error": {
                    **error["error"],
                    "message": f"{error['error']['message']} (credential: {secret})",
                }
            }
        return web.json_response(error, status=status)

    @staticmethod
    def _whole(model: str, words: list[str], anthropic: bool, b: Behaviour) -> web.Response:
        text = "".join(words)
        if anthropic:
            return web.json_response(
                {
                    "id": "msg_misbehaving",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn",
                    "stop_sequence": None,
                    "usage": {"input_tokens": 10, "output_tokens": len(words)},
                }
            )
        return web.json_response(
            {
                "id": "chatcmpl-misbehaving",
                "object": "chat.completion",
                "created": CREATED,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": len(words),
                    "total_tokens": 10 + len(words),
                },
            }
        )

    async def _start(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            }
        )
        await response.prepare(request)
        return response

    async def _fault(
        self, request: web.Request, response: web.StreamResponse, b: Behaviour, sent: int
    ) -> bool:
        """Apply the fault due after ``sent`` words; True when the body has ended."""
        if b.malformed_after == sent:
            await response.write(b'data: {"choices": [{"delta": {"content": "oops\n\n')
        if b.error_event_after == sent:
            error = {"error": {"message": "generation failed", "type": "server_error"}}
            await response.write(f"data: {json.dumps(error)}\n\n".encode())
            await response.write_eof()
            return True
        if b.cut_after == sent:
            assert request.transport is not None
            request.transport.close()
            return True
        if b.stall_after == sent:
            await self.released.wait()
            return True
        return False

    async def _openai_stream(
        self, request: web.Request, model: str, words: list[str], usage: bool, b: Behaviour
    ) -> web.StreamResponse:
        response = await self._start(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": "chatcmpl-misbehaving",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if usage:
                data["usage"] = None
            return f"data: {json.dumps(data)}\n\n".encode()

        await response.write(chunk({"role": "assistant", "content": ""}))
        for sent, word in enumerate(words):
            if await self._fault(request, response, b, sent):
                return response
            await response.write(chunk({"content": word}))
            if b.delay:
                await asyncio.sleep(b.delay)
        if await self._fault(request, response, b, len(words)):
            return response
        await response.write(chunk({}, "stop"))
        if usage:
            totals = {
                "id": "chatcmpl-misbehaving",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": 10,
                    "completion_tokens": len(words),
                    "total_tokens": 10 + len(words),
                },
            }
            await response.write(f"data: {json.dumps(totals)}\n\n".encode())
        if not b.no_done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def _anthropic_stream(
        self, request: web.Request, model: str, words: list[str], b: Behaviour
    ) -> web.StreamResponse:
        response = await self._start(request)

        async def event(name: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())

        message = {
            "id": "msg_misbehaving",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 10, "output_tokens": 1},
        }
        await event("message_start", {"type": "message_start", "message": message})
        block = {"type": "text", "text": ""}
        await event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": block},
        )
        for sent, word in enumerate(words):
            if await self._fault(request, response, b, sent):
                return response
            delta = {"type": "text_delta", "text": word}
            await event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            )
            if b.delay:
                await asyncio.sleep(b.delay)
        await event("content_block_stop", {"type": "content_block_stop", "index": 0})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": len(words)},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response


@asynccontextmanager
async def misbehaving(
    *, ssl_context: ssl.SSLContext | None = None, **behaviour: Any
) -> AsyncIterator[Misbehaving]:
    """A started ``Misbehaving`` server with ``Behaviour(**behaviour)``; closed on exit."""
    server = Misbehaving(Behaviour(**behaviour), ssl_context=ssl_context)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
