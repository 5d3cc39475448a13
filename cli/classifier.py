"""``switchman classifier eval|score|calibrate``: measure, explain and fit the classifier.

``eval`` scores the labelled prompts packaged with the classifier (the held-out split by
default) and prints the split's figures beside the length-only baseline, the quality modes,
per-domain and per-language tables, leave-one-domain-out and leave-one-language-out results and
the cost against always-large with the prices stated (``--json`` for machines; tables built by
``classifier_report``). ``score`` prints one prompt's score, the tier a threshold would pick and
every feature with its weight. ``calibrate`` fits the mode thresholds (``--refit``: the weights
too) to a labels file and writes a weights file a route references (``complexity.weights``).
Results go to stdout, progress and errors to stderr. Wired into ``switchman.cli.main``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from switchman.cli import classifier_report
from switchman.gateway.routing.classifier import MODES, NAMES, Classifier, WeightsError, describe
from switchman.gateway.routing.classifier.calibrate import CalibrationError, calibrate
from switchman.gateway.routing.classifier.dataset import LabelsError, load_examples
from switchman.gateway.routing.classifier.evaluate import Prices, report, score_examples
from switchman.gateway.routing.classifier.train import render


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="classifier_command", required=True, metavar="ACTION")
    evaluate = commands.add_parser(
        "eval", help="evaluate on the labelled prompts", description="evaluate on the labelled "
        "prompts: accuracy, misroutes and cost against always routing to the large model",
    )  # fmt: skip
    _add_weights(evaluate)
    evaluate.add_argument("--mode", choices=MODES, default="balanced", help="default balanced")
    evaluate.add_argument("--threshold", type=_unit, default=None, help="instead of --mode")
    evaluate.add_argument("--split", choices=("heldout", "train", "all"), default="heldout")
    evaluate.add_argument(
        "--holdout", choices=("both", "domain", "language", "none"), default="both",
        help="leave-one-domain/language-out retraining (default both; minutes of CPU)",
    )  # fmt: skip
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    _add_prices(evaluate)
    evaluate.set_defaults(classifier_run=_run_eval)
    score = commands.add_parser("score", help="score one prompt and show its features")
    score.add_argument(
        "text",
        nargs="?",
        default="-",
        help="the prompt, or - (default) to read stdin: plain text, or a JSON request body",
    )
    _add_weights(score)
    score.add_argument("--op", choices=("chat", "completions", "embeddings"), default=None)
    score.add_argument("--threshold", type=_unit, default=None, help="default: balanced mode's")
    score.add_argument("--json", action="store_true", help="machine-readable output")
    score.set_defaults(classifier_run=_run_score)
    fit = commands.add_parser(
        "calibrate", help="fit the thresholds (and weights) to your own labelled prompts"
    )
    fit.add_argument(
        "--labels", type=Path, required=True, help="JSON lines: prompt or messages, and label "
        "(simple|complex|small|large) or preference (small|large|tie)",
    )  # fmt: skip
    fit.add_argument("--output", "-o", type=Path, required=True, help="weights file to write")
    fit.add_argument("--refit", action="store_true", help="refit the weights too, not only "
                     "the thresholds (packaged training data + your rows)")  # fmt: skip
    _add_weights(fit)
    fit.set_defaults(classifier_run=_run_calibrate)


def _add_weights(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights", type=Path, default=None, help="a weights file (default: the packaged one)"
    )


def _add_prices(parser: argparse.ArgumentParser) -> None:
    defaults = Prices()
    for field, what in (("small_input", "small model input"), ("small_output",
                        "small model output"), ("large_input", "large model input"),
                        ("large_output", "large model output")):  # fmt: skip
        parser.add_argument(
            f"--{field.replace('_', '-')}-price", dest=field, type=_non_negative,
            default=getattr(defaults, field),
            help=f"USD per 1M {what} tokens (default {getattr(defaults, field):.2f})",
        )  # fmt: skip
    for label in ("simple", "complex"):
        default = getattr(defaults, f"{label}_output_tokens")
        parser.add_argument(
            f"--{label}-output-tokens", dest=f"{label}_output_tokens", type=int, default=default,
            help=f"output tokens assumed per {label} prompt (default {default})",
        )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Entry point for ``switchman classifier``: the process exit status."""
    try:
        result: int = args.classifier_run(args)
    except (WeightsError, LabelsError, CalibrationError) as exc:
        print(f"switchman classifier: {exc}", file=sys.stderr)
        return 2
    return result


def _unit(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _classifier(args: argparse.Namespace) -> Classifier:
    return Classifier.load(args.weights) if args.weights else Classifier.load_default()


def _run_eval(args: argparse.Namespace) -> int:
    prices = Prices(**{f: getattr(args, f) for f in Prices.__dataclass_fields__})
    if args.holdout != "none":
        print("retraining per left-out group: this takes a few minutes", file=sys.stderr)
    result = classifier_report.evaluation(args, _classifier(args), prices)
    print(f"evaluated in {result.seconds:.1f} s", file=sys.stderr)
    if args.json:
        print(json.dumps(classifier_report.as_json(result), indent=2))
    else:
        print(classifier_report.text(result))
    return 0


def _request(text: str, op: str | None) -> tuple[str, Any]:
    """(op, body) from the command line: a JSON body is used as given, anything else is the
    text of one user message."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        guessed = "completions" if "prompt" in body else "embeddings" if "input" in body else "chat"
        return op or guessed, body
    if op == "completions":
        return op, {"prompt": text}
    if op == "embeddings":
        return op, {"input": text}
    return "chat", {"messages": [{"role": "user", "content": text}]}


def _run_score(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.text == "-" else args.text
    op, body = _request(text, args.op)
    classifier = _classifier(args)
    threshold = args.threshold if args.threshold is not None else classifier.thresholds["balanced"]
    score = classifier.score(op, body)
    tier = "large" if score >= threshold else "small"
    features = classifier.explain(op, body)
    contributions = classifier.contributions(op, body)
    if args.json:
        document = {
            "op": op,
            "score": score,
            "threshold": threshold,
            "tier": tier,
            "reason": describe(score, threshold, tier),
            "features": features,
            "contributions": contributions,
            "bias": classifier.bias,
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"score {score:.3f}  ({describe(score, threshold, tier)})")
    print(f"{'feature':18} {'value':>7} {'weight':>8} {'log-odds':>9}")
    weights = classifier.weights
    for name in NAMES:
        print(f"{name:18} {features[name]:7.3f} {weights[name]:8.3f} {contributions[name]:9.3f}")
    print(f"{'bias':18} {'':7} {'':8} {classifier.bias:9.3f}")
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    labels = load_examples("all", args.labels)
    base = _classifier(args)
    if args.refit:
        print("refitting on the packaged training split plus your rows", file=sys.stderr)
    result = calibrate(labels, args.labels, base, refit=args.refit)
    args.output.write_text(render(result.document))
    scored = score_examples(result.classifier, labels)
    print(f"wrote {args.output} ({len(labels)} labelled prompts)", file=sys.stderr)
    print(f"{'mode':9} {'threshold':>9} {'accuracy':>8} {'under-routing':>13} {'to-small':>8}")
    for mode in MODES:
        r = report(scored, result.classifier.thresholds[mode])
        print(f"{mode:9} {r.threshold:9.4f} {r.accuracy:8.3f} {r.under_routing_rate:13.3f} "
              f"{r.small_share:8.3f}")  # fmt: skip
    print("(on the calibration rows themselves: hold some back to measure)")
    return 0
