"""``POST /v1/messages/count_tokens``: the input tokens a Messages request would use.

Registered by ``handlers``. The ``model`` is resolved like a request's (a route counts with its
first usable candidate; unknown: 404), then counted by the model's own tokenizer: an Anthropic
upstream's ``/v1/messages/count_tokens`` with the client's body untouched, or an
OpenAI-compatible upstream's ``/tokenize`` (vLLM's, with the chat template applied) for the
translated conversation. When the upstream cannot count (no such endpoint, an error, a timeout)
the answer is the gateway's own estimate (characters / 4, as routing uses) and says so in
``x-switchman-token-count: estimate``; a real count says ``upstream``. Counting is not billed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from aiohttp import web

from switchman.api.gatewayconfig import Model
from switchman.gateway.errors import InvalidRequest, ModelNotFound, NotReady
from switchman.gateway.inbound.anthropic_openai import messages_to_chat
from switchman.gateway.inbound.translation import NativeMessages
from switchman.gateway.routing.features import features
from switchman.gateway.serve.request import loads, read_body
from switchman.gateway.upstreams.client import UpstreamClient
from switchman.gateway.upstreams.runtime import Runtime

_FORWARDED = ("anthropic-version", "anthropic-beta")


def _candidates(runtime: Runtime, name: str) -> list[Model]:
    route = runtime.table.routes.get(name)
    if route is not None:
        return list(route.candidates)
    model = runtime.table.models.get(name)
    if model is not None:
        return [model]
    raise ModelNotFound(
        f"The model '{name}' does not exist on this gateway; GET /v1/models lists the "
        "routes and models it serves",
        param="model",
    )


async def _body(request: web.Request, runtime: Runtime) -> dict[str, Any]:
    raw = await read_body(request, runtime.config.server.max_body_bytes)
    if not raw:
        raise InvalidRequest("request body is empty; send a JSON object")
    body = loads(raw)
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    return body


async def count(request: web.Request, runtime: Runtime | None) -> web.Response:
    """Answer ``{"input_tokens": N}`` (see the module docstring)."""
    if runtime is None:
        raise NotReady("the gateway has no valid configuration loaded yet")
    body = await _body(request, runtime)
    chat = messages_to_chat({**body, "max_tokens": 1}).chat  # validates like /v1/messages
    candidates = _candidates(runtime, chat["model"])
    headers = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
    for model in candidates:
        upstream = runtime.upstreams.get(model.upstream)
        if upstream is None or upstream.unusable() is not None:
            continue
        counted = await _upstream_count(upstream, model, body, chat, headers)
        if counted is not None:
            return _answer(counted, "upstream")
        break  # the first usable candidate is the one a request would go to
    estimate = features("chat", chat, len(json.dumps(chat))).prompt_tokens
    return _answer(estimate, "estimate")


def _answer(tokens: int, source: str) -> web.Response:
    return web.json_response({"input_tokens": tokens}, headers={"x-switchman-token-count": source})


async def _upstream_count(
    upstream: UpstreamClient,
    model: Model,
    body: dict[str, Any],
    chat: dict[str, Any],
    headers: dict[str, str],
) -> int | None:
    provider = upstream.provider
    if isinstance(provider, NativeMessages):
        native = {k: v for k, v in body.items() if k not in ("max_tokens", "stream")}
        call = provider.native_messages(native, model.target, False, headers)
        payload = json.loads(call.body)
        payload.pop("stream", None)
        url, field = upstream.base + "/v1/messages/count_tokens", "input_tokens"
    else:
        call = provider.prepare("chat", chat, model.target, False)  # for its auth headers
        payload = {"model": model.target, "messages": chat["messages"]}
        if chat.get("tools"):
            payload["tools"] = chat["tools"]
        url, field = upstream.base.removesuffix("/v1") + "/tokenize", "count"
    sent = {**upstream.spec.headers, **call.headers, "Content-Type": "application/json"}
    try:
        async with (
            asyncio.timeout(upstream.spec.timeouts.first_byte_s),
            upstream.session().post(url, data=json.dumps(payload), headers=sent) as resp,
        ):
            if resp.status != 200:
                return None
            answer = await resp.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None
    value = answer.get(field) if isinstance(answer, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
