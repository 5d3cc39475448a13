"""``switchman classifier eval|score``: measure the complexity classifier, or score one prompt.

``eval`` scores the labelled prompts packaged with the classifier (the held-out half by
default) and prints accuracy, misroute rates both ways, cost against always-large and a
threshold sweep (``--json`` for machines); the numbers come from
``switchman.gateway.routing.classifier.evaluate``. ``score`` prints one prompt's score, the tier a
threshold would pick and every feature with its weight. Results go to stdout, progress and
errors to stderr. Wired into ``switchman.cli.main``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from switchman.gateway.routing.classifier import FEATURES, Classifier, describe
from switchman.gateway.routing.classifier.evaluate import (
    Prices,
    Report,
    length_baseline,
    load_examples,
    per_domain,
    report,
    score_examples,
    sweep,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="classifier_command", required=True, metavar="ACTION")
    evaluate = commands.add_parser(
        "eval", help="evaluate on the labelled prompts", description="evaluate on the labelled "
        "prompts: accuracy, misroutes and cost against always routing to the large model",
    )  # fmt: skip
    evaluate.add_argument("--threshold", type=_unit, default=0.5, help="default 0.5")
    evaluate.add_argument("--split", choices=("heldout", "train", "all"), default="heldout")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")
    defaults = Prices()
    for field, text in (
        ("small_input", "small model input"),
        ("small_output", "small model output"),
        ("large_input", "large model input"),
        ("large_output", "large model output"),
    ):
        evaluate.add_argument(
            f"--{field.replace('_', '-')}-price",
            dest=field,
            type=_non_negative,
            default=getattr(defaults, field),
            help=f"USD per 1M {text} tokens (default {getattr(defaults, field):.2f})",
        )
    for label in ("simple", "complex"):
        evaluate.add_argument(
            f"--{label}-output-tokens",
            dest=f"{label}_output_tokens",
            type=int,
            default=getattr(defaults, f"{label}_output_tokens"),
            help=f"output tokens assumed per {label} prompt "
            f"(default {getattr(defaults, f'{label}_output_tokens')})",
        )
    evaluate.set_defaults(run=_run_eval)
    score = commands.add_parser("score", help="score one prompt and show its features")
    score.add_argument(
        "text",
        nargs="?",
        default="-",
        help="the prompt, or - (default) to read stdin: plain text, or a JSON request body",
    )
    score.add_argument("--op", choices=("chat", "completions", "embeddings"), default=None)
    score.add_argument("--threshold", type=_unit, default=0.5, help="default 0.5")
    score.add_argument("--json", action="store_true", help="machine-readable output")
    score.set_defaults(run=_run_score)


def run(args: argparse.Namespace) -> int:
    """Entry point for ``switchman classifier``: the process exit status."""
    result: int = args.run(args)
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


def _run_eval(args: argparse.Namespace) -> int:
    prices = Prices(
        small_input=args.small_input,
        small_output=args.small_output,
        large_input=args.large_input,
        large_output=args.large_output,
        simple_output_tokens=args.simple_output_tokens,
        complex_output_tokens=args.complex_output_tokens,
    )
    classifier = Classifier.load_default()
    examples = load_examples(args.split)
    started = time.perf_counter()
    scored = score_examples(classifier, examples)
    elapsed = time.perf_counter() - started
    print(f"scored {len(scored)} prompts in {elapsed * 1000:.1f} ms", file=sys.stderr)
    result = report(scored, args.threshold, prices)
    cutoff, baseline = length_baseline(load_examples("train"), examples)
    table = sweep(scored, prices)
    if args.json:
        document = {
            "split": args.split,
            "prices": dataclasses.asdict(prices),
            "report": dataclasses.asdict(result),
            "length_baseline": {"cutoff_tokens": cutoff, "accuracy": baseline},
            "per_domain_accuracy": per_domain(scored, args.threshold),
            "sweep": [dataclasses.asdict(r) for r in table],
        }
        print(json.dumps(document, indent=2))
    else:
        print(_text(args.split, prices, result, cutoff, baseline, table))
    return 0


def _text(
    split: str, prices: Prices, r: Report, cutoff: float, baseline: float, table: list[Report]
) -> str:
    lines = [
        f"split {split}: {r.n} prompts ({r.n_simple} simple, {r.n_complex} complex), "
        f"threshold {r.threshold:.2f}",
        f"accuracy        {r.accuracy:.3f}  (length-only baseline {baseline:.3f}: complex when "
        f">= {cutoff:.0f} tokens)",
        f"under-routing   {r.under_routing_rate:.3f}  complex prompts sent to small "
        f"({r.under_routed} of {r.n_complex})",
        f"over-routing    {r.over_routing_rate:.3f}  simple prompts sent to large "
        f"({r.over_routed} of {r.n_simple})",
        f"sent to large   {r.large_share:.3f}",
        f"cost            ${r.cost_usd:.4f} routed vs ${r.always_large_usd:.4f} always-large: "
        f"{r.cost_saved:.1%} saved",
        f"  prices per 1M tokens: small ${prices.small_input:.2f} in / "
        f"${prices.small_output:.2f} out, large ${prices.large_input:.2f} in / "
        f"${prices.large_output:.2f} out; input tokens = prompt chars / 4; output tokens "
        f"assumed {prices.simple_output_tokens} simple / {prices.complex_output_tokens} complex",
        "",
        "threshold  accuracy  under-routing  over-routing  to-large  cost-saved",
    ]
    for t in table:
        lines.append(
            f"{t.threshold:9.2f}  {t.accuracy:8.3f}  {t.under_routing_rate:13.3f}  "
            f"{t.over_routing_rate:12.3f}  {t.large_share:8.3f}  {t.cost_saved:10.1%}"
        )
    return "\n".join(lines)


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
    classifier = Classifier.load_default()
    score = classifier.score(op, body)
    tier = "large" if score >= args.threshold else "small"
    features = classifier.explain(op, body)
    contributions = classifier.contributions(op, body)
    if args.json:
        document = {
            "op": op,
            "score": score,
            "threshold": args.threshold,
            "tier": tier,
            "reason": describe(score, args.threshold, tier),
            "features": features,
            "contributions": contributions,
            "bias": classifier.bias,
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"score {score:.3f}  ({describe(score, args.threshold, tier)})")
    print(f"{'feature':18} {'value':>7} {'weight':>8} {'log-odds':>9}")
    weights = classifier.weights
    for name in FEATURES:
        print(f"{name:18} {features[name]:7.3f} {weights[name]:8.3f} {contributions[name]:9.3f}")
    print(f"{'bias':18} {'':7} {'':8} {classifier.bias:9.3f}")
    return 0
