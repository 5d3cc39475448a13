"""The gateway's aiohttp application: composition, factory, the front of every route, lifecycle.

``compose`` is the one composition of a serving gateway (config watcher, metrics, tracing from the
standard ``OTEL_*`` variables, access log, application): ``switchman gateway`` and ``switchman
demo`` both call it, so the demo exports what production exports. ``create_app`` wires an already
loaded ``ConfigWatcher`` into the handlers; the tests call it directly. ``Front`` (what every
route's handler runs inside; no aiohttp middleware) stamps the request id, authenticates ``/v1/*``
and is the one place that turns errors into OpenAI-shaped JSON responses (Anthropic-shaped for
Anthropic clients, ``inbound.messages``): ``GatewayError`` by its own status, 404/405 (its
``fallback`` route), and anything unexpected as a 500 that names the request id (the traceback
goes to the log, never to the client).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import prometheus_client
from aiohttp import web
from aiohttp.typedefs import Handler

from switchman.api.gatewayconfig import Server
from switchman.api.tenancy import Tenancy as TenancySettings
from switchman.gateway import admin
from switchman.gateway.errors import GatewayError, MethodNotAllowed, NotFound
from switchman.gateway.handlers import GATEWAY, Gateway, add_routes, local_metrics
from switchman.gateway.inbound import messages
from switchman.gateway.routing.classifier import Classifier
from switchman.gateway.routing.table import ComplexityScorer
from switchman.gateway.serve.downstream import WholeAnswer
from switchman.gateway.serve.observe import Telemetry
from switchman.gateway.serve.proxy import Proxy
from switchman.gateway.serve.request import REQUEST_ID, STARTED
from switchman.gateway.telemetry.accesslog import AccessLog, Format
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.telemetry.tracing import Tracing
from switchman.gateway.tenancy import gate
from switchman.gateway.tenancy.admission import Tenancy
from switchman.gateway.upstreams.config import ConfigWatcher
from switchman.gateway.workers import Workers, attach

log = logging.getLogger("switchman.gateway")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(supplied: str | None, draw: Callable[[int], int] = random.getrandbits) -> str:
    """The client's ``x-request-id`` if sane, else 32 random hex digits: 128 bits from the
    process's Mersenne Twister (reseeded in a forked child), a tenth of a getrandom call; an id
    names a request in logs and answers and guards nothing."""
    if supplied and _REQUEST_ID.match(supplied):
        return supplied
    return draw(128).to_bytes(16).hex()


def _error_response(exc: GatewayError, request: web.Request) -> web.Response:
    if messages.anthropic_client(request):
        return messages.error_response(exc)
    return WholeAnswer(exc.payload(), exc.headers, status=exc.status)


class Front:
    """What every route's handler runs inside (in place of aiohttp middlewares, whose wrappers
    cost a coroutine frame or two per request and per resumption): the request id (the
    client's ``x-request-id`` if sane), the clock, authentication of ``/v1/*`` requests
    (``tenancy.gate``) and the one place errors become OpenAI- (or Anthropic-) shaped
    responses. ``fallback`` answers what no route serves: 404, or 405 for a known path."""

    def __init__(self, tenancy: Tenancy, settings: Callable[[], TenancySettings | None]) -> None:
        self._tenancy = tenancy
        self._settings = settings

    def wrap(self, handler: Handler, path: str) -> Handler:
        """``handler`` of the route at ``path``, behind the front."""
        return functools.partial(self._serve, handler, gate.protected(path))

    async def _serve(
        self, handler: Handler, protected: bool, request: web.Request
    ) -> web.StreamResponse:
        request[REQUEST_ID] = request_id = _request_id(request.headers.get("x-request-id"))
        request[STARTED] = time.perf_counter()
        try:
            if protected:
                gate.authenticate(request, self._tenancy, self._settings())
            return await handler(request)
        except GatewayError as exc:
            return _error_response(exc, request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error_response(_http_error(exc, request), request)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("unhandled error request_id=%s", request_id)
            return _error_response(
                GatewayError(
                    f"internal error in the gateway (request id {request_id}); "
                    "the gateway log has the details"
                ),
                request,
            )

    async def fallback(self, request: web.Request) -> web.StreamResponse:
        """A path no route serves (404), or a method a path does not take (405); a ``/v1/*``
        path still needs a key first, as any request there."""
        if gate.protected(request.path):
            gate.authenticate(request, self._tenancy, self._settings())
        own = request.match_info.route.resource
        for resource in request.app.router.resources():
            if resource is not own and (await resource.resolve(request))[1]:
                raise MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
        raise NotFound(f"no such endpoint: {request.method} {request.path}")


def _http_error(exc: web.HTTPException, request: web.Request) -> GatewayError:
    """An aiohttp error a handler raised, as the gateway's own."""
    if exc.status == 405:
        return MethodNotAllowed(f"{request.method} is not allowed on {request.path}")
    if exc.status == 404:
        return NotFound(f"no such endpoint: {request.method} {request.path}")
    return _Generic(exc.status, exc.reason)


class _Generic(GatewayError):
    type = "invalid_request_error"
    code = "bad_request"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_DEFAULT_SERVER = Server()


def _response_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response's own headers, as it is prepared (``_Request``): the request id, the
    tenant's limits and cost (``gate``), and what the edge settings expose (``admin``)."""
    request_id = request.get(REQUEST_ID)
    if request_id:
        response.headers["x-request-id"] = request_id
    gate.response_headers(request, response)
    watcher = request.app[GATEWAY].watcher
    server = watcher.current.config.server if watcher.current is not None else _DEFAULT_SERVER
    admin.exposed_headers(request, response, server.edge, server.admin_token, watcher.environ)


class _Request(web.Request):
    """The gateway's ``web.Request`` (every runner's: ``create_app`` makes the app build it).

    Its response-prepare hook sets every response's own headers (``_response_headers``) with a
    plain call before aiohttp's own hook runs, where the app's ``on_response_prepare`` signal
    costs two more coroutines per response; as aiohttp's, only for a request routed to the
    app (not one answered before routing, such as a malformed request). ``get`` reads the
    request's state at once (the Mapping mixin's is two Python calls, and a raised and caught
    ``KeyError`` for a key not set). This leans on aiohttp's ``_make_request(_cls=)``,
    ``_prepare_hook``, ``_match_info`` and ``_state``; the header tests (x-request-id, Server,
    the tenant's limits, the edge tests' pipelined requests) fail if one of them changes."""

    def _prepare_hook(self, response: web.StreamResponse) -> Coroutine[Any, Any, None]:
        if self._match_info is not None:
            _response_headers(self, response)
        return super()._prepare_hook(response)

    def get(self, key: Any, default: Any = None) -> Any:
        return self._state.get(key, default)


def create_app(
    watcher: ConfigWatcher,
    metrics: Metrics,
    *,
    tracing: Tracing | None = None,
    access_log: AccessLog | None = None,
    classifier: ComplexityScorer | None = None,
    workers: Workers | None = None,
) -> web.Application:
    """An application serving ``watcher``'s current config and watching it for changes.

    Without ``tracing`` no spans are made; without ``access_log`` no access lines are written.
    """
    tenancy = Tenancy(metrics, watcher.environ)
    front = Front(tenancy, lambda: watcher.current.config.tenancy if watcher.current else None)
    # Bodies are read by the proxy with the config's own (hot-reloadable) limit. No middleware:
    # each route's handler runs behind ``front`` instead.
    app = web.Application(client_max_size=2**40)
    telemetry = Telemetry(
        metrics=metrics, tracing=tracing or Tracing(None), access_log=access_log or AccessLog("off")
    )
    proxy = Proxy(
        telemetry,
        classifier=classifier if classifier is not None else Classifier.load_default(),
        tenancy=tenancy,
    )
    app[GATEWAY] = Gateway(watcher=watcher, proxy=proxy, metrics=metrics)
    if workers is not None:
        gateway = app[GATEWAY]
        attach(app, workers, lambda: local_metrics(gateway), proxy.decisions.read)
    # Each request is a ``_Request`` (aiohttp's own hook for a request class of its own).
    app._make_request = functools.partial(app._make_request, _cls=_Request)  # type: ignore[method-assign]
    add_routes(app, front.wrap)
    # Any path at all, a decoded newline included (``.`` would not match one, and aiohttp's own
    # plain-text 404 would answer it).
    app.router.add_route("*", r"/{tail:[\s\S]*}", front.wrap(front.fallback, "/"))

    async def watch(app: web.Application) -> AsyncIterator[None]:
        if watcher.current is not None:  # loaded before the loop ran: start replica tasks now
            for client in watcher.current.upstreams.values():
                client.start()
        task = asyncio.create_task(watcher.watch(), name="config-watch")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await proxy.close()
        await tenancy.close()
        await watcher.close()
        await telemetry.tracing.shutdown()

    app.cleanup_ctx.append(watch)
    return app


def compose(
    config: str | Path,
    environ: Mapping[str, str],
    *,
    access_log: Format = "json",
    watch_interval: float = 1.0,
    workers: Workers | None = None,
) -> web.Application:
    """The serving gateway for a GatewayConfig file, as production runs it.

    Raises ``ConfigError`` for an invalid file and ``TracingConfigError`` for invalid ``OTEL_*``
    settings, both before anything starts.
    """
    tracing = Tracing.from_env(environ)
    # One *_created series per counter doubles what Prometheus stores, for no use here.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    metrics = Metrics()
    watcher = ConfigWatcher(config, metrics, interval=watch_interval)
    watcher.load_initial()
    return create_app(
        watcher,
        metrics,
        tracing=tracing,
        access_log=AccessLog.to_stdout(access_log),
        workers=workers,
    )
