"""The complexity classifier: a logistic regression over ``features.FEATURES``.

The router calls ``Classifier.score(op, body)`` once per request on routes with strategy
``complexity`` and compares the score with the route's own tier thresholds; ``describe`` words
that comparison for the ``x-switchman-route`` header. ``explain`` and ``contributions`` serve the
CLI (``switchman classifier score``) and debugging. Weights come from ``weights.json``, written
by ``train``; ``Classifier.load_default()`` reads the packaged copy once and the instance keeps
the parsed weights (no module-level state). Embeddings and unknown operations score 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from math import exp, isfinite
from typing import Any

from switchman.gateway.routing.classifier.features import FEATURES, extract

WEIGHTS_FORMAT = "switchman-classifier/v1"
_SCORED_OPS = ("chat", "completions")  # a tuple: an unhashable op compares unequal, never raises


class WeightsError(ValueError):
    """A weights document that is not the format ``train`` writes."""


class Classifier:
    """Scores a request body's prompt complexity in [0, 1]; safe to share across requests."""

    __slots__ = ("_bias", "_coef")

    def __init__(self, weights: Mapping[str, float], bias: float) -> None:
        missing = [name for name in FEATURES if name not in weights]
        unknown = sorted(set(weights) - set(FEATURES))
        if missing or unknown:
            raise WeightsError(f"weights do not match the features: missing {missing}, "
                               f"unknown {unknown}")  # fmt: skip
        self._coef = tuple(float(weights[name]) for name in FEATURES)
        self._bias = float(bias)

    @classmethod
    def from_json(cls, text: str | bytes) -> Classifier:
        """A classifier from a weights document (the format ``train`` writes)."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise WeightsError(f"weights are not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
            raise WeightsError(f"weights must be a {WEIGHTS_FORMAT} object")
        weights, bias = doc.get("weights"), doc.get("bias")
        if not isinstance(weights, dict):
            raise WeightsError("weights need a 'weights' object")
        if not isinstance(bias, int | float) or not all(
            _finite(v) for v in (*weights.values(), bias)
        ):
            raise WeightsError("every weight and the bias must be finite numbers")
        return cls(weights, bias)

    @classmethod
    def load_default(cls) -> Classifier:
        """The classifier trained on the packaged data set (``weights.json`` in this package)."""
        package = resources.files("switchman.gateway.routing.classifier")
        return cls.from_json(package.joinpath("weights.json").read_bytes())

    @property
    def weights(self) -> dict[str, float]:
        return dict(zip(FEATURES, self._coef, strict=True))

    @property
    def bias(self) -> float:
        return self._bias

    def score(self, op: str, body: Mapping[str, Any]) -> float:
        """How complex the prompt is, in [0, 1]; never raises on JSON-shaped input."""
        if op not in _SCORED_OPS:
            return 0.0
        z = self._bias
        for weight, value in zip(self._coef, extract(op, body), strict=True):
            z += weight * value
        if z >= 0:
            return 1.0 / (1.0 + exp(-z))
        e = exp(z)
        return e / (1.0 + e)

    def explain(self, op: str, body: Mapping[str, Any]) -> dict[str, float]:
        """The features ``score`` weighs, by name."""
        return dict(zip(FEATURES, extract(op, body), strict=True))

    def contributions(self, op: str, body: Mapping[str, Any]) -> dict[str, float]:
        """Each feature's share of the log-odds (weight x value); the bias is not included."""
        values = extract(op, body) if op in _SCORED_OPS else [0.0] * len(FEATURES)
        # + 0.0 turns the -0.0 of a negative weight times 0 into 0.0
        return {n: w * v + 0.0 for n, w, v in zip(FEATURES, self._coef, values, strict=True)}


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and isfinite(value)


def describe(score: float, threshold: float, tier: str) -> str:
    """``complexity 0.81 >= 0.60 -> large``: a score against one threshold, for the route reason.

    Shows more digits when two decimals would print an unequal score and threshold alike.
    """
    digits = 2
    while digits < 6 and score != threshold and f"{score:.{digits}f}" == f"{threshold:.{digits}f}":
        digits += 1
    sign = ">=" if score >= threshold else "<"
    return f"complexity {score:.{digits}f} {sign} {threshold:.{digits}f} -> {tier}"
