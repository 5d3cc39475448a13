"""One upstream attempt: send the request to one replica and read its answer.

Called by ``failover`` for each attempt it decides on. ``unary`` reads a whole answer; ``stream``
relays a stream (``relay``) to the request's ``downstream.ClientStream``, committing it only once
the first client-visible bytes are in hand, or, when the stream was already committed by an
earlier attempt that broke off, continuing it in the same client response (``continuation``).
Failures come out as ``failures.Failure`` (``relay.Cut`` after a commit), a 4xx for the client as
``UpstreamRejected``; once the stream is committed a 4xx is the attempt's failure too (scope
``continuation``), never a second response.

At the edge (``server.edge``): redirects are never followed (a 3xx is a failure), a whole answer
is read up to ``max_response_bytes`` and a stream up to ``max_stream_bytes``, and every upstream
body, error and stream event passes the Runtime's ``Redactor`` (every resolved credential) before
anything reads, wraps, logs or relays it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from switchman.api.gatewayconfig import Model
from switchman.gateway.errors import UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from switchman.gateway.providers.exchange import Operation, ResponseInfo, UpstreamCall
from switchman.gateway.replicas.replica import Endpoint
from switchman.gateway.serve import relay
from switchman.gateway.serve.continuation import Continued, Sent
from switchman.gateway.serve.deadlines import Deadlines
from switchman.gateway.serve.downstream import ClientStream
from switchman.gateway.serve.failures import (
    GENERATION_TIMEOUT,
    RESPONSE_TOO_LARGE,
    Failure,
    status_failure,
)
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.client import StreamDecoder, UpstreamClient
from switchman.gateway.upstreams.wire import Response, WireError


@dataclass(slots=True)  # not frozen: a frozen init costs twice as much, per request
class Target:
    """Where one attempt goes."""

    model: Model
    upstream: UpstreamClient
    endpoint: Endpoint


def post(
    upstream: UpstreamClient, endpoint: Endpoint, call: UpstreamCall, forwarded: Mapping[str, str]
) -> Coroutine[Any, Any, Response]:
    """Send ``call`` to one replica on the upstream's connection pool (``upstreams.pool``); the
    response, once its headers are in, must be released (``async with`` does). Raises
    ``WireError``. The pool's own coroutine, awaited by the caller: no frame of its own on the
    way of every resumption."""
    headers = {**upstream.spec.headers, **forwarded, **call.headers}
    headers["Content-Type"] = "application/json"
    return upstream.wire.request(endpoint.base, call.path, headers, call.body, call.params or None)


class OpenUpstream:
    """``async with OpenUpstream(...) as resp``: send the request and wait for response headers
    (at most ``first_byte_s``, on ``deadlines``; None: the caller bounds it), counted in flight
    meanwhile; the response is released on the way out. A class rather than an
    ``@asynccontextmanager``, whose generator and wrapper cost about 1.3 µs more per attempt."""

    __slots__ = (
        "_call",
        "_deadlines",
        "_first_byte_s",
        "_forwarded",
        "_gauge",
        "_resp",
        "_target",
    )

    def __init__(
        self,
        metrics: Metrics,
        target: Target,
        call: UpstreamCall,
        forwarded: Mapping[str, str],
        first_byte_s: float | None,
        deadlines: Deadlines,
    ) -> None:
        self._target, self._call, self._forwarded = target, call, forwarded
        self._first_byte_s, self._deadlines = first_byte_s, deadlines
        self._gauge = metrics.upstream_in_flight.labels(target.upstream.name)
        self._resp: Response | None = None

    async def __aenter__(self) -> Response:
        upstream, endpoint = self._target.upstream, self._target.endpoint
        upstream.inflight += 1
        endpoint.inflight += 1
        self._gauge.inc()
        try:
            if self._first_byte_s is None:  # no timer of its own (the caller's bounds it)
                self._resp = await post(upstream, endpoint, self._call, self._forwarded)
            else:
                async with self._deadlines.after(self._first_byte_s):
                    self._resp = await post(upstream, endpoint, self._call, self._forwarded)
        except BaseException as exc:
            self._done()
            if isinstance(exc, TimeoutError):
                error = f"upstream '{upstream.name}' sent no response within {self._first_byte_s}s"
                raise Failure("timeout", UpstreamTimeout(error)) from exc
            if isinstance(exc, WireError):
                error = f"upstream '{upstream.name}' is unreachable: {exc}"
                raise Failure("unreachable", UpstreamUnavailable(error)) from exc
            raise
        return self._resp

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            assert self._resp is not None
            self._resp.release()
        finally:
            self._done()

    def _done(self) -> None:
        upstream, endpoint = self._target.upstream, self._target.endpoint
        upstream.inflight -= 1
        endpoint.inflight -= 1
        self._gauge.dec()


async def unary(
    metrics: Metrics,
    target: Target,
    op: Operation,
    call: UpstreamCall,
    forwarded: Mapping[str, str],
    native: bool = False,
    *,
    deadlines: Deadlines,
) -> tuple[bytes, ResponseInfo]:
    """A whole answer from one attempt: the client's body bytes and what they say (``native``:
    the upstream's own bytes, for a client speaking its format; read by the provider all the same).

    Bounded by the generation timeout (``timeouts.total_s``) alone, on the process's
    ``deadlines``: a server sends a whole answer's headers only once it has generated it, so
    ``first_byte_s`` would cut long answers.
    """
    upstream = target.upstream
    timeouts = upstream.spec.timeouts
    try:
        deadline = deadlines.after(timeouts.total_s).enter()  # ``async with``, less 2 coroutines
        try:
            async with OpenUpstream(metrics, target, call, forwarded, None, deadlines) as resp:
                payload = upstream.redactor.data(await read_capped(upstream, resp))
                if resp.status >= 300:
                    raise _status(upstream, resp.status, payload, resp.headers)
        except BaseException as exc:
            deadline.exit(type(exc), exc)  # a TimeoutError in its place when the time was up
            raise
        deadline.exit(None, None)
    except TimeoutError as exc:
        raise Failure(
            GENERATION_TIMEOUT,
            UpstreamTimeout(
                f"upstream '{upstream.name}' generated for over {timeouts.total_s}s "
                "(timeouts.total_s) without finishing"
            ),
        ) from exc
    except WireError as exc:
        raise Failure(
            "broken_response",
            UpstreamUnavailable(f"upstream '{upstream.name}' broke off its response: {exc}"),
        ) from exc
    try:
        body, info = upstream.provider.decode(op, payload)
        return (payload if native else body), info
    except (ValueError, KeyError, TypeError) as exc:
        raise Failure(
            "bad_response",
            UpstreamUnavailable(f"upstream '{upstream.name}' sent a response it cannot parse"),
        ) from exc


class Hold(Protocol):
    """The quality guard's hold of a stream's start (``guard``): how many client-visible
    chunks to read before committing, and the verdict on them (a Failure escalates)."""

    chunks: int

    def check(self, held: bytes, ended: bool) -> Failure | None: ...


async def stream(
    metrics: Metrics,
    target: Target,
    op: Operation,
    call: UpstreamCall,
    forwarded: Mapping[str, str],
    client: ClientStream,
    sent: tuple[Sent, str] | None,
    commit: Callable[[], dict[str, str]],
    hold: Hold | None = None,
    *,
    deadlines: Deadlines,
) -> tuple[str, ResponseInfo, float]:
    """Relay one attempt's stream; returns (outcome, info, seconds to its first chunk).

    ``sent`` is what the client already has, and the mechanism asking for the rest, when this
    attempt continues a cut stream.
    ``commit`` is called when this attempt is the one that starts the client's stream: it
    returns the response headers (the decision record as of now).
    ``hold``: before a commit, read up to ``hold.chunks`` chunks and raise its verdict, if any.
    ``deadlines``: the process's, bounding the waits for the headers and for each next read.
    """
    upstream, timeouts = target.upstream, target.upstream.spec.timeouts
    loop = asyncio.get_running_loop()
    started = loop.time()
    model_id = target.model.target
    if sent is None:
        decoder: StreamDecoder = client.decoder(upstream.provider, op, model_id)
    else:  # a continuation is read as chat: the client's answer is already under way
        decoder = Continued(upstream.provider.stream(op, model_id, client.wants_usage), *sent)
    first_byte_s = timeouts.first_byte_s
    async with OpenUpstream(metrics, target, call, forwarded, first_byte_s, deadlines) as resp:
        if resp.status >= 300:
            payload = await relay.read_error(resp, timeouts.idle_s, upstream.redactor)
            raise _refused(upstream, resp.status, payload, resp.headers, client.committed)
        pipe = relay.Relay(
            resp, decoder, idle=timeouts.idle_s, deadline=started + timeouts.total_s,
            redactor=upstream.redactor, max_bytes=upstream.edge.max_stream_bytes,
            deadlines=deadlines,
        )  # fmt: skip
        first = pipe.first_ready(upstream.name)  # (the common start: no coroutine)
        if first is None:
            first = await pipe.first(upstream.name)
        ttft = loop.time() - started
        if client.response is None:  # not committed by an earlier attempt
            if hold is not None:
                first = await _held(pipe, first, hold, upstream.name)
            await client.commit(commit())
        try:
            outcome = await pipe.rest(client, first, upstream.name)
        finally:
            if (gap := pipe.mean_gap()) is not None:
                client.gaps.append(gap)
        if outcome != "ok":
            resp.close()  # cancel the upstream generation nobody will read
        elif pipe.ended:
            resp.finish()  # reused if the body's end (a last chunk) follows the last event
    info = ResponseInfo(decoder.usage, decoder.model, decoder.finish_reasons)
    return outcome, info, ttft


async def _held(pipe: relay.Relay, first: bytes, hold: Hold, name: str) -> bytes:
    """The stream's first ``hold.chunks`` client-visible chunks, once the guard passed them."""
    parts = [first]
    while len(parts) < hold.chunks and not pipe.ended:
        parts.append(await pipe.first(name))
    held = b"".join(parts)
    failure = hold.check(held, pipe.ended)
    if failure is not None:
        raise failure
    return held


