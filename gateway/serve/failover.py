"""The retry and failover loop of one request: attempts, retries, failover, stream continuation.

Created by ``proxy`` for each request once it is planned; ``Walk.run`` is two loops and named
steps. The outer loop takes the plan's models in order (``_models``); the inner one
(``_candidate``) makes up to the policy's ``per_candidate`` attempts on one model, each through:

- admission (``_admission``): the upstream is configured, its ``EndpointSet`` picks a replica
  (load, prefix affinity, the model's breaker; in panic mode any replica) and the replica's
  breakers admit the attempt, held as a ``lease.Lease`` so exactly one outcome is reported;
- the retry allowance (``_allowance``): the attempt limit, the deadline and the route's retry
  budget (only retries of the same model are charged to it);
- the attempt (``_attempt``: one exchange through ``attempt``, whole or streamed);
- what to do after a failure (``_after_failure``: the failure's scope, ``failures``): another
  replica, the same model again, the next model, or stop.

A stream cut after the client saw tokens is continued on the next attempt (``continuation``: the
upstream's mechanisms in order, the join verified) or ended. The request's one writer to the
client is its ``downstream.ClientStream``: once a stream is committed every outcome ends as SSE,
the rest of the answer then ``[DONE]``, or one error event; an error is raised for the app's
front (``app.Front``) to answer only while nothing was sent.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Literal

from aiohttp import web

from switchman.api.gatewayconfig import Model
from switchman.api.resilience import Retry
from switchman.gateway.errors import GatewayError, UpstreamRejected, UpstreamUnavailable
from switchman.gateway.providers.exchange import ResponseInfo, UpstreamCall
from switchman.gateway.replicas.affinity import AffinityKey, affinity_key
from switchman.gateway.replicas.replica import Endpoint
from switchman.gateway.routing.table import Plan
from switchman.gateway.serve import attempt as forward
from switchman.gateway.serve import continuation, guard
from switchman.gateway.serve.attempts import Decision
from switchman.gateway.serve.backoff import RetryBudget, backoff_delay
from switchman.gateway.serve.deadlines import Deadlines
from switchman.gateway.serve.downstream import ClientStream
from switchman.gateway.serve.failures import GENERATION_TIMEOUT, STREAM_TOO_LARGE, Failure
from switchman.gateway.serve.lease import Lease
from switchman.gateway.serve.observe import Observation
from switchman.gateway.serve.relay import Cut
from switchman.gateway.serve.request import REQUEST_ID, ClientRequest
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.client import UpstreamClient
from switchman.gateway.upstreams.runtime import Runtime

log = logging.getLogger("switchman.gateway.serve.failover")

# Client headers worth passing upstream, with our x-request-id; everything else (notably
# Authorization) stays here.
_FORWARDED = ("traceparent", "tracestate")

Step = Literal["again", "next", "stop"]  # after a failure: this model again, the next, or end
Answer = tuple[web.StreamResponse, ResponseInfo | None]


class _Candidate:
    """One model of the plan while the inner loop tries it (a plain class: a dataclass's
    ``default_factory`` init costs more, once per request)."""

    __slots__ = ("key", "model", "per", "target", "tried", "upstream")

    def __init__(self, model: Model, upstream: UpstreamClient, key: AffinityKey | None) -> None:
        self.model = model
        self.target = model.target  # its upstream model id (a property: read once)
        self.upstream = upstream
        self.key = key
        self.tried: list[Endpoint] = []
        self.per = 0  # attempts made on it


class Walk:
    """The attempts of one request (see the module docstring)."""

    __slots__ = (
        "attempts", "budget", "client", "creq", "cut", "deadline", "deadlines", "decision",
        "forwarded", "guard", "index", "keep", "kept", "last", "mechanism", "metrics", "obs",
        "order", "plan", "policy", "refused", "regenerated", "request", "rng", "runtime", "sent",
        "transcript",
    )  # fmt: skip

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
        deadlines: Deadlines,
    ) -> None:
        self.metrics, self.rng, self.budget, self.policy = metrics, rng, budget, policy
        self.deadlines = deadlines
        self.request, self.runtime, self.creq = request, runtime, creq
        self.plan, self.decision, self.obs = plan, decision, obs
        spec = plan.spec
        mid_stream = spec.mid_stream if spec is not None else runtime.config.server.mid_stream
        self.keep = creq.stream and mid_stream == "continue"
        self.transcript = continuation.Transcript() if self.keep else None
        self.client = ClientStream(request, creq.wants_usage, self.transcript, format=creq.format)
        get = request.headers.get
        forwarded: dict[str, str] = {}
        self.forwarded = forwarded
        for name in _FORWARDED:  # (a loop: a comprehension is a frame of its own in 3.11)
            if (value := get(name)) is not None:
                forwarded[name] = value
        forwarded["x-request-id"] = request[REQUEST_ID]  # ours (the client's if valid)
        self.order = list(plan.order)
        self.index = 0  # next model of ``order``
        self.attempts = 0
        self.regenerated = 0  # non-streamed generations that ran out of time
        self.deadline = 0.0
        self.last: Failure | None = None
        self.cut: Failure | None = None  # the first break of the committed stream
        self.sent: continuation.Sent | None = None  # what the client had at the last break
        self.mechanism: str | None = None  # how the current attempt asks to continue
        self.refused: dict[str, set[str]] = {}  # continuation mechanisms refused, per upstream
        self.guard = None if spec is None or spec.guard is None else guard.for_request(
            spec, runtime.table.models, plan.order, creq.op, creq.stream, creq.body,
            creq.format is None,
        )  # fmt: skip
        # the first escalated answer: served if no higher tier answers after all
        self.kept: tuple[bytes, ResponseInfo, Model, UpstreamClient, str | None] | None = None

    async def run(self) -> Answer:
        """Try the plan's models in order with retries; see the module docstring."""
        self.budget.request()
        self.deadline = asyncio.get_running_loop().time() + self.policy.deadline_s
        try:
            answer = await self._models()
        except GatewayError as exc:
            if not self.client.committed:
                raise
            return await self._end(exc.code or "error", exc)
        except Exception:
            if not self.client.committed:
                raise
            log.exception("request_id=%s failed mid-stream", self.request[REQUEST_ID])
            return await self._end("error", UpstreamUnavailable("the gateway failed mid-stream"))
        return answer if answer is not None else await self._exhausted()

    async def _models(self) -> Answer | None:
        """The outer loop: the plan's models in order, while attempts are left."""
        while self.index < len(self.order) and self.attempts < self.policy.max_attempts:
            model = self.order[self.index]
            self.index += 1
            upstream = self.runtime.upstreams[model.upstream]
            key: AffinityKey | None = None
            if len(upstream.endpoints.endpoints) > 1:
                creq = self.creq
                key = affinity_key(creq.op, creq.body, self.request.headers, upstream.spec.balance)
            answer = await self._candidate(_Candidate(model, upstream, key))
            if answer is not None:
                return answer
        return None

    async def _candidate(self, c: _Candidate) -> Answer | None:
        """The inner loop: attempts on one model until one answers or the model is given up."""
        policy = self.policy
        while c.per < policy.per_candidate and self.attempts < policy.max_attempts:
            endpoint = self._admission(c)
            if isinstance(endpoint, Failure):
                self._refused(c, endpoint)
                return None
            with Lease(endpoint, c.target, force=self.plan.panic) as lease:
                if not lease.granted:
                    c.tried.append(endpoint)
                    self._refused(c, _circuit_open(c.upstream))
                    if len(c.tried) < len(c.upstream.endpoints.endpoints):
                        continue
                    return None
                if self.attempts and not self._allowance(c):  # (the first always may start)
                    return None
                self.attempts += 1
                c.per += 1
                target = forward.Target(c.model, c.upstream, endpoint)
                try:
                    answer = await self._attempt(target)
                except Failure as exc:
                    lease.failure(exc.blame, exc.hold_s)
                    if await self._after_failure(c, target, exc) == "again":
                        continue
                    return None
                except UpstreamRejected:
                    lease.success()
                    self.decision.record(c.model, c.upstream, "rejected", endpoint.address)
                    self.obs.attempt_failed(self.decision, c.upstream, "rejected")
                    raise
                lease.success()
                if c.key is not None:
                    c.upstream.endpoints.served(endpoint, c.key)
                return answer
        return None

    def _admission(self, c: _Candidate) -> Endpoint | Failure:
        """A replica for the next attempt on ``c``, or why there is none."""
        upstream = c.upstream
        if upstream.problem:
            error = UpstreamUnavailable(f"upstream '{upstream.name}': {upstream.problem}")
            return Failure("unconfigured", error, scope="model")
        model, panic = c.target, self.plan.panic
        pick = upstream.endpoints.pick
        endpoint = pick(c.key, c.tried, model=model, panic=panic) or (
            pick(c.key, model=model, panic=panic) if c.per else None
        )
        if endpoint is None:
            error = UpstreamUnavailable(f"upstream '{upstream.name}' has no ready replica")
            return Failure("no_endpoint", error, scope="model")
        return endpoint

    def _refused(self, c: _Candidate, failure: Failure) -> None:
        self.last = failure
        self.decision.record(c.model, c.upstream, failure.reason)

    def _allowance(self, c: _Candidate) -> bool:
        """Whether another attempt after the first may start: the deadline and the retry
        budget (the first always may)."""
        # Only another try of the same model is charged to the retry budget: that is what
        # multiplies load on a failing upstream. Moving to another model and continuing a cut
        # stream are what keep a healthy alternative serving.
        charged = c.per > 0 and self.sent is None
        late = asyncio.get_running_loop().time() >= self.deadline
        if late or (charged and not self.budget.try_retry()):
            why = "deadline" if late else "retry_budget"
            self.metrics.retries_exhausted.labels(self.plan.route, why).inc()
            if late:
                self.index = len(self.order)
            return False  # no more tries of this model; the next may serve
        cause = self.last.reason if self.last else "unknown"
        self.metrics.retries.labels(self.plan.route, cause).inc()
        return True

    async def _after_failure(self, c: _Candidate, target: forward.Target, exc: Failure) -> Step:
        """What a failed attempt means for the next one (see ``failures``)."""
        self.last = exc
        step = self._stops(exc)
        self._failed(target, exc, moving_on=step is None)
        if step is not None:
            self.index = len(self.order)
            return step
        if exc.scope == "endpoint":
            return await self._other_replica(c, target.endpoint)
        if exc.scope == "continuation":
            if self.mechanism is not None:
                self.refused.setdefault(c.upstream.name, set()).add(self.mechanism)
            return "again" if self._mechanism(c.upstream) is not None else "next"
        if exc.scope == "model":
            wait = exc.hold_s
            last = self.index >= len(self.order)
            if last and wait is not None and wait <= self.policy.retry_after_max_s:
                await asyncio.sleep(wait)
                return "again"
        elif exc.scope == "context":
            window = c.model.capabilities.context_window
            self.order[self.index :] = [
                m
                for m in self.order[self.index :]
                if _larger(m.capabilities.context_window, window)
            ]
        elif self.plan.spec is None or self.plan.spec.on_content_filter == "fail":
            raise exc.error from None
        return "next"

    def _stops(self, exc: Failure) -> Step | None:
        """ "stop" when no further attempt can help; records a break of the committed stream."""
        if exc.reason == GENERATION_TIMEOUT:
            self.regenerated += 1
            if self.regenerated > self.policy.regenerations:
                return "stop"  # each replay pays for the whole generation again
        if exc.reason in ("join_unverified", STREAM_TOO_LARGE):
            return "stop"  # not the replica's fault / a continuation would only grow it
        if not isinstance(exc, Cut):
            return None
        if self.cut is None:
            self.cut = exc
        if self.transcript is None:
            return "stop"  # mid_stream: terminate
        self.sent = self.transcript.read()
        if not self.sent.continuable:
            return "stop"
        self.decision.continued += 1
        self.metrics.midstream.labels(self.plan.route, exc.reason).inc()
        return None

    async def _other_replica(self, c: _Candidate, endpoint: Endpoint) -> Step:
        """After a replica's failure: another replica of this model, or this model again when
        it is the last one left (after a backoff); otherwise the next model at once."""
        c.tried.append(endpoint)
        panic = self.plan.panic
        if c.upstream.endpoints.pick(c.key, c.tried, model=c.target, panic=panic):
            return "again"
        if self.index < len(self.order) or c.per >= self.policy.per_candidate:
            return "next"
        policy = self.policy
        delay = backoff_delay(c.per - 1, policy.backoff_base_s, policy.backoff_max_s, self.rng)
        remaining = self.deadline - asyncio.get_running_loop().time()
        await asyncio.sleep(min(delay, max(remaining, 0)))
        return "again"

    async def _exhausted(self) -> Answer:
        """No attempt answered: end the committed stream, or raise the last failure."""
        if self.client.committed:
            failure = self.last
            if failure is None or failure.reason != "join_unverified":
                failure = self.cut or failure  # a continuation's refusal never masks the break
            error = failure.error if failure else UpstreamUnavailable("no upstream could continue")
            return await self._end(failure.reason if failure else "", error)
        if self.kept is not None:  # every higher tier failed: the escalated answer serves
            payload, info, model, upstream, address = self.kept
            self.decision.serve(model, upstream, address)
            self.decision.outcome = "ok"
            return self.client.whole(payload, self.decision.headers()), info
        if self.last is None:
            raise UpstreamUnavailable(f"no model behind '{self.plan.route}' is available")
        raise self.last.error

    async def _end(self, reason: str, error: GatewayError) -> Answer:
        """End the committed stream with one error event."""
        self.decision.outcome = await self.client.fail(reason, error)
        assert self.client.response is not None
        return self.client.response, None

    def _mechanism(self, upstream: UpstreamClient) -> str | None:
        """The next continuation mechanism to ask ``upstream`` with; None when all refused."""
        refused = self.refused.get(upstream.name, set())
        spec = upstream.spec
        mechanisms = continuation.mechanisms(spec.kind, spec.continuation)
        return next((m for m in mechanisms if m not in refused), None)

    def _body(self, upstream: UpstreamClient) -> dict[str, Any]:
        """The request body for the next attempt: the client's, or a continuation of it."""
        self.mechanism = None
        if self.sent is None:
            return self.creq.body
        mechanism = self._mechanism(upstream)
        continued = None
        if mechanism is not None:
            continued = continuation.request_body(
                self.creq.op, self.creq.body, self.sent, mechanism
            )
        if continued is None:
            error = UpstreamUnavailable("the stream broke off and cannot be continued")
            raise Failure("not_continuable", error, scope="model")
        self.mechanism = mechanism
        return continued

    async def _attempt(self, target: forward.Target) -> Answer:
        """One attempt on one replica; its bookkeeping in the decision and the observation."""
        creq, model, upstream = self.creq, target.model, target.upstream
        headers = dict(self.forwarded)
        self.obs.attempt(model, upstream, headers, target.endpoint.address)
        body = creq.body if self.sent is None else self._body(upstream)  # no call, mostly
        if self.guard is not None:
            body = self.guard.body(model, upstream.spec.kind, body)
        call = creq.prepare(upstream.provider, body, model.target)
        if creq.stream:
            return await self._stream(target, call, headers)
        loop = asyncio.get_running_loop()
        started = loop.time()
        native = self.client.native(upstream.provider)
        payload, info = await forward.unary(
            self.metrics, target, creq.op, call, headers, native, deadlines=self.deadlines
        )
        tokens = info.usage.completion_tokens if info.usage else None
        upstream.latency.observe_unary(loop.time() - started, tokens)
        escalation = self.guard.escalation(model, info) if self.guard else None
        if escalation is not None:
            guard.Guard.count(self.metrics, self.plan.route, model, escalation, info)
            self.kept = self.kept or (payload, info, model, upstream, target.endpoint.address)
            raise escalation
        decision = self.decision
        decision.serve(model, upstream, target.endpoint.address)
        decision.outcome = "ok"
        self.obs.attempt_ended(model, upstream, "ok")
        return self.client.whole(payload, decision.headers()), info

    async def _stream(
        self, target: forward.Target, call: UpstreamCall, headers: dict[str, str]
    ) -> Answer:
        """One streamed attempt: relayed into the client's stream (committed by the first)."""
        decision, obs, client = self.decision, self.obs, self.client
        model, upstream, address = target.model, target.upstream, target.endpoint.address
        served = False

        def commit() -> dict[str, str]:
            nonlocal served
            served = True
            decision.serve(model, upstream, address)
            obs.first_chunk(decision.route, model.name)
            return decision.headers()

        loop = asyncio.get_running_loop()
        started = loop.time()
        resume = None
        if self.sent is not None and self.mechanism is not None:
            resume = (self.sent, self.mechanism)
        hold = self.guard.hold(model) if self.guard and resume is None else None
        try:
            outcome, info, ttft = await forward.stream(
                self.metrics,
                target,
                self.creq.op,
                call,
                headers,
                client,
                resume,
                commit,
                hold,
                deadlines=self.deadlines,
            )
        except guard.Escalation as escalation:
            guard.Guard.count(self.metrics, self.plan.route, model, escalation, ResponseInfo())
            raise
        if not served:
            decision.serve(model, upstream, address)
        decision.outcome = outcome
        obs.attempt_ended(model, upstream, outcome)
        if client.gaps:
            obs.inter_chunk_s = sum(client.gaps) / len(client.gaps)
        if outcome == "ok":
            tokens = info.usage.completion_tokens if info.usage else None
            upstream.latency.observe_stream(ttft, loop.time() - started, tokens)
        assert client.response is not None
        return client.response, info

    def _failed(self, target: forward.Target, failure: Failure, *, moving_on: bool) -> None:
        decision, obs = self.decision, self.obs
        address = target.endpoint.address
        recorded = decision.attempts[-1] if decision.attempts else None
        if isinstance(failure, Cut) and recorded and recorded.outcome == "ok":
            recorded.outcome = failure.reason  # the attempt that committed the stream broke off
        else:
            decision.record(target.model, target.upstream, failure.reason, address)
        obs.attempt_failed(decision, target.upstream, failure.reason)
        if moving_on:
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


def _circuit_open(upstream: UpstreamClient) -> Failure:
    return Failure("circuit_open", UpstreamUnavailable(f"upstream '{upstream.name}': circuit open"))


def _larger(window: int | None, than: int | None) -> bool:
    """Whether a model may hold what overflowed a window of ``than``: larger, or unknown on
    either side (one more attempt beats failing a request another model might serve)."""
    return window is None or than is None or window > than
