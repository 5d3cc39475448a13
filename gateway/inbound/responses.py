"""``POST /v1/responses``: the OpenAI Responses API, served by any upstream kind through chat.

Registered by ``handlers``. The request goes through the same ``serve.proxy`` as chat (the same
client authentication, routes, capability filters, failover, continuation and accounting) with
an ``translation.Translation`` that translates at both ends (``responses_openai``,
``responses_openai_stream``). Errors are OpenAI-shaped, as for chat. Stateless: see
``responses_openai`` for what that refuses.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from switchman.gateway.inbound.responses_openai import responses_to_chat
from switchman.gateway.inbound.responses_openai_stream import EventEncoder, chat_to_response
from switchman.gateway.inbound.translation import Translation
from switchman.gateway.serve.proxy import Proxy
from switchman.gateway.upstreams.runtime import Runtime


async def create(
    request: web.Request, proxy: Proxy, current: Callable[[], Runtime | None]
) -> web.StreamResponse:
    """``POST /v1/responses``."""
    translation = Translation(responses_to_chat, EventEncoder, chat_to_response)
    return await proxy.handle(request, "chat", current, format=translation)
