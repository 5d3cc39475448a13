"""``POST /v1/embeddings``: deterministic unit vectors from a hash of each input.

Runs through the same checks as generation (served model, injected 500/429, vLLM's context rule
for pooling requests) and through the engine as a prefill-only sequence, so embeddings queue
and cost prefill time like vLLM's pooling requests (without prefix caching). Supports
``encoding_format`` ``float`` and ``base64`` (the OpenAI SDK's default). Routes are added by
``switchman.sim.server``.
"""

from __future__ import annotations

import json
import time
import uuid

from aiohttp import web

from switchman.sim import errors, payloads
from switchman.sim.params import embedding_params
from switchman.sim.state import SimState
from switchman.sim.text import embedding, tokenize


def add_routes(app: web.Application, state: SimState) -> None:
    async def embeddings(request: web.Request) -> web.Response:
        params = embedding_params(await state.recorder.read_json(request))
        model = state.served_model(params.model)
        state.raise_injected_fault()
        limit = state.context_limit()
        tokens: list[str] = []
        for text in params.inputs:
            words = tokenize(text)
            if len(words) > limit:
                raise errors.embedding_input_too_long(limit, len(words))
            tokens.extend(words)
        async with state.engine.sequence(tokens, 0, cacheable=False) as sequence:
            await sequence.generate(0)
        dims = state.settings.embedding_dims
        body = payloads.embedding_list(
            "embd-" + (request.headers.get("x-request-id") or uuid.uuid4().hex),
            int(time.time()),
            model,
            [embedding(text, dims) for text in params.inputs],
            len(tokens),
            as_base64=params.base64,
        )
        return web.Response(body=json.dumps(body).encode(), content_type="application/json")

    app.router.add_post("/v1/embeddings", embeddings)
