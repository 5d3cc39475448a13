"""``switchman classifier`` as a process: the numbers it prints are evaluate.py's numbers.

Scenario matrix:
- ``eval --json --holdout none`` (held-out, balanced mode, default prices): n, accuracy,
  misroute rates, costs, length baseline, the three modes, per-domain and per-language reports
  and the 0.1..0.9 sweep equal those computed in-process; progress on stderr
- ``eval --split all --threshold 0.3`` with overridden prices and output tokens: the report
  uses them
- ``eval`` as text: the accuracy and misroute lines carry the same figures, the mode, domain
  and language tables are printed; exit status 0 (LODO/LOLO folds: tests/unit)
- ``calibrate --labels FILE -o OUT``: writes a weights file that loads with the fitted
  thresholds and the packaged weights; ``eval --weights OUT`` uses it; bad labels and a
  missing weights file exit 2 with one line naming the problem, no traceback
- ``score`` from an argument and from stdin (plain text and a JSON request body): the score
  and features equal ``Classifier.score`` / ``explain``; the reason text names the tier
- invalid flags: exit status 2 with a message, no traceback
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import processes
import pytest

from switchman.gateway.routing.classifier import MODES, Classifier
from switchman.gateway.routing.classifier.dataset import load_examples
from switchman.gateway.routing.classifier.evaluate import (
    LengthScorer,
    Prices,
    length_baseline,
    per_group,
    report,
    score_examples,
    sweep,
)


async def _run(*args: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """``switchman classifier ARGS`` with ``stdin`` piped in: (exit status, stdout, stderr).

    Started here rather than with ``processes.running``, which leaves stdin inherited."""
    process = await asyncio.create_subprocess_exec(
        *processes.SWITCHMAN, "classifier", *args,
        stdin=processes.PIPE, stdout=processes.PIPE, stderr=processes.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_eval_json_matches_evaluate() -> None:
    code, out, err = await _run("eval", "--json", "--holdout", "none")
    assert code == 0, err
    assert "evaluated in" in err
    document = json.loads(out)
    classifier = Classifier.load_default()
    held = load_examples("heldout")
    scored = score_examples(classifier, held)
    threshold = classifier.thresholds["balanced"]
    expected = report(scored, threshold)
    assert document["split"] == "heldout"
    assert document["mode"] == "balanced"
    assert document["report"] == pytest.approx(dataclasses.asdict(expected))
    assert document["report"]["n"] == len(held)
    assert document["prices"] == dataclasses.asdict(Prices())
    cutoff, _ = length_baseline(load_examples("train"), held)
    baseline = report(score_examples(LengthScorer(cutoff), held), 0.5)
    assert document["length_baseline"]["cutoff_tokens"] == cutoff
    assert document["length_baseline"]["report"] == pytest.approx(dataclasses.asdict(baseline))
    for mode in MODES:
        want = report(scored, classifier.thresholds[mode])
        assert document["modes"][mode] == pytest.approx(dataclasses.asdict(want))
    languages = per_group(scored, threshold, "language")
    assert document["per_language"] == {
        g: pytest.approx(dataclasses.asdict(r)) for g, r in languages.items()
    }
    assert set(document["per_source"]) == {"generated", "handwritten", "native"}
    assert len(document["per_domain"]) >= 15
    assert len(document["per_language"]) >= 10
    assert document["holdout"] == {}
    rows = [dataclasses.asdict(r) for r in sweep(scored)]
    for got, want in zip(document["sweep"], rows, strict=True):
        assert got == pytest.approx(want)


async def test_eval_uses_split_threshold_and_prices() -> None:
    code, out, err = await _run(
        "eval", "--json", "--holdout", "none", "--split", "all", "--threshold", "0.3",
        "--large-output-price", "20", "--small-input-price", "0.1",
        "--simple-output-tokens", "100", "--complex-output-tokens", "900",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    prices = Prices(small_input=0.1, large_output=20.0, simple_output_tokens=100,
                    complex_output_tokens=900)  # fmt: skip
    everything = load_examples("all")
    scored = score_examples(Classifier.load_default(), everything)
    assert document["report"] == pytest.approx(dataclasses.asdict(report(scored, 0.3, prices)))
    assert document["report"]["n"] == len(everything)
    assert document["prices"] == dataclasses.asdict(prices)
    assert document["mode"] == "threshold"


async def test_eval_text_reports_the_same_figures() -> None:
    code, out, err = await _run("eval", "--holdout", "none")
    assert code == 0, err
    classifier = Classifier.load_default()
    held = load_examples("heldout")
    expected = report(score_examples(classifier, held), classifier.thresholds["balanced"])
    lines: dict[str, str] = {}
    for line in out.splitlines():
        if line.strip():
            lines.setdefault(line.split()[0], line)  # the first: the summary above the tables
    assert f"{expected.accuracy:.3f}" in lines["accuracy"]
    assert f"({expected.under_routed} of {expected.n_complex};" in lines["under-routing"]
    assert f"({expected.over_routed} of {expected.n_simple})" in lines["over-routing"]
    assert f"{expected.cost_saved:.1%} saved" in lines["cost"]
    assert "prices per 1M tokens: small $0.15 in" in out
    for title in ("quality modes", "per domain (balanced)", "per language (balanced)",
                  "threshold sweep"):  # fmt: skip
        assert title in out
    assert lines["ja"].split()[1] == str(sum(1 for e in held if e.language == "ja"))


async def test_calibrate_writes_a_weights_file_eval_can_use(tmp_path: Path) -> None:
    held = load_examples("heldout")[:60]
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(
        json.dumps({"messages": e.body["messages"], "label": "large" if e.complex else "small"})
        + "\n" for e in held
    ))  # fmt: skip
    out_file = tmp_path / "route-weights.json"
    code, out, err = await _run("calibrate", "--labels", str(labels), "-o", str(out_file))
    assert code == 0, err
    assert f"wrote {out_file} (60 labelled prompts)" in err
    calibrated = Classifier.load(out_file)
    packaged = Classifier.load_default()
    assert calibrated.weights == packaged.weights
    for mode in MODES:
        assert f"{calibrated.thresholds[mode]:.4f}" in out
    code, out, err = await _run("eval", "--json", "--holdout", "none", "--weights", str(out_file))
    assert code == 0, err
    assert json.loads(out)["report"]["threshold"] == calibrated.thresholds["balanced"]


async def test_bad_labels_and_weights_exit_2_with_one_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"prompt": "hi", "label": "medium"}\n')
    code, _, err = await _run("calibrate", "--labels", str(labels), "-o", str(tmp_path / "w"))
    assert code == 2
    assert "labels.jsonl:1: label must be" in err
    assert "Traceback" not in err
    code, _, err = await _run("score", "--weights", str(tmp_path / "absent.json"), "hi")
    assert code == 2
    assert "cannot read" in err
    assert "Traceback" not in err


async def test_score_argument_and_stdin_match_the_classifier() -> None:
    classifier = Classifier.load_default()
    text = "Prove that there are infinitely many primes."
    code, out, err = await _run("score", "--json", "--threshold", "0.4", text)
    assert code == 0, err
    document = json.loads(out)
    body = {"messages": [{"role": "user", "content": text}]}
    assert document["score"] == classifier.score("chat", body)
    assert document["features"] == classifier.explain("chat", body)
    assert document["tier"] == ("large" if document["score"] >= 0.4 else "small")
    assert document["reason"].startswith("complexity ")

    request = {"messages": [{"role": "user", "content": "hi"}], "tools": []}
    code, out, err = await _run("score", "--json", "-", stdin=json.dumps(request).encode())
    assert code == 0, err
    assert json.loads(out)["score"] == classifier.score("chat", request)

    code, out, err = await _run("score", stdin=b"what is the capital of France?")
    assert code == 0, err
    plain = {"messages": [{"role": "user", "content": "what is the capital of France?"}]}
    assert out.startswith(f"score {classifier.score('chat', plain):.3f}")
    assert "simple_start" in out


@pytest.mark.parametrize(
    "args",
    [
        ("eval", "--threshold", "1.5"),
        ("eval", "--split", "test"),
        ("eval", "--large-input-price", "-1"),
    ],
)
async def test_invalid_flags_exit_2(args: tuple[str, ...]) -> None:
    code, _, err = await _run(*args)
    assert code == 2
    assert "error" in err
    assert "Traceback" not in err
