"""Which tier a route wants for a prompt: its complexity score against a quality mode or tiers.

``CompiledRoute`` (``table``) builds one ``TierChoice`` per route and calls ``decide`` once per
request on routes that weigh quality. Explicit ``complexity.tiers`` are fixed thresholds.
Otherwise the route runs a quality mode (``quality`` | ``balanced`` | ``cost``): the scorer's
threshold for that mode sends a prompt to the top tier (the candidates' last tier in candidate
order), below it to the first, tiers between spread evenly below it; ``max_large_percent``
raises the threshold through a ``share.ShareCap``. The reason names the mode and the cap for
``x-switchman-route``. A route's own weights file (``complexity.weights``, written by
``switchman classifier calibrate``) replaces the gateway's classifier for that route.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from switchman.api.routes import Complexity
from switchman.gateway.routing.share import ShareCap

DEFAULT_MODE = "balanced"


class ComplexityScorer(Protocol):
    """The prompt complexity classifier (``switchman.gateway.routing.classifier``)."""

    @property
    def thresholds(self) -> Mapping[str, float]: ...  # per quality mode

    def score(self, op: str, body: dict[str, Any]) -> float: ...


class TierChoice:
    """A route's tiers and how a score picks one; holds the route's share cap."""

    __slots__ = ("cap", "explicit", "mode", "names", "scorer")

    def __init__(
        self, spec: Complexity | None, names: list[str], scorer: ComplexityScorer | None = None
    ) -> None:
        self.scorer = scorer  # the route's own weights; None: the gateway's classifier
        self.explicit = None if spec is None or spec.tiers is None else [
            (t.min_complexity, t.tier) for t in spec.tiers
        ]  # fmt: skip
        self.names = names if self.explicit is None else [t for _, t in self.explicit]
        self.mode = (spec.mode if spec is not None else None) or DEFAULT_MODE
        self.cap = None
        if spec is not None and spec.max_large_percent is not None:
            self.cap = ShareCap(spec.max_large_percent, spec.window)

    def decide(
        self, fallback: ComplexityScorer, op: str, body: dict[str, Any]
    ) -> tuple[float, int, str]:
        """(complexity score, wanted tier's rank in ``names``, the reason)."""
        scorer = self.scorer or fallback
        score = scorer.score(op, body)
        if self.explicit is not None:
            rank, why = _pick(self.explicit, score, "")
            return score, rank, why
        base = scorer.thresholds.get(self.mode, 0.5)
        threshold, capped = (base, False) if self.cap is None else self.cap.threshold(base)
        if self.cap is not None:
            self.cap.observe(score)
        note = f" ({self.mode}"
        note += f", capped at {self.cap.percent:g}% large)" if capped and self.cap else ")"
        top = len(self.names) - 1
        tiers = [(threshold * j / top if top else 0.0, n) for j, n in enumerate(self.names)]
        rank, why = _pick(tiers, score, note)
        return score, rank, why


def _pick(tiers: list[tuple[float, str]], score: float, note: str) -> tuple[int, str]:
    """The highest tier whose threshold ``score`` reaches, and the comparison that decided."""
    rank = 0
    for i, (threshold, _) in enumerate(tiers):
        if score >= threshold:
            rank = i
    threshold, tier = tiers[rank]
    sign = ">="
    if rank + 1 < len(tiers):
        threshold, sign = tiers[rank + 1][0], "<"
    shown, against = _pair(score, threshold)
    return rank, f"complexity {shown} {sign} {against}{note} -> {tier}"


def _pair(score: float, threshold: float) -> tuple[str, str]:
    """Both numbers with two decimals, more when two would print an unequal pair alike."""
    digits = 2
    while digits < 6 and score != threshold and f"{score:.{digits}f}" == f"{threshold:.{digits}f}":
        digits += 1
    return f"{score:.{digits}f}", f"{threshold:.{digits}f}"
