"""The prompt complexity classifier: features, scores, weights, data set, metrics, robustness.

Scenario matrix:
- features on crafted prompts: code, math, structured output (json_schema size, json_object),
  tools, turns, system prompt, image parts, simple openers (no "hi" inside "history"), cue
  words read from the instruction and not from pasted text, full lengths with bounded scans
  (two prompts that differ only outside the scanned windows get identical features),
  completions prompts (string and list), embeddings and unknown operations
- scores: in [0, 1]; greetings and lookups low, proofs and designs high; adding reasoning cues
  raises a score; long-but-simple and short-but-complex prompts from the data set
- weights.json: loads; names every feature; trained on the packaged data (digest); retraining
  reads only the training split and reproduces the file byte for byte; malformed weight
  documents are refused with WeightsError
- data set: >= 440 prompts, unique ids and prompts, exactly half held out per domain and label,
  both labels and all twelve domains in both halves, well-formed bodies
- evaluate: accuracy, misroute rates and cost by hand on crafted scores; the length baseline
- describe: both directions, equality, more digits when two would print a tie
- bad inputs: garbage shapes and a seeded fuzz of JSON values never raise, always in [0, 1]
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from math import log1p
from typing import Any

import pytest

from switchman.gateway.routing.classifier import FEATURES, Classifier, WeightsError, describe, train
from switchman.gateway.routing.classifier.evaluate import (
    Example,
    Prices,
    Scored,
    dataset_path,
    length_baseline,
    load_examples,
    report,
    score_examples,
    sweep,
)
from switchman.gateway.routing.classifier.features import BODY_CHARS, INSTRUCTION_CHARS, extract

DOMAINS = {
    "coding", "math", "writing", "factual_qa", "summarization", "translation", "extraction",
    "reasoning", "chitchat", "support", "tool_use", "multi_turn",
}  # fmt: skip


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load_default()


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def features(body: object, op: str = "chat") -> dict[str, float]:
    return dict(zip(FEATURES, extract(op, body), strict=True))


# features


def test_code_prompt_counts_fences_and_syntax() -> None:
    f = features(chat("Why does this hang?\n```python\ndef f(x):\n    return await g(x)\n```"))
    assert f["code_fences"] == log1p(2)
    assert f["code_syntax"] > 0
    assert features(chat("Why is the sky blue?"))["code_syntax"] == 0


def test_math_prompt_counts_proof_cues_and_notation() -> None:
    f = features(chat("Prove that $\\sum_{k=1}^n k = \\frac{n(n+1)}{2}$ by induction."))
    assert f["math_proof"] >= log1p(2)  # "prove", "induction"
    assert f["math_notation"] > 0
    assert features(chat("What is 7 times 8?"))["math_proof"] == 0


def test_response_format_measures_schema_size() -> None:
    props = {"a": {"type": "string"}, "b": {"type": "object", "properties": {"c": {}, "d": {}}}}
    schema = {"type": "json_schema", "json_schema": {"schema": {"properties": props}}}
    assert features(chat("x", response_format=schema))["response_format"] == log1p(4)
    assert features(chat("x", response_format={"type": "json_object"}))["response_format"] == 1
    assert features(chat("x", response_format={"type": "text"}))["response_format"] == 0


def test_tools_turns_system_and_images() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/b.png"}},
            ]},
        ],
        "tools": [{"type": "function", "function": {"name": f"t{i}"}} for i in range(3)],
    }  # fmt: skip
    f = features(body)
    assert f["tools"] == log1p(3)
    assert f["turns"] == log1p(2)
    assert f["system"] == 1
    assert f["images"] == 2
    assert f["simple_start"] == 1  # the text part of the last user message is read
    assert features(chat("hi"))["system"] == 0


@pytest.mark.parametrize(
    ("text", "simple"),
    [
        ("What is the capital of France?", 1),
        ("hi", 1),
        ("Hi! how are you", 1),
        ("  translate 'cat' to German", 1),
        ("History of the Roman Republic: explain its fall", 0),
        ("Design a rate limiter", 0),
    ],
)
def test_simple_openers(text: str, simple: int) -> None:
    assert features(chat(text))["simple_start"] == simple


def test_cue_words_come_from_the_instruction_not_the_pasted_text() -> None:
    pasted = "We compare designs, analyze trade-offs and explain why. " * 100
    f = features(chat("Translate to French:\n\n" + pasted))
    assert f["reasoning"] == 0
    assert f["simple_cues"] > 0
    asked = features(chat("Compare the designs and explain the trade-offs:\n\n" + pasted))
    assert asked["reasoning"] > 0


def test_lengths_are_full_but_scanning_is_bounded() -> None:
    size = 100_000
    assert features(chat("x" * size))["last_user_tokens"] == log1p(size / 4)
    head, tail = "a" * BODY_CHARS, "b" * BODY_CHARS
    quiet = head + "z" * 50_000 + tail
    noisy = head + ("```def prove json $ must " * 5000)[:50_000] + tail
    assert extract("chat", chat(quiet)) == extract("chat", chat(noisy))


def test_instruction_window_is_whole_for_short_prompts() -> None:
    text = "p" * (2 * INSTRUCTION_CHARS - 20) + " explain why"
    assert features(chat(text))["reasoning"] > 0


def test_completions_prompt_string_and_list() -> None:
    assert features({"prompt": "Prove it."}, "completions")["math_proof"] > 0
    listed = features({"prompt": ["Prove it.", 7, None]}, "completions")
    assert listed["math_proof"] > 0
    assert listed["last_user_tokens"] == log1p(len("Prove it.") / 4)


def test_embeddings_and_unknown_ops_score_zero(classifier: Classifier) -> None:
    body = {"input": "Prove that there are infinitely many primes."}
    assert classifier.score("embeddings", body) == 0.0
    assert classifier.score("images", chat("Prove it")) == 0.0
    assert set(classifier.explain("embeddings", body).values()) == {0.0}


# scores


def test_scores_order_easy_below_hard(classifier: Classifier) -> None:
    easy = [chat("hi!"), chat("What is the capital of Australia?"), chat("Thanks, bye")]
    hard = [
        chat("Prove that there are infinitely many primes."),
        chat(
            "Design a distributed rate limiter for three regions. Compare token bucket and "
            "sliding window, explain the trade-offs during a partition, and give pseudocode."
        ),
    ]
    easy_scores = [classifier.score("chat", b) for b in easy]
    hard_scores = [classifier.score("chat", b) for b in hard]
    assert max(easy_scores) < 0.2
    assert min(hard_scores) > 0.7


def test_reasoning_cues_raise_the_score(classifier: Classifier) -> None:
    base = "Our checkout service is slow at peak."
    more = base + " Analyze the root cause step by step and compare the designs."
    assert classifier.score("chat", chat(more)) > classifier.score("chat", chat(base)) + 0.2


def test_hard_cases_from_the_data_set(classifier: Classifier) -> None:
    by_id = {e.id: e for e in load_examples()}
    long_simple = by_id["translation-simple-03"]  # a long notice, "Translate to French"
    short_complex = by_id["math-complex-01"]  # "Prove that there are infinitely many primes."
    assert long_simple.input_tokens > 100
    assert classifier.score("chat", long_simple.body) < 0.5
    assert short_complex.input_tokens < 15
    assert classifier.score("chat", short_complex.body) > 0.5


def test_every_data_set_score_is_a_probability(classifier: Classifier) -> None:
    scores = [s.score for s in score_examples(classifier, load_examples())]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert min(scores) < 0.05
    assert max(scores) > 0.95


def test_contributions_add_up_to_the_score(classifier: Classifier) -> None:
    body = chat("Compare Kafka and Postgres for event sourcing; explain the trade-offs.")
    z = classifier.bias + sum(classifier.contributions("chat", body).values())
    assert classifier.score("chat", body) == pytest.approx(1 / (1 + math.exp(-z)))


# weights.json


def test_weights_file_names_every_feature_and_its_data() -> None:
    document = json.loads(train.WEIGHTS.read_text())
    assert document["format"] == "switchman-classifier/v1"
    assert list(document["weights"]) == list(FEATURES)
    assert all(math.isfinite(w) for w in document["weights"].values())
    digest = hashlib.sha256(dataset_path().read_bytes()).hexdigest()
    assert document["training"]["data_sha256"] == digest, "data changed: retrain"
    assert document["training"]["split"] == "train"
    assert document["training"]["examples"] == len(load_examples("train"))
    loaded = Classifier.load_default()
    assert loaded.weights == document["weights"]
    assert loaded.bias == document["bias"]


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


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"format": "other", "weights": {}, "bias": 0}),
        json.dumps({"format": "switchman-classifier/v1", "weights": {"tokens": 1}, "bias": 0}),
        json.dumps(
            {"format": "switchman-classifier/v1",
             "weights": {**dict.fromkeys(FEATURES, 0.0), "extra": 1.0}, "bias": 0}
        ),
        json.dumps(
            {"format": "switchman-classifier/v1", "weights": dict.fromkeys(FEATURES, 0.0),
             "bias": "0"}
        ),
        '{"format": "switchman-classifier/v1", "weights": {"tokens": NaN}, "bias": 0}',
    ],
)  # fmt: skip
def test_malformed_weights_are_refused(text: str) -> None:
    with pytest.raises(WeightsError):
        Classifier.from_json(text)


# data set


def test_data_set_size_split_and_coverage() -> None:
    examples = load_examples()
    assert len(examples) >= 440
    assert len({e.id for e in examples}) == len(examples)
    prompts = [json.dumps(e.body["messages"], sort_keys=True) for e in examples]
    assert len(set(prompts)) == len(prompts)
    held = [e for e in examples if e.split == "heldout"]
    assert len(held) * 2 == len(examples)
    groups = Counter((e.domain, e.label) for e in examples)
    held_groups = Counter((e.domain, e.label) for e in held)
    assert {g: n // 2 for g, n in groups.items()} == held_groups  # stratified
    assert {e.domain for e in examples} == DOMAINS
    for split in ("train", "heldout"):
        part = load_examples(split)
        assert {e.split for e in part} == {split}
        assert {e.domain for e in part} == DOMAINS
        labels = Counter(e.label for e in part)
        assert set(labels) == {"simple", "complex"}
        assert 0.4 <= labels["complex"] / len(part) <= 0.6


def test_data_set_rows_are_well_formed_chat_bodies() -> None:
    lengths = []
    for line in dataset_path().read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert set(row) <= {"id", "domain", "label", "split", "messages", "tools",
                            "response_format"}  # fmt: skip
        assert row["label"] in ("simple", "complex")
        assert row["split"] in ("train", "heldout")
        assert row["messages"][-1]["role"] == "user"
        assert all(m["role"] in ("system", "user", "assistant") for m in row["messages"])
        for tool in row.get("tools", []):
            assert tool["type"] == "function"
            assert tool["function"]["name"]
        if "response_format" in row:
            assert row["response_format"]["type"] in ("json_object", "json_schema")
        lengths.append(sum(len(json.dumps(m["content"])) for m in row["messages"]))
    assert min(lengths) < 20
    assert max(lengths) > 3000


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
    assert report(score_examples(classifier, held), 0.5).accuracy > baseline + 0.05


# describe


@pytest.mark.parametrize(
    ("score", "threshold", "tier", "text"),
    [
        (0.81, 0.6, "large", "complexity 0.81 >= 0.60 -> large"),
        (0.3, 0.6, "small", "complexity 0.30 < 0.60 -> small"),
        (0.6, 0.6, "large", "complexity 0.60 >= 0.60 -> large"),
        (0.5999, 0.6, "small", "complexity 0.5999 < 0.6000 -> small"),
    ],
)
def test_describe(score: float, threshold: float, tier: str, text: str) -> None:
    assert describe(score, threshold, tier) == text


# bad inputs

GARBAGE: list[Any] = [
    None, [], "text", 5, 1.5, True,
    {"messages": None}, {"messages": "hi"}, {"messages": {"role": "user"}},
    {"messages": [None, 1, "x", [], {"role": 5, "content": {"a": 1}}]},
    {"messages": [{"role": "user", "content": [None, 1, {"type": "text", "text": 5},
                                               {"type": "image_url"}, {"type": None}, "raw"]}]},
    {"messages": [{"role": "user"}], "tools": "x", "response_format": "y"},
    {"messages": [], "tools": [None, 1], "response_format": {"type": "json_schema"}},
    {"response_format": {"type": "json_schema", "json_schema": {"schema": {"properties": [1]}}}},
    {"response_format": {"type": "json_schema", "json_schema": "s"}},
    {"prompt": [1, None, ["x"]]}, {"prompt": {"a": 1}}, {"prompt": None},
    {"messages": [{"role": "user", "content": "\ud800 broken surrogate \x00"}]},
    {"messages": [{"role": "user", "content": "hi"}] * 10_000},
]  # fmt: skip


def _deep_schema(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        node = {"type": "array", "items": node, "properties": {"p": node}}
    return {"type": "json_schema", "json_schema": {"schema": node}}


def _fuzz(rng: random.Random, depth: int = 0) -> Any:
    kinds = ["null", "bool", "int", "float", "str", "cue"]
    if depth < 4:
        kinds += ["list", "dict", "message", "part"]
    kind = rng.choice(kinds)
    if kind == "null":
        return None
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "int":
        return rng.randint(-(10**20), 10**20)
    if kind == "float":
        return rng.choice([0.0, -1.5, 1e308, -1e-308])
    if kind == "str":
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 40)))
    if kind == "cue":
        return rng.choice(["```", "prove", "What is", "json", "\n\n", "$", "hi", ""]) * 3
    if kind == "list":
        return [_fuzz(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    if kind == "message":
        return {"role": rng.choice(["user", "assistant", "system", "tool", 3]),
                "content": _fuzz(rng, depth + 1)}  # fmt: skip
    if kind == "part":
        return {"type": rng.choice(["text", "image_url", "input_image", 0]),
                "text": _fuzz(rng, depth + 1)}  # fmt: skip
    keys = ["messages", "prompt", "tools", "response_format", "type", "json_schema", "schema",
            "properties", "items", "content", "role", "text"]  # fmt: skip
    return {rng.choice(keys): _fuzz(rng, depth + 1) for _ in range(rng.randint(0, 5))}


def _check(classifier: Classifier, op: str, body: Any) -> None:
    score = classifier.score(op, body)
    assert 0.0 <= score <= 1.0
    assert all(math.isfinite(v) for v in classifier.explain(op, body).values())


@pytest.mark.parametrize("body", [*GARBAGE, chat("x", response_format=_deep_schema(5000))])
@pytest.mark.parametrize("op", ["chat", "completions", "embeddings", "", "CHAT"])
def test_garbage_never_raises(classifier: Classifier, op: str, body: Any) -> None:
    _check(classifier, op, body)


def test_fuzzed_json_never_raises(classifier: Classifier) -> None:
    rng = random.Random(20240601)
    for _ in range(3000):
        body = _fuzz(rng)
        if rng.random() < 0.7:
            body = {"messages": [_fuzz(rng) for _ in range(rng.randint(0, 6))],
                    **(body if isinstance(body, dict) else {})}  # fmt: skip
        for op in ("chat", "completions"):
            _check(classifier, op, body)
