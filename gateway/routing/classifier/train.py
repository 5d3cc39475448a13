"""Fits the classifier on the training split and writes ``weights.json``, deterministically.

``python -m switchman.gateway.routing.classifier.train`` (``--check`` only compares) reads the
``train`` half of ``prompts.jsonl`` through ``evaluate.load_examples``, standardizes the features,
picks the L2 penalty by 5-fold cross-validation on that half (the held-out half is never read),
fits an L2-regularized logistic regression by Newton's method, folds the standardization back
into plain per-feature weights and writes them with a digest of the data they came from. Pure
Python: no randomness, fixed fold assignment, weights rounded to 6 decimals, so the same data
gives the same file byte for byte. ``model.Classifier`` reads the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Sequence
from math import exp, log, sqrt
from pathlib import Path
from typing import Any

from switchman.gateway.routing.classifier.evaluate import Example, dataset_path, load_examples
from switchman.gateway.routing.classifier.features import FEATURES, extract
from switchman.gateway.routing.classifier.model import WEIGHTS_FORMAT

PENALTIES = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
FOLDS = 5
MAX_ITERATIONS = 100
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
        z = [sum(col[i] * wj for col, wj in zip(columns, w, strict=True)) for i in range(n)]
        p = [_sigmoid(v) for v in z]
        residual = [pi - yi for pi, yi in zip(p, y, strict=True)]
        curvature = [pi * (1 - pi) for pi in p]
        grad = [sum(map(_mul, col, residual)) / n + (penalty * wj if j else 0.0)
                for j, (col, wj) in enumerate(zip(columns, w, strict=True))]  # fmt: skip
        weighted = [list(map(_mul, col, curvature)) for col in columns]
        hessian = [
            [sum(map(_mul, weighted[j], columns[c])) / n for c in range(k)] for j in range(k)
        ]
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


def _log_loss(rows: Matrix, y: Sequence[int], coef: list[float], bias: float) -> float:
    total = 0.0
    for row, label in zip(rows, y, strict=True):
        p = _sigmoid(bias + sum(map(_mul, coef, row)))
        total -= log(max(p if label else 1 - p, 1e-12))
    return total / len(rows)


def cross_validate(rows: Matrix, y: Sequence[int]) -> dict[float, float]:
    """Mean held-fold log-loss per penalty; fold of row i is i % FOLDS (the file is grouped by
    domain and label, so every fold gets a share of each)."""
    losses = {}
    for penalty in PENALTIES:
        total = 0.0
        for fold in range(FOLDS):
            train = [i for i in range(len(rows)) if i % FOLDS != fold]
            test = [i for i in range(len(rows)) if i % FOLDS == fold]
            coef, bias = fit([rows[i] for i in train], [y[i] for i in train], penalty)
            total += _log_loss([rows[i] for i in test], [y[i] for i in test], coef, bias)
        losses[penalty] = total / FOLDS
    return losses


def train(examples: Sequence[Example], data_digest: str) -> dict[str, Any]:
    """The weights document for ``examples`` (the training split)."""
    rows = [extract("chat", e.body) for e in examples]
    y = [int(e.complex) for e in examples]
    losses = cross_validate(rows, y)
    penalty = min(PENALTIES, key=lambda p: (round(losses[p], 9), -p))
    coef, bias = fit(rows, y, penalty)
    return {
        "format": WEIGHTS_FORMAT,
        "model": "logistic regression on switchman.gateway.routing.classifier.features",
        "weights": {name: round(c, 6) for name, c in zip(FEATURES, coef, strict=True)},
        "bias": round(bias, 6),
        "training": {
            "data": "prompts.jsonl",
            "data_sha256": data_digest,
            "split": "train",
            "examples": len(examples),
            "l2_penalty": penalty,
            "cv_log_loss": {str(p): round(loss, 4) for p, loss in losses.items()},
        },
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2) + "\n"


def build() -> str:
    """The weights file's text for the packaged data set."""
    path = dataset_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return render(train(load_examples("train", path), digest))


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
