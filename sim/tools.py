"""Forced tool calls and ``POST /tokenize``: what the simulator adds for the inbound-API tests.

A chat request with ``tools`` whose ``tool_choice`` forces a call (``"required"`` or a named
function) is answered with one call, as vLLM's guided decoding answers it: the named function
(or the first tool), ``arguments`` a JSON object with one deterministic value per property of
its schema (strings ``"w0"``, ``"w1"``..., numbers ``1``, booleans ``true``), streamed as three
argument deltas after the chunk that opens the call, ``finish_reason: "tool_calls"``. With
``tool_choice`` ``"auto"`` (or none) the simulated model answers in text, as a model without a
tool parser would. ``POST /tokenize`` counts a chat or completion prompt as vLLM's does
(``{"count", "max_model_len", "tokens"}``), with the simulator's tokenizer. Wired by
``switchman.sim.generation``.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from aiohttp import web

from switchman.sim import payloads
from switchman.sim.params import GenerationParams, chat_params, completion_params
from switchman.sim.state import SimState


def forced(body: dict[str, Any]) -> tuple[str, str] | None:
    """(function name, arguments JSON) when the request forces a tool call, else None."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice in (None, "auto", "none"):
        return None
    functions = [_object(t.get("function")) for t in tools if isinstance(t, dict)]
    functions = [f for f in functions if isinstance(f.get("name"), str)]
    if not functions:
        return None
    wanted: dict[str, Any] = functions[0]
    if isinstance(choice, dict):
        name = _object(choice.get("function")).get("name")
        wanted = next((f for f in functions if f["name"] == name), wanted)
    properties = _object(_object(wanted.get("parameters")).get("properties"))
    arguments = {key: _value(spec, i) for i, (key, spec) in enumerate(properties.items())}
    return wanted["name"], json.dumps(arguments, separators=(",", ":"))


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _value(spec: object, index: int) -> object:
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return f"w{index}"


def _pieces(arguments: str) -> list[str]:
    third = max(len(arguments) // 3, 1)
    return [arguments[:third], arguments[third : 2 * third], arguments[2 * third :]]


async def answer(
    request: web.Request, params: GenerationParams, call: tuple[str, str], model: str, rid: str
) -> web.StreamResponse:
    """The forced call, whole or streamed (usage: the prompt, one token per argument piece)."""
    name, arguments = call
    call_id = "call_" + hashlib.sha256(f"{rid}{name}".encode()).hexdigest()[:24]
    pieces = [p for p in _pieces(arguments) if p]
    usage = payloads.usage(len(params.tokens), len(pieces), 0)
    created = int(time.time())
    if not params.stream:
        body = payloads.chat_completion(rid, created, model, "", "tool_calls", usage)
        message = body["choices"][0]["message"]
        message["content"] = None
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        ]
        return web.json_response(body)
    head = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"

    opening = {"index": 0, "id": call_id, "type": "function"}
    events = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"tool_calls": [{**opening, "function": {"name": name, "arguments": ""}}]}),
        *[chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces],
        chunk({}, "tool_calls"),
    ]
    if params.include_usage:
        events.append(b"data: " + json.dumps({**head, "choices": [], "usage": usage}).encode())
        events[-1] += b"\n\n"
    events.append(payloads.DONE)
    response = web.StreamResponse()
    response.content_type = "text/event-stream"
    await response.prepare(request)
    await response.write(b"".join(events))
    await response.write_eof()
    return response


async def tokenize(request: web.Request, state: SimState) -> web.Response:
    """vLLM's ``POST /tokenize`` for a chat (``messages``) or completion (``prompt``) body."""
    body = await state.recorder.read_json(request)
    params = chat_params(body) if "messages" in body else completion_params(body)
    state.served_model(params.model)
    return web.json_response(
        {
            "count": len(params.tokens),
            "max_model_len": state.settings.max_model_len,
            "tokens": list(range(len(params.tokens))),
            "token_strs": None,
        }
    )
