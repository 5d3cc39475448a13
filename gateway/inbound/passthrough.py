"""The other OpenAI endpoints, passed through untouched to models that declare them:
``/v1/images/generations``, ``/v1/audio/transcriptions``, ``/v1/audio/speech``,
``/v1/moderations`` and ``/v1/rerank``.

Registered by ``handlers``. The ``model`` (a JSON field, or a multipart form field for audio
transcriptions) names a route or a model as for chat; only candidates whose capabilities list the
endpoint (``Capabilities.endpoints``) on an OpenAI-compatible or Azure OpenAI upstream are tried
(none: a 400 naming the model; unknown: 404). The body goes upstream byte for byte but for the
model id, the answer (JSON, audio bytes, ...) comes back as it is, with the usual
``x-switchman-*`` headers, breakers, metrics, trace spans and access-log line
(``serve.observe``). Failover: a candidate that could not be reached is always left for the next;
429s, 5xx and timeouts move on only for idempotent endpoints (everything but image generation,
which may have been generated and billed already); another 4xx is the client's answer.

Tenants: client authentication applies as on every ``/v1`` path; a key's tenant is admitted as
for chat (allowed routes and models, requests per minute), with no tokens reserved or billed:
these endpoints report no token usage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import get_args

import aiohttp
from aiohttp import web

from switchman.api.gatewayconfig import Model, PassthroughEndpoint
from switchman.gateway.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    NotReady,
    RateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchman.gateway.inbound.passthrough_body import model_of, with_model
from switchman.gateway.replicas.replica import Blame
from switchman.gateway.serve.attempts import Decision
from switchman.gateway.serve.downstream import close_unframed
from switchman.gateway.serve.lease import Lease
from switchman.gateway.serve.observe import Observation
from switchman.gateway.serve.proxy import Proxy
from switchman.gateway.serve.request import REQUEST_ID, STARTED, read_body
from switchman.gateway.tenancy.gate import TENANT, TICKET
from switchman.gateway.upstreams.client import UpstreamClient
from switchman.gateway.upstreams.runtime import Runtime

# path -> (capability, idempotent): generating an image twice costs twice, the rest do not.
ENDPOINTS = {
    f"/v1/{capability}": (capability, capability != "images/generations")
    for capability in get_args(PassthroughEndpoint)
}
_KEPT = ("content-type", "content-disposition", "retry-after")


class _Next(Exception):
    """This candidate failed; the client sees ``error`` if none succeeds."""

    def __init__(self, reason: str, error: GatewayError, blame: Blame) -> None:
        super().__init__(error.message)
        self.reason, self.error, self.blame = reason, error, blame


def _candidates(runtime: Runtime, name: str, capability: str) -> tuple[bool, list[Model]]:
    """Whether ``name`` is a model named directly, and the candidates serving ``capability``."""
    route = runtime.table.routes.get(name)
    model = runtime.table.models.get(name)
    if route is None and model is None:
        raise ModelNotFound(
            f"The model '{name}' does not exist on this gateway; GET /v1/models lists the "
            "routes and models it serves",
            param="model",
        )
    listed = list(route.candidates) if route is not None else [model] if model else []
    able = [
        m
        for m in listed
        if capability in m.capabilities.endpoints
        and runtime.upstreams[m.upstream].spec.kind != "anthropic"
    ]
    if not able:
        raise InvalidRequest(
            f"'{name}' does not serve /v1/{capability}: no model behind it declares that "
            "endpoint in its capabilities",
            param="model",
        )
    return route is None, able


async def forward(
    request: web.Request, proxy: Proxy, current: Callable[[], Runtime | None]
) -> web.StreamResponse:
    """Serve one passthrough request; accounted once (``obs.finish``)."""
    capability, idempotent = ENDPOINTS[request.path]
    obs = Observation(
        proxy.telemetry,
        method=request.method,
        path=request.path,
        headers=request.headers,
        request_id=request[REQUEST_ID],
        started=request[STARTED],
    )
    decision = Decision("none", "passthrough", 0)
    status = 500
    try:
        runtime = current()
        if runtime is None:
            raise NotReady("the gateway has no valid configuration loaded yet")
        server = runtime.config.server
        raw = await read_body(request, server.max_body_bytes, server.edge.body_timeout_s)
        content_type = request.headers.get("Content-Type", "application/json")
        name = model_of(raw, content_type)
        direct, models = _candidates(runtime, name, capability)
        decision = Decision(name, "direct" if direct else "passthrough", len(models))
        models = await _admitted(request, proxy, obs, name, direct, models)
        runtime.acquire()
        try:
            response = await _walk(
                request, runtime, models, raw, content_type, decision, obs, (capability, idempotent)
            )
        finally:
            runtime.release()
        status = response.status
        return response
    except GatewayError as exc:
        exc.headers.update(decision.headers() if decision.candidates else {})
        decision.outcome = "client_error" if exc.status < 500 and exc.status != 429 else "error"
        status = exc.status
        raise
    finally:
        obs.finish(decision, None, status)


async def _admitted(
    request: web.Request,
    proxy: Proxy,
    obs: Observation,
    name: str,
    direct: bool,
    models: list[Model],
) -> list[Model]:
    """The candidates the key's tenant may use, once its request limit admits the request (no
    tokens are reserved: these endpoints report none). Keyless: all of them."""
    tenant, tenancy = request.get(TENANT), proxy.tenancy
    if tenant is None or tenancy is None or tenancy.settings is None:
        return models
    ticket, allowed = await tenancy.admit(tenant, name, direct, models, (0, 0))
    request[TICKET] = obs.ticket = ticket
    return allowed


async def _walk(
    request: web.Request,
    runtime: Runtime,
    models: list[Model],
    raw: bytes,
    content_type: str,
    decision: Decision,
    obs: Observation,
    endpoint: tuple[str, bool],
) -> web.StreamResponse:
    last: _Next | None = None
    for model in models:
        upstream = runtime.upstreams[model.upstream]
        try:
            return await _attempt(
                request, upstream, model, raw, content_type, decision, obs, endpoint[0]
            )
        except _Next as failed:
            last = failed
            decision.record(model, upstream, failed.reason)
            obs.attempt_failed(decision, upstream, failed.reason)
            if not endpoint[1] and failed.reason not in ("unreachable", "no_endpoint"):
                raise failed.error from None  # not idempotent: it may have been done already
    assert last is not None
    raise last.error


async def _attempt(
    request: web.Request,
    upstream: UpstreamClient,
    model: Model,
    raw: bytes,
    content_type: str,
    decision: Decision,
    obs: Observation,
    capability: str,
) -> web.StreamResponse:
    replica = upstream.endpoints.pick(None, model=model.target)
    if upstream.problem or replica is None:
        unusable = UpstreamUnavailable(f"upstream '{upstream.name}' has no usable replica")
        raise _Next("no_endpoint", unusable, "none")
    provider = upstream.provider
    passes = getattr(provider, "passthrough", None)
    assert passes is not None  # OpenAI-compatible and Azure OpenAI providers (Anthropic filtered)
    call = passes(capability, with_model(raw, content_type, model.target), content_type)
    headers = {**upstream.spec.headers, "x-request-id": request[REQUEST_ID], **call.headers}
    obs.attempt(model, upstream, headers, replica.address)
    with Lease(replica, model.target) as lease:
        if not lease.granted:
            raise _Next("circuit_open", UpstreamUnavailable("circuit open"), "none")
        try:
            async with (
                asyncio.timeout(upstream.spec.timeouts.total_s),
                upstream.session().post(
                    replica.base + call.path,
                    data=call.body,
                    headers=headers,
                    params=call.params or None,
                    allow_redirects=False,
                ) as resp,
            ):
                failed = _status_failure(upstream.name, resp.status)
                if failed is not None:
                    lease.failure(failed.blame)
                    raise failed
                lease.success()
                return await _relay(request, resp, decision, model, upstream, replica.address, obs)
        except TimeoutError as exc:
            lease.failure("replica")
            late = UpstreamTimeout(f"upstream '{upstream.name}' took too long")
            raise _Next("timeout", late, "replica") from exc
        except aiohttp.ClientConnectorError as exc:
            lease.failure("replica")
            error = UpstreamUnavailable(f"upstream '{upstream.name}' is unreachable")
            raise _Next("unreachable", error, "replica") from exc
        except aiohttp.ClientError as exc:
            lease.failure("replica")
            error = UpstreamUnavailable(f"upstream '{upstream.name}' broke off: {exc}")
            raise _Next("broken_response", error, "replica") from exc


def _status_failure(name: str, status: int) -> _Next | None:
    if status == 429:
        return _Next("rate_limited", RateLimited(f"upstream '{name}' is rate limited"), "model")
    if status >= 500 or 300 <= status < 400:
        error = UpstreamUnavailable(f"upstream '{name}' answered HTTP {status}")
        return _Next(f"status_{status}", error, "model")
    return None


async def _relay(
    request: web.Request,
    resp: aiohttp.ClientResponse,
    decision: Decision,
    model: Model,
    upstream: UpstreamClient,
    address: str,
    obs: Observation,
) -> web.StreamResponse:
    """The upstream's answer as it is (a 4xx included): status, content headers, body."""
    decision.serve(model, upstream, address)
    decision.outcome = "ok" if resp.status < 400 else "client_error"
    obs.attempt_ended(model, upstream, "ok" if resp.status < 400 else f"status_{resp.status}")
    headers = {k: v for k, v in resp.headers.items() if k.lower() in _KEPT}
    response = web.StreamResponse(status=resp.status, headers={**headers, **decision.headers()})
    close_unframed(request, response)  # no length: to HTTP/1.0, the close ends the body
    await response.prepare(request)
    async for chunk in resp.content.iter_chunked(64 * 1024):
        # An upstream may echo the credential it was sent (a 401 body, say): never relay it.
        await response.write(upstream.redactor.data(chunk))
    await response.write_eof()
    return response
