"""Fault injection for the simulator: the ``Faults`` model and the live ``FaultState``.

``Faults`` is what ``--error-rate`` and friends set at start and what ``POST /admin/faults``
merges at run time (``switchman.sim.admin``). ``FaultState`` holds the current values, draws the
per-request error / rate-limit decision from a seeded ``random.Random`` (same seed, same sequence
of requests → same decisions) and tracks slow-start readiness. The request handlers in
``switchman.sim.generation`` and ``switchman.sim.embeddings`` consult it; nothing else does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """Every fault the simulator can inject; all off by default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction answered 500")
    rate_limit_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="fraction answered 429")
    retry_after_s: int = Field(default=1, ge=0, description="Retry-After header value on 429s")
    max_context: int | None = Field(
        default=None, ge=1, description="context limit in tokens; overrides max_model_len when set"
    )
    cut_after_tokens: int | None = Field(
        default=None, ge=0, description="close the connection after this many content tokens"
    )
    stall: bool = Field(default=False, description="send the first chunk (or nothing), then hold")
    stall_after_tokens: int | None = Field(
        default=None, ge=0, description="hold after this many content tokens"
    )
    stall_s: float = Field(
        default=300.0, ge=0.0, description="how long a stall holds before resuming"
    )
    slow_start_s: float = Field(
        default=0.0,
        ge=0.0,
        description="/health answers 503 for this long after start (or after set)",
    )
    down: bool = Field(default=False, description="refuse everything except /admin")
    down_mode: Literal["503", "close"] = Field(
        default="503",
        description="how a down simulator refuses: a 503 answer or a closed connection",
    )


class Decision(Enum):
    """The per-request outcome of the rate-based faults."""

    SERVE = "serve"
    ERROR = "error"
    RATE_LIMIT = "rate_limit"


class FaultState:
    """The current faults of one simulator, changed at run time by the admin endpoint."""

    __slots__ = ("_clock", "_initial", "_ready_at", "_rng", "current")

    def __init__(
        self,
        initial: Faults,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._initial = initial
        self._clock = clock
        self._rng = random.Random(seed)
        self.current = initial
        self._ready_at = clock() + initial.slow_start_s

    def merge(self, changes: Mapping[str, Any]) -> Faults:
        """Apply a partial update (validated whole); unknown keys raise ``ValueError``.

        Setting ``slow_start_s`` restarts the slow-start clock, as if the server had just started.
        """
        merged = Faults.model_validate({**self.current.model_dump(), **changes})
        self.current = merged
        if "slow_start_s" in changes:
            self._ready_at = self._clock() + merged.slow_start_s
        return merged

    def reset(self) -> Faults:
        """Back to the faults given at start (CLI flags or settings); readiness is kept."""
        self.current = self._initial
        return self.current

    def reseed(self, seed: int) -> None:
        """Restart the random sequence behind ``error_rate`` and ``rate_limit_rate``."""
        self._rng.seed(seed)

    def ready(self) -> bool:
        """False during the slow-start window."""
        return self._clock() >= self._ready_at

    def decide(self) -> Decision:
        """One draw per request: 500 first, then 429, else serve; no draw when both are off."""
        faults = self.current
        if faults.error_rate <= 0.0 and faults.rate_limit_rate <= 0.0:
            return Decision.SERVE
        draw = self._rng.random()
        if draw < faults.error_rate:
            return Decision.ERROR
        if draw < faults.error_rate + faults.rate_limit_rate:
            return Decision.RATE_LIMIT
        return Decision.SERVE
