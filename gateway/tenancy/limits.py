"""What a tenant is told about its limits: the rate-limit headers, the budget warning, the 429.

``grant_headers`` gives an admitted request OpenAI's ``x-ratelimit-limit-requests``,
``-remaining-requests``, ``-reset-requests`` and the ``-tokens`` trio (for the limits the tenant
has), ``x-switchman-tenant`` and, past a budget's soft limit, ``x-switchman-budget-warning``.
``refusal`` is the ``LimitExceeded`` (429) for a request the ledger refused: a message that says
which limit, how much, and when it resets, with ``Retry-After``. Used by ``admission``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from switchman.api.tenancy import Budget, Tenant
from switchman.gateway.errors import LimitExceeded
from switchman.gateway.tenancy import pricing
from switchman.gateway.tenancy.ledger import Ask, Grant, Period


def duration(ms: int) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``."""
    if ms < 1000:
        return f"{ms}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


def _usd(nanos: int) -> str:
    """``$0.02``, ``$0.00075``: to the micro-dollar, without trailing zeros."""
    return "$" + f"{nanos / pricing.NANOS_PER_USD:.6f}".rstrip("0").rstrip(".")


def _budget(tenant: Tenant, kind: str) -> Budget | None:
    return tenant.daily if kind == "daily" else tenant.monthly


def grant_headers(tenant: Tenant, ask: Ask, grant: Grant) -> dict[str, str]:
    headers = {"x-switchman-tenant": tenant.name}
    if ask.rpm:
        headers["x-ratelimit-limit-requests"] = str(ask.rpm)
        headers["x-ratelimit-remaining-requests"] = str(grant.requests_left)
        headers["x-ratelimit-reset-requests"] = duration(grant.requests_reset_ms)
    if ask.tpm:
        headers["x-ratelimit-limit-tokens"] = str(ask.tpm)
        headers["x-ratelimit-remaining-tokens"] = str(grant.tokens_left)
        headers["x-ratelimit-reset-tokens"] = duration(grant.tokens_reset_ms)
    warnings = []
    for period, used in zip(ask.periods, grant.used, strict=True):
        budget = _budget(tenant, period.kind)
        if budget is not None and budget.soft_usd is not None:
            soft = pricing.nanos(budget.soft_usd)
            if used >= soft:
                warnings.append(
                    f"{period.kind} budget: {_usd(used)} used or reserved of "
                    f"{_usd(pricing.nanos(budget.hard_usd))} (soft limit {_usd(soft)})"
                )
    if warnings:
        headers["x-switchman-budget-warning"] = "; ".join(warnings)
    return headers


def refusal(tenant: Tenant, ask: Ask, grant: Grant, now: datetime) -> LimitExceeded:
    """The 429 for a refused ``ask``."""
    headers = grant_headers(tenant, ask, grant)
    if grant.reason in ("rpm", "tpm"):
        wait_s = max(math.ceil(grant.retry_ms / 1000), 1)
        what = (
            f"{ask.rpm} requests per minute"
            if grant.reason == "rpm"
            else f"{ask.tpm} tokens per minute (this request: about {ask.tokens})"
        )
        message = f"tenant '{tenant.name}' is over its rate limit of {what}; retry in {wait_s} s"
        reset = now + timedelta(milliseconds=grant.retry_ms)
        code = "rate_limit_exceeded"
    else:
        index = [p.kind for p in ask.periods].index(grant.reason)
        period = ask.periods[index]
        day, month = limits_end(now)
        reset = day if period.kind == "daily" else month
        wait_s = max(math.ceil((reset - now).total_seconds()), 1)
        message = (
            f"tenant '{tenant.name}' has reached its {period.kind} budget of "
            f"{_usd(period.hard)} ({_usd(grant.used[index])} spent or reserved; this request "
            f"may cost up to {_usd(ask.amount)}); it resets at "
            f"{reset.isoformat().replace('+00:00', 'Z')}"
        )
        code = "budget_exceeded"
        headers["x-switchman-budget-reset"] = reset.isoformat().replace("+00:00", "Z")
    headers["retry-after"] = str(wait_s)
    return LimitExceeded(message, code=code, headers=headers)


def periods(tenant: Tenant, now: datetime) -> tuple[Period, Period]:
    """Today's and this month's budget periods (UTC); kept a while past their end."""
    day, month = limits_end(now)
    return (
        Period("daily", now.strftime("%Y%m%d"), _hard(tenant, "daily"), _keep(now, day)),
        Period("monthly", now.strftime("%Y%m"), _hard(tenant, "monthly"), _keep(now, month)),
    )


def limits_end(now: datetime) -> tuple[datetime, datetime]:
    """When today and this month end (UTC): a hard budget's reset time."""
    day = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month = (first + timedelta(days=32)).replace(day=1)
    return day, month


def _hard(tenant: Tenant, kind: str) -> int:
    budget = tenant.daily if kind == "daily" else tenant.monthly
    return pricing.nanos(budget.hard_usd) if budget is not None else 0


def _keep(now: datetime, end: datetime) -> int:
    return int((end - now).total_seconds()) + 40 * 86400
