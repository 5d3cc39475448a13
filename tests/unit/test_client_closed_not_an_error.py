"""A client that went away is never counted as a failure by the shipped alerts or dashboard.

Scenario matrix: every alert rule and every dashboard query that computes a failure share from
``switchman_requests_total`` or ``switchman_upstream_attempts_total`` (a negative ``outcome``
matcher) leaves ``client_closed`` out of its numerator; the alert ratios leave it out of their
denominators too; the old ``client_disconnected`` label appears nowhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "charts" / "switchman" / "alerts" / "switchman-gateway.rules.yaml"
DASHBOARD = ROOT / "charts" / "switchman" / "dashboards" / "switchman-gateway.json"
FAMILIES = ("switchman_requests_total", "switchman_upstream_attempts_total")
NEGATIVE = re.compile(r'(switchman_\w+)\{[^}]*outcome!(~|=)"([^"]*)"')


def _expressions() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    found = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    found += [t["expr"] for p in panels for t in p.get("targets", []) if "expr" in t]
    return found


def test_failure_shares_leave_client_closed_out() -> None:
    checked = 0
    for expr in _expressions():
        for family, _, excluded in NEGATIVE.findall(expr.replace('\\"', '"')):
            if family in FAMILIES:
                checked += 1
                assert "client_closed" in excluded.split("|"), expr
    assert checked >= 5


def test_alert_ratios_leave_client_closed_out_of_the_denominator() -> None:
    rules = yaml.safe_load(RULES.read_text())
    ratios = [
        r["expr"]
        for g in rules["groups"]
        for r in g["rules"]
        if r["alert"] in ("SwitchmanHighErrorRatio", "SwitchmanUpstreamFailing")
    ]
    assert len(ratios) == 3
    for expr in ratios:
        denominator = expr.split("/", 1)[1].split("and")[0]
        assert 'outcome!="client_closed"' in denominator, expr


def test_the_old_label_is_gone() -> None:
    for path in (RULES, DASHBOARD, ROOT / "docs" / "observability.md"):
        assert "client_disconnected" not in path.read_text(), path
