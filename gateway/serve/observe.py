"""Everything recorded about one request: spans, metrics and the access log line.

``proxy`` opens an ``Observation`` per request and reports to it as the request moves (routed,
attempt started, attempt failed, first chunk, finished). This is the single place a request is
accounted: ``finish`` runs exactly once, so retries and fallbacks never double-count tokens or
cost, and it bills the tenant's ``Ticket`` (``tenancy.admission``) once, from the usage of the
response the client got (streams and continued streams included). Span attributes follow the
OpenTelemetry GenAI conventions (``gen_ai.*``); metric labels stay bounded (route, model,
upstream, outcome, reason). A sampled request's span attributes are given as the report's
values and a function of them (``LightSpan.later``; the functions are at the end of this
module): they are built when the span is exported, off the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from switchman.api.gatewayconfig import Model, Upstream
from switchman.gateway.providers.exchange import Operation, ResponseInfo, Usage
from switchman.gateway.routing.table import Plan
from switchman.gateway.serve.attempts import Decision
from switchman.gateway.telemetry import tracing
from switchman.gateway.telemetry.accesslog import AccessLog
from switchman.gateway.telemetry.lightspan import LightSpan
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy import pricing
from switchman.gateway.upstreams.client import UpstreamClient


@dataclass(slots=True, frozen=True)
class Telemetry:
    """The sinks one gateway process records into."""

    metrics: Metrics
    tracing: tracing.Tracing
    access_log: AccessLog


class Bill(Protocol):
    """An admitted tenant request, billed once when it is accounted."""

    @property
    def tenant(self) -> str: ...

    def settle(self, route: str, model: Model | None, usage: Usage | None, cost: float) -> None: ...


class Observation:
    """Telemetry of one request, from routing to the last byte."""

    __slots__ = (
        "_attempt",
        "_server",
        "_started",
        "_t",
        "_traced",
        "first_chunk_s",
        "inter_chunk_s",
        "op",
        "request_id",
        "stream",
        "ticket",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        request_id: str,
        started: float,
    ) -> None:
        self._t = telemetry
        span = self._server = telemetry.tracing.server_span(method, path, headers)
        # The server span when it records (sampled), else None: asked once, not at each
        # report; an unsampled request (nine in ten at 10%) then costs one check per report.
        traced = self._traced = span if type(span) is LightSpan else None
        self._attempt: LightSpan | None = None
        self._started = started
        self.request_id = request_id
        self.op: Operation | None = None
        self.stream = False
        self.first_chunk_s: float | None = None
        self.inter_chunk_s: float | None = None
        self.ticket: Bill | None = None  # set by the proxy when a tenant's request is admitted
        if traced is not None:
            traced.later(_opened, method, path, request_id)

    def request(self, op: Operation, body: dict[str, Any], stream: bool) -> None:
        """The parsed request: GenAI request attributes on the server span."""
        self.op, self.stream = op, stream
        span = self._traced
        if span is None:
            return
        traced = self._t.tracing
        content = None
        if traced.capture_content:
            content = traced.content(body.get("messages", body.get("prompt")))
        # (the values read now: the body is not kept until the span is exported)
        span.later(_requested, op, tuple(map(body.get, _READ)), stream, content)

    def routed(self, decision: Decision, plan: Plan) -> None:
        metrics = self._t.metrics
        metrics.routing_decisions.labels(decision.route, decision.strategy).inc()
        if plan.complexity is not None:
            metrics.complexity.labels(decision.route).observe(plan.complexity)
        server = self._traced
        if server is None:
            return  # (no child of an unsampled span: ``tracing.child_span``)
        route = decision.route
        span = self._t.tracing.child_span(server, f"route {route}")
        if span is not None:
            # (the filtered candidates are read from the plan when the span is exported)
            order = tuple(plan.order)
            span.later(_planned, route, decision.strategy, order, plan.why, plan, plan.complexity)
            span.end()

    def attempt(
        self,
        model: Model,
        upstream: UpstreamClient,
        headers: MutableMapping[str, str],
        address: str | None = None,
    ) -> None:
        """An upstream attempt starts: a CLIENT span, and its ``traceparent`` goes upstream."""
        server = self._traced
        if server is None:
            # Unsampled (or tracing off): no CLIENT span, but upstream still continues the
            # request's trace.
            self._t.tracing.inject(self._server, headers)
            return
        op = tracing.OPERATIONS[self.op or "chat"]
        traced = self._t.tracing
        span = traced.child_span(server, f"{op} {model.target}", SpanKind.CLIENT)
        if span is not None:
            where = address or upstream.endpoint
            span.later(_attempted, op, upstream.spec, model, where, upstream.name)
        self._attempt = span
        traced.inject(span if span is not None else server, headers)

    def attempt_failed(self, decision: Decision, upstream: UpstreamClient, reason: str) -> None:
        model = decision.attempts[-1].model
        self._t.metrics.upstream_attempts.labels(upstream.name, model, reason).inc()
        tracing.end(self._attempt, reason)
        self._attempt = None
        span = self._traced
        if span is not None:
            attempt = decision.attempts[-1]
            span.add_event(
                "switchman.fallback",
                {
                    "switchman.model": attempt.model,
                    "switchman.upstream": upstream.name,
                    "error.type": reason,
                },
            )

    def moved_on(self, route: str, reason: str) -> None:
        """A failed attempt is followed by another candidate."""
        self._t.metrics.fallbacks.labels(route, reason).inc()

    def attempt_ended(self, model: Model, upstream: UpstreamClient, outcome: str) -> None:
        """The serving attempt is over: ``ok`` or how its stream ended after the first chunk."""
        self._t.metrics.upstream_attempts.labels(upstream.name, model.name, outcome).inc()

    def first_chunk(self, route: str, model: str) -> None:
        self.first_chunk_s = time.perf_counter() - self._started
        self._t.metrics.time_to_first_token.labels(route, model).observe(self.first_chunk_s)

    def finish(self, decision: Decision, info: ResponseInfo | None, status: int) -> float:
        """Account the request once: metrics, the tenant's bill, access log, and the spans'
        closing attributes; returns the cost in USD."""
        seconds = time.perf_counter() - self._started
        model = decision.model.name if decision.model else "none"
        upstream = decision.upstream.name if decision.upstream else "none"
        route = decision.route
        usage = info.usage if info else None
        cost = pricing.cost(decision.model, usage)
        if self.ticket is not None:
            self.ticket.settle(route, decision.model, usage, cost)
        series = self._t.metrics.accounted(route, model, upstream, decision.outcome)
        series.requests.inc()
        series.duration.observe(seconds)
        if self.inter_chunk_s is not None:
            series.inter_chunk(self.inter_chunk_s)
        if usage is not None:
            series.tokens(usage.prompt_tokens, usage.completion_tokens)
        if cost:
            series.cost(cost)
        # A client that went away is not an error of the gateway (nor a span error).
        error = None if decision.outcome in ("ok", "client_closed") else decision.outcome
        attempt, server = self._attempt, self._traced
        trace = None  # (only a sampled span's trace reached a backend)
        if server is None and attempt is None:  # unsampled: no span to write or end
            self._log(decision, status, seconds, usage, cost, trace)
            return cost
        # What the response says, on the attempt's span and the server's (their attributes are
        # built when exported, from these values, which no longer change).
        responded = (decision.model, self.first_chunk_s, _said(info), self._output(info))
        if attempt is not None:
            if attempt.is_recording():
                attempt.later(_responded, *responded)
            tracing.end(attempt, error)
        if server is not None:
            server.later(_finished, *responded, status, decision)
            # A 4xx is the client's doing: the SERVER span's status stays unset (HTTP semconv).
            tracing.end(server, None if decision.outcome == "client_error" else error)
            self._traced = None  # ended: later reports write nothing
            if self._t.access_log.enabled:
                trace = tracing.trace_id(server)
        self._log(decision, status, seconds, usage, cost, trace)
        return cost

    def _log(
        self,
        decision: Decision,
        status: int,
        seconds: float,
        usage: Usage | None,
        cost: float,
        trace: str | None,
    ) -> None:
        access = self._t.access_log
        if access.enabled:
            access.write(
                {
                    "time": access.timestamp(),
                    "request_id": self.request_id,
                    "trace_id": trace,
                    "operation": self.op,
                    "stream": self.stream,
                    "tenant": self.ticket.tenant if self.ticket is not None else None,
                    "route": decision.route,
                    "model": decision.model.name if decision.model else "none",
                    "upstream": decision.upstream.name if decision.upstream else "none",
                    "attempts": len(decision.attempts),
                    "status": status,
                    "outcome": decision.outcome,
                    "duration_ms": round(seconds * 1000, 3),
                    "ttft_ms": round(self.first_chunk_s * 1000, 3)
                    if self.first_chunk_s is not None
                    else None,
                    "input_tokens": usage.prompt_tokens if usage else None,
                    "output_tokens": usage.completion_tokens if usage else None,
                    "cached_input_tokens": usage.cached_tokens if usage else None,
                    "cost_usd": round(cost, 8),
                }
            )

    def _output(self, info: ResponseInfo | None) -> str | None:
        """The completion text for the spans, when content capture is on."""
        traced = self._t.tracing
        if info is None or not traced.capture_content:
            return None
        return traced.content(info.choices)


# The spans' attributes, built from a report's values when the span is exported (``later``).

# The request body's values the server span reads (the model, then numbers), and the attribute
# each number goes to (a later one wins).
_READ = ("model", "max_tokens", "max_completion_tokens", "temperature", "top_p")
_NUMBERS = (
    "gen_ai.request.max_tokens",
    "gen_ai.request.max_tokens",
    "gen_ai.request.temperature",
    "gen_ai.request.top_p",
)

# What a response said, as the spans read it: its model, finish reasons, and the input and
# output tokens of its usage (None without one).
_Said = tuple[str | None, tuple[str, ...], tuple[int, int] | None]


def _said(info: ResponseInfo | None) -> _Said | None:
    if info is None:
        return None
    usage = info.usage
    tokens = None if usage is None else (usage.prompt_tokens, usage.completion_tokens)
    return info.model, tuple(info.finish_reasons), tokens


def _opened(method: str, path: str, request_id: str) -> dict[str, AttributeValue]:
    return {"http.request.method": method, "url.path": path, "switchman.request_id": request_id}


def _requested(
    op: Operation, read: tuple[Any, ...], stream: bool, content: str | None
) -> dict[str, AttributeValue]:
    """GenAI request attributes of the server span, from the body's ``_READ`` values."""
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": tracing.OPERATIONS[op],
        "gen_ai.request.model": str(read[0]),
    }
    for attribute, value in zip(_NUMBERS, read[1:], strict=True):
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes.pop(attribute, None)  # a later key wins, as its set_attribute did
            attributes[attribute] = value
    attributes["gen_ai.request.stream"] = stream
    if content is not None:
        attributes["gen_ai.input.messages"] = content
    return attributes


