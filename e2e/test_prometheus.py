"""A real Prometheus scrapes the gateway; PromQL sees exactly the traffic the test sent.

Everything runs as a user runs it, each a subprocess on a free port of 127.0.0.1 (fixtures in
``conftest_prometheus``): two ``switchman sim`` servers (no latency) serving models ``a`` and
``b``, ``switchman gateway`` in front of them (route ``auto`` = [a, b], prices on both models),
and Prometheus (the Debian package's 2.x, installed by ``e2e/prometheus/setup.sh``) with a
temporary data dir and a generated config scraping the gateway's ``/metrics`` every second.
Traffic goes in three phases; after each the test waits for a scrape begun after the phase's last
response, so Prometheus sees every phase and ``rate()`` has increases to work on:

    phase | traffic (OpenAI SDK)                   | sim faults   | served by
    ------|----------------------------------------|--------------|-----------------------------
    1     | 7 chat completions, route auto         | -            | a
    2     | 3 chat streams with usage, route auto  | -            | a
    3     | 4 chat completions, route auto         | a down (503) | b, after a failed: status_5xx
    3     | 2 chat completions, unknown model      | -            | nobody: 404

PromQL (``/api/v1/query``) must then return exactly:

    query                                                       | expect
    ------------------------------------------------------------|-------------------------------
    sum(switchman_requests_total{route="auto",outcome="ok"})    | 14
    ... by (model)                                              | a 10, b 4
    sum(switchman_requests_total{outcome="client_error"})       | 2
    switchman_routing_decisions_total                           | {auto, priority} 14
    switchman_fallbacks_total                                   | {auto, status_5xx} 4
    switchman_upstream_attempts_total{outcome!="ok"}            | {sim-a, status_5xx} 4
    sum by (upstream) (switchman_upstream_attempts_total{ok})   | sim-a 10, sim-b 4
    sum by (model, direction) (switchman_tokens_total)          | the usage the clients received
    sum by (model) (switchman_cost_usd_total)                   | that usage times the prices
    sum(switchman_time_to_first_token_seconds_count)            | 3
    histogram_quantile(0.5, sum by (le) (rate(..._bucket[1m]))) | a finite number of seconds
    up{job="switchman"}                                         | 1

and ``promtool check metrics`` has nothing to say about the gateway's exposition.

Prometheus missing fails the test with what to run (``bash e2e/prometheus/setup.sh``, which
``make test-e2e`` runs); ``SWITCHMAN_SKIP_PROMETHEUS=1`` skips it on purpose when Prometheus is
missing. Neither vLLM nor its fixtures are used. About 10 s, most of it waiting for scrapes.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai
import pytest

if TYPE_CHECKING:  # imported by pytest as a plugin (below), so that its asserts are rewritten
    from conftest_prometheus import Binaries, Stack

pytest_plugins = ["conftest_prometheus"]

MESSAGES: Any = [{"role": "user", "content": "count the scrapes"}]
MAX_TOKENS = 5


@dataclass
class Sent:
    """Tokens the clients were told they used, by (model, direction)."""

    tokens: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, model: str, usage: Any) -> None:
        assert usage is not None
        for direction, count in (
            ("input", usage.prompt_tokens),
            ("output", usage.completion_tokens),
        ):
            self.tokens[model, direction] = self.tokens.get((model, direction), 0) + count


@pytest.fixture(scope="module")
def sent(prometheus_stack: Stack, prometheus_progress: Callable[[str], None]) -> Sent:
    """The phases of the module docstring, each followed by a scrape."""
    stack, say = prometheus_stack, prometheus_progress
    record = Sent()
    with openai.OpenAI(
        base_url=f"{stack.gateway.url}/v1", api_key="unused", max_retries=0, timeout=30
    ) as client:
        stack.wait_for_scrape(say, "first scrape")

        for _ in range(7):
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES, max_tokens=MAX_TOKENS
            )
            assert raw.headers["x-switchman-model"] == "a"
            record.add("a", raw.parse().usage)
        stack.wait_for_scrape(say, "phase 1 (7 completions)")

        for _ in range(3):
            stream = client.chat.completions.create(
                model="auto",
                messages=MESSAGES,
                max_tokens=MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},
            )
            record.add("a", list(stream)[-1].usage)
        stack.wait_for_scrape(say, "phase 2 (3 streams)")

        stack.set_faults(stack.sim_a, down=True)
        for _ in range(4):
            raw = client.chat.completions.with_raw_response.create(
                model="auto", messages=MESSAGES, max_tokens=MAX_TOKENS
            )
            assert raw.headers["x-switchman-model"] == "b"
            assert raw.headers["x-switchman-attempts"] == "2"
            record.add("b", raw.parse().usage)
        for _ in range(2):
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="no-such-model", messages=MESSAGES)
        stack.wait_for_scrape(say, "phase 3 (4 fallbacks, 2 unknown models)")
    return record


def test_prometheus_scrapes_the_gateway(prometheus_stack: Stack, sent: Sent) -> None:
    assert prometheus_stack.scalar('up{job="switchman"}') == 1


def test_requests_are_counted_exactly_by_route_model_and_outcome(
    prometheus_stack: Stack, sent: Sent
) -> None:
    stack = prometheus_stack
    assert stack.scalar('sum(switchman_requests_total{route="auto",outcome="ok"})') == 14
    assert stack.by(
        'sum by (model) (switchman_requests_total{route="auto",outcome="ok"})', "model"
    ) == {("a",): 10, ("b",): 4}
    assert stack.scalar('sum(switchman_requests_total{outcome="client_error"})') == 2
    assert stack.scalar("sum(switchman_requests_total)") == 16
    assert stack.by("switchman_routing_decisions_total", "route", "reason") == {
        ("auto", "priority"): 14
    }


def test_fallbacks_and_failed_attempts_are_counted_by_reason(
    prometheus_stack: Stack, sent: Sent
) -> None:
    stack = prometheus_stack
    assert stack.by("switchman_fallbacks_total", "route", "reason") == {("auto", "status_5xx"): 4}
    assert stack.by('switchman_upstream_attempts_total{outcome!="ok"}', "upstream", "outcome") == {
        ("sim-a", "status_5xx"): 4
    }
    assert stack.by(
        'sum by (upstream) (switchman_upstream_attempts_total{outcome="ok"})', "upstream"
    ) == {("sim-a",): 10, ("sim-b",): 4}


def test_tokens_and_cost_match_the_usage_clients_received(
    prometheus_stack: Stack, sent: Sent
) -> None:
    stack = prometheus_stack
    tokens = stack.by("sum by (model, direction) (switchman_tokens_total)", "model", "direction")
    assert tokens == sent.tokens
    assert all(count > 0 for count in sent.tokens.values())
    cost = stack.by("sum by (model) (switchman_cost_usd_total)", "model")
    expected = {
        (model,): (sent.tokens[model, "input"] * per_in + sent.tokens[model, "output"] * per_out)
        / 1e6
        for model, (per_in, per_out) in stack.prices.items()
    }
    assert cost.keys() == expected.keys()
    for key, value in expected.items():
        assert cost[key] == pytest.approx(value, rel=1e-9)


def test_latency_histograms_answer_promql(prometheus_stack: Stack, sent: Sent) -> None:
    stack = prometheus_stack
    assert stack.scalar("sum(switchman_time_to_first_token_seconds_count)") == 3
    assert stack.scalar("sum(switchman_request_duration_seconds_count)") == 16
    rate = "rate(switchman_request_duration_seconds_bucket[1m])"
    p50 = stack.scalar(f"histogram_quantile(0.5, sum by (le) ({rate}))")
    assert math.isfinite(p50)
    assert 0 < p50 <= 600


def test_promtool_finds_no_problem_in_the_exposition(
    prometheus_stack: Stack, sent: Sent, prometheus_binaries: Binaries
) -> None:
    exposition = prometheus_stack.exposition()
    assert b"switchman_fallbacks_total{" in exposition  # every family has samples by now
    check = subprocess.run(
        [prometheus_binaries.promtool, "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=30,
        check=False,
    )
    problems = (check.stdout + check.stderr).decode().strip()
    assert check.returncode == 0, f"promtool check metrics (exit {check.returncode}):\n{problems}"
    assert problems == "", problems
