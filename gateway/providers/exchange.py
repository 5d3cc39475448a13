"""Plain data passed between the proxy and the provider adapters.

``UpstreamCall`` is what a provider asks the proxy to send; ``ResponseInfo`` is what a provider
reads back from a whole response (usage, response model, finish reasons, and the choices for
opt-in content capture); stream decoders expose the same fields as they go. Usage is accounted
exactly once per request, by the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Operation = Literal["chat", "completions", "embeddings"]


@dataclass(slots=True, frozen=True)
class UpstreamCall:
    """One HTTP request to an upstream, relative to its base URL."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class Usage:
    """Tokens used by one response."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: Any) -> Usage | None:
        """Read an OpenAI ``usage`` object; None when absent or malformed."""
        if not isinstance(usage, dict):
            return None
        prompt = usage.get("prompt_tokens", 0)
        completion = usage.get("completion_tokens", 0)
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        return cls(prompt_tokens=prompt, completion_tokens=completion)


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
