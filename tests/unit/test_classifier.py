"""The prompt complexity classifier: features, scores, weights, data set, metrics, robustness.

Scenario matrix:
- features on crafted prompts: code, math, structured output (json_schema size, json_object),
  tools, turns, system prompt, image parts, simple openers (no "hi" inside "history"), cue
  words read from the instruction and not from pasted text, full lengths with bounded scans
  (two prompts that differ only outside the scanned windows get identical features),
  completions prompts (string and list), embeddings and unknown operations
- n-grams: stable buckets (CRC-32, not the salted hash()), bounded window, CJK without spaces,
  lone surrogates hash instead of raising
- scores: in [0, 1]; greetings and lookups low, proofs and designs high in several languages;
  adding reasoning cues raises a score; long-but-simple and short-but-complex data-set prompts;
  contributions (features + n-grams) add up to the score
- weights: malformed v2 documents (format, table size, thresholds) refused with WeightsError;
  a missing weights file is a WeightsError, not an OSError
- describe: both directions, equality, more digits when two would print a tie
- bad inputs: garbage shapes and a seeded fuzz of JSON values never raise, always in [0, 1]
(the data set, training and evaluation: test_classifier_data.py)
"""

from __future__ import annotations

import json
import math
import random
import zlib
from math import log1p
from typing import Any

import pytest

from switchman.gateway.routing.classifier import (
    FEATURES,
    NAMES,
    Classifier,
    WeightsError,
    describe,
    ngrams,
)
from switchman.gateway.routing.classifier.dataset import load_examples
from switchman.gateway.routing.classifier.evaluate import score_examples
from switchman.gateway.routing.classifier.features import BODY_CHARS, INSTRUCTION_CHARS, extract
from switchman.gateway.routing.classifier.ngrams import BUCKETS, CHAR_WINDOW, buckets


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
    easy += [chat("¿Cuál es la capital de Francia?"), chat("Wie hoch ist der Mont Blanc?")]
    hard += [chat("Beweise, dass es unendlich viele Primzahlen gibt.")]
    easy_scores = [classifier.score("chat", b) for b in easy]
    hard_scores = [classifier.score("chat", b) for b in hard]
    assert max(easy_scores) < 0.2
    assert min(hard_scores) > classifier.thresholds["balanced"]


def test_reasoning_cues_raise_the_score(classifier: Classifier) -> None:
    base = "Our checkout service is slow at peak."
    more = base + " Analyze the root cause step by step and compare the designs."
    assert classifier.score("chat", chat(more)) > classifier.score("chat", chat(base)) + 0.2


def test_hard_cases_from_the_data_set(classifier: Classifier) -> None:
    by_id = {e.id: e for e in load_examples()}
    long_simple = by_id["translation-simple-03"]  # a long notice, "Translate to French"
    short_complex = by_id["math-complex-01"]  # "Prove that there are infinitely many primes."
    assert long_simple.input_tokens > 100
    assert classifier.score("chat", long_simple.body) < classifier.thresholds["balanced"]
    assert short_complex.input_tokens < 15
    assert classifier.score("chat", short_complex.body) > classifier.thresholds["balanced"]


def test_every_data_set_score_is_a_probability(classifier: Classifier) -> None:
    scores = [s.score for s in score_examples(classifier, load_examples())]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert min(scores) < 0.05
    assert max(scores) > 0.95


def test_contributions_add_up_to_the_score(classifier: Classifier) -> None:
    body = chat("Compare Kafka and Postgres for event sourcing; explain the trade-offs.")
    z = classifier.bias + sum(classifier.contributions("chat", body).values())
    assert classifier.score("chat", body) == pytest.approx(1 / (1 + math.exp(-z)))


# weights documents


V2 = "switchman-classifier/v2"


def _document(**changes: Any) -> str:
    doc: dict[str, Any] = {
        "format": V2,
        "weights": dict.fromkeys(NAMES, 0.0),
        "bias": 0.0,
        "thresholds": {"quality": 0.2, "balanced": 0.5, "cost": 0.8},
        "ngram_table": [0.0] * BUCKETS,
    }
    return json.dumps({**doc, **changes})


def test_a_well_formed_document_loads() -> None:
    loaded = Classifier.from_json(_document(bias=-1.0))
    assert loaded.bias == -1.0
    assert loaded.thresholds == {"quality": 0.2, "balanced": 0.5, "cost": 0.8}
    assert loaded.score("chat", chat("anything")) == pytest.approx(1 / (1 + math.e))


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"format": "switchman-classifier/v1", "weights": {}, "bias": 0}),
        _document(weights={"tokens": 1}),
        _document(weights={**dict.fromkeys(NAMES, 0.0), "extra": 1.0}),
        _document(bias="0"),
        _document(ngram_table=[0.0] * 10),
        _document(ngram_table={"0": 1}),
        _document(thresholds={"balanced": 1.5}),
        _document(thresholds={"greedy": 0.5}),
        _document().replace('"bias": 0.0', '"bias": NaN'),
    ],
)
def test_malformed_weights_are_refused(text: str) -> None:
    with pytest.raises(WeightsError):
        Classifier.from_json(text)


def test_a_missing_weights_file_is_a_weights_error(tmp_path: Any) -> None:
    with pytest.raises(WeightsError, match="cannot read"):
        Classifier.load(tmp_path / "absent.json")


# n-grams


def test_buckets_are_stable_sorted_and_bounded() -> None:
    found = buckets("prove that there are infinitely many primes")
    assert found == sorted(set(found))
    assert all(0 <= b < BUCKETS for b in found)
    # CRC-32 of the word from the words' starting value: the same in every process, unlike hash()
    assert zlib.crc32(b"prove", ngrams._WORDS) % BUCKETS in found
    assert zlib.crc32(b"that", ngrams._WORDS) % BUCKETS in buckets("prove, that!")  # no "that!"
    assert buckets("") == []
    long = "a" * CHAR_WINDOW + " middle words here " * 500 + "b" * CHAR_WINDOW
    assert len(buckets(long)) < 4 * ngrams.MAX_WORDS + 2 * CHAR_WINDOW


def test_scripts_without_spaces_get_character_ngrams() -> None:
    assert len(buckets("证明根号二是无理数")) >= 7  # one "word", seven trigrams


def test_lone_surrogates_hash() -> None:
    assert buckets("bad \ud800 text")


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
