"""One upstream attempt: send the request to one replica and answer the client from it.

Called by ``proxy`` for each attempt it decides on. ``unary`` reads a whole answer; ``stream``
relays a stream (``relay``), committing to it only once the first client-visible bytes are in
hand, or, when the stream was already committed by an earlier attempt that broke off, continuing
it in the same client response (``continuation``). Failures come out as ``failover.Failure``
(``relay.Cut`` after a commit), a 4xx for the client as ``UpstreamRejected``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from switchman.api.gatewayconfig import Model
from switchman.gateway.errors import UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from switchman.gateway.providers.exchange import Operation, ResponseInfo, UpstreamCall
from switchman.gateway.replicas.endpoints import Endpoint
from switchman.gateway.serve import relay
from switchman.gateway.serve.continuation import Continued, Sent, Transcript
from switchman.gateway.serve.failures import Failure, status_failure
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.client import StreamDecoder, UpstreamClient


@dataclass(slots=True)
class ClientStream:
    """The client side of a streamed request, shared by its attempts."""

    request: web.Request
    wants_usage: bool
    transcript: Transcript | None  # kept when a cut stream may be continued
    response: web.StreamResponse | None = None  # set once committed
    sent: Sent | None = None  # what the client had when the last attempt broke off
    first_chunk_at: float | None = None
    gaps: list[float] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class Target:
    """Where one attempt goes."""

    model: Model
    upstream: UpstreamClient
    endpoint: Endpoint


def post(
    upstream: UpstreamClient, endpoint: Endpoint, call: UpstreamCall, forwarded: Mapping[str, str]
) -> Any:
    """Send ``call`` to one replica on the upstream's pooled session (await it, or enter it)."""
    headers = {**upstream.spec.headers, **forwarded, **call.headers}
    headers["Content-Type"] = "application/json"
    return upstream.session().post(
        endpoint.base + call.path, data=call.body, headers=headers, params=call.params or None
    )


@asynccontextmanager
async def open_upstream(
    metrics: Metrics, target: Target, call: UpstreamCall, forwarded: Mapping[str, str]
) -> AsyncIterator[aiohttp.ClientResponse]:
    """Send the request and wait for response headers; count it in flight meanwhile."""
    upstream, endpoint = target.upstream, target.endpoint
    timeouts = upstream.spec.timeouts
    gauge = metrics.upstream_in_flight.labels(upstream.name)
    upstream.inflight += 1
    endpoint.inflight += 1
    gauge.inc()
    try:
        try:
            async with asyncio.timeout(timeouts.first_byte_s):
                resp = await post(upstream, endpoint, call, forwarded)
        except TimeoutError as exc:
            raise Failure(
                "timeout",
                UpstreamTimeout(
                    f"upstream '{upstream.name}' sent no response within {timeouts.first_byte_s}s"
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
        endpoint.inflight -= 1
        gauge.dec()


async def unary(
    metrics: Metrics,
    target: Target,
    op: Operation,
    call: UpstreamCall,
    forwarded: Mapping[str, str],
) -> tuple[bytes, ResponseInfo]:
    """A whole answer from one attempt: the client's body bytes and what they say."""
    upstream = target.upstream
    timeouts = upstream.spec.timeouts
    try:
        async with (
            asyncio.timeout(timeouts.total_s),
            open_upstream(metrics, target, call, forwarded) as resp,
        ):
            payload = await resp.read()
            if resp.status >= 400:
                raise _status(upstream, resp.status, payload, resp.headers)
    except TimeoutError as exc:
        raise Failure(
            "timeout",
            UpstreamTimeout(f"upstream '{upstream.name}' took over {timeouts.total_s}s"),
        ) from exc
    except aiohttp.ClientError as exc:
        raise Failure(
            "broken_response",
            UpstreamUnavailable(f"upstream '{upstream.name}' broke off its response: {exc}"),
        ) from exc
    try:
        return upstream.provider.decode(op, payload)
    except (ValueError, KeyError, TypeError) as exc:
        raise Failure(
            "bad_response",
            UpstreamUnavailable(f"upstream '{upstream.name}' sent a response it cannot parse"),
        ) from exc


async def stream(
    metrics: Metrics,
    target: Target,
    op: Operation,
    call: UpstreamCall,
    forwarded: Mapping[str, str],
    client: ClientStream,
    commit: Callable[[], dict[str, str]],
) -> tuple[str, ResponseInfo, float]:
    """Relay one attempt's stream; returns (outcome, info, seconds to its first chunk).

    ``commit`` is called when this attempt is the one that starts the client's stream: it
    returns the response headers (the decision record as of now).
    """
    upstream = target.upstream
    timeouts = upstream.spec.timeouts
    loop = asyncio.get_running_loop()
    started = loop.time()
    decoder: StreamDecoder = upstream.provider.stream(op, target.model.target, client.wants_usage)
    if client.sent is not None:
        decoder = Continued(decoder, client.sent)
    async with open_upstream(metrics, target, call, forwarded) as resp:
        if resp.status >= 400:
            payload = await relay.read_error(resp, timeouts.idle_s)
            raise _status(upstream, resp.status, payload, resp.headers)
        pipe = relay.Relay(
            resp,
            decoder,
            idle=timeouts.idle_s,
            deadline=started + timeouts.total_s,
            transcript=client.transcript,
        )
        first = await pipe.first(upstream.name)
        ttft = loop.time() - started
        if client.response is None:
            response = web.StreamResponse(headers=commit())
            response.content_type = "text/event-stream"
            response.headers["Cache-Control"] = "no-cache"
            response.headers["X-Accel-Buffering"] = "no"
            await response.prepare(client.request)
            client.response = response
            client.first_chunk_at = loop.time()
        try:
            outcome = await pipe.rest(client.response, first, upstream.name)
        finally:
            if (gap := pipe.mean_gap()) is not None:
                client.gaps.append(gap)
        if outcome != "ok":
            resp.close()  # cancel the upstream generation nobody will read
    info = ResponseInfo(
        usage=decoder.usage, model=decoder.model, finish_reasons=decoder.finish_reasons
    )
    return outcome, info, ttft


def _status(
    upstream: UpstreamClient, status: int, payload: bytes, headers: Mapping[str, str]
) -> Failure | UpstreamRejected:
    return status_failure(upstream.name, status, upstream.provider.error(status, payload), headers)
