"""The shipped Grafana dashboard and Prometheus alerts query only what the gateway exports.

Scenario matrix:

- exported names come from ``Metrics()`` itself: counters ``_total``, histograms ``_bucket`` /
  ``_sum`` / ``_count`` (``le`` on buckets only), gauges as named; each with its label names
- the PromQL analyser: finds metric names and their selector labels; ignores functions,
  aggregations, keywords, grouping labels, strings, ranges, numbers and Grafana ``$variables``;
  rejects unknown functions
- dashboard: valid JSON, schemaVersion >= 39, ``datasource`` / ``route`` / ``model`` variables;
  every panel has a datasource and at least one target; unique ids and titles; grid inside 24
  columns without overlaps
- every PromQL expression (panels, variable queries, rules) names only exported metrics and only
  labels that metric carries (or a scrape target label); ``by (...)`` labels exist on every metric
  the aggregation reads
- every exported metric family is on the dashboard (or listed in ``NOT_ON_DASHBOARD`` with why)
- rules: groups of alerts, each with expr, for, labels.severity and summary / description /
  runbook annotations
- with ``promtool`` on PATH (Debian ``prometheus``): ``check rules`` passes on the rules file and
  on every dashboard query (as recording rules), and ``test rules`` shows each alert fire in its
  scenario and stay quiet in the control ones (client errors, low volume, rejected attempts;
  a circuit that closed again or sits half-open on an idle route; an upstream with a replica up,
  or up on one pod only, or down for a minute; retries stopped by their deadline; shadow
  mirrors skipped, not failed)
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.telemetry.series import CounterFamily, GaugeFamily, HistogramFamily

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "charts/switchman/dashboards/switchman-gateway.json"
RULES = ROOT / "charts/switchman/alerts/switchman-gateway.rules.yaml"

# Labels Prometheus attaches at scrape time (ServiceMonitor / Kubernetes SD), not the gateway.
TARGET_LABELS = frozenset({"namespace", "instance", "job", "pod"})
# Exported families deliberately not on the dashboard, with the reason. Empty today.
NOT_ON_DASHBOARD: dict[str, str] = {}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


AGGREGATIONS = _words(
    "sum min max avg group stddev stdvar count count_values bottomk topk quantile"
)
FUNCTIONS = AGGREGATIONS | _words(
    """
    abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week
    day_of_year days_in_month delta deriv exp floor histogram_count histogram_sum
    histogram_fraction histogram_quantile holt_winters hour idelta increase irate label_join
    label_replace ln log2 log10 minute month predict_linear rate resets round scalar sgn sort
    sort_desc sqrt time timestamp vector year avg_over_time min_over_time max_over_time
    sum_over_time count_over_time quantile_over_time stddev_over_time stdvar_over_time
    last_over_time present_over_time
    """
)
KEYWORDS = _words(
    "by without on ignoring group_left group_right bool and or unless offset inf nan atan2"
)
GROUPING = ("by", "without", "on", "ignoring", "group_left", "group_right")

_IDENT = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_RANGE = re.compile(r"\[[^\]]*\]")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_SELECTOR = re.compile(rf"({_IDENT})?\s*\{{([^}}]*)\}}")
_MATCHER_LABEL = re.compile(rf"({_IDENT})\s*(?:=~|!~|!=|=)")
_GROUP_CLAUSE = re.compile(rf"\b({'|'.join(GROUPING)})\s*\(([^)]*)\)")
_AGG_BY = re.compile(rf"\b({'|'.join(AGGREGATIONS)})\s+by\s*\(([^)]*)\)\s*\(")
_NUMBER = re.compile(r"(?<![\w:])(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)")
_TOKEN = re.compile(rf"{_IDENT}")


@dataclass
class Analysis:
    """What one PromQL expression reads: metric → matcher labels, grouping labels, functions."""

    metrics: dict[str, set[str]] = field(default_factory=dict)
    grouping: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    # (labels of one ``agg by (...)``, metrics its argument reads)
    aggregations: list[tuple[set[str], set[str]]] = field(default_factory=list)


def _labels(text: str) -> set[str]:
    return {label.strip() for label in text.split(",") if label.strip()}


def _closing(text: str, start: int) -> int:
    """Index of the parenthesis closing the one opened just before ``start``."""
    depth = 1
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise AssertionError(f"unbalanced parentheses in {text!r}")


def analyse(expr: str) -> Analysis:
    """Metric names, their selector labels and grouping labels of a PromQL expression."""
    text = _STRING.sub('""', expr)
    text = _VARIABLE.sub("", text)
    text = _RANGE.sub("", text)
    text = _OFFSET.sub("", text)
    text = re.sub(r"#[^\n]*", "", text)  # PromQL comments
    result = Analysis()
    for match in _AGG_BY.finditer(text):
        argument = text[match.end() : _closing(text, match.end())]
        result.aggregations.append((_labels(match.group(2)), set(analyse(argument).metrics)))

    def selector(match: re.Match[str]) -> str:
        name, matchers = match.group(1), match.group(2)
        labels = set(_MATCHER_LABEL.findall(matchers))
        if name is None or name in FUNCTIONS | KEYWORDS:
            # {__name__="..."} style or a keyword before braces: keep the keyword, note labels
            result.metrics.setdefault("{}", set()).update(labels)
            return f" {name or ''} "
        result.metrics.setdefault(name, set()).update(labels)
        return " "

    text = _SELECTOR.sub(selector, text)

    def grouping(match: re.Match[str]) -> str:
        result.grouping |= _labels(match.group(2))
        return f" {match.group(1)} "

    text = _GROUP_CLAUSE.sub(grouping, text)
    text = _NUMBER.sub(" ", text)
    for token in _TOKEN.finditer(text):
        name = token.group(0)
        if name in KEYWORDS:
            continue
        if name in AGGREGATIONS or text[token.end() :].lstrip().startswith("("):
            result.functions.add(name)  # AGGREGATIONS: ``sum by (...) (...)``
        else:
            result.metrics.setdefault(name, set())
    return result


Family = (CounterFamily, GaugeFamily, HistogramFamily)


def exported() -> dict[str, set[str]]:
    """Every series name ``Metrics()`` exports, with the label names each carries."""
    metrics = Metrics()
    families = [v for v in vars(metrics).values() if isinstance(v, Family)]
    kinds = {metric.name: metric.type for metric in metrics.registry.collect()}
    assert {f.name for f in families} == set(kinds), "every collected family is an attribute"
    names: dict[str, set[str]] = {}
    for fam in families:
        labels = set(fam.labelnames)
        if kinds[fam.name] == "counter":
            names[f"{fam.name}_total"] = labels
        elif kinds[fam.name] == "histogram":
            names[f"{fam.name}_bucket"] = labels | {"le"}
            names[f"{fam.name}_sum"] = labels
            names[f"{fam.name}_count"] = labels
        else:
            names[fam.name] = labels
    return names


def family(series: str) -> str:
    return re.sub(r"_(total|bucket|sum|count)$", "", series)


def load_dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [p for p in load_dashboard()["panels"] if p["type"] != "row"]


def variable_queries() -> dict[str, str]:
    out = {}
    for var in load_dashboard()["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            out[var["name"]] = query["query"] if isinstance(query, dict) else query
    return out


def panel_exprs() -> list[tuple[str, str]]:
    return [(f"{p['title']} [{t['refId']}]", t["expr"]) for p in panels() for t in p["targets"]]


def alerts() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def every_expr() -> list[tuple[str, str]]:
    """(where, PromQL) for every query the dashboard and the rules run."""
    exprs = panel_exprs()
    for name, query in variable_queries().items():
        match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", query, re.S)
        assert match, f"variable {name}: expected label_values(selector, label), got {query!r}"
        selector, label = match.groups()
        # The label asked for must exist on the selected metric: check it as a grouping label.
        exprs.append((f"variable {name}", f"sum by ({label}) ({selector})"))
    exprs += [(f"alert {r['alert']} ({r['labels']['severity']})", r["expr"]) for r in alerts()]
    return exprs


# ---- the analyser


def test_analyser_finds_metrics_and_labels_and_ignores_the_rest() -> None:
    got = analyse(
        "histogram_quantile(0.95, sum by (le, route) (rate(switchman_x_bucket"
        '{route=~"$route", namespace=~"${namespace}"}[$__rate_interval]))) / on (route) '
        'group_left sum by (route) (increase(other_total{outcome!~"ok|x"}[1h] offset 5m)) * 1e6'
        " > bool 3 unless absent(third)"
    )

    assert got.metrics == {
        "switchman_x_bucket": {"route", "namespace"},
        "other_total": {"outcome"},
        "third": set(),
    }
    assert got.grouping == {"le", "route"}
    assert got.functions == {"histogram_quantile", "sum", "rate", "increase", "absent"}
    assert got.aggregations == [
        ({"le", "route"}, {"switchman_x_bucket"}),
        ({"route"}, {"other_total"}),
    ]


def test_analyser_reports_an_unknown_function() -> None:
    assert analyse("rates(x_total[5m])").functions - FUNCTIONS == {"rates"}


def test_exported_names_follow_the_metric_types() -> None:
    names = exported()

    assert names["switchman_requests_total"] == {"route", "model", "upstream", "outcome"}
    assert names["switchman_request_duration_seconds_bucket"] == {"route", "model", "le"}
    assert names["switchman_request_duration_seconds_count"] == {"route", "model"}
    assert names["switchman_upstream_in_flight_requests"] == {"upstream"}
    assert "switchman_upstream_in_flight_requests_total" not in names


# ---- the dashboard


def test_dashboard_is_a_grafana_dashboard_with_the_expected_variables() -> None:
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"] == "switchman-gateway"
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert {"route", "model"} <= set(variable_queries())
    for name in ("route", "model"):
        assert variable_queries()[name].startswith("label_values(")


def test_every_panel_has_a_datasource_and_targets() -> None:
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


def test_panel_ids_and_titles_are_unique_and_the_grid_has_no_overlap() -> None:
    every = load_dashboard()["panels"]
    ids = [p["id"] for p in every]
    titles = [p["title"] for p in panels()]
    assert len(ids) == len(set(ids))
    assert len(titles) == len(set(titles))
    cells: dict[tuple[int, int], str] = {}
    for panel in every:
        pos = panel["gridPos"]
        assert pos["x"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def problems(expr: str, names: dict[str, set[str]]) -> list[str]:
    """What in ``expr`` the gateway does not export (empty: every name and label exists)."""
    got = analyse(expr)
    found = [] if got.metrics else ["no metric found"]
    found += [f"unknown function {f}" for f in sorted(got.functions - FUNCTIONS)]
    for metric, labels in got.metrics.items():
        if metric not in names:
            found.append(f"{metric} is not exported by the gateway")
        elif unknown := labels - names[metric] - TARGET_LABELS:
            found.append(f"{metric} has no label {sorted(unknown)}")
    available = set().union(*(names.get(m, set()) for m in got.metrics)) | TARGET_LABELS
    if unknown := got.grouping - available:
        found.append(f"no metric has the grouping labels {sorted(unknown)}")
    for labels, metrics in got.aggregations:
        for metric in metrics & set(names):
            if missing := labels - names[metric] - TARGET_LABELS:
                found.append(f"aggregates {metric} by missing labels {sorted(missing)}")
    return found


@pytest.mark.parametrize(
    "expr",
    [
        "rate(switchman_requests[5m])",  # a counter without _total
        "switchman_upstream_in_flight_requests_total",  # a gauge with _total
        'rate(switchman_requests_total{direction="input"}[5m])',  # label of another metric
        "sum by (upstream) (rate(switchman_tokens_total[5m]))",
        "histogram_quantile(0.9, sum by (le) (rate(switchman_request_duration_seconds_sum[5m])))",
        "rates(switchman_requests_total[5m])",
    ],
)
def test_the_check_rejects_names_the_gateway_does_not_export(expr: str) -> None:
    assert problems(expr, exported())


@pytest.mark.parametrize(("where", "expr"), every_expr(), ids=[w for w, _ in every_expr()])
def test_expression_reads_only_exported_metrics_and_their_labels(where: str, expr: str) -> None:
    assert problems(expr, exported()) == [], f"{where}: {expr}"


def test_every_exported_family_is_on_the_dashboard() -> None:
    shown = {family(m) for _, expr in panel_exprs() for m in analyse(expr).metrics}
    families = {family(name) for name in exported()}

    missing = families - shown - set(NOT_ON_DASHBOARD)
    assert not missing, f"add a panel for {sorted(missing)} (or list it in NOT_ON_DASHBOARD)"


# ---- the alert rules


def test_rules_are_groups_of_complete_alerts() -> None:
    doc = yaml.safe_load(RULES.read_text())

    assert set(doc) == {"groups"}
    assert doc["groups"]
    for group in doc["groups"]:
        assert group["name"]
        assert group["rules"]
        for rule in group["rules"]:
            assert rule["alert"]
            assert rule["expr"].strip(), rule["alert"]
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
            assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
            for key in ("summary", "description", "runbook"):
                assert rule["annotations"][key].strip(), f"{rule['alert']}: no {key}"


def test_the_expected_alerts_exist() -> None:
    names = {(r["alert"], r["labels"]["severity"]) for r in alerts()}

    assert names >= {
        ("SwitchmanHighErrorRatio", "warning"),
        ("SwitchmanHighErrorRatio", "critical"),
        ("SwitchmanUpstreamFailing", "warning"),
        ("SwitchmanNoHealthyUpstream", "critical"),
        ("SwitchmanConfigReloadFailing", "warning"),
        ("SwitchmanBudgetBurn", "warning"),
        ("SwitchmanHighTimeToFirstToken", "warning"),
        ("SwitchmanCircuitOpen", "warning"),
        ("SwitchmanUpstreamNoReplicas", "critical"),
        ("SwitchmanRetryBudgetExhausted", "warning"),
        ("SwitchmanMidStreamFailovers", "warning"),
        ("SwitchmanShadowErrors", "warning"),
    }


# ---- promtool

promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not on PATH (apt-get install prometheus)"
)


def run_promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


@promtool
def test_promtool_accepts_the_rules() -> None:
    result = run_promtool("check", "rules", RULES)

    assert result.returncode == 0, result.stdout + result.stderr


@promtool
def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    """Grafana's macros replaced by what they stand for; each query becomes a recording rule."""
    rules = []
    for i, (_, expr) in enumerate(panel_exprs()):
        expr = re.sub(r"\$__rate_interval|\$__interval", "5m", expr)
        expr = expr.replace("$__range", "1d")
        rules.append({"record": f"dashboard:query_{i}", "expr": _VARIABLE.sub(".*", expr)})
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = run_promtool("check", "rules", path)

    assert result.returncode == 0, result.stdout + result.stderr


