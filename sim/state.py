"""Everything one simulator instance owns, built once per app by ``switchman.sim.server``.

``SimState`` ties the settings to the engine, fault state, metrics and request recorder, and
holds the checks every API handler makes in the same order (served model, injected 500/429,
context limit). It is stored on the app under ``SIM_KEY`` so tests and the demo can reach a
running simulator's engine and faults; handlers get it passed in when routes are added.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web

from switchman.sim import errors
from switchman.sim.engine import Engine
from switchman.sim.faults import Decision, FaultState
from switchman.sim.metrics import SimMetrics
from switchman.sim.recorder import RequestRecorder
from switchman.sim.settings import SimSettings


@dataclass(slots=True, frozen=True)
class SimState:
    settings: SimSettings
    engine: Engine
    faults: FaultState
    metrics: SimMetrics
    recorder: RequestRecorder
    created: int

    @classmethod
    def build(cls, settings: SimSettings) -> SimState:
        engine = Engine(settings)
        return cls(
            settings=settings,
            engine=engine,
            faults=FaultState(settings.faults, seed=settings.seed),
            metrics=SimMetrics(
                engine, settings.served_names[0], legacy_kv_metric=settings.legacy_kv_metric
            ),
            recorder=RequestRecorder(settings.record_requests),
            created=int(time.time()),
        )

    def served_model(self, requested: str | None) -> str:
        """The model name to answer with (the one asked for), or a vLLM-shaped 404."""
        names = self.settings.served_names
        if requested is None:
            return names[0]
        if requested not in names:
            raise errors.model_not_found(requested)
        return requested

    def raise_injected_fault(self) -> None:
        """A 500 or 429 when the rate-based faults pick this request."""
        decision = self.faults.decide()
        if decision is Decision.ERROR:
            raise errors.internal_error()
        if decision is Decision.RATE_LIMIT:
            raise errors.rate_limited(self.faults.current.retry_after_s)

    def context_limit(self) -> int:
        """``max_context`` when that fault is set, else ``max_model_len``."""
        return self.faults.current.max_context or self.settings.max_model_len


SIM_KEY = web.AppKey("switchman.sim.state", SimState)
