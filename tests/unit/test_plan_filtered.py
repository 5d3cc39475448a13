"""``Plan.filtered``: the candidates a filter removed, as a recorded trace span reports them
(``switchman.route.filtered``), read from what the plan kept without building its rows.

Scenarios: for plans with nothing filtered, capability and context-window filters, unhealthy
candidates, panic (all unhealthy: nothing reported filtered), a static ranking, and a model named
directly, ``filtered()`` equals what the rows say (``model: why`` of each removed row, in
candidate order), before and after the rows were built; reading it builds no rows.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_routing import View, config, image_body, plan

from switchman.gateway.routing.features import features
from switchman.gateway.routing.table import Plan, RoutingTable

LONG = {"model": "auto", "messages": [{"role": "user", "content": "word " * 8000}]}
STATIC = {"candidates": ["small", "large", "vision"], "scorers": {"preference": 1},
          "preference": {"small": 0.1, "large": 0.5, "vision": 0.9}}  # fmt: skip


def _from_rows(result: Plan) -> list[str]:
    return [f"{row.model}: {row.removed}" for row in result.rows if row.removed]


@pytest.mark.parametrize(
    ("route", "body", "views", "expected"),
    [
        ({"candidates": ["small", "large"]}, None, None, []),
        ({"candidates": ["small", "vision", "large"]}, image_body(), None,
         ["small: no image input"]),
        ({"candidates": ["small", "vision", "large"]}, LONG, None,
         ["small: context window", "vision: context window"]),
        ({"candidates": ["small", "large"]}, None, {"u-small": View("unavailable")},
         ["small: unavailable"]),
        ({"candidates": ["small", "large"]}, None,
         {"u-small": View("unavailable"), "u-large": View("rate_limited")}, []),
        (STATIC, None, {"u-large": View("unavailable")}, ["large: unavailable"]),
        ({"candidates": ["small", "large"], "strategy": "cheapest"}, None,
         {"u-large": View("rate_limited")}, ["large: rate_limited"]),
    ],
    ids=["none", "vision", "context", "unhealthy", "panic", "static", "cheapest"],
)  # fmt: skip
def test_filtered_is_what_the_rows_say_without_building_them(
    route: dict[str, Any],
    body: dict[str, Any] | None,
    views: dict[str, View] | None,
    expected: list[str],
) -> None:
    result = plan(route, body=body, views=views)

    assert result.filtered() == expected
    assert result._rows is None  # (no rows built for it)
    assert _from_rows(result) == expected
    assert result.filtered() == expected  # the rows built: read from them


def test_a_model_named_directly_has_nothing_filtered() -> None:
    table = RoutingTable(config({"candidates": ["small"]}))
    body = {"model": "large", "messages": [{"role": "user", "content": "hi"}]}
    result = table.plan("large", "chat", body, features("chat", body), {}, {"u-large": True})
    assert result is not None
    assert result.filtered() == _from_rows(result) == []
