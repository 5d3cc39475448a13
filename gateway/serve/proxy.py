"""Serves one client request: plan candidates, walk them with retries and failover, answer.

Called by ``handlers`` for each proxied endpoint: reads and parses the body (``request``), leases
the current Runtime for the whole exchange, plans (``routing``: filters and scorers), mirrors a
share to a shadow model (``shadow``) and hands the plan to a ``failover.Walk`` (attempts,
retries, failover, stream continuation). Holds the per-process state those need: the
classifier, the retry budgets per route, the shadows, the decision log, the watch on departed
clients (``hangup``) and the generation deadlines (``deadlines``). Every request is accounted
exactly once, by its ``observe.Observation``, and recorded for ``/debug/decisions``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from aiohttp import web

from switchman.api.resilience import Retry
from switchman.gateway.errors import (
    ClientClosed,
    GatewayError,
    ModelNotFound,
    NotReady,
)
from switchman.gateway.providers.exchange import Operation, ResponseInfo
from switchman.gateway.routing.features import features
from switchman.gateway.routing.table import ComplexityScorer, Plan
from switchman.gateway.serve.attempts import Decision
from switchman.gateway.serve.backoff import RetryBudget
from switchman.gateway.serve.deadlines import Deadlines
from switchman.gateway.serve.decisions import DecisionLog
from switchman.gateway.serve.failover import Walk
from switchman.gateway.serve.hangup import CLIENT_CLOSED, Hangups
from switchman.gateway.serve.observe import Observation, Telemetry
from switchman.gateway.serve.request import (
    REQUEST_ID,
    STARTED,
    ClientFormat,
    ClientRequest,
    parse,
    read_body,
)
from switchman.gateway.serve.shadow import Shadows
from switchman.gateway.tenancy.admission import Tenancy, estimate
from switchman.gateway.tenancy.gate import COST, TENANT, TICKET
from switchman.gateway.upstreams.runtime import Runtime

log = logging.getLogger("switchman.gateway.serve.proxy")


class Proxy:
    """Per-process state: telemetry, retry budgets, shadows, the decision log and the watch on
    departed clients."""

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        classifier: ComplexityScorer | None = None,
        rng: random.Random | None = None,
        tenancy: Tenancy | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.tenancy = tenancy
        self.metrics = telemetry.metrics
        self.classifier = classifier
        self.rng = rng or random.Random()
        self.budgets: dict[str, tuple[Retry, RetryBudget]] = {}
        self.shadows = Shadows(telemetry.metrics, self.rng)
        self.decisions = DecisionLog()
        self.hangups = Hangups()
        self.deadlines = Deadlines()

    async def close(self) -> None:
        await self.shadows.close()

    async def handle(
        self,
        request: web.Request,
        op: Operation,
        current: Callable[[], Runtime | None],
        format: ClientFormat | None = None,
    ) -> web.StreamResponse:
        """Serve one proxied request (in its client's ``format`` when not OpenAI's); the single
        place it is accounted (``obs.finish``)."""
        obs = Observation(
            self.telemetry,
            method=request.method,
            path=request.path,
            headers=request.headers,
            request_id=request[REQUEST_ID],
            started=request[STARTED],
        )
        decision: Decision | None = None  # (made on the way out when no plan was made)
        plan: Plan | None = None
        info: ResponseInfo | None = None
        status = 500
        hangup = self.hangups.watch(request.protocol)
        try:
            runtime = current()
            if runtime is None:
                raise NotReady("the gateway has no valid configuration loaded yet")
            server = runtime.config.server
            raw = await read_body(request, server.max_body_bytes, server.edge.body_timeout_s)
            creq = parse(op, raw, format)
            obs.request(op, creq.body, creq.stream)
            runtime.acquire()
            try:
                plan = await self._admitted(request, creq, self._plan(runtime, creq), obs)
                decision = Decision(plan.route, plan.strategy, len(plan.order), plan.why)
                obs.routed(decision, plan)
                if plan.spec is not None and plan.spec.shadow is not None:
                    self.shadows.maybe(runtime, plan.spec, creq)
                walk = self._walk(request, runtime, creq, plan, decision, obs)
                response, info = await walk.run()
            finally:
                runtime.release()
            status = response.status
            return response
        except GatewayError as exc:
            decision = decision or _unplanned()
            status = _refused(exc, decision)
            raise
        except asyncio.CancelledError:
            decision = decision or _unplanned()
            decision.outcome, status = CLIENT_CLOSED, ClientClosed.status
            if hangup.absorb():  # our watcher's: no runner will end the request for us
                raise ClientClosed("the client closed the connection") from None
            raise
        finally:
            hangup.close()
            decision = decision or _unplanned()
            if decision.outcome == CLIENT_CLOSED:
                log.info("client closed request_id=%s", request[REQUEST_ID])
            request[COST] = obs.finish(decision, info, status)
            self.decisions.add(request[REQUEST_ID], plan, decision, status)

    def _walk(
        self,
        request: web.Request,
        runtime: Runtime,
        creq: ClientRequest,
        plan: Plan,
        decision: Decision,
        obs: Observation,
    ) -> Walk:
        """The plan's attempts, retries and failover (``failover.Walk``), ready to run."""
        policy = plan.spec.retry if plan.spec else runtime.config.server.retry
        return Walk(
            metrics=self.metrics,
            rng=self.rng,
            budget=self._budget(plan.route, policy),
            policy=policy,
            request=request,
            runtime=runtime,
            creq=creq,
            plan=plan,
            decision=decision,
            obs=obs,
            deadlines=self.deadlines,
        )

    def _plan(self, runtime: Runtime, creq: ClientRequest) -> Plan:
        self.decisions.resize(runtime.config.server.debug_decisions)
        plan = runtime.table.plan(
            creq.model,
            creq.op,
            creq.body,
            features(creq.op, creq.body, creq.size),
            runtime.upstreams,
            runtime.supports[creq.op],
            classifier=self.classifier,
            rng=self.rng,
        )
        if plan is None:
            raise ModelNotFound(
                f"The model '{creq.model}' does not exist on this gateway; "
                "GET /v1/models lists the routes and models it serves",
                param="model",
            )
        return plan

    async def _admitted(
        self, request: web.Request, creq: ClientRequest, plan: Plan, obs: Observation
    ) -> Plan:
        """The plan the key's tenant may use, once its limits and budgets admit the request
        (``tenancy``; the ticket is billed by ``obs.finish``). Keyless: the plan as it is."""
        if self.tenancy is None or self.tenancy.settings is None:
            return plan
        tenant = request.get(TENANT)
        if tenant is None:
            return plan
        generates = creq.op != "embeddings"
        tokens = estimate(self.tenancy.settings, plan.route, creq.body, creq.size, generates)
        ticket, plan.order = await self.tenancy.admit(
            tenant, plan.route, plan.spec is None, plan.order, tokens
        )
        request[TICKET] = obs.ticket = ticket
        return plan

    def _budget(self, route: str, policy: Retry) -> RetryBudget:
        held = self.budgets.get(route)
        # Identity first: the same loaded config hands the same object on every request, and
        # comparing pydantic models field by field showed in the profile.
        if held is None or (held[0] is not policy and held[0] != policy):
            held = (policy, RetryBudget(policy.budget_ratio, policy.budget_min_per_s))
            self.budgets[route] = held
        return held[1]


def _unplanned() -> Decision:
    """The decision record of a request that ended before it was planned."""
    return Decision("none", "none", 0)


def _refused(exc: GatewayError, decision: Decision) -> int:
    """Record a request that ends in ``exc``; its status. The client going away is neither an
    error of the gateway nor of the client's request."""
    if decision.candidates:
        exc.headers.update(decision.headers())
    if isinstance(exc, ClientClosed):
        decision.outcome = CLIENT_CLOSED
    else:
        decision.outcome = "client_error" if exc.status < 500 and exc.status != 429 else "error"
    return exc.status
