"""Fits the classifier on the training split and writes ``weights.json``, deterministically.

``python -m switchman.gateway.routing.classifier.train`` (``--check`` only compares) reads the
``train`` split of ``prompts.jsonl`` (``dataset.load_examples``; the held-out split is never
read) and fits two parts. The n-gram table is a smoothed log-count ratio per hashed bucket
(complex against simple, as in NBSVM). The logistic regression over ``features`` plus the
n-gram value is fitted by Newton's method with an L2 penalty chosen by 5-fold cross-validation;
its n-gram column is *cross-fitted* (each row's value comes from a table fitted without its
fold), so the regression does not learn to trust a table that has seen the row. The quality
modes' thresholds come from the out-of-fold scores: the highest threshold whose out-of-fold
under-routing (complex prompts sent small) stays within ``MODE_UNDER_ROUTING``. Pure Python, no
randomness, fixed folds, rounded numbers: the same data gives the same file byte for byte.
``holdout`` (LODO/LOLO) and ``calibrate`` reuse ``fit_model``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from math import exp, floor, log, sqrt
from pathlib import Path
from typing import Any

from switchman.gateway.routing.classifier.dataset import Example, dataset_path, load_examples
from switchman.gateway.routing.classifier.features import read
from switchman.gateway.routing.classifier.model import (
    MODES,
    NAMES,
    WEIGHTS_FORMAT,
    Classifier,
)
from switchman.gateway.routing.classifier.ngrams import BUCKETS, buckets

PENALTIES = (0.0003, 0.001, 0.01, 0.1)
FOLDS = 5
MAX_ITERATIONS = 50
SMOOTHING = 0.03  # added to every bucket's count on both sides (chosen by CV log-loss)
MODE_UNDER_ROUTING = {"quality": 0.03, "balanced": 0.11, "cost": 0.2}
WEIGHTS = Path(__file__).with_name("weights.json")

Matrix = list[list[float]]
# float.__mul__, not operator.mul: the repository's operator/ folder shadows the standard
# library's module for tools run from the repository root (mypy among them)
_mul = float.__mul__


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


def _solve(a: Matrix, b: list[float]) -> list[float]:
    """x with a @ x = b (Gaussian elimination, partial pivoting); a is positive definite here."""
    n = len(b)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        for r in range(col + 1, n):
            f = m[r][col] / m[col][col]
            if f:
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (m[r][n] - sum(m[r][c] * x[c] for c in range(r + 1, n))) / m[r][r]
    return x


def _newton(columns: Matrix, y: Sequence[int], penalty: float) -> list[float]:
    """Weights (intercept first) minimizing mean log-loss + penalty/2 * |w|^2 (not the intercept).

    ``columns`` holds the features column by column, the first a column of ones.
    """
    n, k = len(y), len(columns)
    w = [0.0] * k
    for _ in range(MAX_ITERATIONS):
        z = [0.0] * n
        for col, wj in zip(columns, w, strict=True):
            if wj:
                z = [zi + wj * ci for zi, ci in zip(z, col, strict=True)]
        p = [_sigmoid(v) for v in z]
        residual = [pi - yi for pi, yi in zip(p, y, strict=True)]
        curvature = [pi * (1 - pi) for pi in p]
        grad = [sum(map(_mul, col, residual)) / n + (penalty * wj if j else 0.0)
                for j, (col, wj) in enumerate(zip(columns, w, strict=True))]  # fmt: skip
        weighted = [list(map(_mul, col, curvature)) for col in columns]
        hessian = [[0.0] * k for _ in range(k)]
        for j in range(k):  # symmetric: compute the upper triangle, mirror it
            for c in range(j, k):
                hessian[j][c] = hessian[c][j] = sum(map(_mul, weighted[j], columns[c])) / n
        for j in range(1, k):
            hessian[j][j] += penalty
        step = _solve(hessian, grad)
        w = [wj - s for wj, s in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-10:
            break
    return w


def _standardize(rows: Matrix) -> tuple[list[float], list[float]]:
    """Per-feature mean and standard deviation (1 where a feature never varies)."""
    n = len(rows)
    means = [sum(col) / n for col in zip(*rows, strict=True)]
    stds = [sqrt(sum((x - m) ** 2 for x in col) / n) or 1.0
            for col, m in zip(zip(*rows, strict=True), means, strict=True)]  # fmt: skip
    return means, stds


def fit(rows: Matrix, y: Sequence[int], penalty: float) -> tuple[list[float], float]:
    """(per-feature weights, bias) on raw feature values."""
    means, stds = _standardize(rows)
    columns = [[1.0] * len(rows)] + [
        [(row[j] - means[j]) / stds[j] for row in rows] for j in range(len(means))
    ]
    w = _newton(columns, y, penalty)
    coef = [wj / s for wj, s in zip(w[1:], stds, strict=True)]
    bias = w[0] - sum(c * m for c, m in zip(coef, means, strict=True))
    return coef, bias


@dataclass(frozen=True, slots=True)
class Prepared:
    """The examples' feature vectors, n-gram buckets and labels, computed once."""

    rows: Matrix
    grams: list[list[int]]
    y: list[int]


def prepare(examples: Sequence[Example]) -> Prepared:
    rows, grams = [], []
    for e in examples:
        values, instruction = read("chat", e.body)
        rows.append(values)
        grams.append(buckets(instruction))
    return Prepared(rows, grams, [int(e.complex) for e in examples])


