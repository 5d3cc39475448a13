"""The classifier's labelled set, training and evaluation (held-out, LODO/LOLO, calibration).

Scenario matrix:
- the generator: ``generate --check`` reproduces prompts.jsonl byte for byte; >= 2,000 prompts,
  >= 15 domains, >= 10 languages, both labels in every language, styles (terse, polite, verbose,
  code-switched, multi-turn, native, hand-written), tools and json_schema on *both* labels,
  short-but-hard and long-but-easy rows; unique ids and prompts; ~30% held out, every domain and
  language in both splits; multi-turn rows' earlier turns carry the opposite label
- training: retraining reads only the training split and reproduces weights.json byte for byte;
  the file records the data's digest, every feature and the mode thresholds (quality < balanced
  < cost); a cross-fitted n-gram value; mode thresholds hold their under-routing bound
- the done-when figures on the held-out split at the balanced mode: accuracy >= 0.85,
  complex->small <= 0.10, >= 40% to small, beating the length-only baseline
- holdout: one LODO and one LOLO fold retrain without the group (its rows never in training)
  and report the group's own rows beside the length baseline
- evaluate: accuracy, misroute rates, shares and cost by hand on crafted scores; the length
  baseline's cutoff
- calibrate: thresholds fitted to a labels file keep under-routing within bound on it, weights
  unchanged; with refit the weights change and the user's rows are learned; labels as
  simple/complex, small/large or a judge's preference; too few or bad rows refused with a
  clear message
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from switchman.gateway.routing.classifier import NAMES, Classifier, train
from switchman.gateway.routing.classifier.calibrate import CalibrationError, calibrate
from switchman.gateway.routing.classifier.corpus import generate
from switchman.gateway.routing.classifier.dataset import (
    Example,
    LabelsError,
    dataset_path,
    load_examples,
)
from switchman.gateway.routing.classifier.evaluate import (
    Prices,
    Scored,
    length_baseline,
    report,
    score_examples,
    sweep,
)
from switchman.gateway.routing.classifier.holdout import leave_one_out


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load_default()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in dataset_path().read_text(encoding="utf-8").splitlines()]


# the generated set


def test_generator_reproduces_the_file() -> None:
    assert generate.render(generate.build()) == dataset_path().read_text(encoding="utf-8")


def test_size_domains_languages_and_labels(rows: list[dict[str, Any]]) -> None:
    assert len(rows) >= 2000
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({json.dumps(r["messages"], sort_keys=True) for r in rows}) == len(rows)
    assert len({r["domain"] for r in rows}) >= 15
    languages = Counter((r["language"], r["label"]) for r in rows)
    assert len({lang for lang, _ in languages}) >= 10
    assert all(languages[(lang, "simple")] >= 20 and languages[(lang, "complex")] >= 20
               for lang, _ in languages)  # fmt: skip
    held = sum(1 for r in rows if r["split"] == "heldout") / len(rows)
    assert 0.25 <= held <= 0.40
    for key in ("domain", "language"):
        for split in ("train", "heldout"):
            assert {r[key] for r in rows} == {r[key] for r in rows if r["split"] == split}


def test_styles_tools_schemas_and_length_cases(rows: list[dict[str, Any]]) -> None:
    styles = {part for r in rows for part in r["style"].split("+")}
    assert {"plain", "terse", "polite", "verbose", "code-switched", "multi-turn", "native",
            "handwritten"} <= styles  # fmt: skip
    for field in ("tools", "response_format"):
        assert {r["label"] for r in rows if field in r} == {"simple", "complex"}

    def chars(r: dict[str, Any]) -> int:
        return len(r["messages"][-1]["content"])

    short_hard = [r for r in rows if r["label"] == "complex" and chars(r) < 80]
    long_easy = [r for r in rows if r["label"] == "simple" and chars(r) > 1500]
    assert len(short_hard) >= 100
    assert len(long_easy) >= 50


def test_multi_turn_rows_end_with_the_deciding_user_turn(rows: list[dict[str, Any]]) -> None:
    turns = [r for r in rows if "multi-turn" in r["style"]]
    assert len(turns) >= 100
    asked = {(json.dumps(r["messages"][-1]["content"]), r["label"]) for r in rows}
    opposite = {"simple": "complex", "complex": "simple"}
    for r in turns:  # the earlier turn is a prompt of the other label, written elsewhere
        assert (json.dumps(r["messages"][0]["content"]), opposite[r["label"]]) in asked
    assert {r["label"] for r in turns} == {"simple", "complex"}
    for r in turns:
        assert [m["role"] for m in r["messages"]] == ["user", "assistant", "user"]


def test_rows_are_well_formed_chat_bodies(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        assert set(row) <= {"id", "domain", "language", "style", "intent", "label", "source",
                            "split", "messages", "tools", "response_format"}  # fmt: skip
        assert row["label"] in ("simple", "complex")
        assert row["messages"][-1]["role"] == "user"
        for tool in row.get("tools", []):
            assert tool["type"] == "function"
            assert tool["function"]["name"]
        if "response_format" in row:
            assert row["response_format"]["type"] in ("json_object", "json_schema")


# training


def test_retraining_reads_only_the_training_split_and_reproduces_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []

    def spy(split: str = "all", path: Any = None) -> list[Example]:
        seen.append(split)
        return load_examples(split, path)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "load_examples", spy)
    assert train.build() == train.WEIGHTS.read_text()
    assert seen == ["train"]


def test_weights_file_names_every_feature_and_its_data(classifier: Classifier) -> None:
    document = json.loads(train.WEIGHTS.read_text())
    assert document["format"] == "switchman-classifier/v2"
    assert list(document["weights"]) == list(NAMES)
    assert all(math.isfinite(w) for w in document["weights"].values())
    digest = hashlib.sha256(dataset_path().read_bytes()).hexdigest()
    assert document["training"]["data_sha256"] == digest, "data changed: retrain"
    assert document["training"]["examples"] == len(load_examples("train"))
    t = document["thresholds"]
    assert 0 < t["quality"] < t["balanced"] < t["cost"] < 1
    assert classifier.weights == document["weights"]
    assert document["weights"]["ngrams"] > 0  # the n-gram value points the right way


def test_mode_thresholds_hold_their_under_routing_bound() -> None:
    scores = [i / 100 for i in range(100)]
    labels = [1] * 100
    chosen = train.mode_thresholds(scores, labels)
    for mode, bound in train.MODE_UNDER_ROUTING.items():
        under = sum(1 for s in scores if s < chosen[mode]) / 100
        assert under <= bound
        assert chosen[mode] == pytest.approx(math.floor(bound * 100) / 100)


# the done-when figures (held-out split, balanced mode)


def test_held_out_split_meets_the_targets(classifier: Classifier) -> None:
    held = load_examples("heldout")
    r = report(score_examples(classifier, held), classifier.thresholds["balanced"])
    assert r.accuracy >= 0.85
    assert r.under_routing_rate <= 0.10
    assert r.small_share >= 0.40
    _, baseline = length_baseline(load_examples("train"), held)
    assert r.accuracy > baseline + 0.10


# leave one group out


@pytest.mark.parametrize(("key", "group"), [("domain", "cooking"), ("language", "de")])
def test_leave_one_out_fold_never_trains_on_its_group(
    monkeypatch: pytest.MonkeyPatch, key: str, group: str
) -> None:
    from switchman.gateway.routing.classifier import holdout

    trained_on: list[list[Example]] = []
    real = holdout.fit_model

    def spy(examples: list[Example], penalty: float | None = None) -> train.Fitted:
        trained_on.append(list(examples))
        return real(examples, penalty)

    monkeypatch.setattr(holdout, "fit_model", spy)
    everything = load_examples()
    summary = leave_one_out(everything, key, 0.001, only=[group])  # type: ignore[arg-type]
    [fold] = summary.folds
    [seen] = trained_on
    assert all(getattr(e, key) != group and e.split == "train" for e in seen)
    assert fold.report.n == sum(1 for e in everything if getattr(e, key) == group)
    assert fold.report.accuracy > fold.baseline.accuracy
    assert summary.pooled.n == fold.report.n


# evaluate


def example(label: str, tokens: float, domain: str = "d") -> Example:
    return Example(f"{domain}-{label}-{tokens}", domain, label, "heldout", {}, tokens)


def test_report_counts_misroutes_and_cost_by_hand() -> None:
    scored = [
        Scored(example("simple", 100), 0.2),  # small, right
        Scored(example("simple", 100), 0.7),  # large: over-routed
        Scored(example("complex", 400), 0.9),  # large, right
        Scored(example("complex", 400), 0.1),  # small: under-routed
    ]
    prices = Prices(1.0, 2.0, 10.0, 20.0, simple_output_tokens=10, complex_output_tokens=50)
    r = report(scored, 0.5, prices)
    assert (r.n, r.n_simple, r.n_complex) == (4, 2, 2)
    assert r.accuracy == 0.5
    assert (r.under_routed, r.over_routed) == (1, 1)
    assert r.under_routing_rate == 0.5
    assert r.over_routing_rate == 0.5
    assert r.large_share == 0.5
    assert r.small_share == 0.5

    def small(tokens: float, output: int) -> float:
        return (tokens * 1.0 + output * 2.0) / 1e6

    def large(tokens: float, output: int) -> float:
        return (tokens * 10.0 + output * 20.0) / 1e6

    expected = small(100, 10) + large(100, 10) + large(400, 50) + small(400, 50)
    assert r.cost_usd == pytest.approx(expected)
    assert r.always_large_usd == pytest.approx(2 * large(100, 10) + 2 * large(400, 50))
    assert r.cost_saved == pytest.approx(1 - expected / r.always_large_usd)
    assert [t.threshold for t in sweep(scored, prices)] == [
        0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9,
    ]  # fmt: skip
    assert report(scored, 0.0, prices).over_routing_rate == 1.0
    at_threshold = [Scored(example("complex", 10), 0.5), Scored(example("simple", 10), 0.5)]
    boundary = report(at_threshold, 0.5, prices)  # a score equal to the threshold goes large
    assert (boundary.under_routed, boundary.over_routed, boundary.large_share) == (0, 1, 1.0)


def test_length_baseline_picks_the_best_training_cutoff() -> None:
    train_set = [example("simple", 5), example("simple", 8), example("complex", 30),
                 example("complex", 50), example("simple", 40)]  # fmt: skip
    test_set = [example("simple", 10), example("complex", 35), example("complex", 20)]
    cutoff, accuracy = length_baseline(train_set, test_set)
    assert cutoff == 30
    assert accuracy == pytest.approx(2 / 3)


def test_classifier_beats_the_length_baseline_on_held_out(classifier: Classifier) -> None:
    held = load_examples("heldout")
    _, baseline = length_baseline(load_examples("train"), held)
    threshold = classifier.thresholds["balanced"]
    assert report(score_examples(classifier, held), threshold).accuracy > baseline + 0.05


# calibrate


def _labels(tmp_path: Path, rows: list[dict[str, Any]]) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_calibrated_thresholds_hold_their_bound_on_the_users_rows(
    tmp_path: Path, classifier: Classifier
) -> None:
    held = load_examples("heldout")[:120]
    rows = [{"prompt": e.body["messages"][-1]["content"], "label": e.label} for e in held]
    rows[0] = {"messages": held[0].body["messages"], "preference": "large"}
    rows[1] = {"prompt": "hi", "label": "small"}
    rows[2] = {"prompt": "thanks!", "preference": "tie"}
    path = _labels(tmp_path, rows)
    labels = load_examples("all", path)
    assert [e.label for e in labels[:3]] == ["complex", "simple", "simple"]
    result = calibrate(labels, path, classifier)
    assert result.classifier.weights == classifier.weights
    assert result.classifier.table == classifier.table
    scored = score_examples(result.classifier, labels)
    for mode, bound in train.MODE_UNDER_ROUTING.items():
        assert report(scored, result.classifier.thresholds[mode]).under_routing_rate <= bound
    written = tmp_path / "weights.json"
    written.write_text(train.render(result.document))
    loaded = Classifier.load(written)
    assert loaded.thresholds == result.classifier.thresholds
    assert result.document["training"]["calibration_rows"] == len(labels)


def test_refit_calibration_refits_the_weights_on_the_users_rows_too(
    tmp_path: Path, classifier: Classifier
) -> None:
    held = load_examples("heldout")[:40]
    path = _labels(tmp_path, [{"messages": e.body["messages"], "label": e.label} for e in held])
    labels = load_examples("all", path)
    result = calibrate(labels, path, classifier, refit=True)
    assert result.classifier.weights != classifier.weights
    assert result.document["training"]["refit"] is True
    assert result.document["training"]["calibration_rows"] == len(labels) == 40
    scored = score_examples(result.classifier, labels)
    threshold = result.classifier.thresholds["balanced"]
    assert report(scored, threshold).accuracy >= 0.9  # seen three times in training


def test_calibration_refuses_too_few_or_one_sided_labels(
    tmp_path: Path, classifier: Classifier
) -> None:
    few = _labels(tmp_path, [{"prompt": f"q{i}", "label": "simple"} for i in range(30)])
    with pytest.raises(CalibrationError, match="5 of each label"):
        calibrate(load_examples("all", few), few, classifier)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "x", "label": "medium"}', "label must be"),
        ('{"prompt": "x", "preference": "both"}', "preference must be"),
        ('{"label": "simple"}', "needs 'prompt'"),
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "not JSON"),
    ],
)
def test_bad_label_rows_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"prompt": "ok", "label": "simple"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(LabelsError, match=message) as info:
        load_examples("all", path)
    assert "labels.jsonl:2" in str(info.value)
