"""The two planes' contracts agree where they describe the same thing.

RoutingPolicy (the CRD users write) and GatewayConfig (what the operator renders for the gateway)
share route vocabulary and durations. Scenarios:
- the choice lists a route offers (strategy, mid-stream policy, content-filter policy) are the
  same enums in the CRD schema and in the GatewayConfig schema;
- a duration is named with its unit in both: ``<stem>_s`` in GatewayConfig, ``<stem>Seconds`` in
  the CRD, never a bare ``<stem>`` in one and a suffixed name in the other.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from switchman.api.gatewayconfig import GatewayConfig
from switchman.api.v1alpha1 import RoutingPolicySpec


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    """Every property name in a JSON schema (refs resolved) → its schema."""
    defs = schema.get("$defs", {})
    found: dict[str, Any] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                ref = node["$ref"].rsplit("/", 1)[-1]
                if ref not in seen:
                    seen.add(ref)
                    walk(defs[ref])
            for name, sub in node.get("properties", {}).items():
                found.setdefault(name, sub)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    seen: set[str] = set()
    walk(schema)
    return found


def _enum(prop: dict[str, Any]) -> set[str]:
    if "enum" in prop:
        return set(prop["enum"])
    for option in prop.get("anyOf", []):
        if "enum" in option:
            return set(option["enum"])
    raise AssertionError(f"no enum in {prop}")


CRD = _properties(RoutingPolicySpec.model_json_schema(by_alias=True))
GATEWAY = _properties(GatewayConfig.model_json_schema())


@pytest.mark.parametrize(
    ("crd", "gateway"),
    [
        ("strategy", "strategy"),
        ("midStream", "mid_stream"),
        ("onContentFilter", "on_content_filter"),
    ],
)
def test_route_choices_are_the_same_in_both_planes(crd: str, gateway: str) -> None:
    assert _enum(CRD[crd]) == _enum(GATEWAY[gateway])
    assert len(_enum(CRD[crd])) >= 2


def _is_float(prop: dict[str, Any]) -> bool:
    options = prop.get("anyOf", [prop])
    return any(option.get("type") == "number" for option in options)


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def test_durations_carry_their_unit_in_both_planes() -> None:
    crd_stems = {_snake(name.removesuffix("Seconds")) for name in CRD if name.endswith("Seconds")}
    gateway_stems = {name.removesuffix("_s") for name in GATEWAY if name.endswith("_s")}
    shared = crd_stems & gateway_stems
    assert {"connect", "first_byte", "idle", "total", "backoff_base", "deadline"} <= shared
    # A duration suffixed in one plane is never a bare number of the same name in the other
    # (a count such as a classifier's ``window`` of recent scores is an integer, not a duration).
    crd_numbers = {_snake(name) for name, prop in CRD.items() if _is_float(prop)}
    assert not {stem for stem in gateway_stems if stem in crd_numbers}
    assert not {stem for stem in crd_stems if stem in GATEWAY and _is_float(GATEWAY[stem])}
    assert not [name for name in GATEWAY if name.endswith("_seconds")]
