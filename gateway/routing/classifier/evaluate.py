"""How well the classifier routes labelled prompts, and what that routing would cost.

Scores ``dataset.Example`` rows (``score_examples``) and, for a threshold, reports accuracy,
the two misroute rates, the share sent small and the cost against always sending everything to
the large model (``report``, ``sweep``, ``per_group``); ``length_baseline`` is the yardstick a
classifier must beat. Used by ``switchman classifier eval`` (``switchman.cli.classifier``),
``holdout``, ``calibrate`` and the tests. Offline only: the request path never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from switchman.gateway.routing.classifier.dataset import Example, input_tokens

SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per 1M tokens for each tier, and the output length assumed for each label."""

    small_input: float = 0.15
    small_output: float = 0.60
    large_input: float = 2.50
    large_output: float = 10.00
    simple_output_tokens: int = 150
    complex_output_tokens: int = 600


@dataclass(frozen=True, slots=True)
class Scored:
    example: Example
    score: float


@dataclass(frozen=True, slots=True)
class Report:
    """Routing ``n`` prompts at ``threshold``: score >= threshold goes to the large model."""

    threshold: float
    n: int
    n_simple: int
    n_complex: int
    accuracy: float
    under_routed: int  # complex prompts sent to the small model
    over_routed: int  # simple prompts sent to the large model
    under_routing_rate: float  # of the complex prompts
    over_routing_rate: float  # of the simple prompts
    large_share: float  # of all prompts
    small_share: float  # of all prompts
    cost_usd: float
    always_large_usd: float
    cost_saved: float  # 1 - cost_usd / always_large_usd


class Scorer(Protocol):
    """What is evaluated: the classifier, or a baseline scored the same way."""

    def score(self, op: str, body: Mapping[str, Any]) -> float: ...


def score_examples(scorer: Scorer, examples: Sequence[Example]) -> list[Scored]:
    return [Scored(e, scorer.score("chat", e.body)) for e in examples]


def decided(scored: Sequence[Scored], threshold: float) -> list[Scored]:
    """Scores replaced by the decision at ``threshold`` (1 large, 0 small): lets reports pool
    rows that were decided at different thresholds (report them at 0.5)."""
    return [Scored(s.example, 1.0 if s.score >= threshold else 0.0) for s in scored]


def _cost(example: Example, large: bool, prices: Prices) -> float:
    output = prices.complex_output_tokens if example.complex else prices.simple_output_tokens
    if large:
        return (example.input_tokens * prices.large_input + output * prices.large_output) / 1e6
    return (example.input_tokens * prices.small_input + output * prices.small_output) / 1e6


def report(scored: Sequence[Scored], threshold: float, prices: Prices = Prices()) -> Report:
    """Accuracy, misroutes and cost of routing ``scored`` at ``threshold``."""
    n_complex = sum(1 for s in scored if s.example.complex)
    n_simple = len(scored) - n_complex
    under = sum(1 for s in scored if s.example.complex and s.score < threshold)
    over = sum(1 for s in scored if not s.example.complex and s.score >= threshold)
    large = sum(1 for s in scored if s.score >= threshold)
    cost = sum(_cost(s.example, s.score >= threshold, prices) for s in scored)
    always = sum(_cost(s.example, True, prices) for s in scored)
    n = len(scored)
    return Report(
        threshold=threshold,
        n=n,
        n_simple=n_simple,
        n_complex=n_complex,
        accuracy=(n - under - over) / n if n else 0.0,
        under_routed=under,
        over_routed=over,
        under_routing_rate=under / n_complex if n_complex else 0.0,
        over_routing_rate=over / n_simple if n_simple else 0.0,
        large_share=large / n if n else 0.0,
        small_share=(n - large) / n if n else 0.0,
        cost_usd=cost,
        always_large_usd=always,
        cost_saved=1 - cost / always if always else 0.0,
    )


def sweep(
    scored: Sequence[Scored], prices: Prices = Prices(), thresholds: Sequence[float] = SWEEP
) -> list[Report]:
    return [report(scored, t, prices) for t in thresholds]


def per_group(
    scored: Sequence[Scored], threshold: float, key: str, prices: Prices = Prices()
) -> dict[str, Report]:
    """A report per value of the examples' ``key`` attribute (domain, language, style...)."""
    groups: dict[str, list[Scored]] = {}
    for s in scored:
        groups.setdefault(str(getattr(s.example, key)), []).append(s)
    return {name: report(rows, threshold, prices) for name, rows in sorted(groups.items())}


def length_baseline(train: Sequence[Example], test: Sequence[Example]) -> tuple[float, float]:
    """(cutoff in estimated tokens, accuracy on ``test``) of "long prompts are complex".

    The cutoff is the one that classifies ``train`` best (ties: the smallest), so ``test``
    plays the same role for the baseline as the held-out split does for the classifier.
    """

    def accuracy(examples: Sequence[Example], cutoff: float) -> float:
        right = sum(1 for e in examples if (e.input_tokens >= cutoff) == e.complex)
        return right / len(examples) if examples else 0.0

    candidates = sorted({e.input_tokens for e in train})
    best = max(candidates, key=lambda c: (accuracy(train, c), -c)) if candidates else 0.0
    return best, accuracy(test, best)


class LengthScorer:
    """The length-only baseline as a scorer: 1 from ``cutoff`` estimated tokens up, else 0."""

    def __init__(self, cutoff: float) -> None:
        self.cutoff = cutoff

    def score(self, op: str, body: Mapping[str, Any]) -> float:
        return 1.0 if input_tokens(dict(body)) >= self.cutoff else 0.0
