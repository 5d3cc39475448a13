"""Leave-one-group-out evaluation: how the classifier does on a domain or language it never saw.

``leave_one_out(examples, "domain")`` (LODO) or ``"language"`` (LOLO) retrains the classifier
once per group on the *training split of every other group* (``train.fit_model`` with a fixed
penalty) and scores *every* row of the left-out group at that fold's ``balanced`` threshold
(learned, like the shipped one, from the fold's own out-of-fold scores), with the length-only
baseline refitted on the same rows beside it. Used by ``switchman classifier eval`` and the
tests; offline only. Each fold takes a few seconds of pure Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from switchman.gateway.routing.classifier.dataset import Example
from switchman.gateway.routing.classifier.evaluate import (
    LengthScorer,
    Report,
    Scored,
    decided,
    length_baseline,
    report,
    score_examples,
)
from switchman.gateway.routing.classifier.train import fit_model

Key = Literal["domain", "language"]
MIN_ROWS = 20  # smaller groups are pooled into the totals only through the other folds


@dataclass(frozen=True, slots=True)
class Fold:
    """One left-out group: the classifier's report and the length baseline's on its rows."""

    group: str
    report: Report
    baseline: Report
    baseline_cutoff: float  # estimated input tokens


@dataclass(frozen=True, slots=True)
class Summary:
    """All folds and their pooled totals (every left-out row counted once)."""

    key: str
    folds: list[Fold]
    pooled: Report
    baseline: Report


def _group(example: Example, key: Key) -> str:
    return example.domain if key == "domain" else example.language


def groups(examples: Sequence[Example], key: Key) -> list[str]:
    """Groups with at least MIN_ROWS rows, sorted."""
    counts: dict[str, int] = {}
    for e in examples:
        counts[_group(e, key)] = counts.get(_group(e, key), 0) + 1
    return sorted(g for g, n in counts.items() if n >= MIN_ROWS)


def leave_one_out(
    examples: Sequence[Example],
    key: Key,
    penalty: float,
    only: Sequence[str] | None = None,
) -> Summary:
    """Retrain without each group (or each of ``only``) and score that group's rows."""
    folds: list[Fold] = []
    pooled: list[Scored] = []
    pooled_baseline: list[Scored] = []
    for group in only if only is not None else groups(examples, key):
        test = [e for e in examples if _group(e, key) == group]
        train = [e for e in examples if _group(e, key) != group and e.split == "train"]
        classifier = fit_model(train, penalty).classifier
        threshold = classifier.thresholds["balanced"]
        scored = score_examples(classifier, test)
        cutoff, _ = length_baseline(train, test)
        as_length = score_examples(LengthScorer(cutoff), test)
        folds.append(Fold(group, report(scored, threshold), report(as_length, 0.5), cutoff))
        pooled.extend(decided(scored, threshold))  # each fold at its own threshold
        pooled_baseline.extend(as_length)
    return Summary(key, folds, report(pooled, 0.5), report(pooled_baseline, 0.5))
