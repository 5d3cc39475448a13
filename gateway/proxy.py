"""Sends one client request upstream: resolve candidates, try them in order, answer the client.

Called by ``handlers`` for each proxied endpoint: reads and parses the body (``request``), leases
the current Runtime for the whole exchange, resolves candidates (``routing``) and tries them. A
candidate that fails before anything reached the client (unreachable, timeout, 429, 5xx, a
stream that dies before its first chunk) is followed by the next; any other upstream 4xx goes
back to the client unchanged. Streams are handed to ``relay`` once the first chunk is in hand.
Every request is accounted exactly once, by its ``observe.Observation``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from switchman.api.gatewayconfig import Model
from switchman.gateway import relay
from switchman.gateway.attempts import Decision, Failure
from switchman.gateway.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    NotReady,
    RateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchman.gateway.exchange import Operation, ResponseInfo, UpstreamCall
from switchman.gateway.observe import Observation, Telemetry
from switchman.gateway.request import REQUEST_ID, STARTED, ClientRequest, parse, read_body
from switchman.gateway.runtime import Runtime
from switchman.gateway.upstreams import UpstreamClient

log = logging.getLogger("switchman.gateway.proxy")

# Client headers worth passing upstream; everything else (notably Authorization) stays here.
_FORWARDED = ("traceparent", "tracestate", "x-request-id")
_ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


class Proxy:
    """Stateless between requests apart from telemetry; safe to run in every worker process."""

    def __init__(self, telemetry: Telemetry) -> None:
        self.telemetry = telemetry
        self.metrics = telemetry.metrics

    async def handle(
        self, request: web.Request, op: Operation, current: Callable[[], Runtime | None]
    ) -> web.StreamResponse:
        """Serve one proxied request; the single place it is accounted (``obs.finish``)."""
        obs = Observation(
            self.telemetry,
            method=request.method,
            path=request.path,
            headers=request.headers,
            request_id=request[REQUEST_ID],
            started=request[STARTED],
        )
        decision = Decision("none", "none", 0)
        info: ResponseInfo | None = None
        status = 500
        try:
            runtime = current()
            if runtime is None:
                raise NotReady("the gateway has no valid configuration loaded yet")
            raw = await read_body(request, runtime.config.server.max_body_bytes)
            creq = parse(op, raw)
            obs.request(op, creq.body, creq.stream)
            runtime.acquire()
            try:
                decision, candidates = _route(runtime, creq)
                obs.routed(decision, candidates)
                response, info = await self._try_candidates(
                    request, runtime, creq, candidates, decision, obs
                )
            finally:
                runtime.release()
            status = response.status
            return response
        except GatewayError as exc:
            if decision.candidates:
                exc.headers.update(decision.headers())
            decision.outcome = "client_error" if exc.status < 500 and exc.status != 429 else "error"
            status = exc.status
            raise
        except asyncio.CancelledError:
            decision.outcome = "client_disconnected"
            raise
        finally:
            obs.finish(decision, info, status)

    async def _try_candidates(
        self,
        request: web.Request,
        runtime: Runtime,
        creq: ClientRequest,
        candidates: list[Model],
        decision: Decision,
        obs: Observation,
    ) -> tuple[web.StreamResponse, ResponseInfo | None]:
        forwarded = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
        forwarded["x-request-id"] = request[REQUEST_ID]
        last: Failure | None = None
        tried = candidates[: runtime.config.server.retry.max_attempts]
        for index, model in enumerate(tried):
            upstream = runtime.upstreams[model.upstream]
            headers = dict(forwarded)
            obs.attempt(model, upstream, headers)
            try:
                if upstream.problem:
                    raise Failure(
                        "unconfigured",
                        UpstreamUnavailable(f"upstream '{upstream.name}': {upstream.problem}"),
                    )
                call = upstream.provider.prepare(creq.op, creq.body, model.target, creq.stream)
                if creq.stream:
                    return await self._stream(
                        request, creq, model, upstream, call, headers, decision, obs
                    )
                return await self._unary(creq, model, upstream, call, headers, decision, obs)
            except Failure as failure:
                decision.record(model, upstream, failure.reason)
                obs.attempt_failed(decision, upstream, failure.reason)
                if index + 1 < len(tried):
                    obs.moved_on(decision.route, failure.reason)
                log.info(
                    "attempt failed request_id=%s model=%s upstream=%s reason=%s: %s",
                    request[REQUEST_ID],
                    model.name,
                    upstream.name,
                    failure.reason,
                    failure.error.message,
                )
                last = failure
            except UpstreamRejected:
                decision.record(model, upstream, "rejected")
                obs.attempt_failed(decision, upstream, "rejected")
                raise
        assert last is not None
        raise last.error

    async def _unary(
        self,
        creq: ClientRequest,
        model: Model,
        upstream: UpstreamClient,
        call: UpstreamCall,
        forwarded: dict[str, str],
        decision: Decision,
        obs: Observation,
    ) -> tuple[web.StreamResponse, ResponseInfo | None]:
        timeouts = upstream.spec.timeouts
        try:
            async with (
                asyncio.timeout(timeouts.total),
                self._open(upstream, call, forwarded) as resp,
            ):
                payload = await resp.read()
                if resp.status >= 400:
                    raise _status_failure(upstream, resp.status, payload, resp.headers)
        except TimeoutError as exc:
            raise Failure(
                "timeout",
                UpstreamTimeout(f"upstream '{upstream.name}' took over {timeouts.total}s"),
            ) from exc
        except aiohttp.ClientError as exc:
            raise Failure(
                "broken_response",
                UpstreamUnavailable(f"upstream '{upstream.name}' broke off its response: {exc}"),
            ) from exc
        try:
            body, info = upstream.provider.decode(creq.op, payload)
        except (ValueError, KeyError, TypeError) as exc:
            raise Failure(
                "bad_response",
                UpstreamUnavailable(f"upstream '{upstream.name}' sent a response it cannot parse"),
            ) from exc
        decision.serve(model, upstream)
        decision.outcome = "ok"
        obs.attempt_ended(model, upstream, "ok")
        response = web.Response(
            body=body, content_type="application/json", headers=decision.headers()
        )
        return response, info

    async def _stream(
        self,
        request: web.Request,
        creq: ClientRequest,
        model: Model,
        upstream: UpstreamClient,
        call: UpstreamCall,
        forwarded: dict[str, str],
        decision: Decision,
        obs: Observation,
    ) -> tuple[web.StreamResponse, ResponseInfo | None]:
        timeouts = upstream.spec.timeouts
        decoder = upstream.provider.stream(creq.op, model.target, creq.wants_usage)
        deadline = asyncio.get_running_loop().time() + timeouts.total
        async with self._open(upstream, call, forwarded) as resp:
            if resp.status >= 400:
                payload = await relay.read_error(resp, timeouts.idle)
                raise _status_failure(upstream, resp.status, payload, resp.headers)
            stream = relay.Relay(resp, decoder, idle=timeouts.idle, deadline=deadline)
            first = await stream.first(upstream.name)
            decision.serve(model, upstream)
            response = web.StreamResponse(headers=decision.headers())
            response.content_type = "text/event-stream"
            response.headers["Cache-Control"] = "no-cache"
            response.headers["X-Accel-Buffering"] = "no"
            await response.prepare(request)
            obs.first_chunk(decision.route, model.name)
            decision.outcome = await stream.rest(response, first, upstream.name)
            # Counted once the stream ended, so a cut after the first chunk is not an "ok".
            obs.attempt_ended(model, upstream, decision.outcome)
            obs.inter_chunk_s = stream.mean_gap()
            if decision.outcome != "ok":
                resp.close()  # cancel the upstream generation nobody will read
        info = ResponseInfo(
            usage=decoder.usage, model=decoder.model, finish_reasons=decoder.finish_reasons
        )
        return response, info

    @asynccontextmanager
    async def _open(
        self, upstream: UpstreamClient, call: UpstreamCall, forwarded: dict[str, str]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send the request and wait for response headers; count it in flight meanwhile."""
        headers = {**upstream.spec.headers, **forwarded, **call.headers}
        headers["Content-Type"] = "application/json"
        url = upstream.base + call.path
        timeouts = upstream.spec.timeouts
        gauge = self.metrics.upstream_in_flight.labels(upstream.name)
        upstream.inflight += 1
        gauge.inc()
        try:
            try:
                async with asyncio.timeout(timeouts.first_byte):
                    resp = await upstream.session().post(
                        url, data=call.body, headers=headers, params=call.params or None
                    )
            except TimeoutError as exc:
                raise Failure(
                    "timeout",
                    UpstreamTimeout(
                        f"upstream '{upstream.name}' sent no response within {timeouts.first_byte}s"
                    ),
                ) from exc
            except aiohttp.ClientError as exc:
                raise Failure(
                    "unreachable",
                    UpstreamUnavailable(f"upstream '{upstream.name}' is unreachable: {exc}"),
                ) from exc
            try:
                yield resp
            finally:
                resp.release()
        finally:
            upstream.inflight -= 1
            gauge.dec()