async def read_capped(upstream: UpstreamClient, resp: Response) -> bytes:
    """The whole body, or a ``response_too_large`` failure past ``max_response_bytes``. What
    is buffered already is taken without a wait (``ready``: the common whole answer came with
    its headers)."""
    cap = upstream.edge.max_response_bytes
    length = resp.content_length
    if length is not None and length > cap:
        raise _too_large(upstream, cap)
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = resp.ready()
        if chunk is None:
            chunk = await resp.read()
        if not chunk:
            break
        size += len(chunk)
        if size > cap:
            resp.close()
            raise _too_large(upstream, cap)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(upstream: UpstreamClient, cap: int) -> Failure:
    error = UpstreamUnavailable(
        f"upstream '{upstream.name}' answered over {cap} bytes (server.edge.max_response_bytes)"
    )
    return Failure(RESPONSE_TOO_LARGE, error, scope="model")


def _refused(
    upstream: UpstreamClient,
    status: int,
    payload: bytes,
    headers: Mapping[str, str],
    committed: bool,
) -> Failure | UpstreamRejected:
    failure = _status(upstream, status, payload, headers)
    rejected = isinstance(failure, UpstreamRejected) or failure.scope in ("context", "content")
    if committed and rejected:
        # The continuation target refused (a mechanism it does not support, a model it does not
        # have, a credential, a filter): this attempt's failure, never the client's answer.
        error = UpstreamUnavailable(
            f"upstream '{upstream.name}' refused to continue the stream ({status})"
        )
        return Failure("continuation_rejected", error, scope="continuation")
    return failure


def _status(
    upstream: UpstreamClient, status: int, payload: bytes, headers: Mapping[str, str]
) -> Failure | UpstreamRejected:
    return status_failure(upstream.name, status, upstream.provider.error(status, payload), headers)