# Input series at 1-minute steps; "a+bxN" is a, a+b, ... (N+1 samples).
SERIES = [
    # route auto: 10% failed; client errors do not count (with them it would be 52%: critical)
    ('switchman_requests_total{namespace="prod",route="auto",outcome="ok"}', "0+50x120"),
    ('switchman_requests_total{namespace="prod",route="auto",outcome="error"}', "0+10x120"),
    ('switchman_requests_total{namespace="prod",route="auto",outcome="client_error"}', "0+45x120"),
    # route big: half fail (stalled streams): warning and critical
    ('switchman_requests_total{namespace="prod",route="big",outcome="ok"}', "0+30x120"),
    ('switchman_requests_total{namespace="prod",route="big",outcome="stalled"}', "0+30x120"),
    # route quiet: half fail but only 10 requests per 5 minutes: nothing
    ('switchman_requests_total{namespace="prod",route="quiet",outcome="ok"}', "0+1x120"),
    ('switchman_requests_total{namespace="prod",route="quiet",outcome="error"}', "0+1x120"),
    # route dead: every request fails with outcome error, none served
    ('switchman_requests_total{namespace="prod",route="dead",outcome="error"}', "0+10x120"),
    # upstreams: small fails half its attempts; large rejects half (client's fault): only small
    (
        'switchman_upstream_attempts_total{namespace="prod",upstream="small",outcome="ok"}',
        "0+50x120",
    ),
    (
        'switchman_upstream_attempts_total{namespace="prod",upstream="small",outcome="status_5xx"}',
        "0+50x120",
    ),
    (
        'switchman_upstream_attempts_total{namespace="prod",upstream="large",outcome="ok"}',
        "0+50x120",
    ),
    (
        'switchman_upstream_attempts_total{namespace="prod",upstream="large",outcome="rejected"}',
        "0+50x120",
    ),
    # pod a rejects a new config from minute 5 on; pod b is fine
    ('switchman_config_last_reload_successful{namespace="prod",instance="a"}', "1x4 0x116"),
    ('switchman_config_last_reload_successful{namespace="prod",instance="b"}', "1x120"),
    # prod spends 0.1 USD/minute = 144 USD/day; dev 14.4 USD/day
    ('switchman_cost_usd_total{namespace="prod",route="auto",model="large"}', "0+0.1x120"),
    ('switchman_cost_usd_total{namespace="dev",route="auto",model="large"}', "0+0.01x120"),
    # route slow: time to first token between 5 and 10 s; route fast: under 100 ms
    *[
        (
            f'switchman_time_to_first_token_seconds_bucket{{namespace="prod",route="slow",le="{le}"}}',
            f"0+{per_minute}x120",
        )
        for le, per_minute in (("0.1", 0), ("5", 0), ("10", 10), ("+Inf", 10))
    ],
    *[
        (
            f'switchman_time_to_first_token_seconds_bucket{{namespace="prod",route="fast",le="{le}"}}',
            "0+10x120",
        )
        for le in ("0.1", "5", "10", "+Inf")
    ],
    # Circuits (per gateway pod). small's first replica re-opens after each failed half-open
    # probe from minute 5 on, seen by pod a only; its second opens once and closes; large's opens
    # once and then sits half-open (nothing to probe with): only the first alerts.
    (
        'switchman_circuit_state{namespace="prod",instance="a",upstream="small",endpoint="10.0.0.1:8000"}',
        "0x4 " + "2 2 2 1 " * 29 + "2",
    ),
    (
        'switchman_circuit_state{namespace="prod",instance="b",upstream="small",endpoint="10.0.0.1:8000"}',
        "0x120",
    ),
    (
        'switchman_circuit_state{namespace="prod",instance="a",upstream="small",endpoint="10.0.0.2:8000"}',
        "0x4 2x2 0x113",
    ),
    (
        'switchman_circuit_state{namespace="prod",instance="a",upstream="large",endpoint="10.0.0.3:8000"}',
        "0x4 2 1x115",
    ),
    # Replicas up (per gateway pod). pool: both replicas down on both pods from minute 5;
    # half: one of two down; split: down on pod a, up on pod b; blip: down for one minute.
    *[
        (
            f'switchman_endpoint_up{{namespace="prod",instance="{pod}",upstream="pool",endpoint="{ep}"}}',
            "1x4 0x116",
        )
        for pod in ("a", "b")
        for ep in ("10.0.1.1:8000", "10.0.1.2:8000")
    ],
    ('switchman_endpoint_up{namespace="prod",upstream="half",endpoint="10.0.2.1:8000"}', "0x120"),
    ('switchman_endpoint_up{namespace="prod",upstream="half",endpoint="10.0.2.2:8000"}', "1x120"),
    (
        'switchman_endpoint_up{namespace="prod",instance="a",upstream="split",endpoint="10.0.3.1:8000"}',
        "0x120",
    ),
    (
        'switchman_endpoint_up{namespace="prod",instance="b",upstream="split",endpoint="10.0.3.1:8000"}',
        "1x120",
    ),
    (
        'switchman_endpoint_up{namespace="prod",upstream="blip",endpoint="10.0.4.1:8000"}',
        "1x4 0 1x115",
    ),
    # Retries stopped by the budget: auto 30/minute; quiet 1/minute; slow only by deadlines.
    (
        'switchman_retries_exhausted_total{namespace="prod",route="auto",reason="retry_budget"}',
        "0+30x120",
    ),
    (
        'switchman_retries_exhausted_total{namespace="prod",route="quiet",reason="retry_budget"}',
        "0+1x120",
    ),
    (
        'switchman_retries_exhausted_total{namespace="prod",route="slow",reason="deadline"}',
        "0+60x120",
    ),
    # Mid-stream cuts: big 6 of its 60 requests/minute; auto 1 of 105; quiet 1 of 2 (5 in 5m).
    (
        'switchman_midstream_failovers_total{namespace="prod",route="big",reason="stream_broken"}',
        "0+6x120",
    ),
    (
        'switchman_midstream_failovers_total{namespace="prod",route="auto",reason="stalled"}',
        "0+1x120",
    ),
    (
        'switchman_midstream_failovers_total{namespace="prod",route="quiet",reason="stalled"}',
        "0+1x120",
    ),
    # Shadows: auto → candidate fails half; auto → other mostly skipped (busy), never failed;
    # quiet → candidate fails half of 10 mirrors in 5m.
    *[
        (
            f'switchman_shadow_requests_total{{namespace="prod",route="{route}",model="{model}",outcome="{outcome}"}}',
            f"0+{per_minute}x120",
        )
        for route, model, outcome, per_minute in (
            ("auto", "candidate", "ok", 10),
            ("auto", "candidate", "status_5xx", 10),
            ("auto", "other", "ok", 10),
            ("auto", "other", "skipped", 40),
            ("quiet", "candidate", "ok", 1),
            ("quiet", "candidate", "unreachable", 1),
        )
    ],
]


