"""How well the classifier routes the labelled prompts, and what that routing would cost.

Reads ``prompts.jsonl`` (``load_examples``), scores it (``score_examples``) and, for a
threshold, reports accuracy, the two misroute rates and the cost against always sending
everything to the large model (``report``, ``sweep``); ``length_baseline`` is the yardstick a
classifier must beat. Used by ``switchman classifier eval`` (``switchman.cli.classifier``),
``train`` (which reads the training split through ``load_examples``) and the tests. Offline
only: the gateway's request path never imports this module.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from switchman.gateway.routing.classifier.model import Classifier

Split = Literal["all", "train", "heldout"]
LABELS = ("simple", "complex")
SWEEP = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled prompt: a chat request body and what it should be routed as."""

    id: str
    domain: str
    label: str
    split: str
    body: dict[str, Any]
    input_tokens: float  # estimated: characters / 4, message text and tool definitions

    @property
    def complex(self) -> bool:
        return self.label == "complex"


def _input_tokens(body: dict[str, Any]) -> float:
    chars = len(json.dumps(body["tools"])) if "tools" in body else 0
    for message in body["messages"]:
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text", "")) for p in content if isinstance(p, dict))
    return chars / 4


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
    cost_usd: float
    always_large_usd: float
    cost_saved: float  # 1 - cost_usd / always_large_usd


def dataset_path() -> Path:
    """The packaged labelled prompts (a real file: the package is installed unzipped)."""
    return Path(
        str(resources.files("switchman.gateway.routing.classifier").joinpath("prompts.jsonl"))
    )


def load_examples(split: Split = "all", path: Path | None = None) -> list[Example]:
    """The labelled prompts of one split, in file order."""
    examples = []
    with (path or dataset_path()).open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            body = {k: row[k] for k in ("messages", "tools", "response_format") if k in row}
            example = Example(
                row["id"], row["domain"], row["label"], row["split"], body, _input_tokens(body)
            )
            if split in ("all", example.split):
                examples.append(example)
    return examples


def score_examples(classifier: Classifier, examples: Sequence[Example]) -> list[Scored]:
    return [Scored(e, classifier.score("chat", e.body)) for e in examples]


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
        cost_usd=cost,
        always_large_usd=always,
        cost_saved=1 - cost / always if always else 0.0,
    )


def sweep(
    scored: Sequence[Scored], prices: Prices = Prices(), thresholds: Sequence[float] = SWEEP
) -> list[Report]:
    return [report(scored, t, prices) for t in thresholds]


def per_domain(scored: Sequence[Scored], threshold: float) -> dict[str, float]:
    """Accuracy per domain at ``threshold``."""
    hits: dict[str, list[bool]] = {}
    for s in scored:
        hits.setdefault(s.example.domain, []).append((s.score >= threshold) == s.example.complex)
    return {domain: sum(h) / len(h) for domain, h in sorted(hits.items())}


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