def ngram_table(grams: Sequence[Sequence[int]], y: Sequence[int]) -> list[float]:
    """log((p_b / |p|) / (q_b / |q|)) per bucket, p and q the smoothed complex/simple counts."""
    p = [SMOOTHING] * BUCKETS
    q = [SMOOTHING] * BUCKETS
    for found, label in zip(grams, y, strict=True):
        side = p if label else q
        for b in found:
            side[b] += 1.0
    p_total, q_total = sum(p), sum(q)
    return [log((pb / p_total) / (qb / q_total)) for pb, qb in zip(p, q, strict=True)]


def ngram_value(table: Sequence[float], found: Sequence[int]) -> float:
    return sum(table[b] for b in found) / sqrt(len(found)) if found else 0.0


def _folds(n: int) -> list[list[int]]:
    return [[i for i in range(n) if i % FOLDS == f] for f in range(FOLDS)]


def cross_fitted(data: Prepared) -> list[float]:
    """Each row's n-gram value from a table fitted on the other folds."""
    values = [0.0] * len(data.y)
    for held in _folds(len(data.y)):
        skip = set(held)
        rest = [i for i in range(len(data.y)) if i not in skip]
        table = ngram_table([data.grams[i] for i in rest], [data.y[i] for i in rest])
        for i in held:
            values[i] = ngram_value(table, data.grams[i])
    return values


def _predict(row: Sequence[float], coef: Sequence[float], bias: float) -> float:
    return _sigmoid(bias + sum(map(_mul, coef, row)))


def out_of_fold(rows: Matrix, y: Sequence[int], penalty: float) -> list[float]:
    """Each row's probability from a regression fitted on the other folds."""
    scores = [0.0] * len(y)
    for held in _folds(len(y)):
        skip = set(held)
        rest = [i for i in range(len(y)) if i not in skip]
        coef, bias = fit([rows[i] for i in rest], [y[i] for i in rest], penalty)
        for i in held:
            scores[i] = _predict(rows[i], coef, bias)
    return scores


def _log_loss(scores: Sequence[float], y: Sequence[int]) -> float:
    total = sum(-log(max(p if label else 1 - p, 1e-12)) for p, label in zip(scores, y, strict=True))
    return total / len(y)


def mode_thresholds(scores: Sequence[float], y: Sequence[int]) -> dict[str, float]:
    """Per mode, the highest threshold (4 decimals, rounded down) whose under-routing on
    ``scores`` stays within ``MODE_UNDER_ROUTING``."""
    complex_scores = sorted(s for s, label in zip(scores, y, strict=True) if label)
    chosen = {}
    for mode in MODES:
        allowed = floor(MODE_UNDER_ROUTING[mode] * len(complex_scores))
        edge = complex_scores[allowed] if allowed < len(complex_scores) else 1.0
        chosen[mode] = floor(edge * 10_000) / 10_000
    return chosen


@dataclass(frozen=True, slots=True)
class Fitted:
    classifier: Classifier
    penalty: float
    cv_log_loss: dict[float, float]


def fit_model(examples: Sequence[Example], penalty: float | None = None) -> Fitted:
    """Table, regression and mode thresholds for ``examples``; the penalty by CV when None."""
    data = prepare(examples)
    crossed = cross_fitted(data)
    rows = [[*row, value] for row, value in zip(data.rows, crossed, strict=True)]
    losses: dict[float, float] = {}
    oof: dict[float, list[float]] = {}
    for candidate in PENALTIES if penalty is None else (penalty,):
        oof[candidate] = out_of_fold(rows, data.y, candidate)
        losses[candidate] = _log_loss(oof[candidate], data.y)
    chosen = min(losses, key=lambda p: (round(losses[p], 9), -p))
    coef, bias = fit(rows, data.y, chosen)
    table = ngram_table(data.grams, data.y)
    weights = {name: round(c, 6) for name, c in zip(NAMES, coef, strict=True)}
    classifier = Classifier(
        weights, round(bias, 6), [round(v, 4) for v in table],
        mode_thresholds(oof[chosen], data.y),
    )  # fmt: skip
    return Fitted(classifier, chosen, losses)


def document(fitted: Fitted, training: dict[str, Any]) -> dict[str, Any]:
    """The weights document of a fitted classifier (what ``Classifier.from_json`` reads)."""
    c = fitted.classifier
    if fitted.cv_log_loss:  # a fit, not thresholds alone
        training = {
            **training,
            "l2_penalty": fitted.penalty,
            "cv_log_loss": {str(p): round(v, 4) for p, v in fitted.cv_log_loss.items()},
        }
    return {
        "format": WEIGHTS_FORMAT,
        "model": "logistic regression on features + hashed n-gram log-count ratios",
        "weights": c.weights,
        "bias": c.bias,
        "thresholds": c.thresholds,
        "training": {**training, "mode_under_routing": MODE_UNDER_ROUTING},
        "ngram_table": list(c.table),
    }


def render(doc: dict[str, Any]) -> str:
    """JSON with one n-gram number per line kept compact: the table is one long line."""
    table = doc["ngram_table"]
    head = json.dumps({k: v for k, v in doc.items() if k != "ngram_table"}, indent=2)
    return head[:-2] + ',\n  "ngram_table": ' + json.dumps(table) + "\n}\n"


def build() -> str:
    """The weights file's text for the packaged data set."""
    path = dataset_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    examples = load_examples("train", path)
    training = {"data": "prompts.jsonl", "data_sha256": digest, "split": "train",
                "examples": len(examples)}  # fmt: skip
    return render(document(fit_model(examples), training))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m switchman.gateway.routing.classifier.train")
    parser.add_argument("--output", type=Path, default=WEIGHTS, help="default: weights.json")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs; write nothing"
    )
    args = parser.parse_args(argv)
    text = build()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: retrain", file=sys.stderr)
            return 1
        print(f"{args.output} is up to date", file=sys.stderr)
        return 0
    args.output.write_text(text)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
