"""HTTP handlers: the OpenAI-compatible endpoints plus health, readiness, metrics and OpenAPI.

Registered by ``app``. The other client formats (Anthropic Messages, Responses) and the model
listing are ``inbound``'s, registered here. Proxied endpoints hand over to ``proxy``, which reads
the body within the configured limit, leases the current Runtime for the whole exchange (so a
reload never pulls anything from under it) and accounts the request.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import HttpVersion11, hdrs, web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST

from switchman.gateway import admin as debug
from switchman.gateway import openapi
from switchman.gateway.errors import (
    ExpectationFailed,
    GatewayError,
    InvalidRequest,
    NotReady,
    PayloadTooLarge,
)
from switchman.gateway.inbound import count_tokens, messages, models, passthrough, responses
from switchman.gateway.providers.exchange import Operation
from switchman.gateway.serve.downstream import WholeAnswer
from switchman.gateway.serve.proxy import Proxy
from switchman.gateway.serve.request import check_length
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.gateway.upstreams.runtime import Runtime
from switchman.gateway.workers import WORKERS, merged_decisions, merged_metrics


@dataclass(slots=True, frozen=True)
class Gateway:
    """What the handlers need, passed explicitly through the app (no globals)."""

    watcher: ConfigWatcher
    proxy: Proxy
    metrics: Metrics


GATEWAY = web.AppKey("gateway", Gateway)

Front = Callable[[Handler, str], Handler]  # a route's handler, at its path, behind the front


def _runtime(request: web.Request) -> Runtime:
    runtime = request.app[GATEWAY].watcher.current
    if runtime is None:
        raise NotReady("the gateway has no valid configuration loaded yet")
    return runtime


def _proxied(request: web.Request, op: Operation) -> Awaitable[web.StreamResponse]:
    """The proxy's handling of ``request``."""
    gateway = request.app[GATEWAY]
    return gateway.proxy.handle(request, op, lambda: gateway.watcher.current)


async def expect_continue(request: web.Request) -> web.StreamResponse | None:
    """``Expect: 100-continue``: refuse a declared body over the limit *before* inviting it.

    aiohttp runs this ahead of the handler (and ``app.Front``), so a refusal is shaped here; the
    connection is closed after it because the body the client may still send is never read.
    """
    error: GatewayError | None = None
    if request.headers.get(hdrs.EXPECT, "").lower() != "100-continue":
        error = ExpectationFailed("only 'Expect: 100-continue' is supported", param="Expect")
    elif (runtime := request.app[GATEWAY].watcher.current) is not None:
        try:
            check_length(request.content_length, runtime.config.server.max_body_bytes)
        except PayloadTooLarge as exc:
            error = exc
    if error is not None:
        if messages.anthropic_client(request):  # /v1/messages*: Anthropic's shape, as ever
            response = messages.error_response(error)
        else:
            response = web.Response(
                status=error.status, body=error.payload(), content_type="application/json"
            )
        response.force_close()
        return response
    if request.version == HttpVersion11:
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0  # the interim response is not part of the answer
    return None


# The endpoints that hand a request over are plain functions returning the awaitable that
# answers it (awaited by ``app.Front``): no coroutine of their own in between, one frame less
# to make, and to pass through on every resumption of the request's task.


def chat_completions(request: web.Request) -> Awaitable[web.StreamResponse]:
    return _proxied(request, "chat")


def completions(request: web.Request) -> Awaitable[web.StreamResponse]:
    return _proxied(request, "completions")


def embeddings(request: web.Request) -> Awaitable[web.StreamResponse]:
    return _proxied(request, "embeddings")


async def list_models(request: web.Request) -> web.Response:
    return models.listing(request, _runtime(request))


async def retrieve_model(request: web.Request) -> web.Response:
    return models.retrieve(request, _runtime(request))


def anthropic_messages(request: web.Request) -> Awaitable[web.StreamResponse]:
    gateway = request.app[GATEWAY]
    return messages.create(request, gateway.proxy, lambda: gateway.watcher.current)


async def count_message_tokens(request: web.Request) -> web.Response:
    return await count_tokens.count(request, request.app[GATEWAY].watcher.current)


def passthrough_endpoint(request: web.Request) -> Awaitable[web.StreamResponse]:
    gateway = request.app[GATEWAY]
    return passthrough.forward(request, gateway.proxy, lambda: gateway.watcher.current)


def create_response(request: web.Request) -> Awaitable[web.StreamResponse]:
    gateway = request.app[GATEWAY]
    return responses.create(request, gateway.proxy, lambda: gateway.watcher.current)


