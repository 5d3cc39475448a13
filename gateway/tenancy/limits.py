"""What a tenant is told about its limits: the rate-limit headers, the budget warning, the 429.

``grant_headers`` gives an admitted request OpenAI's ``x-ratelimit-limit-requests``,
``-remaining-requests``, ``-reset-requests`` and the ``-tokens`` trio (for the limits the tenant
has), ``x-switchman-tenant`` and, past a budget's soft limit, ``x-switchman-budget-warning``;
``GrantHeaders`` is the same for one tenant with what is fixed formatted once (the request path).
``refusal`` is the ``LimitExceeded`` (429) for a request the ledger refused: a message that says
which limit, how much, and when it resets, with ``Retry-After``. Used by ``admission``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from multidict import istr

from switchman.api.tenancy import Budget, Tenant
from switchman.gateway.errors import LimitExceeded
from switchman.gateway.tenancy import pricing
from switchman.gateway.tenancy.ledger import Ask, Grant, Period, grant

# The names as ``istr``: the response's case-insensitive headers take them without folding each
# name's case again (``gate.response_headers`` adds them to every admitted request's response).
TENANT = istr("x-switchman-tenant")
LIMIT_REQUESTS = istr("x-ratelimit-limit-requests")
REMAINING_REQUESTS = istr("x-ratelimit-remaining-requests")
RESET_REQUESTS = istr("x-ratelimit-reset-requests")
LIMIT_TOKENS = istr("x-ratelimit-limit-tokens")
REMAINING_TOKENS = istr("x-ratelimit-remaining-tokens")
RESET_TOKENS = istr("x-ratelimit-reset-tokens")
BUDGET_WARNING = istr("x-switchman-budget-warning")


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
    return GrantHeaders(tenant, ask.rpm, ask.tpm, [p.kind for p in ask.periods]).render(grant)


class GrantHeaders:
    """``grant_headers`` for one tenant's limits and budget periods, with what is fixed for them
    formatted once (the limits; the budgets' hard and soft amounts) and each reset duration kept
    while it repeats: per request only the counts, and past a soft limit the amount used, are
    formatted. ``admission`` keeps one per tenant, rebuilt with its periods."""

    __slots__ = (
        "_headers",
        "_limits",
        "_requests",
        "_requests_reset",
        "_soft",
        "_tokens",
        "_tokens_reset",
        "_warn_at",
        "name",
        "rpm",
        "tpm",
    )

    def __init__(self, tenant: Tenant, rpm: int, tpm: int, kinds: Sequence[str]) -> None:
        self.name, self.rpm, self.tpm = tenant.name, rpm, tpm
        self._limits = (str(rpm), str(tpm))
        soft: list[tuple[int, int, str, str]] = []  # period index, soft limit, text around it
        for index, kind in enumerate(kinds):
            budget = _budget(tenant, kind)
            if budget is not None and budget.soft_usd is not None:
                limit = pricing.nanos(budget.soft_usd)
                hard = _usd(pricing.nanos(budget.hard_usd))
                tail = f" used or reserved of {hard} (soft limit {_usd(limit)})"
                soft.append((index, limit, f"{kind} budget: ", tail))
        self._soft = tuple(soft)
        self._warn_at = tuple((index, limit) for index, limit, _, _ in soft)
        self._requests_reset = (-1, "")  # the last reset in ms and its text
        self._tokens_reset = (-1, "")
        # ``admitted``'s last levels and the headers rendered for them (never a warning); NaN
        # equals nothing.
        self._requests: float | None = math.nan
        self._tokens: float | None = math.nan
        self._headers: dict[str, str] = {}

    def admitted(
        self, requests: float | None, tokens: float | None, base: Sequence[int], own: int
    ) -> dict[str, str]:
        """``render`` of an admission's ``Grant``, from the levels its buckets are left at
        (None: no limit) and each period's spend and reservations (``base[i] + own``): the
        same dict again while it would be the same (the same levels, no budget warning)."""
        warn = False
        for index, limit in self._warn_at:
            if base[index] + own >= limit:
                warn = True
        if not warn and requests == self._requests and tokens == self._tokens:
            return self._headers
        used = [spent + own for spent in base]
        headers = self.render(
            grant("", requests or 0.0, self.rpm, tokens or 0.0, self.tpm, 0, used)
        )
        if not warn:  # the dict is shared from now on: nothing changes it
            self._requests, self._tokens, self._headers = requests, tokens, headers
        return headers

    def render(self, grant: Grant) -> dict[str, str]:
        rpm, tpm = self.rpm, self.tpm
        if rpm:
            ms = grant.requests_reset_ms
            if ms != self._requests_reset[0]:
                self._requests_reset = (ms, duration(ms))
        if tpm:
            ms = grant.tokens_reset_ms
            if ms != self._tokens_reset[0]:
                self._tokens_reset = (ms, duration(ms))
        headers: dict[str, str]
        if rpm and tpm:  # the usual tenant: the whole dict in one go
            headers = {
                TENANT: self.name,
                LIMIT_REQUESTS: self._limits[0],
                REMAINING_REQUESTS: str(grant.requests_left),
                RESET_REQUESTS: self._requests_reset[1],
                LIMIT_TOKENS: self._limits[1],
                REMAINING_TOKENS: str(grant.tokens_left),
                RESET_TOKENS: self._tokens_reset[1],
            }
        else:
            headers = {TENANT: self.name}
            if rpm:
                headers[LIMIT_REQUESTS] = self._limits[0]
                headers[REMAINING_REQUESTS] = str(grant.requests_left)
                headers[RESET_REQUESTS] = self._requests_reset[1]
            if tpm:
                headers[LIMIT_TOKENS] = self._limits[1]
                headers[REMAINING_TOKENS] = str(grant.tokens_left)
                headers[RESET_TOKENS] = self._tokens_reset[1]
        if self._soft:
            used = grant.used
            warnings = ""
            for i, soft, head, tail in self._soft:
                if used[i] >= soft:
                    text = f"{head}{_usd(used[i])}{tail}"
                    warnings = f"{warnings}; {text}" if warnings else text
            if warnings:
                headers[BUDGET_WARNING] = warnings
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
