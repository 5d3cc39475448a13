"""/openapi.json documents every client-facing route the gateway registers.

Scenario: the routes ``handlers.add_routes`` registers under ``/v1`` (path patterns normalised,
``{id:.+}`` -> ``{id}``) with their methods equal the document's paths and methods; the Messages
endpoints declare Anthropic's error shape, the others OpenAI's.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.typedefs import Handler

from switchman.gateway.handlers import add_routes
from switchman.gateway.openapi import document


def _front(handler: Handler, path: str) -> Handler:
    """A front that only awaits the route's handler (``app.Front.wrap`` without its checks)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    return serve


def test_every_v1_route_is_documented() -> None:
    app = web.Application()
    add_routes(app, _front)
    registered = {
        (re.sub(r"\{(\w+):[^}]*\}", r"{\1}", r.resource.canonical), r.method.lower())
        for r in app.router.routes()
        if r.resource is not None and r.resource.canonical.startswith("/v1/") and r.method != "HEAD"
    }
    paths = document()["paths"]
    documented = {
        (path, method) for path, ops in paths.items() if path.startswith("/v1/") for method in ops
    }
    assert registered == documented
    error = paths["/v1/messages"]["post"]["responses"]["400"]["content"]["application/json"]
    assert error["schema"]["$ref"].endswith("/AnthropicError")
    chat = paths["/v1/responses"]["post"]["responses"]["400"]["content"]["application/json"]
    assert chat["schema"]["$ref"].endswith("/Error")