_HEALTHY = json.dumps({"status": "ok"}).encode()


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP (the bytes of ``web.json_response``, written at once)."""
    return WholeAnswer(_HEALTHY, content_type="application/json; charset=utf-8")


def _servable(runtime: Runtime) -> bool:
    """Whether some model (named directly or a route's candidate) has a usable upstream now."""
    usable = {name for name, client in runtime.upstreams.items() if client.unusable() is None}
    return any(model.upstream in usable for model in runtime.table.models.values())


async def readyz(request: web.Request) -> web.Response:
    """Readiness: a config is loaded and some model can be served (no route is left without a
    usable candidate); details show the last reload error, the config file and each upstream."""
    watcher = request.app[GATEWAY].watcher
    runtime = watcher.current
    config: dict[str, Any] = {
        "path": str(watcher.path),
        "file_present": not watcher.file_missing,
        "last_reload_error": watcher.last_error,
    }
    if runtime is None:
        return web.json_response({"status": "not_ready", "config": config}, status=503)
    config["generation"] = runtime.generation
    config["loaded_at"] = datetime.fromtimestamp(runtime.loaded_at, UTC).isoformat()
    upstreams = {
        client.name: {
            "kind": client.spec.kind,
            "endpoint": client.endpoint,
            "usable": client.problem is None,
            "problem": client.problem,
            "routable": client.unusable() is None,
            "in_flight": client.inflight,
            "circuit": client.endpoints.circuits(),
            "endpoints": client.endpoints.snapshot(),
        }
        for client in runtime.upstreams.values()
    }
    if not _servable(runtime):
        body = {"status": "not_ready", "reason": "no_usable_candidate", "config": config}
        return web.json_response({**body, "upstreams": upstreams}, status=503)
    ready: dict[str, Any] = {"status": "ready", "config": config, "upstreams": upstreams}
    tenancy = request.app[GATEWAY].proxy.tenancy
    if tenancy is not None:
        tenancy.configure(runtime.config.tenancy)
        ready["tenancy"] = tenancy.status()  # keys, and whether the shared limits store answers
    return web.json_response(ready)


def local_metrics(gateway: Gateway) -> bytes:
    """This process's exposition, the per-replica gauges refreshed first."""
    runtime = gateway.watcher.current
    if runtime is not None:
        gateway.metrics.endpoints(
            (client.name, e.address, e.available(), e.circuit_state(), e.load_value())
            for client in runtime.upstreams.values()
            for e in client.endpoints.endpoints
        )
    return gateway.metrics.exposition()


async def metrics(request: web.Request) -> web.Response:
    """The exposition; with several workers, all of theirs labelled by worker (``workers``)."""
    body = local_metrics(request.app[GATEWAY])
    if (pod := request.app.get(WORKERS)) is not None:
        body = await merged_metrics(pod, body)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def debug_decisions(request: web.Request) -> web.Response:
    """Recent routing decisions, newest first: ``?limit=N`` (default 50) and ``?route=NAME``."""
    gateway = request.app[GATEWAY]
    runtime = _runtime(request)
    debug.check_admin(request, runtime.config.server.admin_token, gateway.watcher.environ)
    raw = request.query.get("limit", "50")
    if not raw.isdigit() or not 0 < int(raw) <= 100000:
        raise InvalidRequest("'limit' must be an integer in 1..100000", param="limit")
    entries = gateway.proxy.decisions.read(int(raw), request.query.get("route"))
    if (pod := request.app.get(WORKERS)) is not None:
        entries = await merged_decisions(pod, entries, int(raw), request.query.get("route"))
    return web.json_response({"object": "list", "data": entries})


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(openapi.document())


def add_routes(app: web.Application, front: Front) -> None:
    """The gateway's routes, each handler behind ``front`` (``app.Front.wrap``), which awaits
    what it returns (a handler may be a plain function returning an awaitable)."""
    route = front

    for path, handler in (
        ("/v1/chat/completions", chat_completions),
        ("/v1/completions", completions),
        ("/v1/embeddings", embeddings),
        ("/v1/messages", anthropic_messages),
        ("/v1/messages/count_tokens", count_message_tokens),
        ("/v1/responses", create_response),
        *((path, passthrough_endpoint) for path in passthrough.ENDPOINTS),
    ):
        app.router.add_post(path, route(handler, path), expect_handler=expect_continue)
    for path, getter in (
        ("/v1/models", list_models),
        ("/v1/models/{id:.+}", retrieve_model),
        ("/healthz", healthz),
        ("/readyz", readyz),
        ("/metrics", metrics),
        ("/openapi.json", openapi_json),
        ("/debug/decisions", debug_decisions),
    ):
        app.router.add_get(path, route(getter, path))
