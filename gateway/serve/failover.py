"""One request's walk through its plan: attempts, retries, failover and stream continuation.

Created by ``proxy`` for each request once it is planned. For each model of the plan, up to the
policy's ``per_candidate`` attempts, each on a replica the upstream's ``EndpointSet`` picks (load,
prefix affinity) and its circuit breaker admits, within the attempt limit, the deadline and the
route's retry budget (only retries of the same model are charged to it). What a failure means for
the next attempt is ``failover``'s call; one attempt's exchange is ``forward``'s. A stream cut
after the client saw tokens is continued on the next attempt (``continuation``) or ended with an
error event.
"""

from __future__ import annotations

import asyncio
import logging
import random

from aiohttp import web

from switchman.api.resilience import Retry
from switchman.gateway.errors import UpstreamRejected, UpstreamUnavailable
from switchman.gateway.providers.exchange import ResponseInfo
from switchman.gateway.replicas.affinity import AffinityKey, affinity_key
from switchman.gateway.replicas.endpoints import Endpoint
from switchman.gateway.routing.table import Plan
from switchman.gateway.serve import attempt as forward
from switchman.gateway.serve import continuation
from switchman.gateway.serve.attempts import Decision
from switchman.gateway.serve.backoff import RetryBudget, backoff_delay
from switchman.gateway.serve.failures import Failure
from switchman.gateway.serve.observe import Observation
from switchman.gateway.serve.relay import Cut, terminate
from switchman.gateway.serve.request import REQUEST_ID, ClientRequest
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.runtime import Runtime

log = logging.getLogger("switchman.gateway.serve.failover")

# Client headers worth passing upstream; everything else (notably Authorization) stays here.
_FORWARDED = ("traceparent", "tracestate", "x-request-id")


