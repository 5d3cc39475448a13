"""The complexity classifier: a logistic regression over ``features`` and hashed ``ngrams``.

The router calls ``Classifier.score(op, body)`` once per request on routes with strategy
``complexity`` and compares the score with the route's threshold (a quality mode's, from
``thresholds``, or explicit tiers); ``describe`` words that comparison for the
``x-switchman-route`` header. ``explain`` and ``contributions`` serve the CLI (``switchman
classifier score``). The score is ``sigmoid(bias + Σ wᵢ·featureᵢ + w·ngrams)`` where ``ngrams``
is the sum of a learned log-count ratio over the request's n-gram buckets divided by the square
root of their number. Weights come from a ``switchman-classifier/v2`` document written by
``train`` or ``calibrate``; ``load_default()`` reads the packaged ``weights.json``, ``load(path)``
a calibrated file. Embeddings and unknown operations score 0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from importlib import resources
from math import exp, isfinite, sqrt
from pathlib import Path
from typing import Any

from switchman.gateway.routing.classifier.features import FEATURES, read
from switchman.gateway.routing.classifier.ngrams import BUCKETS, buckets

WEIGHTS_FORMAT = "switchman-classifier/v2"
NGRAMS = "ngrams"
NAMES = (*FEATURES, NGRAMS)  # what explain() and contributions() report
MODES = ("quality", "balanced", "cost")
_SCORED_OPS = ("chat", "completions")  # a tuple: an unhashable op compares unequal, never raises


class WeightsError(ValueError):
    """A weights document that is not the format ``train`` writes."""


class Classifier:
    """Scores a request body's prompt complexity in [0, 1]; safe to share across requests."""

    __slots__ = ("_bias", "_coef", "_ngram_weight", "_table", "thresholds")

    def __init__(
        self,
        weights: Mapping[str, float],
        bias: float,
        table: Sequence[float] = (),
        thresholds: Mapping[str, float] | None = None,
    ) -> None:
        missing = [name for name in NAMES if name not in weights]
        unknown = sorted(set(weights) - set(NAMES))
        if missing or unknown:
            raise WeightsError(f"weights do not match the features: missing {missing}, "
                               f"unknown {unknown}")  # fmt: skip
        if len(table) != BUCKETS:
            raise WeightsError(f"the n-gram table needs {BUCKETS} numbers, got {len(table)}")
        self._coef = tuple(float(weights[name]) for name in FEATURES)
        self._ngram_weight = float(weights[NGRAMS])
        self._table = tuple(float(v) for v in table)
        self._bias = float(bias)
        chosen = dict(thresholds or {})
        for mode in MODES:
            chosen.setdefault(mode, 0.5)
        self.thresholds: dict[str, float] = chosen

    @classmethod
    def from_json(cls, text: str | bytes) -> Classifier:
        """A classifier from a weights document (the format ``train`` writes)."""
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise WeightsError(f"weights are not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != WEIGHTS_FORMAT:
            raise WeightsError(f"weights must be a {WEIGHTS_FORMAT} object")
        weights, bias, table = doc.get("weights"), doc.get("bias"), doc.get("ngram_table")
        thresholds = doc.get("thresholds", {})
        if not isinstance(weights, dict) or not isinstance(table, list):
            raise WeightsError("weights need a 'weights' object and an 'ngram_table' list")
        if not isinstance(thresholds, dict) or not all(
            mode in MODES and _finite(v) and 0 <= v <= 1 for mode, v in thresholds.items()
        ):
            raise WeightsError(f"'thresholds' maps {', '.join(MODES)} to numbers in [0, 1]")
        if not isinstance(bias, int | float) or not all(
            _finite(v) for v in (bias, *weights.values(), *table)
        ):
            raise WeightsError("every weight and the bias must be finite numbers")
        return cls(weights, bias, table, thresholds)

    @classmethod
    def load_default(cls) -> Classifier:
        """The classifier trained on the packaged data set (``weights.json`` in this package)."""
        package = resources.files("switchman.gateway.routing.classifier")
        return cls.from_json(package.joinpath("weights.json").read_bytes())

    @classmethod
    def load(cls, path: Path) -> Classifier:
        """A classifier from a weights file (``switchman classifier calibrate`` writes one)."""
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from exc
        return cls.from_json(text)

    @property
    def weights(self) -> dict[str, float]:
        return {**dict(zip(FEATURES, self._coef, strict=True)), NGRAMS: self._ngram_weight}

    @property
    def bias(self) -> float:
        return self._bias

    @property
    def table(self) -> tuple[float, ...]:
        return self._table

    def score(self, op: str, body: Mapping[str, Any]) -> float:
        """How complex the prompt is, in [0, 1]; never raises on JSON-shaped input."""
        if op not in _SCORED_OPS:
            return 0.0
        values, ngrams = self._values(op, body)
        z = self._bias + self._ngram_weight * ngrams
        for weight, value in zip(self._coef, values, strict=True):
            z += weight * value
        if z >= 0:
            return 1.0 / (1.0 + exp(-z))
        e = exp(z)
        return e / (1.0 + e)

    def _values(self, op: str, body: Mapping[str, Any]) -> tuple[list[float], float]:
        values, instruction = read(op, body)
        found = buckets(instruction)
        if not found:
            return values, 0.0
        return values, sum(map(self._table.__getitem__, found)) / sqrt(len(found))

    def explain(self, op: str, body: Mapping[str, Any]) -> dict[str, float]:
        """The values ``score`` weighs, by name (``ngrams`` last)."""
        values, ngrams = self._values(op, body)
        return {**dict(zip(FEATURES, values, strict=True)), NGRAMS: ngrams}

    def contributions(self, op: str, body: Mapping[str, Any]) -> dict[str, float]:
        """Each value's share of the log-odds (weight x value); the bias is not included."""
        values = self.explain(op, body) if op in _SCORED_OPS else dict.fromkeys(NAMES, 0.0)
        weights = self.weights
        # + 0.0 turns the -0.0 of a negative weight times 0 into 0.0
        return {name: weights[name] * values[name] + 0.0 for name in NAMES}


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
