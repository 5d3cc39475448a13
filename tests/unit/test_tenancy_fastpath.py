"""The request path's tenancy arithmetic, written without calls (``min``, ``max``, ``zip``) for
speed, against the plain formulas it replaced:

- ``usage_cost`` equals the reference formula exactly (cached and reasoning tokens clamped to
  the prompt and completion, their prices defaulting to input and output), for a grid of usages
- ``worst_case`` takes the priciest candidate, a reasoning price above the output price, and
  skips unpriced candidates; ``max_tokens`` takes the first positive int spelling only
- ``verdict`` refuses on the first budget period passed (the second one too), admits at exactly
  the hard limit; ``wait`` is at least 1 ms while anything is missing
- the synced books take no reservation id (they keep sums); the local ledger's ids are unique
- ``GrantHeaders`` of a tenant with a request limit only
- ``Ticket.settle``'s saving: the served model at the cost it was given, the others priced
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from switchman.api.gatewayconfig import GatewayConfig, Model, Price
from switchman.api.tenancy import Tenant
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy import pricing
from switchman.gateway.tenancy.admission import Tenancy
from switchman.gateway.tenancy.keys import hash_key
from switchman.gateway.tenancy.ledger import Ask, Grant, Period, verdict, wait
from switchman.gateway.tenancy.limits import GrantHeaders


def reference_cost(price: Price, usage: Usage) -> float:
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    cached_price = (
        price.input_per_mtok if price.cached_input_per_mtok is None else price.cached_input_per_mtok
    )
    reasoning_price = (
        price.output_per_mtok if price.reasoning_per_mtok is None else price.reasoning_per_mtok
    )
    return (
        (usage.prompt_tokens - cached) * price.input_per_mtok
        + cached * cached_price
        + (usage.completion_tokens - reasoning) * price.output_per_mtok
        + reasoning * reasoning_price
    ) / 1e6


def test_usage_cost_is_the_reference_formula_exactly() -> None:
    prices = [
        Price(input_per_mtok=0.15, output_per_mtok=0.6),
        Price(input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5),
        Price(input_per_mtok=3.0, output_per_mtok=15.0, reasoning_per_mtok=30.0),
        Price(
            input_per_mtok=1.1,
            output_per_mtok=4.4,
            cached_input_per_mtok=0.0,
            reasoning_per_mtok=0.0,
        ),
    ]
    counts = (0, 1, 7, 1000, 123_457)
    for price, (p, c, k, r) in itertools.product(prices, itertools.product(counts, repeat=4)):
        usage = Usage(prompt_tokens=p, completion_tokens=c, cached_tokens=k, reasoning_tokens=r)
        assert pricing.usage_cost(price, usage) == reference_cost(price, usage)
    clamped = Usage(prompt_tokens=10, completion_tokens=5, cached_tokens=50, reasoning_tokens=9)
    assert pricing.usage_cost(prices[1], clamped) == (10 * 0.5 + 5 * 8.0) / 1e6
    assert pricing.usage_cost(prices[2], clamped) == (10 * 3.0 + 5 * 30.0) / 1e6


def test_worst_case_and_max_tokens() -> None:
    plain = Model(name="a", upstream="u", price=Price(input_per_mtok=1, output_per_mtok=2))
    thinker = Model(
        name="b",
        upstream="u",
        price=Price(input_per_mtok=1, output_per_mtok=2, reasoning_per_mtok=20),
    )
    unpriced = Model(name="c", upstream="u")
    assert pricing.worst_case([plain, thinker, unpriced], 100, 50) == (100 + 50 * 20) / 1e6
    assert pricing.worst_case([plain, unpriced], 100, 50) == (100 + 50 * 2) / 1e6
    assert pricing.worst_case([unpriced], 100, 50) == 0.0
    assert pricing.max_tokens({"max_tokens": 0, "max_output_tokens": 5}, 64) == 5
    assert pricing.max_tokens({"max_completion_tokens": -1, "max_tokens": 2.5}, 64) == 64
    assert pricing.max_tokens({"max_completion_tokens": False, "max_tokens": 9}, 64) == 9
    assert pricing.max_tokens({}, 64) == 64


def test_verdict_takes_the_first_period_passed_and_admits_at_the_limit() -> None:
    day, month = Period("daily", "20261206", 1000, 60), Period("monthly", "202612", 5000, 60)

    def ask(amount: int) -> Ask:
        return Ask("t", 10, 100, 5, amount, (day, month), "", 1000)

    assert verdict(ask(100), 5.0, 50.0, [900, 100]) == ("", 0)  # exactly the daily limit
    assert verdict(ask(101), 5.0, 50.0, [900, 100]) == ("daily", 0)
    assert verdict(ask(100), 5.0, 50.0, [0, 4901]) == ("monthly", 0)
    assert verdict(ask(100), 0.5, 50.0, [0, 0]) == ("rpm", 3000)
    assert verdict(ask(100), 5.0, 4.0, [0, 0]) == ("tpm", 600)
    assert wait(1e-9, 10**9) == 1
    assert wait(0.0, 10) == 0
    assert wait(5.0, 0) == 0


def config(tmp_path: Path, redis: str | None) -> GatewayConfig:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "t", "sha256": hash_key("sk-t")}]}))
    tenancy: dict[str, object] = {
        "keys_file": str(keys),
        "tenants": [{"name": "t", "daily": {"hard_usd": 10}}],
    }
    if redis is not None:
        tenancy["redis"] = {"url": redis}
    return GatewayConfig.model_validate(
        {
            "version": 1,
            "upstreams": [{"name": "u", "base_url": "http://127.0.0.1:1/v1"}],
            "models": [
                {
                    "name": "a",
                    "upstream": "u",
                    "price": {"input_per_mtok": 1, "output_per_mtok": 2},
                },
                {
                    "name": "b",
                    "upstream": "u",
                    "price": {"input_per_mtok": 4, "output_per_mtok": 8},
                },
            ],
            "tenancy": tenancy,
        }
    )


async def test_reservation_ids_only_where_a_ledger_releases_by_id(tmp_path: Path) -> None:
    local = Tenancy(Metrics(), {})
    parsed = config(tmp_path, None)
    local.configure(parsed.tenancy)
    models = list(parsed.models)
    members = {(await local.admit("t", "a", True, models, (10, 10)))[0].ask.member for _ in "ab"}
    assert len(members) == 2
    assert "" not in members
    synced = Tenancy(Metrics(), {})  # Redis never answers here: the books admit in memory
    synced.configure(config(tmp_path, "redis://127.0.0.1:1/0").tenancy)
    ticket, _ = await synced.admit("t", "a", True, models, (10, 10))
    assert ticket.ask.member == ""
    assert ticket.headers["x-switchman-tenant"] == "t"
    await synced.close()
    await local.close()


async def test_saving_prices_the_other_candidates(tmp_path: Path) -> None:
    tenancy = Tenancy(Metrics(), {})
    parsed = config(tmp_path, None)
    tenancy.configure(parsed.tenancy)
    cheap, dear = parsed.models
    usage = Usage(prompt_tokens=1000, completion_tokens=100)
    ticket, _ = await tenancy.admit("t", "a", True, [cheap, dear], (10, 10))
    ticket.settle("a", cheap, usage, pricing.cost(cheap, usage))
    assert tenancy.store is not None
    row = tenancy.store.local.usage[(ticket.ask.periods[0].id, "t", "a", "a")]
    assert row["saving"] == pricing.nanos(pricing.cost(dear, usage)) - pricing.nanos(
        pricing.cost(cheap, usage)
    )
    dearest, _ = await tenancy.admit("t", "a", True, [cheap, dear], (10, 10))
    dearest.settle("a", dear, usage, pricing.cost(dear, usage))
    assert tenancy.store.local.usage[(ticket.ask.periods[0].id, "t", "a", "b")]["saving"] == 0


def test_grant_headers_of_a_request_limit_only() -> None:
    tenant = Tenant.model_validate({"name": "t", "limits": {"requests_per_minute": 3}})
    headers = GrantHeaders(tenant, 3, 0, ["daily", "monthly"])
    rendered = headers.render(Grant(True, "", 2, 20_000, 0, 0, 0, (0, 0)))
    assert rendered == {
        "x-switchman-tenant": "t",
        "x-ratelimit-limit-requests": "3",
        "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "20s",
    }
