"""Fits the classifier to one deployment's own labelled prompts and writes a weights file.

``calibrate(labels, base)`` takes ``dataset.Example`` rows from the user's labels file (a prompt
or messages with ``label`` simple/complex/small/large, or a judge's ``preference``
small/large/tie) and returns a weights document the route references (``complexity.weights``).
By default only the quality modes' thresholds move: each becomes the highest threshold whose
under-routing on the user's prompts stays within ``train.MODE_UNDER_ROUTING``, weights unchanged.
With ``refit`` the weights are refitted too, on the packaged training split plus the user's rows
(each counted ``REFIT_REPEAT`` times), and the thresholds come from out-of-fold scores.
Used by ``switchman classifier calibrate``; offline only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchman.gateway.routing.classifier.dataset import Example, load_examples
from switchman.gateway.routing.classifier.model import Classifier
from switchman.gateway.routing.classifier.train import (
    Fitted,
    document,
    fit_model,
    mode_thresholds,
)

MIN_ROWS = 20
MIN_PER_LABEL = 5
REFIT_REPEAT = 3


class CalibrationError(ValueError):
    """Labels too few or too one-sided to fit anything from."""


@dataclass(frozen=True, slots=True)
class Calibrated:
    classifier: Classifier
    document: dict[str, Any]


def check(labels: Sequence[Example]) -> None:
    complex_rows = sum(1 for e in labels if e.complex)
    if len(labels) < MIN_ROWS or min(complex_rows, len(labels) - complex_rows) < MIN_PER_LABEL:
        raise CalibrationError(
            f"need at least {MIN_ROWS} labelled prompts with {MIN_PER_LABEL} of each label; "
            f"got {len(labels)} ({complex_rows} complex)"
        )


def calibrate(
    labels: Sequence[Example], labels_file: Path, base: Classifier, *, refit: bool = False
) -> Calibrated:
    """The calibrated classifier and its weights document (raises CalibrationError)."""
    check(labels)
    digest = hashlib.sha256(labels_file.read_bytes()).hexdigest()
    training: dict[str, Any] = {
        "calibrated_on": labels_file.name,
        "calibration_sha256": digest,
        "calibration_rows": len(labels),
    }
    if refit:
        packaged = load_examples("train")
        fitted = fit_model([*packaged, *(e for e in labels for _ in range(REFIT_REPEAT))])
        training |= {"data": "prompts.jsonl (train) + calibration rows", "refit": True}
        return Calibrated(fitted.classifier, document(fitted, training))
    scores = [base.score("chat", e.body) for e in labels]
    thresholds = mode_thresholds(scores, [int(e.complex) for e in labels])
    classifier = Classifier(base.weights, base.bias, base.table, thresholds)
    fitted = Fitted(classifier, penalty=0.0, cv_log_loss={})
    training |= {"data": "packaged weights, thresholds fitted on the calibration rows",
                 "refit": False}  # fmt: skip
    return Calibrated(classifier, document(fitted, training))