def fired(alertname: str, *labels: dict[str, str], at: str = "20m") -> dict[str, Any]:
    return {
        "eval_time": at,
        "alertname": alertname,
        "exp_alerts": [{"exp_labels": x} for x in labels],
    }


ALERT_TESTS = [
    fired(
        "SwitchmanHighErrorRatio",
        *[
            {"severity": "warning", "namespace": "prod", "route": route}
            for route in ("auto", "big", "dead")
        ],
        *[
            {"severity": "critical", "namespace": "prod", "route": route}
            for route in ("big", "dead")
        ],
    ),
    fired(
        "SwitchmanUpstreamFailing",
        {"severity": "warning", "namespace": "prod", "upstream": "small"},
    ),
    fired(
        "SwitchmanNoHealthyUpstream", {"severity": "critical", "namespace": "prod", "route": "dead"}
    ),
    fired(
        "SwitchmanConfigReloadFailing",
        {"severity": "warning", "namespace": "prod", "instance": "a"},
    ),
    fired("SwitchmanConfigReloadFailing", at="8m"),  # failing for 3 of the 5 minutes: pending
    fired("SwitchmanBudgetBurn", {"severity": "warning", "namespace": "prod"}, at="100m"),
    fired(
        "SwitchmanHighTimeToFirstToken",
        {"severity": "warning", "namespace": "prod", "route": "slow"},
    ),
    fired(
        "SwitchmanCircuitOpen",
        {
            "severity": "warning",
            "namespace": "prod",
            "upstream": "small",
            "endpoint": "10.0.0.1:8000",
        },
    ),
    fired("SwitchmanCircuitOpen", at="8m"),  # open for 3 of the 5 minutes: pending
    fired(
        "SwitchmanUpstreamNoReplicas",
        {"severity": "critical", "namespace": "prod", "upstream": "pool"},
    ),
    fired("SwitchmanUpstreamNoReplicas", at="6m"),  # down for 1 of the 2 minutes: pending
    fired(
        "SwitchmanRetryBudgetExhausted",
        {"severity": "warning", "namespace": "prod", "route": "auto"},
    ),
    fired(
        "SwitchmanMidStreamFailovers",
        {"severity": "warning", "namespace": "prod", "route": "big"},
    ),
    fired(
        "SwitchmanShadowErrors",
        {"severity": "warning", "namespace": "prod", "route": "auto", "model": "candidate"},
    ),
]


@promtool
def test_each_alert_fires_in_its_scenario_and_not_in_the_control_ones(tmp_path: Path) -> None:
    """Annotations are stripped: promtool compares them verbatim, and check rules covers them."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(doc))
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in SERIES],
                "alert_rule_test": ALERT_TESTS,
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))

    result = subprocess.run(
        ["promtool", "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