def _route(runtime: Runtime, creq: ClientRequest) -> tuple[Decision, list[Model]]:
    """Candidates for the request, in order, and the decision record they start."""
    resolution = runtime.table.resolve(creq.model)
    if resolution is None:
        raise ModelNotFound(
            f"The model '{creq.model}' does not exist on this gateway; "
            "GET /v1/models lists the routes and models it serves",
            param="model",
        )
    candidates = [
        m for m in resolution.candidates if runtime.upstreams[m.upstream].provider.supports(creq.op)
    ]
    if not candidates:
        raise InvalidRequest(
            f"'{creq.model}' has no model that serves {_ENDPOINTS.get(creq.op, creq.op)}",
            param="model",
        )
    return Decision(resolution.route, resolution.reason, len(candidates)), candidates


def _status_failure(
    upstream: UpstreamClient, status: int, payload: bytes, headers: Mapping[str, str]
) -> Failure | UpstreamRejected:
    """Map an upstream error status: retryable ones become Failure, others go to the client."""
    body = upstream.provider.error(status, payload)
    message = str(body.get("error", {}).get("message", ""))[:500]
    if status == 429:
        retry_after = headers.get("Retry-After")
        return Failure(
            "rate_limited",
            RateLimited(
                f"upstream '{upstream.name}' is rate limited: {message}",
                headers={"Retry-After": str(retry_after)} if retry_after else {},
            ),
        )
    if status >= 500 or status in (408, 409):
        return Failure(
            f"status_{status // 100}xx" if status >= 500 else f"status_{status}",
            UpstreamUnavailable(f"upstream '{upstream.name}' answered {status}: {message}"),
        )
    return UpstreamRejected(status, body)
