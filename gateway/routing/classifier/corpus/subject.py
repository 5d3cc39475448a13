"""What one subject domain contributes to the generated corpus (``generate`` reads it).

Every string is English; ``generate`` places it in frames of other languages too, which makes
those rows code-switched (a native frame around an English term), a common way technical
questions are written. Fully native rows come from ``native``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Subject:
    """One domain's material. Labels come from the intent a frame asks for, except ``facts``
    (simple: one well-known answer) and ``hard`` (complex: short, but expert reasoning)."""

    name: str
    terms: tuple[str, ...]  # noun phrases: "a buffer solution"
    facts: tuple[str, ...]  # short questions with one well-known answer
    hard: tuple[str, ...]  # short questions that need expert, multi-step reasoning
    tasks: tuple[str, ...]  # open design / analysis / planning tasks
    passage: str  # a factual paragraph (names, dates, numbers)
    tool: dict[str, Any]  # one OpenAI tool definition
    tool_simple: str  # one obvious call of ``tool``
    tool_complex: str  # a multi-step plan over ``tool`` with judgement between calls


def tool(function: str, description: str, /, **params: str) -> dict[str, Any]:
    """An OpenAI function tool whose parameters are all required strings."""
    return {
        "type": "function",
        "function": {
            "name": function,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {k: {"type": "string", "description": v} for k, v in params.items()},
                "required": list(params),
            },
        },
    }
