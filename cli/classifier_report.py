"""``switchman classifier eval``: the figures and their tables, as text or JSON.

``evaluation(args)`` scores the packaged labelled prompts (one split) with the packaged or a
given weights file at a quality mode's threshold (or ``--threshold``) and gathers: the split's
report beside the length-only baseline, every mode's report, a threshold sweep, per-domain and
per-language (and per-source) tables, and leave-one-domain-out / leave-one-language-out results
(``holdout``, retraining per group: minutes of CPU). ``text``/``as_json`` render it. Called by
``switchman.cli.classifier``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from typing import Any

from switchman.gateway.routing.classifier import MODES, Classifier
from switchman.gateway.routing.classifier.dataset import load_examples
from switchman.gateway.routing.classifier.evaluate import (
    LengthScorer,
    Prices,
    Report,
    length_baseline,
    per_group,
    report,
    score_examples,
    sweep,
)
from switchman.gateway.routing.classifier.holdout import Summary, leave_one_out

HOLDOUT_PENALTY = 0.001  # the packaged fit's cross-validated choice; refixed per fold for speed


@dataclasses.dataclass(frozen=True, slots=True)
class Evaluation:
    split: str
    mode: str
    prices: Prices
    result: Report
    baseline: Report
    cutoff: float
    modes: dict[str, Report]
    table: list[Report]
    domains: dict[str, Report]
    languages: dict[str, Report]
    sources: dict[str, Report]
    holdouts: list[Summary]
    seconds: float


def evaluation(args: argparse.Namespace, classifier: Classifier, prices: Prices) -> Evaluation:
    started = time.perf_counter()
    examples = load_examples(args.split)
    threshold = args.threshold if args.threshold is not None else classifier.thresholds[args.mode]
    scored = score_examples(classifier, examples)
    cutoff, _ = length_baseline(load_examples("train"), examples)
    baseline = report(score_examples(LengthScorer(cutoff), examples), 0.5, prices)
    keys = {"both": ("domain", "language"), "none": ()}.get(args.holdout, (args.holdout,))
    everything = load_examples("all")
    holdouts = [leave_one_out(everything, key, HOLDOUT_PENALTY) for key in keys]
    return Evaluation(
        split=args.split,
        mode="threshold" if args.threshold is not None else args.mode,
        prices=prices,
        result=report(scored, threshold, prices),
        baseline=baseline,
        cutoff=cutoff,
        modes={m: report(scored, classifier.thresholds[m], prices) for m in MODES},
        table=sweep(scored, prices),
        domains=per_group(scored, threshold, "domain", prices),
        languages=per_group(scored, threshold, "language", prices),
        sources=per_group(scored, threshold, "source", prices),
        holdouts=holdouts,
        seconds=time.perf_counter() - started,
    )


def as_json(e: Evaluation) -> dict[str, Any]:
    asdict = dataclasses.asdict
    return {
        "split": e.split,
        "mode": e.mode,
        "prices": asdict(e.prices),
        "report": asdict(e.result),
        "length_baseline": {"cutoff_tokens": e.cutoff, "report": asdict(e.baseline)},
        "modes": {m: asdict(r) for m, r in e.modes.items()},
        "per_domain": {g: asdict(r) for g, r in e.domains.items()},
        "per_language": {g: asdict(r) for g, r in e.languages.items()},
        "per_source": {g: asdict(r) for g, r in e.sources.items()},
        "holdout": {
            s.key: {
                "pooled": asdict(s.pooled),
                "length_baseline": asdict(s.baseline),
                "folds": {
                    f.group: {"report": asdict(f.report), "length_baseline": asdict(f.baseline)}
                    for f in s.folds
                },
            }
            for s in e.holdouts
        },
        "sweep": [asdict(r) for r in e.table],
    }


def _row(name: str, r: Report) -> str:
    return (f"{name:16} {r.n:5d}  {r.accuracy:8.3f}  {r.under_routing_rate:13.3f}  "
            f"{r.over_routing_rate:12.3f}  {r.small_share:8.3f}  {r.cost_saved:10.1%}")  # fmt: skip


_HEADER = f"{'':16} {'n':>5}  accuracy  under-routing  over-routing  to-small  cost-saved"


def text(e: Evaluation) -> str:
    r, p = e.result, e.prices
    lines = [
        f"split {e.split}: {r.n} prompts ({r.n_simple} simple, {r.n_complex} complex), "
        f"{e.mode} threshold {r.threshold:.4f}",
        f"accuracy        {r.accuracy:.3f}  (length-only baseline {e.baseline.accuracy:.3f}: "
        f"complex when >= {e.cutoff:.0f} tokens)",
        f"under-routing   {r.under_routing_rate:.3f}  complex prompts sent to small "
        f"({r.under_routed} of {r.n_complex}; baseline {e.baseline.under_routing_rate:.3f})",
        f"over-routing    {r.over_routing_rate:.3f}  simple prompts sent to large "
        f"({r.over_routed} of {r.n_simple})",
        f"sent to small   {r.small_share:.3f}",
        f"cost            ${r.cost_usd:.4f} routed vs ${r.always_large_usd:.4f} always-large: "
        f"{r.cost_saved:.1%} saved",
        f"  prices per 1M tokens: small ${p.small_input:.2f} in / ${p.small_output:.2f} out, "
        f"large ${p.large_input:.2f} in / ${p.large_output:.2f} out; input tokens = prompt "
        f"chars / 4; output tokens assumed {p.simple_output_tokens} simple / "
        f"{p.complex_output_tokens} complex",
        "",
        "quality modes (thresholds from weights.json)",
        _HEADER,
        *(_row(f"{m} {x.threshold:.3f}", x) for m, x in e.modes.items()),
    ]
    for title, groups in (
        ("per source (generated, native, hand-written)", e.sources),
        ("per domain", e.domains),
        ("per language", e.languages),
    ):
        lines += ["", f"{title} ({e.mode})", _HEADER, *(_row(g, x) for g, x in groups.items())]
    for s in e.holdouts:
        name = {"domain": "leave-one-domain-out", "language": "leave-one-language-out"}[s.key]
        lines += ["", f"{name}: retrained without each {s.key}, its balanced threshold", _HEADER]
        lines += [_row(f.group, f.report) for f in s.folds]
        lines += [_row("pooled", s.pooled), _row("length baseline", s.baseline)]
    lines += ["", "threshold sweep", _HEADER.replace(" " * 16, "threshold".ljust(16), 1)]
    lines += [_row(f"{t.threshold:.2f}", t) for t in e.table]
    return "\n".join(lines)
