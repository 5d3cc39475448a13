"""``switchman classifier`` as a process: the numbers it prints are evaluate.py's numbers.

Scenario matrix:
- ``eval --json`` (held-out, threshold 0.5, default prices): n, accuracy, misroute rates, costs,
  length baseline and the 0.1..0.9 sweep equal those computed in-process; progress on stderr
- ``eval --split all --threshold 0.3`` with overridden prices and output tokens: the report
  uses them
- ``eval`` as text: the accuracy and misroute lines carry the same figures; exit status 0
- ``score`` from an argument and from stdin (plain text and a JSON request body): the score
  and features equal ``Classifier.score`` / ``explain``; the reason text names the tier
- invalid flags: exit status 2 with a message, no traceback
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

import processes
import pytest

from switchman.gateway.routing.classifier import Classifier
from switchman.gateway.routing.classifier.evaluate import (
    Prices,
    length_baseline,
    load_examples,
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
    code, out, err = await _run("eval", "--json")
    assert code == 0, err
    assert "scored 240 prompts" in err
    document = json.loads(out)
    held = load_examples("heldout")
    scored = score_examples(Classifier.load_default(), held)
    expected = report(scored, 0.5)
    assert document["split"] == "heldout"
    assert document["report"] == pytest.approx(dataclasses.asdict(expected))
    assert document["report"]["n"] == 240
    assert document["prices"] == dataclasses.asdict(Prices())
    cutoff, accuracy = length_baseline(load_examples("train"), held)
    assert document["length_baseline"] == {"cutoff_tokens": cutoff, "accuracy": accuracy}
    rows = [dataclasses.asdict(r) for r in sweep(scored)]
    assert len(document["sweep"]) == len(rows)
    for got, want in zip(document["sweep"], rows, strict=True):
        assert got == pytest.approx(want)
    assert [row["threshold"] for row in document["sweep"]] == pytest.approx(
        [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    )
    assert len(document["per_domain_accuracy"]) == 12


async def test_eval_uses_split_threshold_and_prices() -> None:
    code, out, err = await _run(
        "eval", "--json", "--split", "all", "--threshold", "0.3",
        "--large-output-price", "20", "--small-input-price", "0.1",
        "--simple-output-tokens", "100", "--complex-output-tokens", "900",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    prices = Prices(small_input=0.1, large_output=20.0, simple_output_tokens=100,
                    complex_output_tokens=900)  # fmt: skip
    scored = score_examples(Classifier.load_default(), load_examples("all"))
    assert document["report"] == pytest.approx(dataclasses.asdict(report(scored, 0.3, prices)))
    assert document["report"]["n"] == 480
    assert document["prices"] == dataclasses.asdict(prices)


async def test_eval_text_reports_the_same_figures() -> None:
    code, out, err = await _run("eval")
    assert code == 0, err
    expected = report(score_examples(Classifier.load_default(), load_examples("heldout")), 0.5)
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert f"{expected.accuracy:.3f}" in lines["accuracy"]
    assert f"({expected.under_routed} of {expected.n_complex})" in lines["under-routing"]
    assert f"({expected.over_routed} of {expected.n_simple})" in lines["over-routing"]
    assert f"{expected.cost_saved:.1%} saved" in lines["cost"]
    assert out.count("\n") >= 9 + 8  # the report and the nine-row sweep


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
