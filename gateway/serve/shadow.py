"""Shadow traffic: mirror a share of a route's requests to another model and discard the answer.

``proxy`` calls ``Shadows.maybe`` once it has planned a request on a route with ``shadow``. The
mirror runs as its own task on the event loop: the client's request never waits for it and never
sees its failures. Latency, tokens and outcome are recorded in metrics
(``switchman_shadow_*``). Mirrors over the route's ``max_in_flight`` are skipped, not queued, so a
slow shadow model cannot build up memory. Each mirror holds a lease on its Runtime, like a
request, so a reload does not close its upstream under it.
"""

from __future__ import annotations

import asyncio
import logging
import random

from switchman.api.routes import Route
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.providers.sse import SSEParser
from switchman.gateway.serve import attempt as forward
from switchman.gateway.serve.failures import Failure
from switchman.gateway.serve.request import ClientRequest
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy import pricing
from switchman.gateway.upstreams.client import StreamDecoder
from switchman.gateway.upstreams.runtime import Runtime
from switchman.gateway.upstreams.wire import Response, WireError

log = logging.getLogger("switchman.gateway.serve.shadow")


class Shadows:
    """The process's shadow mirrors in flight."""

    def __init__(self, metrics: Metrics, rng: random.Random) -> None:
        self.metrics = metrics
        self.rng = rng
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight: dict[str, int] = {}

    def maybe(self, runtime: Runtime, route: Route, creq: ClientRequest) -> None:
        """Start a mirror of ``creq`` for ``route.shadow.percent`` percent of calls."""
        shadow = route.shadow
        if shadow is None or self.rng.random() * 100.0 >= shadow.percent:
            return
        model = runtime.table.models[shadow.model]
        if self._in_flight.get(route.name, 0) >= shadow.max_in_flight:
            self.metrics.shadow_requests.labels(route.name, model.name, "skipped").inc()
            return
        self._in_flight[route.name] = self._in_flight.get(route.name, 0) + 1
        runtime.acquire()
        task = asyncio.get_running_loop().create_task(
            self._mirror(runtime, route.name, model.name, creq)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel mirrors still running (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _mirror(self, runtime: Runtime, route: str, name: str, creq: ClientRequest) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        outcome = "error"
        usage: Usage | None = None
        try:
            usage = await self._send(runtime, name, creq)
            outcome = "ok"
        except asyncio.CancelledError:
            outcome = "cancelled"
            raise
        except _ShadowFailed as exc:
            outcome = exc.outcome
        except (WireError, TimeoutError, OSError):
            outcome = "unreachable"
        except Exception:  # a mirror must never take anything down with it
            log.exception("shadow request to %s failed", name)
        finally:
            self._in_flight[route] -= 1
            runtime.release()
            self.metrics.shadow_requests.labels(route, name, outcome).inc()
            self.metrics.shadow_duration.labels(route, name).observe(loop.time() - started)
            if usage is not None:
                self.metrics.shadow_tokens.labels(route, name, "input").inc(usage.prompt_tokens)
                self.metrics.shadow_tokens.labels(route, name, "output").inc(
                    usage.completion_tokens
                )
                # Reported on its own: a shadow is never billed to the tenant that asked.
                price = runtime.table.models[name].price
                self.metrics.shadow_cost.labels(route, name).inc(pricing.usage_cost(price, usage))

    async def _send(self, runtime: Runtime, name: str, creq: ClientRequest) -> Usage | None:
        model = runtime.table.models[name]
        upstream = runtime.upstreams[model.upstream]
        if upstream.problem or not upstream.provider.supports(creq.op):
            raise _ShadowFailed("unconfigured")
        endpoint = upstream.endpoints.pick(None)
        if endpoint is None:
            raise _ShadowFailed("no_endpoint")
        call = upstream.provider.prepare(creq.op, creq.body, model.target, creq.stream)
        async with (
            asyncio.timeout(upstream.spec.timeouts.total_s),
            await forward.post(upstream, endpoint, call, {}) as resp,
        ):
            if resp.status >= 300:  # redirects are never followed, for shadows either
                raise _ShadowFailed(f"status_{resp.status // 100}xx")
            if not creq.stream:
                try:
                    payload = await forward.read_capped(upstream, resp)
                except Failure as failure:  # over server.edge.max_response_bytes
                    raise _ShadowFailed(failure.reason) from None
                return upstream.provider.decode(creq.op, payload)[1].usage
            return await _drain(upstream.provider.stream(creq.op, model.target, True), resp)


async def _drain(decoder: StreamDecoder, resp: Response) -> Usage | None:
    parser = SSEParser()
    while chunk := await resp.read():
        for event in parser.feed(chunk):
            decoder.feed(event)
    return decoder.usage


class _ShadowFailed(Exception):
    def __init__(self, outcome: str) -> None:
        super().__init__(outcome)
        self.outcome = outcome
