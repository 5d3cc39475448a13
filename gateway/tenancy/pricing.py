"""What a response costs, and what a request may cost at most.

``cost`` prices a response's actual usage from its model's price table: cache-read input tokens
and reasoning tokens at their own prices where the upstream reports them. ``worst_case`` is what
admission reserves against a budget before the request runs: an estimate of the prompt (its
bytes / 4, which over-counts: JSON framing is not tokens) plus the completion limit, at the
priciest candidate the request may fall over to. Used by ``serve.observe`` (the bill, the access
log and the cost metric), ``serve.proxy`` (the cost header), ``serve.shadow`` (shadow cost) and
``admission``. Money in the ledgers is whole nano-dollars (``nanos``), so sums are exact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from switchman.api.gatewayconfig import Model, Price
from switchman.gateway.providers.exchange import Usage

NANOS_PER_USD = 1_000_000_000
BYTES_PER_TOKEN = 4


def usage_cost(price: Price | None, usage: Usage) -> float:
    """USD for ``usage`` at ``price``; 0 for an unpriced model (its spend is unknown)."""
    if price is None:
        return 0.0
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    cached_price = (
        price.input_per_mtok
        if price.cached_input_per_mtok is None
        else (price.cached_input_per_mtok)
    )
    reasoning_price = (
        price.output_per_mtok if price.reasoning_per_mtok is None else (price.reasoning_per_mtok)
    )
    return (
        (usage.prompt_tokens - cached) * price.input_per_mtok
        + cached * cached_price
        + (usage.completion_tokens - reasoning) * price.output_per_mtok
        + reasoning * reasoning_price
    ) / 1e6


def cost(model: Model | None, usage: Usage | None) -> float:
    """USD for one response; 0 when nothing served it or it reported no usage."""
    if model is None or usage is None:
        return 0.0
    return usage_cost(model.price, usage)


def nanos(usd: float) -> int:
    """Whole nano-dollars, rounded up (a bill never rounds to free)."""
    return math.ceil(usd * NANOS_PER_USD - 1e-6) if usd > 0 else 0


def prompt_tokens(size: int) -> int:
    """Prompt tokens estimated from the raw body's bytes (an over-estimate)."""
    return math.ceil(size / BYTES_PER_TOKEN)


def max_tokens(body: Mapping[str, Any], default: int) -> int:
    """The completion limit the client set (``max_tokens`` or ``max_completion_tokens``)."""
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return default


def worst_case(candidates: Iterable[Model], prompt: int, completion: int) -> float:
    """USD the request costs at most on any of ``candidates``."""
    worst = 0.0
    for model in candidates:
        price = model.price
        if price is None:
            continue  # unknown: nothing to reserve against
        output = max(price.output_per_mtok, price.reasoning_per_mtok or 0.0)
        worst = max(worst, (prompt * price.input_per_mtok + completion * output) / 1e6)
    return worst
