"""``switchman usage``: spend per tenant, route and model for a period, and what routing saved.

Reads the usage records the gateway's Redis ledger keeps per tenant and UTC day
(``PREFIX:{TENANT}:usage:YYYYMMDD``, written every sync by ``gateway.tenancy.syncer``, or once
per billed response by ``gateway.tenancy.redisledger`` in strict mode), or the gateway's JSON
access log (``--access-log FILE``, one line per request with ``tenant``, ``route``, ``model``,
tokens and ``cost_usd``; the saving then needs ``--config`` for the routes' candidates and
prices). The saving is against sending every
request to its route's most expensive candidate with the same usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from switchman.api.gatewayconfig import ConfigError, GatewayConfig, load
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.tenancy.pricing import NANOS_PER_USD, usage_cost

Row = tuple[str, str, str]  # tenant, route, model
COUNTERS = ("requests", "input", "output", "cost", "saving")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--redis", metavar="URL", help="the gateway's Redis (redis://host:6379/0)")
    source.add_argument("--access-log", metavar="FILE", help="a JSON access log instead")
    parser.add_argument("--prefix", default="switchman", help="tenancy.redis.prefix (switchman)")
    parser.add_argument(
        "--period",
        default="today",
        help="today, yesterday, month (this UTC month), YYYY-MM-DD or YYYY-MM (default today)",
    )
    parser.add_argument("--tenant", help="only this tenant")
    parser.add_argument("--config", help="GatewayConfig, for the saving from an access log")
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")


def days(period: str, today: date) -> list[date]:
    """The UTC days ``period`` covers (up to today)."""
    if period == "today":
        return [today]
    if period == "yesterday":
        return [today - timedelta(days=1)]
    if period == "month":
        return [today.replace(day=d) for d in range(1, today.day + 1)]
    try:
        if len(period) == 7:
            first = datetime.strptime(period, "%Y-%m").date()
            following = (first + timedelta(days=32)).replace(day=1)
            last = min(following - timedelta(days=1), today)
            return [first + timedelta(days=n) for n in range((last - first).days + 1)]
        return [datetime.strptime(period, "%Y-%m-%d").date()]
    except ValueError:
        raise SystemExit(
            f"switchman usage: --period {period!r}: use today, yesterday, month, YYYY-MM-DD or "
            "YYYY-MM"
        ) from None


async def from_redis(
    url: str, prefix: str, period: list[date], tenant: str | None
) -> dict[Row, dict[str, int]]:
    client = Redis.from_url(url, decode_responses=True, socket_timeout=5)
    rows: dict[Row, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    try:
        for day in period:
            pattern = f"{prefix}:{{{tenant or '*'}}}:usage:{day:%Y%m%d}"
            async for raw in client.scan_iter(match=pattern, count=500):
                key = str(raw)
                name = key[len(prefix) + 2 : key.index("}:usage:")]
                record = await client.hgetall(key)
                for field, value in record.items():
                    route, model, counter = str(field).rsplit("|", 2)
                    rows[(name, route, model)][counter] += int(value)
    finally:
        await client.aclose()
    return rows


def from_access_log(
    lines: Iterable[str], period: list[date], tenant: str | None, config: GatewayConfig | None
) -> dict[Row, dict[str, int]]:
    wanted = {d.isoformat() for d in period}
    rows: dict[Row, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or not record.get("tenant"):
            continue
        if str(record.get("time", ""))[:10] not in wanted:
            continue
        if tenant is not None and record["tenant"] != tenant:
            continue
        row = rows[(record["tenant"], str(record.get("route")), str(record.get("model")))]
        usage = Usage(record.get("input_tokens") or 0, record.get("output_tokens") or 0)
        cost = round(float(record.get("cost_usd") or 0) * NANOS_PER_USD)
        row["requests"] += 1
        row["input"] += usage.prompt_tokens
        row["output"] += usage.completion_tokens
        row["cost"] += cost
        row["saving"] += max(_priciest(config, str(record.get("route")), usage) - cost, 0)
    return rows


def _priciest(config: GatewayConfig | None, route: str, usage: Usage) -> int:
    if config is None:
        return 0
    prices = {m.name: m.price for m in config.models}
    names = next((r.candidates for r in config.routes if r.name == route), [route])
    worst = max((usage_cost(prices[n], usage) for n in names if n in prices), default=0.0)
    return round(worst * NANOS_PER_USD)


def table(rows: dict[Row, dict[str, int]]) -> str:
    head = ("TENANT", "ROUTE", "MODEL", "REQUESTS", "INPUT", "OUTPUT", "COST USD", "SAVED USD")
    lines: list[tuple[str, ...]] = [head]
    totals: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    for (tenant, route, model), c in sorted(rows.items()):
        lines.append((tenant, route, model, *_cells(c)))
        for counter in COUNTERS:
            totals[tenant][counter] += c[counter]
    for tenant, c in sorted(totals.items()):
        lines.append((tenant, "(all)", "(all)", *_cells(c)))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i < 3 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )


def _cells(c: dict[str, int]) -> tuple[str, ...]:
    return (
        str(c["requests"]),
        str(c["input"]),
        str(c["output"]),
        f"{c['cost'] / NANOS_PER_USD:.6f}",
        f"{c['saving'] / NANOS_PER_USD:.6f}",
    )


def run(args: argparse.Namespace) -> int:
    period = days(args.period, datetime.now(UTC).date())
    if args.redis:
        try:
            rows = asyncio.run(from_redis(args.redis, args.prefix, period, args.tenant))
        except (RedisError, OSError) as exc:
            print(f"switchman usage: cannot read {args.redis}: {exc}", file=sys.stderr)
            return 1
    else:
        try:
            config = load(args.config) if args.config else None
            text = Path(args.access_log).read_text(encoding="utf-8", errors="replace")
        except (ConfigError, OSError) as exc:
            print(f"switchman usage: {exc}", file=sys.stderr)
            return 1
        rows = from_access_log(text.splitlines(), period, args.tenant, config)
    if args.json:
        data = [
            {"tenant": t, "route": r, "model": m, **{k: v for k, v in c.items()}}
            for (t, r, m), c in sorted(rows.items())
        ]
        print(json.dumps({"period": [str(period[0]), str(period[-1])], "rows": data}, indent=2))
    elif not rows:
        print(f"no billed requests in {period[0]}..{period[-1]}")
    else:
        print(table(rows))
    return 0
