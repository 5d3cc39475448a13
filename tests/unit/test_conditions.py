"""Status conditions (``switchman.operator.conditions``): times, generations and Events.

scenario                      | input                                 | expect
------------------------------|---------------------------------------|------------------------
timestamps                    | epoch seconds                         | RFC 3339 UTC, seconds
first report                  | no previous conditions                | every time is now
status held                   | same status, new reason/message       | time kept, text updated
status flipped                | False -> True, True -> Unknown        | time is now
generation                    | any                                   | stamped on each
Warning                       | Degraded becomes True / changes text  | one Warning each time
no repeat                     | the same Degraded again (a retry)     | no Event
Ready                         | Ready becomes True                    | one Normal Ready
no Event on recovery alone    | Degraded True -> False, not yet Ready | none
Applied                       | a new generation applied              | one Normal Applied
"""

from __future__ import annotations

from typing import Any

import pytest

from switchman.operator.conditions import (
    DEGRADED,
    PROGRESSING,
    READY,
    Condition,
    Event,
    applied,
    events,
    find,
    merge,
    rfc3339,
)

T0, T1 = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def _wire(type_: str, status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message}


def test_rfc3339_is_utc_with_second_precision() -> None:
    assert rfc3339(1_767_225_600.0) == T0
    assert rfc3339(1_767_225_600.999) == T0
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


def test_first_report_stamps_now_and_the_generation() -> None:
    merged = merge(
        [],
        [Condition(READY, False, "ModelsNotReady", "a: 0/1"), Condition(DEGRADED, None, "X")],
        generation=3,
        now=T0,
    )
    assert merged == [
        {
            "type": READY,
            "status": "False",
            "reason": "ModelsNotReady",
            "message": "a: 0/1",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        },
        {
            "type": DEGRADED,
            "status": "Unknown",
            "reason": "X",
            "message": "",
            "lastTransitionTime": T0,
            "observedGeneration": 3,
        },
    ]


def test_a_held_status_keeps_its_transition_time_but_takes_the_new_text() -> None:
    previous = [_wire(READY, "False", "ModelsNotReady", "a: 0/2") | {"lastTransitionTime": T0}]
    merged = merge(previous, [Condition(READY, False, "SecretNotFound", "s")], generation=4, now=T1)
    assert merged[0]["lastTransitionTime"] == T0
    assert (merged[0]["reason"], merged[0]["message"], merged[0]["observedGeneration"]) == (
        "SecretNotFound",
        "s",
        4,
    )


@pytest.mark.parametrize(("before", "after"), [("False", True), ("True", None), ("True", False)])
def test_a_flipped_status_transitions_now(before: str, after: bool | None) -> None:
    previous = [_wire(READY, before, "R") | {"lastTransitionTime": T0}]
    merged = merge(previous, [Condition(READY, after, "R")], generation=1, now=T1)
    assert merged[0]["lastTransitionTime"] == T1


def test_find_returns_the_condition_of_a_type() -> None:
    conditions = [_wire(READY, "True", "Ready"), _wire(DEGRADED, "False", "AsExpected")]
    assert find(conditions, DEGRADED) == conditions[1]
    assert find(conditions, PROGRESSING) is None


def test_a_new_problem_is_one_warning() -> None:
    current = [
        _wire(READY, "False", "PoolNotFound", "m"),
        _wire(DEGRADED, "True", "PoolNotFound", "m"),
    ]
    previous = [_wire(READY, "False", "X"), _wire(DEGRADED, "False", "AsExpected")]
    assert events(previous, current) == [Event("Warning", "PoolNotFound", "m")]
    assert events([], current) == [Event("Warning", "PoolNotFound", "m")]


def test_the_same_problem_again_posts_nothing() -> None:
    degraded = [_wire(DEGRADED, "True", "SecretNotFound", "Secret k not found")]
    assert events(degraded, degraded) == []


def test_a_changed_problem_is_a_new_warning() -> None:
    before = [_wire(DEGRADED, "True", "InvalidSpec", "spec.a: bad")]
    after = [_wire(DEGRADED, "True", "InvalidSpec", "spec.b: bad")]
    assert events(before, after) == [Event("Warning", "InvalidSpec", "spec.b: bad")]


def test_becoming_ready_is_one_normal_event() -> None:
    ready = [_wire(READY, "True", "Ready", "2 of 2 models ready")]
    assert events([_wire(READY, "False", "ModelsNotReady")], ready) == [
        Event("Normal", READY, "2 of 2 models ready")
    ]
    assert events(ready, ready) == []


def test_recovering_without_being_ready_posts_nothing() -> None:
    before = [_wire(READY, "False", "PoolNotFound"), _wire(DEGRADED, "True", "PoolNotFound")]
    after = [_wire(READY, "False", "GatewayNotReady"), _wire(DEGRADED, "False", "AsExpected")]
    assert events(before, after) == []


def test_applied_is_posted_once_per_generation() -> None:
    assert applied(None, 1, 3) == Event("Normal", "Applied", "applied 3 objects for generation 1")
    assert applied(1, 2, 1) == Event("Normal", "Applied", "applied 1 object for generation 2")
    assert applied(2, 2, 3) is None
    assert applied(None, None, 3) is None