def _planned(
    route: str,
    strategy: str,
    order: tuple[Model, ...],
    why: str,
    plan: Plan,
    complexity: float | None,
) -> dict[str, AttributeValue]:
    """The route span's attributes: the candidates in order, and the ones filtered out (read
    from the plan, which does not build its rows for it)."""
    attributes: dict[str, AttributeValue] = {
        "switchman.route": route,
        "switchman.route.strategy": strategy,
        "switchman.route.candidates": tuple([m.name for m in order]),
        "switchman.route.why": why,
    }
    removed = tuple(plan.filtered())
    if removed:
        attributes["switchman.route.filtered"] = removed
    if complexity is not None:
        attributes["switchman.complexity"] = complexity
    return attributes


def _attempted(
    op: str, spec: Upstream, model: Model, address: str, upstream: str
) -> dict[str, AttributeValue]:
    """An attempt's CLIENT span: who is asked for what, where."""
    host, _, port = address.rpartition(":")
    return {
        "gen_ai.operation.name": op,
        "gen_ai.provider.name": spec.provider_name or tracing.PROVIDERS[spec.kind],
        "gen_ai.request.model": model.target,
        "server.address": host,
        "server.port": int(port),
        "switchman.upstream": upstream,
        "switchman.model": model.name,
    }


def _responded(
    model: Model | None,
    first_chunk_s: float | None,
    said: _Said | None,
    content: str | None,
) -> dict[str, AttributeValue]:
    """What the response said (the attempt's span; the server span's too, with more)."""
    attributes: dict[str, AttributeValue] = {}
    if model is not None:
        attributes["switchman.model"] = model.name
    if first_chunk_s is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = first_chunk_s
    if said is None:
        return attributes
    answered, reasons, tokens = said
    if answered:
        attributes["gen_ai.response.model"] = answered
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = reasons
    if tokens is not None:
        attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"] = tokens
    if content is not None:
        attributes["gen_ai.output.messages"] = content
    return attributes


def _finished(
    model: Model | None,
    first_chunk_s: float | None,
    said: _Said | None,
    content: str | None,
    status: int,
    decision: Decision,
) -> dict[str, AttributeValue]:
    """The server span's closing attributes."""
    attributes = _responded(model, first_chunk_s, said, content)
    attributes["http.response.status_code"] = status
    attributes["switchman.route.reason"] = decision.reason()
    attributes["switchman.attempts"] = len(decision.attempts)
    return attributes
