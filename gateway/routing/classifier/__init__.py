"""Prompt complexity classifier: scores an OpenAI request body in [0, 1], locally, in under 1 ms.

The router scores each request once on routes with strategy ``complexity`` and maps the score
to a tier with the route's thresholds (``switchman.api.routes.Complexity``). Pure Python and
bounded in time: ``features`` (what is measured), ``model`` (the logistic regression and
``describe``), ``weights.json`` (written by ``train``), ``evaluate`` (offline metrics over
``prompts.jsonl``). See docs/classifier.md.
"""

from switchman.gateway.routing.classifier.features import FEATURES
from switchman.gateway.routing.classifier.model import Classifier, WeightsError, describe

__all__ = ["FEATURES", "Classifier", "WeightsError", "describe"]
