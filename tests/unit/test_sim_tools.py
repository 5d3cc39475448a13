"""The simulator's forced tool calls: which requests get one and what its arguments are.

Scenario matrix: ``tool_choice`` required -> the first tool; a named function -> that one;
auto / none / absent / no tools -> no call (a text answer); arguments hold one deterministic
value per schema property by type (string, integer, number, boolean, array, object).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.sim.tools import forced

TOOLS = [
    {"type": "function", "function": {"name": "first", "parameters": {"type": "object"}}},
    {
        "type": "function",
        "function": {
            "name": "second",
            "parameters": {
                "type": "object",
                "properties": {
                    "s": {"type": "string"},
                    "i": {"type": "integer"},
                    "n": {"type": "number"},
                    "b": {"type": "boolean"},
                    "a": {"type": "array"},
                    "o": {"type": "object"},
                    "e": {"enum": ["x"]},
                },
            },
        },
    },
]


def test_required_calls_the_first_tool() -> None:
    assert forced({"tools": TOOLS, "tool_choice": "required"}) == ("first", "{}")


def test_a_named_function_is_called_with_one_value_per_property() -> None:
    choice = {"type": "function", "function": {"name": "second"}}
    call = forced({"tools": TOOLS, "tool_choice": choice})
    assert call is not None
    assert call[0] == "second"
    assert json.loads(call[1]) == {
        "s": "w0",
        "i": 1,
        "n": 1,
        "b": True,
        "a": [],
        "o": {},
        "e": "w6",
    }


@pytest.mark.parametrize(
    "body",
    [
        {"tools": TOOLS, "tool_choice": "auto"},
        {"tools": TOOLS, "tool_choice": "none"},
        {"tools": TOOLS},
        {"tool_choice": "required"},
        {"tools": [], "tool_choice": "required"},
    ],
)
def test_no_forced_call(body: dict[str, Any]) -> None:
    assert forced(body) is None
