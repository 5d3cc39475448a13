"""Plain data passed between one request (``serve``) and the provider adapters.

``UpstreamCall`` is what a provider asks one attempt (``serve.attempt``) to send; ``ResponseInfo``
is what a provider reads back from a whole response (usage, response model, finish reasons, and the
choices for opt-in content capture); stream decoders expose the same fields as they go. Usage is
accounted exactly once per request, by ``serve.observe``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["chat", "completions", "embeddings"]


@dataclass(slots=True)  # not frozen: a frozen init costs twice as much, per request
class UpstreamCall:
    """One HTTP request to an upstream, relative to its base URL."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)  # not frozen: a frozen init costs twice as much, per request
class Usage:
    """Tokens used by one response."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the upstream's prompt cache
    reasoning_tokens: int = 0  # of completion_tokens, spent reasoning

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read an OpenAI ``usage`` object; None when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens", 0)
        completion = usage.get("completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=_detail(usage, "prompt_tokens_details", "cached_tokens", prompt),
            reasoning_tokens=_detail(
                usage, "completion_tokens_details", "reasoning_tokens", completion
            ),
        )


def _detail(usage: dict[str, Any], group: str, name: str, most: int) -> int:
    """A count from one of usage's ``*_details`` objects, within ``[0, most]``; 0 when absent."""
    details = usage.get(group)
    value = details.get(name) if isinstance(details, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return min(max(value, 0), most)


@dataclass(slots=True)
class ResponseInfo:
    """What telemetry needs from an OpenAI-shaped response."""

    usage: Usage | None = None
    model: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    choices: Any = None

    @classmethod
    def from_openai(cls, body: dict[str, Any]) -> ResponseInfo:
        choices = body.get("choices")
        reasons: list[str] = []
        if isinstance(choices, list):
            reasons = [
                str(c["finish_reason"])
                for c in choices
                if isinstance(c, dict) and c.get("finish_reason")
            ]
        model = body.get("model")
        return cls(
            usage=Usage.from_openai(body.get("usage")),
            model=model if isinstance(model, str) else None,
            finish_reasons=reasons,
            choices=choices,
        )
