"""``POST /v1/chat/completions`` and ``POST /v1/completions``, streaming and not.

Each request is parsed and checked (``switchman.sim.params``, ``SimState``), then runs as a
sequence in the engine, which paces its tokens. Streams send vLLM's chunks (role chunk first for
chat, ``finish_reason`` on the last token, an optional usage chunk, ``[DONE]``) and write
several chunks at once whenever no wait separates them, so a zero-latency simulator stays cheap.
Token-position faults (``stall``, ``stall_after_tokens``, ``cut_after_tokens``) are applied here.
A request forcing a tool call, and ``POST /tokenize``, are answered by ``switchman.sim.tools``.
Routes are added by ``switchman.sim.server``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from switchman.sim import payloads, tools
from switchman.sim.engine import Sequence
from switchman.sim.faults import Faults
from switchman.sim.params import (
    GenerationParams,
    answer_length,
    chat_params,
    check_context,
    completion_params,
)
from switchman.sim.state import SimState
from switchman.sim.text import answer_pieces

Parser = Callable[[dict[str, Any]], GenerationParams]
STALL, CUT = "stall", "cut"


def add_routes(app: web.Application, state: SimState) -> None:
    async def chat(request: web.Request) -> web.StreamResponse:
        return await _serve(request, state, chat_params)

    async def completions(request: web.Request) -> web.StreamResponse:
        return await _serve(request, state, completion_params)

    async def tokenize(request: web.Request) -> web.Response:
        return await tools.tokenize(request, state)

    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/tokenize", tokenize)


async def _serve(request: web.Request, state: SimState, parse: Parser) -> web.StreamResponse:
    body = await state.recorder.read_json(request)
    params = parse(body)
    model = state.served_model(params.model)
    state.raise_injected_fault()
    limit = state.context_limit()
    check_context(limit, len(params.tokens), params.max_tokens)
    count, finish = answer_length(params, state.settings.output_tokens, limit)
    prefix = "chatcmpl-" if params.kind == "chat" else "cmpl-"
    response_id = prefix + (request.headers.get("x-request-id") or uuid.uuid4().hex)
    call = tools.forced(body) if params.kind == "chat" else None
    if call is not None:
        return await tools.answer(request, params, call, model, response_id)
    pieces = answer_pieces(params.seed, count, params.partial)
    faults = state.faults.current  # this request keeps the faults in force when it arrived
    sequence = state.engine.sequence(params.tokens, count)
    if params.stream:
        encoder = payloads.StreamEncoder(params.kind, response_id, int(time.time()), model)
        return await _stream(request, state, sequence, encoder, pieces, finish, faults, params)
    async with sequence:
        for position, kind in _fault_events(faults, count):
            await _advance(state, sequence, position)
            if kind == CUT:
                _drop(request)
                return web.Response(status=500)  # never sent: the connection is gone
            await asyncio.sleep(faults.stall_s)
        await _advance(state, sequence, count)
    text = "".join(pieces)
    usage = payloads.usage(sequence.prompt_tokens, count, sequence.cached_tokens)
    build = payloads.chat_completion if params.kind == "chat" else payloads.text_completion
    body = build(response_id, int(time.time()), model, text, finish, usage)
    return web.Response(body=json.dumps(body).encode(), content_type="application/json")


async def _stream(
    request: web.Request,
    state: SimState,
    sequence: Sequence,
    encoder: payloads.StreamEncoder,
    pieces: list[str],
    finish: str,
    faults: Faults,
    params: GenerationParams,
) -> web.StreamResponse:
    response = web.StreamResponse()
    response.content_type = "text/event-stream"
    await response.prepare(request)
    pending: list[bytes] = []
    opened = False  # whether the chat role chunk went out
    count = len(pieces)
    async with sequence:
        for position, kind in [*_fault_events(faults, count), (count, "")]:
            while sequence.generated < position:
                if pending and sequence.delay() > 0:
                    await response.write(b"".join(pending))
                    pending.clear()
                index = sequence.generated
                await sequence.generate()
                if index == 0:
                    _observe_ttft(state, sequence)
                if not opened:
                    pending.append(encoder.first())
                    opened = True
                pending.append(encoder.token(pieces[index], finish if index == count - 1 else None))
            if kind == STALL and not opened:
                pending.append(encoder.first())  # a stall at 0 stops after the first chunk
                opened = True
            if pending:
                await response.write(b"".join(pending))
                pending.clear()
            if kind == CUT:
                _drop(request)
                return response
            if kind == STALL:
                await asyncio.sleep(faults.stall_s)
    if params.include_usage:
        pending.append(encoder.usage(sequence.prompt_tokens, count, sequence.cached_tokens))
    pending.append(payloads.DONE)
    await response.write(b"".join(pending))
    await response.write_eof()
    return response


async def _advance(state: SimState, sequence: Sequence, target: int) -> None:
    """Generate up to ``target`` tokens, a block at a time so the KV cache fills as it goes."""
    block = state.settings.block_size
    while sequence.generated < target:
        first = sequence.generated == 0
        await sequence.generate(min(block, target - sequence.generated))
        if first:
            _observe_ttft(state, sequence)


def _observe_ttft(state: SimState, sequence: Sequence) -> None:
    if sequence.ttft is not None:
        state.metrics.observe_ttft(sequence.ttft)


def _fault_events(faults: Faults, count: int) -> list[tuple[int, str]]:
    """Token positions (reached within the answer) where a stall or a cut happens, in order."""
    events: list[tuple[int, str]] = []
    stall_at = 0 if faults.stall else faults.stall_after_tokens
    if stall_at is not None and stall_at <= count:
        events.append((stall_at, STALL))
    if faults.cut_after_tokens is not None and faults.cut_after_tokens <= count:
        events.append((faults.cut_after_tokens, CUT))
    events.sort()
    return events


def _drop(request: web.Request) -> None:
    """Close the connection after what was written so far: the client sees it cut short."""
    transport = request.transport
    if transport is not None:
        transport.close()