class Walk:
    """The attempts of one request (see the module docstring)."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        rng: random.Random,
        budget: RetryBudget,
        policy: Retry,
        request: web.Request,
        runtime: Runtime,
        creq: ClientRequest,
        plan: Plan,
        decision: Decision,
        obs: Observation,
    ) -> None:
        self.metrics = metrics
        self.rng = rng
        self.budget = budget
        self.policy = policy
        self.request = request
        self.runtime = runtime
        self.creq = creq
        self.plan = plan
        self.decision = decision
        self.obs = obs

    async def run(self) -> tuple[web.StreamResponse, ResponseInfo | None]:
        """Try the plan's models in order with retries; see the module docstring."""
        request, runtime, creq = self.request, self.runtime, self.creq
        plan, decision, obs = self.plan, self.decision, self.obs
        spec = plan.spec
        policy = self.policy
        budget = self.budget
        budget.request()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + policy.deadline_s
        forwarded = {h: request.headers[h] for h in _FORWARDED if h in request.headers}
        forwarded["x-request-id"] = request[REQUEST_ID]
        mid_stream = spec.mid_stream if spec is not None else runtime.config.server.mid_stream
        keep = creq.stream and mid_stream == "continue"
        client = forward.ClientStream(
            request, creq.wants_usage, continuation.Transcript() if keep else None
        )
        order = list(plan.order)
        attempts = 0
        last: Failure | None = None
        index = 0
        while index < len(order) and attempts < policy.max_attempts:
            model = order[index]
            index += 1
            upstream = runtime.upstreams[model.upstream]
            key: AffinityKey | None = None
            if len(upstream.endpoints.endpoints) > 1:
                key = affinity_key(creq.op, creq.body, request.headers, upstream.spec.balance)
            tried: list[Endpoint] = []
            per = 0
            while per < policy.per_candidate and attempts < policy.max_attempts:
                failure = _unusable(upstream.problem, upstream.name)
                endpoint = None
                if failure is None:
                    endpoint = upstream.endpoints.pick(key, tried) or (
                        upstream.endpoints.pick(key) if per else None
                    )
                    if endpoint is None:
                        failure = Failure(
                            "no_endpoint",
                            UpstreamUnavailable(f"upstream '{upstream.name}' has no ready replica"),
                            scope="model",
                        )
                    elif not endpoint.breaker.acquire():
                        tried.append(endpoint)
                        failure = Failure(
                            "circuit_open",
                            UpstreamUnavailable(f"upstream '{upstream.name}': circuit open"),
                        )
                if failure is not None:
                    last = failure
                    decision.record(model, upstream, failure.reason)
                    if failure.reason == "circuit_open" and len(tried) < len(
                        upstream.endpoints.endpoints
                    ):
                        continue
                    break
                assert endpoint is not None
                if attempts:
                    # Only another try of the same model is charged to the retry budget: that is
                    # what multiplies load on a failing upstream. Moving to another model and
                    # continuing a cut stream are what keep a healthy alternative serving.
                    charged = per > 0 and client.sent is None
                    late = loop.time() >= deadline
                    if late or (charged and not budget.try_retry()):
                        why = "deadline" if late else "retry_budget"
                        endpoint.breaker.release()
                        self.metrics.retries_exhausted.labels(plan.route, why).inc()
                        if late:
                            index = len(order)
                        break  # budget spent: no more tries of this model; the next may serve
                    cause = last.reason if last else "unknown"
                    self.metrics.retries.labels(plan.route, cause).inc()
                attempts += 1
                per += 1
                target = forward.Target(model, upstream, endpoint)
                try:
                    result = await self._attempt(target, client, forwarded)
                except Failure as exc:
                    last = exc
                    self._failed(target, exc)
                    if isinstance(exc, Cut):
                        client.sent = client.transcript.read() if client.transcript else None
                        decision.continued += 1
                        self.metrics.midstream.labels(plan.route, exc.reason).inc()
                    if exc.scope == "endpoint":
                        endpoint.breaker.failure()
                        tried.append(endpoint)
                        # Another replica of this model, or this model again when it is the
                        # last one left; otherwise the next model at once.
                        if upstream.endpoints.pick(key, tried) is not None:
                            continue
                        if index < len(order) or per >= policy.per_candidate:
                            break
                        delay = backoff_delay(
                            per - 1, policy.backoff_base_s, policy.backoff_max_s, self.rng
                        )
                        await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
                        continue
                    endpoint.breaker.success()  # it answered; the answer was the problem
                    if exc.scope == "model":
                        wait = exc.retry_after if exc.retry_after is not None else 1.0
                        upstream.cool_down(wait)
                        if index >= len(order) and wait <= policy.retry_after_max_s:
                            await asyncio.sleep(wait)
                            continue
                    elif exc.scope == "context":
                        window = model.capabilities.context_window
                        order[index:] = [
                            m for m in order[index:] if m.capabilities.context_window > window
                        ]
                    elif spec is None or spec.on_content_filter == "fail":
                        raise exc.error from None
                    break
                except UpstreamRejected:
                    endpoint.breaker.success()
                    decision.record(model, upstream, "rejected", endpoint.address)
                    obs.attempt_failed(decision, upstream, "rejected")
                    raise
                except BaseException:
                    endpoint.breaker.release()
                    raise
                endpoint.breaker.success()
                upstream.endpoints.served(endpoint, key)
                return result
        if client.response is not None:  # committed: end the stream well-formed
            error = last.error if last else UpstreamUnavailable("no upstream could continue")
            decision.outcome = await terminate(client.response, last.reason if last else "", error)
            return client.response, None
        if last is None:
            raise UpstreamUnavailable(f"no model behind '{plan.route}' is available")
        raise last.error

    async def _attempt(
        self, target: forward.Target, client: forward.ClientStream, forwarded: dict[str, str]
    ) -> tuple[web.StreamResponse, ResponseInfo | None]:
        """One attempt on one replica; its bookkeeping in the decision and the observation."""
        creq, decision, obs = self.creq, self.decision, self.obs
        model, upstream, endpoint = target.model, target.upstream, target.endpoint
        headers = dict(forwarded)
        obs.attempt(model, upstream, headers, endpoint.address)
        body = creq.body
        if client.sent is not None:
            continued = continuation.request_body(
                creq.op, body, client.sent, upstream.spec.continues_by
            )
            if continued is None:
                raise Failure(
                    "not_continuable",
                    UpstreamUnavailable("the stream broke off and cannot be continued"),
                    scope="model",
                )
            body = continued
        call = upstream.provider.prepare(creq.op, body, model.target, creq.stream)
        loop = asyncio.get_running_loop()
        started = loop.time()
        if not creq.stream:
            payload, info = await forward.unary(self.metrics, target, creq.op, call, headers)
            upstream.latency.observe_unary(
                loop.time() - started, info.usage.completion_tokens if info.usage else None
            )
            decision.serve(model, upstream, endpoint.address)
            decision.outcome = "ok"
            obs.attempt_ended(model, upstream, "ok")
            response = web.Response(
                body=payload, content_type="application/json", headers=decision.headers()
            )
            return response, info
        served = False

        def commit() -> dict[str, str]:
            nonlocal served
            served = True
            decision.serve(model, upstream, endpoint.address)
            obs.first_chunk(decision.route, model.name)
            return decision.headers()

        outcome, info, ttft = await forward.stream(
            self.metrics, target, creq.op, call, headers, client, commit
        )
        if not served:
            decision.serve(model, upstream, endpoint.address)
        decision.outcome = outcome
        obs.attempt_ended(model, upstream, outcome)
        if client.gaps:
            obs.inter_chunk_s = sum(client.gaps) / len(client.gaps)
        if outcome == "ok":
            upstream.latency.observe_stream(
                ttft, loop.time() - started, info.usage.completion_tokens if info.usage else None
            )
        assert client.response is not None
        return client.response, info

    def _failed(self, target: forward.Target, failure: Failure) -> None:
        decision, obs = self.decision, self.obs
        address = target.endpoint.address
        recorded = decision.attempts[-1] if decision.attempts else None
        if isinstance(failure, Cut) and recorded and recorded.outcome == "ok":
            recorded.outcome = failure.reason  # the attempt that committed the stream broke off
        else:
            decision.record(target.model, target.upstream, failure.reason, address)
        obs.attempt_failed(decision, target.upstream, failure.reason)
        obs.moved_on(decision.route, failure.reason)
        log.info(
            "attempt failed request_id=%s model=%s upstream=%s endpoint=%s reason=%s: %s",
            self.request[REQUEST_ID],
            target.model.name,
            target.upstream.name,
            target.endpoint.address,
            failure.reason,
            failure.error.message,
        )


def _unusable(problem: str | None, name: str) -> Failure | None:
    if not problem:
        return None
    return Failure(
        "unconfigured", UpstreamUnavailable(f"upstream '{name}': {problem}"), scope="model"
    )
