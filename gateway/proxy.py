"""Sends one client request upstream: resolve candidates, try them in order, answer the client.

Called by ``handlers`` with the Runtime the request leased. A candidate that fails before anything
reached the client (unreachable, timeout, 429, 5xx, a stream that dies before its first chunk) is
followed by the next; any other upstream 4xx goes back to the client unchanged. Streams are handed
to ``relay`` once the first chunk is in hand. Usage and outcome are accounted here, once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
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
    RateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchman.gateway.exchange import UpstreamCall, Usage
from switchman.gateway.metrics import Metrics
from switchman.gateway.request import REQUEST_ID, STARTED, ClientRequest
from switchman.gateway.runtime import Runtime
from switchman.gateway.upstreams import UpstreamClient

log = logging.getLogger("switchman.gateway.proxy")

# Client headers worth passing upstream; everything else (notably Authorization) stays here.
_FORWARDED = ("traceparent", "tracestate", "x-request-id")
_ENDPOINTS = {"chat": "/v1/chat/completions", "completions": "/v1/completions"}


class Proxy:
    """Stateless between requests apart from metrics; safe to run in every worker process."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def forward(
        self, request: web.Request, runtime: Runtime, creq: ClientRequest
    ) -> web.StreamResponse:
        resolution = runtime.table.resolve(creq.model)
        if resolution is None:
            raise ModelNotFound(
                f"The model '{creq.model}' does not exist on this gateway; "
                "GET /v1/models lists the routes and models it serves",
                param="model",
            )
        candidates = [
            m
            for m in resolution.candidates
            if runtime.upstreams[m.upstream].provider.supports(creq.op)
        ]
        if not candidates:
            raise InvalidRequest(
                f"'{creq.model}' has no model that serves {_ENDPOINTS.get(creq.op, creq.op)}",
                param="model",
            )
        decision = Decision(resolution.route, resolution.reason, len(candidates))
        started = time.perf_counter()
        usage: Usage | None = None
        try:
            response, usage = await self._try_candidates(
                request, runtime, creq, candidates, decision
            )
            return response
        except GatewayError as exc:
            exc.headers.update(decision.headers())
            decision.outcome = "client_error" if exc.status < 500 and exc.status != 429 else "error"
            raise
        finally:
            self._account(decision, usage, time.perf_counter() - started)

    async def _try_candidates(
        self,
        request: web.Request,
        runtime: Runtime,
        creq: ClientRequest,
        candidates: list[Model],
        decision: Decision,
    ) -> tuple[web.StreamResponse, Usage | None]:
        forwarded = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
        forwarded["x-request-id"] = request[REQUEST_ID]
        last: Failure | None = None
        for model in candidates[: runtime.config.server.max_attempts]:
            upstream = runtime.upstreams[model.upstream]
            try:
                if upstream.problem:
                    raise Failure(
                        "unconfigured",
                        UpstreamUnavailable(f"upstream '{upstream.name}': {upstream.problem}"),
                    )
                call = upstream.provider.prepare(creq.op, creq.body, model.target, creq.stream)
                if creq.stream:
                    return await self._stream(
                        request, creq, model, upstream, call, forwarded, decision
                    )
                return await self._unary(creq, model, upstream, call, forwarded, decision)
            except Failure as failure:
                decision.record(model, upstream, failure.reason)
                self.metrics.upstream_attempts.labels(upstream.name, failure.reason).inc()
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
                self.metrics.upstream_attempts.labels(upstream.name, "rejected").inc()
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
    ) -> tuple[web.StreamResponse, Usage | None]:
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
            body, usage = upstream.provider.decode(creq.op, payload)
        except (ValueError, KeyError, TypeError) as exc:
            raise Failure(
                "bad_response",
                UpstreamUnavailable(f"upstream '{upstream.name}' sent a response it cannot parse"),
            ) from exc
        decision.serve(model, upstream)
        decision.outcome = "ok"
        self.metrics.upstream_attempts.labels(upstream.name, "ok").inc()
        response = web.Response(
            body=body, content_type="application/json", headers=decision.headers()
        )
        return response, usage

    async def _stream(
        self,
        request: web.Request,
        creq: ClientRequest,
        model: Model,
        upstream: UpstreamClient,
        call: UpstreamCall,
        forwarded: dict[str, str],
        decision: Decision,
    ) -> tuple[web.StreamResponse, Usage | None]:
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
            self.metrics.upstream_attempts.labels(upstream.name, "ok").inc()
            response = web.StreamResponse(headers=decision.headers())
            response.content_type = "text/event-stream"
            response.headers["Cache-Control"] = "no-cache"
            response.headers["X-Accel-Buffering"] = "no"
            await response.prepare(request)
            self.metrics.time_to_first_token.labels(decision.route, model.name).observe(
                time.perf_counter() - request[STARTED]
            )
            decision.outcome = await stream.rest(response, first, upstream.name)
            if decision.outcome != "ok":
                resp.close()  # cancel the upstream generation nobody will read
        return response, decoder.usage

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

    def _account(self, decision: Decision, usage: Usage | None, seconds: float) -> None:
        """The single place a finished request is counted (retries never double-count)."""
        model = decision.model.name if decision.model else "none"
        self.metrics.requests.labels(decision.route, model, decision.outcome).inc()
        self.metrics.request_duration.labels(decision.route, model).observe(seconds)
        if usage is not None:
            self.metrics.tokens.labels(model, "input").inc(usage.prompt_tokens)
            self.metrics.tokens.labels(model, "output").inc(usage.completion_tokens)


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
