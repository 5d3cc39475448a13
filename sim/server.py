"""The simulator's aiohttp application: ``create_app(settings)`` and the small endpoints.

Wires the API routes (``switchman.sim.generation``, ``switchman.sim.embeddings``), the admin
routes (``switchman.sim.admin``), ``GET /v1/models``, ``GET /health`` and ``GET /metrics``
around one ``SimState`` (stored under ``SIM_KEY``). One middleware applies the ``down`` fault
and turns ``SimError`` into vLLM-shaped JSON; a response-prepare hook echoes ``x-request-id`` on
every response, streams included. Started in-process by ``switchman.sim.runner`` or from the
command line by ``switchman.sim.cli``.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from switchman.sim import admin, embeddings, errors, generation
from switchman.sim.settings import SimSettings
from switchman.sim.state import SIM_KEY, SimState


def create_app(settings: SimSettings) -> web.Application:
    """A simulator serving ``settings.served_names``; nothing runs until the app is started."""
    state = SimState.build(settings)
    app = web.Application(middlewares=[_guard(state)])
    app[SIM_KEY] = state
    app.on_response_prepare.append(_echo_request_id)
    generation.add_routes(app, state)
    embeddings.add_routes(app, state)
    admin.add_routes(app, state)
    _add_routes(app, state)
    return app


def _guard(state: SimState) -> Middleware:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        faults = state.faults.current
        if faults.down and not request.path.startswith("/admin/"):
            if faults.down_mode == "close" and request.transport is not None:
                request.transport.close()
            return errors.unavailable().response()
        try:
            return await handler(request)
        except errors.SimError as exc:
            return exc.response()

    return guard


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request_id = request.headers.get("x-request-id")
    if request_id is not None:
        response.headers["x-request-id"] = request_id


def _add_routes(app: web.Application, state: SimState) -> None:
    settings = state.settings

    async def models(request: web.Request) -> web.Response:
        cards: list[dict[str, object]] = [
            {
                "id": name,
                "object": "model",
                "created": state.created,
                "owned_by": "vllm",
                "root": settings.model,
                "parent": None,
                "max_model_len": settings.max_model_len,
                "permission": [],
            }
            for name in settings.served_names
        ]
        return web.json_response({"object": "list", "data": cards})

    async def health(request: web.Request) -> web.Response:
        if not state.faults.ready():
            return web.Response(status=503)
        return web.Response(status=200)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=state.metrics.render(), headers={"Content-Type": state.metrics.content_type}
        )

    app.router.add_get("/v1/models", models)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
