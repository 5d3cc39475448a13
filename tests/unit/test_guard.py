"""The quality guard's verdicts on answers, without a gateway (``serve.guard``).

Scenario matrix:
- which models are guarded: those with a later candidate of a higher tier in the plan's
  order (not the top tier, not a model after which only lower tiers follow)
- request_logprobs: added for a guarded model on an OpenAI-compatible upstream, never for
  Anthropic (its API has no logprobs), never over the client's own setting
- verdicts: a curly-apostrophe refusal, the refusal field, an empty answer but not a tool call,
  truncation only when the client set no limit, invalid JSON only for JSON requests, the
  mean logprob against the bar; a malformed answer counts as empty, never raises
- an escalation blames no breaker and moves to the next model (scope model)
- stream holds: the held SSE text opening with a refusal, an empty finished stream, a tool
  call start passes; no hold without hold_stream_chunks
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.api.gatewayconfig import Model
from switchman.api.routes import Guard as GuardSpec
from switchman.gateway.providers.exchange import ResponseInfo
from switchman.gateway.serve.guard import Guard

SMALL = Model(name="small", upstream="u", tier="small")
MID = Model(name="mid", upstream="u", tier="mid")
LARGE = Model(name="large", upstream="u", tier="large")
TIERS = ["small", "mid", "large"]


def guard(body: dict[str, Any] | None = None, **spec: Any) -> Guard:
    return Guard(GuardSpec(**spec), TIERS, [SMALL, LARGE, MID], body or {})


def info(message: dict[str, Any] | None = None, **choice: Any) -> ResponseInfo:
    first = {"message": message or {"content": "fine"}, "finish_reason": "stop", **choice}
    return ResponseInfo(choices=[first])


def test_only_models_with_a_higher_tier_after_them_are_guarded() -> None:
    g = guard()
    assert g.guards(SMALL)
    assert not g.guards(LARGE)
    assert not g.guards(MID)  # the last in the order: nothing to escalate to


def test_logprobs_are_requested_for_openai_compatible_upstreams_only() -> None:
    g = guard(request_logprobs=True)
    assert g.body(SMALL, "openai", {"a": 1}) == {"a": 1, "logprobs": True}
    assert g.body(SMALL, "anthropic", {"a": 1}) == {"a": 1}
    assert g.body(LARGE, "openai", {"a": 1}) == {"a": 1}
    assert guard().body(SMALL, "openai", {"a": 1}) == {"a": 1}


@pytest.mark.parametrize(
    ("answer", "body", "reason"),
    [
        (info({"content": "I\u2019m sorry, but I can\u2019t do that."}), {}, "escalated_refusal"),
        (info({"content": None, "refusal": "no"}), {}, "escalated_refusal"),
        (info({"content": " \n"}), {}, "escalated_empty"),
        (info({"content": None, "tool_calls": [{"id": "1"}]}), {}, None),
        (info(finish_reason="length"), {}, "escalated_truncated"),
        (info(finish_reason="length"), {"max_tokens": 5}, None),
        (info({"content": "{oops"}), {"response_format": {"type": "json_schema"}},
         "escalated_invalid_json"),
        (info({"content": "{oops"}), {}, None),
        (info({"content": '{"a": 1}'}), {"response_format": {"type": "json_object"}}, None),
        (info(logprobs={"content": [{"logprob": -3.0}, {"logprob": -1.0}]}), {},
         "escalated_low_logprob"),
        (info(logprobs={"content": [{"logprob": -0.5}]}), {}, None),
        (info(logprobs={"content": "garbage"}), {}, None),
        (ResponseInfo(choices="garbage"), {}, "escalated_empty"),
        (ResponseInfo(choices=[None]), {}, "escalated_empty"),
        (info("garbage"), {}, "escalated_empty"),  # type: ignore[arg-type]
    ],
)  # fmt: skip
def test_verdicts(answer: ResponseInfo, body: dict[str, Any], reason: str | None) -> None:
    verdict = guard(body, min_mean_logprob=-1.5).escalation(SMALL, answer)
    assert (verdict.reason if verdict else None) == reason
    if verdict is not None:
        assert verdict.blame == "none"
        assert verdict.scope == "model"
    assert guard(body, min_mean_logprob=-1.5).escalation(LARGE, answer) is None


def sse(*deltas: dict[str, Any]) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": d}]} for d in deltas]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def test_stream_holds() -> None:
    assert guard().hold(SMALL) is None
    hold = guard(hold_stream_chunks=3).hold(SMALL)
    assert hold is not None
    assert hold.chunks == 3
    assert guard(hold_stream_chunks=3).hold(LARGE) is None
    refusal = hold.check(sse({"role": "assistant"}, {"content": "I'm sorry, "},
                             {"content": "but I can't"}), ended=False)  # fmt: skip
    assert refusal is not None
    assert refusal.reason == "escalated_refusal"
    empty = hold.check(sse({"role": "assistant"}, {"content": ""}), ended=True)
    assert empty is not None
    assert empty.reason == "escalated_empty"
    assert hold.check(sse({"role": "assistant"}), ended=False) is None  # not over yet
    assert hold.check(sse({"tool_calls": [{"index": 0}]}), ended=True) is None
    assert hold.check(sse({"content": "Paris."}), ended=True) is None
    assert hold.check(b"data: {not json\n\n", ended=False) is None
