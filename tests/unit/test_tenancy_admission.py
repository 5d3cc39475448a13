"""Admission's per-tenant terms, the bill a ticket writes, the headers kept per tenant, and the
local ledger's reservation expiry (no Redis: ``LocalLedger`` answers).

- a tenant's budget periods follow the UTC day and month (computed once, renewed when the day
  ends) and its caps and headers follow a config change at once
- ``Ticket.settle`` bills the actual cost, the saving against the route's priciest candidate,
  the reservation when no usage came back, nothing for a request nothing served; once only; the
  tenant's spend counter per route and model
- ``GrantHeaders`` renders each grant's counts and resets (a kept reset text is replaced when
  the reset changes), in OpenAI's header order, and the budget warnings past each soft limit
- ``GrantHeaders.admitted`` (the synced books' usual admission) is ``render`` of the same grant,
  the same dict again while the levels are the same, rendered anew past a soft limit
- ``LocalLedger`` releases an unsettled reservation after its TTL even when the soonest deadline
  it knew of belonged to a reservation settled since
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchman.api.gatewayconfig import GatewayConfig
from switchman.api.tenancy import Tenant
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.tenancy import ledger, pricing
from switchman.gateway.tenancy.admission import Tenancy
from switchman.gateway.tenancy.keys import hash_key
from switchman.gateway.tenancy.ledger import Ask, Bill, Grant, LocalLedger, Period
from switchman.gateway.tenancy.limits import GrantHeaders


class Wall:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def config(tmp_path: Path, rpm: int = 5) -> GatewayConfig:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"tenant": "t", "sha256": hash_key("sk-t")}]}))
    return GatewayConfig.model_validate(
        {
            "version": 1,
            "upstreams": [{"name": "u", "base_url": "http://127.0.0.1:1/v1"}],
            "models": [
                {
                    "name": "cheap",
                    "upstream": "u",
                    "price": {"input_per_mtok": 1, "output_per_mtok": 2},
                },
                {
                    "name": "dear",
                    "upstream": "u",
                    "price": {"input_per_mtok": 10, "output_per_mtok": 30},
                },
            ],
            "routes": [{"name": "r", "candidates": ["cheap", "dear"]}],
            "tenancy": {
                "keys_file": str(keys),
                "tenants": [
                    {
                        "name": "t",
                        "limits": {"requests_per_minute": rpm, "tokens_per_minute": 10_000},
                        "daily": {"hard_usd": 10},
                    }
                ],
            },
        }
    )


@pytest.fixture
def wall() -> Wall:
    return Wall(datetime(2026, 12, 6, 23, 59, 59, 500_000, tzinfo=UTC))


def tenancy_for(parsed: GatewayConfig, wall: Wall) -> Tenancy:
    tenancy = Tenancy(Metrics(), {}, wall=wall)
    tenancy.configure(parsed.tenancy)
    return tenancy


async def test_periods_follow_the_utc_day_and_caps_follow_the_config(
    tmp_path: Path, wall: Wall
) -> None:
    parsed = config(tmp_path)
    tenancy = tenancy_for(parsed, wall)
    models = list(parsed.models)

    async def admitted() -> tuple[tuple[str, ...], dict[str, str]]:
        ticket, _ = await tenancy.admit("t", "r", False, models, (10, 10))
        return tuple(p.id for p in ticket.ask.periods), ticket.headers

    ids, headers = await admitted()
    assert ids == ("20261206", "202612")
    assert headers["x-ratelimit-limit-requests"] == "5"
    wall.now += 1.0  # 00:00:00.5 the next day
    assert (await admitted())[0] == ("20261207", "202612")
    wall.now = datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    assert (await admitted())[0] == ("20270101", "202701")
    tenancy.configure(config(tmp_path, rpm=7).tenancy)
    assert (await admitted())[1]["x-ratelimit-limit-requests"] == "7"


async def test_settle_bills_actual_saving_reservation_and_spend_once(
    tmp_path: Path, wall: Wall
) -> None:
    parsed = config(tmp_path, rpm=100)
    tenancy = tenancy_for(parsed, wall)
    cheap, dear = parsed.models
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    cost = pricing.cost(cheap, usage)  # 0.002
    for _ in range(2):
        ticket, _ = await tenancy.admit("t", "r", False, [cheap, dear], (1000, 500))
        ticket.settle("r", cheap, usage, cost)
        ticket.settle("r", cheap, usage, cost)  # once only
    unused, _ = await tenancy.admit("t", "r", False, [cheap, dear], (1000, 500))
    unused.settle("r", dear, None, 0.0)  # served, no usage: the reservation is billed
    nothing, _ = await tenancy.admit("t", "r", False, [cheap, dear], (1000, 500))
    nothing.settle("r", None, None, 0.0)
    assert tenancy.store is not None
    usage_rows = tenancy.store.local.usage
    actual = pricing.nanos(cost)
    saving = pricing.nanos(pricing.cost(dear, usage)) - actual
    assert usage_rows[("20261206", "t", "r", "cheap")] == {
        "cost": 2 * actual,
        "requests": 2,
        "input": 2000,
        "output": 1000,
        "saving": 2 * saving,
    }
    assert usage_rows[("20261206", "t", "r", "dear")]["cost"] == unused.ask.amount
    assert usage_rows[("20261206", "t", "r", "none")]["cost"] == 0
    spend = tenancy.metrics.tenant_spend.children
    assert spend[("t", "r", "cheap")].value == pytest.approx(2 * actual / 1e9)
    assert spend[("t", "r", "dear")].value == pytest.approx(unused.ask.amount / 1e9)
    assert ("t", "r", "none") not in spend


def grant(left: int, reset_ms: int, used: tuple[int, ...] = (0, 0)) -> Grant:
    return Grant(True, "", left, reset_ms, left * 100, reset_ms // 2, 0, used)


def test_grant_headers_render_each_grant_in_order() -> None:
    tenant = Tenant.model_validate(
        {
            "name": "t",
            "limits": {"requests_per_minute": 10, "tokens_per_minute": 1000},
            "daily": {"hard_usd": 1.0, "soft_usd": 0.5},
            "monthly": {"hard_usd": 20.0, "soft_usd": 0.25},
        }
    )
    headers = GrantHeaders(tenant, 10, 1000, ["daily", "monthly"])
    seen = [headers.render(grant(*args)) for args in ((9, 18_000), (8, 18_000), (7, 500))]
    assert [h["x-ratelimit-reset-requests"] for h in seen] == ["18s", "18s", "500ms"]
    assert [h["x-ratelimit-reset-tokens"] for h in seen] == ["9s", "9s", "250ms"]
    assert [h["x-ratelimit-remaining-requests"] for h in seen] == ["9", "8", "7"]
    assert list(seen[0]) == [
        "x-switchman-tenant",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
    ]
    warned = headers.render(grant(6, 18_000, (600_000_000, 300_000_000)))
    assert warned["x-ratelimit-reset-requests"] == "18s"
    assert warned["x-switchman-budget-warning"] == (
        "daily budget: $0.6 used or reserved of $1 (soft limit $0.5); "
        "monthly budget: $0.3 used or reserved of $20 (soft limit $0.25)"
    )
    tokens_only = GrantHeaders(tenant, 0, 1000, ["daily", "monthly"]).render(grant(1, 10))
    assert list(tokens_only)[:2] == ["x-switchman-tenant", "x-ratelimit-limit-tokens"]


def test_admitted_headers_are_the_grants_and_kept_while_the_same() -> None:
    tenant = Tenant.model_validate(
        {
            "name": "t",
            "limits": {"requests_per_minute": 10, "tokens_per_minute": 1000},
            "daily": {"hard_usd": 1, "soft_usd": 0.5},
        }
    )
    headers = GrantHeaders(tenant, 10, 1000, ["daily", "monthly"])

    def rendered(requests: float, tokens: float, used: list[int]) -> dict[str, str]:
        return GrantHeaders(tenant, 10, 1000, ["daily", "monthly"]).render(
            ledger.grant("", requests, 10, tokens, 1000, 0, used)
        )

    first = headers.admitted(9.0, 900.5, [100, 100], 20)
    assert first == rendered(9.0, 900.5, [120, 120])
    assert headers.admitted(9.0, 900.5, [100, 100], 70) is first
    other = headers.admitted(8.25, 900.5, [100, 100], 0)
    assert other == rendered(8.25, 900.5, [100, 100])
    assert other["x-ratelimit-reset-requests"] == "10.5s"
    soft = 500_000_000
    warned = headers.admitted(8.25, 900.5, [soft - 10, soft - 10], 10)
    assert warned == rendered(8.25, 900.5, [soft, soft])
    assert "x-switchman-budget-warning" in warned
    assert headers.admitted(8.25, 900.5, [soft - 10, soft - 10], 9) is other


def test_local_reservation_expires_after_a_settled_one_set_the_soonest_deadline() -> None:
    now = [0]
    ledger = LocalLedger(clock_ms=lambda: now[0])
    day = Period("daily", "20261206", 1000, 3600)
    assert day.key == ("daily", "20261206")

    def ask(member: str, amount: int, ttl_ms: int) -> Ask:
        return Ask("t", 0, 0, 1, amount, (day,), member, ttl_ms)

    first = ask("a", 400, 100)
    assert ledger.admit_now(first).ok
    now[0] = 10
    ledger.settle_now(Bill(first, "r", "m", 0, 0, 0, 0, 0, "20261206"))
    now[0] = 20
    assert ledger.admit_now(ask("b", 900, 1000)).ok  # never settled
    now[0] = 150  # past the settled one's deadline: b is still held
    assert ledger.admit_now(ask("c", 900, 1000)).reason == "daily"
    now[0] = 1020  # b's deadline
    found = ledger.admit_now(ask("c", 900, 1000))
    assert (found.ok, found.used) == (True, (900,))
