"""``POST /v1/messages``: the Anthropic Messages API, served by any upstream kind.

Registered by ``handlers``. The request goes through the same ``serve.proxy`` as chat (the same
client authentication, routes, capability filters, failover, continuation and accounting) with
an ``translation.Translation`` that translates at both ends (``anthropic_openai``,
``anthropic_openai_stream``) and passes the body untouched to Anthropic upstreams. Errors on
``/v1/messages*`` paths (and for clients sending ``anthropic-version``) are Anthropic-shaped
(``error_response``, called by the app's front, ``app.Front``, the one place errors become
responses).

Headers: ``anthropic-version`` must look like a date when given (the SDKs send ``2023-06-01``);
it and ``anthropic-beta`` travel to Anthropic upstreams with the untouched body and are not
needed by translated ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from aiohttp import web

from switchman.gateway.errors import GatewayError, InvalidRequest
from switchman.gateway.inbound.anthropic_openai import messages_to_chat
from switchman.gateway.inbound.anthropic_openai_stream import (
    EventEncoder,
    chat_to_message,
    error_body,
    error_status,
)
from switchman.gateway.inbound.translation import Translation
from switchman.gateway.serve.proxy import Proxy
from switchman.gateway.upstreams.runtime import Runtime

PREFIX = "/v1/messages"
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FORWARDED = ("anthropic-version", "anthropic-beta")


def translation(request: web.Request) -> Translation:
    """The translation for one Messages request (headers checked here)."""
    version = request.headers.get("anthropic-version")
    if version is not None and not _VERSION.match(version):
        raise InvalidRequest(
            f"anthropic-version: {version!r} is not a version date such as 2023-06-01",
            param="anthropic-version",
        )
    native = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
    return Translation(
        messages_to_chat,
        lambda body: EventEncoder(),
        lambda chat, body: chat_to_message(chat),
        native=native,
    )


async def create(
    request: web.Request, proxy: Proxy, current: Callable[[], Runtime | None]
) -> web.StreamResponse:
    """``POST /v1/messages``."""
    return await proxy.handle(request, "chat", current, format=translation(request))


def anthropic_client(request: web.Request) -> bool:
    """Whether errors for ``request`` take Anthropic's shape: a ``/v1/messages*`` path, or a
    client that sends ``anthropic-version`` (the Anthropic SDK, e.g. on ``/v1/models``)."""
    return request.path.startswith(PREFIX) or "anthropic-version" in request.headers


def error_response(exc: GatewayError) -> web.Response:
    """An Anthropic-shaped error for ``exc``, with Anthropic's status code for it."""
    upstream = exc.body().get("error")
    message = upstream.get("message") if isinstance(upstream, dict) else None
    body = error_body(exc.status, str(message or exc.message))
    return web.json_response(body, status=error_status(exc.status), headers=exc.headers)
