"""Tenancy's pure parts: which header carries a key, the keys file, prices, limits' wording.

- ``presented_key``: ``Authorization: Bearer`` (any case), ``api-key``, ``x-api-key``; none
- keys file: hashes only (a plaintext key is refused without being echoed), unknown shapes refused
- ``KeyRing``: finds a key's tenant, reloads a changed file, keeps the last good set when the new
  file is invalid (and says why), treats a missing file as no keys
- pricing: cached and reasoning tokens at their own prices, the worst case over candidates,
  nano-dollars round up, ``max_tokens`` read from any of its spellings
- limits: OpenAI's reset durations; the rate-limit and budget-warning headers
- GatewayConfig: a tenant naming an unknown route, soft above hard, duplicate tenants are refused
- ``switchman keys new`` prints the key once and an entry holding only its hash; ``switchman
  usage`` sums an access log per tenant, route and model within the period, with the saving
  against the route's priciest candidate
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest

from switchman.api.gatewayconfig import ConfigError, Model, Price, parse
from switchman.api.tenancy import Tenant
from switchman.cli import keys as keys_cli
from switchman.cli import usage as usage_cli
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.tenancy import pricing
from switchman.gateway.tenancy.keys import (
    KeyRing,
    KeysFileError,
    hash_key,
    new_key,
    parse_keys,
    presented_key,
)
from switchman.gateway.tenancy.ledger import Ask, Grant, Period
from switchman.gateway.tenancy.limits import duration, grant_headers


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"authorization": "Bearer sk-1"}, "sk-1"),
        ({"authorization": "bearer   sk-2 "}, "sk-2"),
        ({"api-key": "sk-3"}, "sk-3"),
        ({"x-api-key": " sk-4 "}, "sk-4"),
        ({"authorization": "Basic abc"}, None),
        ({}, None),
    ],
)
def test_presented_key_reads_every_sdks_header(
    headers: dict[str, str], expected: str | None
) -> None:
    assert presented_key(headers) == expected


def test_keys_file_holds_hashes_only() -> None:
    key = new_key()
    found = parse_keys(json.dumps({"keys": [{"tenant": "a", "sha256": hash_key(key)}]}), "f")
    assert found == {bytes.fromhex(hash_key(key)): "a"}
    with pytest.raises(KeysFileError) as plaintext:
        parse_keys(json.dumps({"keys": [{"tenant": "a", "sha256": key}]}), "f")
    assert key not in str(plaintext.value)
    assert "never the key itself" in str(plaintext.value)
    for bad in ("[1, 2]", "keys: nope", "keys: [{sha256: x}]", "{"):
        with pytest.raises(KeysFileError):
            parse_keys(bad, "f")


def test_key_ring_reloads_and_keeps_the_last_good_file(tmp_path: Path) -> None:
    now = [0.0]
    path = tmp_path / "keys.yaml"
    first, second = new_key(), new_key()
    path.write_text(f"keys:\n  - {{tenant: a, sha256: {hash_key(first)}}}\n")
    ring = KeyRing(path, clock=lambda: now[0])
    assert ring.lookup(first) == "a"
    assert ring.lookup(second) is None
    path.write_text(f"keys:\n  - {{tenant: b, sha256: {hash_key(second)}}}\n  # changed\n")
    assert ring.lookup(second) is None  # checked at most once a second
    now[0] += 1.5
    assert ring.lookup(second) == "b"
    assert ring.lookup(first) is None
    path.write_text("keys: [oops")
    now[0] += 1.5
    assert ring.lookup(second) == "b"
    assert ring.last_error is not None
    assert "not valid YAML" in ring.last_error
    missing = KeyRing(tmp_path / "absent.yaml")
    assert missing.count == 0
    assert missing.last_error is not None


def test_cost_prices_cached_and_reasoning_tokens_apart() -> None:
    price = Price(
        input_per_mtok=2.0,
        output_per_mtok=8.0,
        cached_input_per_mtok=0.5,
        reasoning_per_mtok=16.0,
    )
    usage = Usage(
        prompt_tokens=1000, completion_tokens=500, cached_tokens=400, reasoning_tokens=100
    )
    expected = (600 * 2.0 + 400 * 0.5 + 400 * 8.0 + 100 * 16.0) / 1e6
    assert pricing.usage_cost(price, usage) == pytest.approx(expected)
    plain = Price(input_per_mtok=2.0, output_per_mtok=8.0)
    assert pricing.usage_cost(plain, usage) == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert pricing.cost(None, usage) == 0.0


def test_worst_case_takes_the_priciest_candidate_and_rounds_up() -> None:
    cheap = Model(name="a", upstream="u", price=Price(input_per_mtok=1, output_per_mtok=2))
    dear = Model(name="b", upstream="u", price=Price(input_per_mtok=3, output_per_mtok=30))
    assert pricing.worst_case([cheap, dear], 100, 50) == pytest.approx((300 + 1500) / 1e6)
    assert pricing.nanos(1e-12) == 1
    assert pricing.nanos(0.0) == 0
    assert pricing.nanos(0.25) == 250_000_000
    assert pricing.max_tokens({"max_completion_tokens": 7, "max_tokens": 9}, 64) == 7
    assert pricing.max_tokens({"max_tokens": True}, 64) == 64
    assert pricing.prompt_tokens(10) == 3


@pytest.mark.parametrize(
    ("ms", "text"), [(20, "20ms"), (1500, "1.5s"), (59_000, "59s"), (360_000, "6m0s")]
)
def test_reset_durations_in_openais_format(ms: int, text: str) -> None:
    assert duration(ms) == text


def test_grant_headers_count_down_and_warn_past_the_soft_limit() -> None:
    tenant = Tenant.model_validate(
        {
            "name": "t",
            "limits": {"requests_per_minute": 10, "tokens_per_minute": 1000},
            "daily": {"hard_usd": 1.0, "soft_usd": 0.5},
        }
    )
    periods = (Period("daily", "20261206", 10**9, 1), Period("monthly", "202612", 0, 1))
    ask = Ask("t", 10, 1000, 50, 10, periods, "m", 1000)
    grant = Grant(True, "", 7, 18_000, 900, 6_000, 0, (600_000_000, 600_000_000))
    headers = grant_headers(tenant, ask, grant)
    assert headers["x-ratelimit-limit-requests"] == "10"
    assert headers["x-ratelimit-remaining-requests"] == "7"
    assert headers["x-ratelimit-reset-requests"] == "18s"
    assert headers["x-ratelimit-remaining-tokens"] == "900"
    assert headers["x-ratelimit-reset-tokens"] == "6s"
    assert "daily budget: $0.6 used or reserved of $1" in headers["x-switchman-budget-warning"]


BASE = """
version: 1
upstreams: [{name: u, base_url: "http://127.0.0.1:1/v1"}]
models: [{name: m, upstream: u}]
routes: [{name: r, candidates: [m]}]
"""


@pytest.mark.parametrize(
    ("tenancy", "problem"),
    [
        ("{keys_file: k, tenants: [{name: a, routes: [nope]}]}", "unknown routes or models"),
        ("{keys_file: k, tenants: [{name: a, models: [r]}]}", "unknown routes or models"),
        ("{keys_file: k, tenants: [{name: a}, {name: a}]}", "duplicate tenant names"),
        ("{keys_file: k, tenants: [{name: a, daily: {hard_usd: 1, soft_usd: 2}}]}", "soft_usd"),
        ("{keys_file: k, tenants: []}", "tenants"),
        ("{keys_file: k, tenants: [{name: a}], redis: {url: 'redis://u:pw@h'}}", "redis.url"),
    ],
)
def test_config_refuses_bad_tenancy(tenancy: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(BASE + f"tenancy: {tenancy}\n")
    assert problem in str(refused.value)
    assert "pw" not in str(refused.value)


def test_keys_cli_prints_a_key_once_and_an_entry_with_its_hash_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(action="new", tenant="team-a", id="ci")
    assert keys_cli.run(args) == 0
    out = capsys.readouterr().out.splitlines()
    key = out[0].removeprefix("key team-a: ")
    entry = out[-1]
    assert key not in entry
    found = parse_keys("keys:\n" + entry + "\n", "printed")
    assert found == {bytes.fromhex(hash_key(key)): "team-a"}


def test_usage_from_an_access_log_sums_per_tenant_route_and_model() -> None:
    config = parse(
        BASE.replace(
            "models: [{name: m, upstream: u}]",
            "models: [{name: m, upstream: u, price: {input_per_mtok: 1, output_per_mtok: 1}},"
            " {name: big, upstream: u, price: {input_per_mtok: 10, output_per_mtok: 10}}]",
        ).replace("candidates: [m]", "candidates: [m, big]")
    )
    line = {
        "time": "2026-12-06T10:00:00.000+00:00",
        "tenant": "a",
        "route": "r",
        "model": "m",
        "input_tokens": 100,
        "output_tokens": 100,
        "cost_usd": 0.0002,
    }
    lines = [json.dumps(line), json.dumps({**line, "tenant": None}), "not json"]
    lines.append(json.dumps({**line, "time": "2026-12-05T10:00:00.000+00:00"}))
    rows = usage_cli.from_access_log(lines * 2, [date(2026, 12, 6)], None, config)
    assert dict(rows) == {
        ("a", "r", "m"): {
            "requests": 2,
            "input": 200,
            "output": 200,
            "cost": 400_000,
            "saving": 2 * (2_000_000 - 200_000),
        }
    }
    assert usage_cli.days("2026-02", date(2026, 12, 6))[-1] == date(2026, 2, 28)
    assert len(usage_cli.days("month", date(2026, 12, 6))) == 6
