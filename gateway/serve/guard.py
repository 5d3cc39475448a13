"""The quality guard (cascade): whether a lower tier's whole answer should go to a higher tier.

``failover.Walk`` asks ``Guard.escalation`` about each non-streamed answer of a route with
``guard`` (``switchman.api.routes.Guard``) when a later candidate has a higher tier. The checks,
in order: a refusal (the ``refusal`` field or a refusal opening), an empty answer (no text, no
tool call), an answer cut at a length limit the client did not set, invalid JSON for a
``json_object`` / ``json_schema`` request, and a mean token log-probability under
``min_mean_logprob`` when the upstream returned logprobs. A stream is checked only with
``hold_stream_chunks``: ``StreamHold`` (``attempt.Hold``) reads that many chunks before the
commit and escalates a refusal or an empty answer among them. An escalation is an ``Escalation``
failure: scope ``model`` (the walk moves on), blamed on no breaker (the replica is fine), its
reason a bounded ``escalated_*`` label, counted with the escalated answer's cost
(``switchman_escalations_total``, ``switchman_escalation_cost_usd_total``: the extra spend,
billed to no tenant). ``Guard.body`` asks guarded attempts for logprobs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from switchman.api.gatewayconfig import Model
from switchman.api.routes import Guard as GuardSpec
from switchman.api.routes import Route
from switchman.gateway.errors import UpstreamUnavailable
from switchman.gateway.providers.exchange import ResponseInfo
from switchman.gateway.replicas.replica import Blame
from switchman.gateway.serve.failures import Failure
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy import pricing

REASONS = ("empty", "refusal", "truncated", "invalid_json", "low_logprob")
# how refusals open, lower-cased; read from the first 160 characters of the answer only
_REFUSALS = (
    "i'm sorry, but i can", "i am sorry, but i can", "sorry, i can't", "sorry, i cannot",
    "i can't help with", "i cannot help with", "i can't assist", "i cannot assist",
    "i'm unable to", "i am unable to", "i'm not able to", "i am not able to",
    "i won't be able to", "as an ai", "i cannot provide", "i can't provide",
)  # fmt: skip


class Escalation(Failure):
    """A low-confidence answer: the walk tries the next, higher tier; no breaker counts it."""

    @property
    def blame(self) -> Blame:
        return "none"


def for_request(
    spec: Route | None, models: Mapping[str, Model], order: Sequence[Model], op: str,
    stream: bool, body: Mapping[str, Any], openai_format: bool = True,
) -> Guard | None:  # fmt: skip
    """The guard of a planned request, or None: no ``guard`` on the route, not chat, or a
    stream without ``hold_stream_chunks`` (or in another client format than OpenAI's)."""
    if spec is None or spec.guard is None or op != "chat":
        return None
    if stream and not (spec.guard.hold_stream_chunks and openai_format):
        return None
    tiers = list(dict.fromkeys(models[name].tier for name in spec.candidates))
    return Guard(spec.guard, tiers, order, body)


class Guard:
    """One route's guard over one request: which models it checks and how."""

    __slots__ = ("body_wants_json", "client_limit", "higher", "spec")

    def __init__(
        self, spec: GuardSpec, tiers: Sequence[str], order: Sequence[Model], body: Mapping[str, Any]
    ) -> None:
        self.spec = spec
        rank = {tier: i for i, tier in enumerate(tiers)}
        # per model name: whether a later model of the plan has a higher tier
        self.higher: dict[str, bool] = {}
        best = -1
        for model in reversed(order):
            mine = rank.get(model.tier, -1)
            self.higher[model.name] = best > mine
            best = max(best, mine)
        response_format = body.get("response_format")
        kind = response_format.get("type") if isinstance(response_format, Mapping) else None
        self.body_wants_json = kind in ("json_object", "json_schema")
        self.client_limit = any(
            body.get(k) is not None for k in ("max_tokens", "max_completion_tokens")
        )

    def guards(self, model: Model) -> bool:
        return self.higher.get(model.name, False)

    def body(self, model: Model, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """The attempt's body: with ``logprobs: true`` for a guarded model when so configured
        (OpenAI-compatible upstreams only: Anthropic's API has no logprobs)."""
        wanted = self.spec.request_logprobs and kind != "anthropic"
        if wanted and self.guards(model) and not body.get("logprobs"):
            return {**body, "logprobs": True}
        return body

    def escalation(self, model: Model, info: ResponseInfo) -> Escalation | None:
        """Why ``model``'s answer should go to a higher tier, or None to serve it."""
        if not self.guards(model):
            return None
        found = self._check(info)
        if found is None:
            return None
        reason, detail = found
        error = UpstreamUnavailable(f"model '{model.name}' answered with low confidence: {detail}")
        return Escalation(f"escalated_{reason}", error, scope="model")

    def hold(self, model: Model) -> StreamHold | None:
        """The hold of ``model``'s stream start (``attempt.Hold``), when it is guarded."""
        if not self.spec.hold_stream_chunks or not self.guards(model):
            return None
        return StreamHold(self.spec, model)

    @staticmethod
    def count(metrics: Metrics, route: str, model: Model, escalation: Escalation,
              info: ResponseInfo) -> None:  # fmt: skip
        """An escalation and what the escalated answer cost (the cascade's extra spend)."""
        metrics.escalations.labels(route, model.name, escalation.reason).inc()
        metrics.escalation_cost.labels(route, model.name).inc(pricing.cost(model, info.usage))

    def _check(self, info: ResponseInfo) -> tuple[str, str] | None:
        spec = self.spec
        choices = info.choices
        first = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(first, Mapping):
            return ("empty", "no choices") if spec.empty else None
        message = first.get("message")
        message = message if isinstance(message, Mapping) else {}
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        opening = text[:160].lower().replace("\u2019", "'")
        if spec.refusal and (message.get("refusal") or opening.lstrip().startswith(_REFUSALS)):
            return "refusal", "a refusal"
        if spec.empty and not text.strip() and not message.get("tool_calls"):
            return "empty", "no text and no tool call"
        if spec.truncated and not self.client_limit and first.get("finish_reason") == "length":
            return "truncated", "cut at the length limit"
        if spec.invalid_json and self.body_wants_json and text and not _is_json(text):
            return "invalid_json", "not the JSON the request asked for"
        if spec.min_mean_logprob is not None:
            mean = _mean_logprob(first.get("logprobs"))
            if mean is not None and mean < spec.min_mean_logprob:
                return "low_logprob", f"mean token logprob {mean:.2f} < {spec.min_mean_logprob:g}"
        return None


class StreamHold:
    """Judges the held start of a stream (OpenAI SSE, as the client would get it)."""

    __slots__ = ("chunks", "model", "spec")

    def __init__(self, spec: GuardSpec, model: Model) -> None:
        self.spec, self.model = spec, model
        self.chunks = spec.hold_stream_chunks

    def check(self, held: bytes, ended: bool) -> Escalation | None:
        text, tools = _streamed(held)
        opening = text[:160].lower().replace("\u2019", "'").lstrip()
        reason = None
        if self.spec.refusal and opening.startswith(_REFUSALS):
            reason = "refusal"
        elif self.spec.empty and ended and not text.strip() and not tools:
            reason = "empty"
        if reason is None:
            return None
        error = UpstreamUnavailable(f"model '{self.model.name}' began its stream with a {reason}")
        return Escalation(f"escalated_{reason}", error, scope="model")


def _streamed(held: bytes) -> tuple[str, bool]:
    """(the text of the held chunks' deltas, whether any carried a tool call)."""
    texts: list[str] = []
    tools = False
    for line in held.split(b"\n"):
        if not line.startswith(b"data:") or line[5:].strip() == b"[DONE]":
            continue
        try:
            chunk = _loads(line[5:])
        except ValueError:
            continue
        choices = chunk.get("choices") if isinstance(chunk, dict) else None
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict):
                content = delta.get("content") or delta.get("refusal")
                texts.append(content if isinstance(content, str) else "")
                tools = tools or bool(delta.get("tool_calls"))
    return "".join(texts), tools


def _loads(data: bytes) -> Any:
    """orjson (a quarter of the cost per held chunk), the standard library for what it refuses."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _mean_logprob(logprobs: object) -> float | None:
    """The mean of ``logprobs.content[].logprob`` (OpenAI's shape); None when absent."""
    if not isinstance(logprobs, Mapping):
        return None
    tokens = logprobs.get("content")
    if not isinstance(tokens, list):
        return None
    values = [
        t["logprob"]
        for t in tokens
        if isinstance(t, Mapping) and isinstance(t.get("logprob"), int | float)
    ]
    return sum(values) / len(values) if values else None
