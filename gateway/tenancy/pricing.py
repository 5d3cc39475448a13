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
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    cached, reasoning = usage.cached_tokens, usage.reasoning_tokens
    if not (cached or reasoning):  # the usual usage: the terms below that are 0.0 left out
        return (prompt * price.input_per_mtok + completion * price.output_per_mtok) / 1e6
    if cached > prompt:  # min() without the call: this runs for every response
        cached = prompt
    if reasoning > completion:
        reasoning = completion
    input_price, output_price = price.input_per_mtok, price.output_per_mtok
    cached_price = price.cached_input_per_mtok
    if cached_price is None:
        cached_price = input_price
    reasoning_price = price.reasoning_per_mtok
    if reasoning_price is None:
        reasoning_price = output_price
    return (
        (prompt - cached) * input_price
        + cached * cached_price
        + (completion - reasoning) * output_price
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
    for name in _LIMITS:
        value = body.get(name)
        if value is not None and type(value) is int and value > 0:
            return value
    return default


_LIMITS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def worst_case(candidates: Iterable[Model], prompt: int, completion: int) -> float:
    """USD the request costs at most on any of ``candidates``."""
    worst = 0.0
    for model in candidates:
        price = model.price
        if price is None:
            continue  # unknown: nothing to reserve against
        output = price.output_per_mtok
        reasoning = price.reasoning_per_mtok
        if reasoning is not None and reasoning > output:
            output = reasoning
        cost = (prompt * price.input_per_mtok + completion * output) / 1e6
        if cost > worst:
            worst = cost
    return worst
