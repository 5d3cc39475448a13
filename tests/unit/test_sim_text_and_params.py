"""Deterministic text, token estimation and request parsing of the simulator.

Scenario matrix:
- tokens: one per whitespace word (at least 1); chat adds one ``<|role|>`` token per message;
  text parts of multimodal content count, other parts do not
- answers: same prompt → same words; shorter answers are prefixes of longer ones; different
  prompts differ; pieces join into the answer text
- embeddings: deterministic, unit length, requested dimensions
- answer length: natural length → "stop"; max_tokens below it → "length"; no max_tokens → the
  room left in the context; ignore_eos runs to max_tokens; min_tokens lengthens
- validation (vLLM wording): prompt filling the context, max_tokens past it, bad JSON, bad
  fields, stream_options without stream, more than one completion prompt
"""

from __future__ import annotations

import math

import pytest

from switchman.sim import errors
from switchman.sim.params import (
    answer_length,
    chat_params,
    check_context,
    completion_params,
    embedding_params,
    parse_json,
)
from switchman.sim.text import answer_pieces, count_tokens, embedding, render_chat


def test_tokens_are_whitespace_words() -> None:
    assert count_tokens("one two  three\nfour") == 4
    assert count_tokens("") == 1


def test_chat_prompt_counts_one_role_token_per_message() -> None:
    params = chat_params(
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi there"}, {"x": 1}]},
            ]
        }
    )
    assert params.prompt == render_chat([("system", "be brief"), ("user", "hi there")])
    assert len(params.tokens) == 2 + 1 + 2 + 1


def test_answers_are_deterministic_and_prefix_stable() -> None:
    long = answer_pieces("What is a gateway?", 20)
    assert answer_pieces("What is a gateway?", 20) == long
    assert answer_pieces("What is a gateway?", 5) == long[:5]
    assert answer_pieces("Something else", 20) != long
    text = "".join(long)
    assert len(text.split()) == 20
    assert not long[0].startswith(" ")
    assert all(piece.startswith(" ") for piece in long[1:])


def test_embeddings_are_deterministic_unit_vectors() -> None:
    vector = embedding("hello", 12)
    assert vector == embedding("hello", 12)
    assert vector != embedding("hullo", 12)
    assert len(vector) == 12
    assert math.isclose(sum(v * v for v in vector), 1.0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, (16, "stop")),
        ({"max_tokens": 5}, (5, "length")),
        ({"max_tokens": 16}, (16, "length")),
        ({"max_tokens": 40}, (16, "stop")),
        ({"max_tokens": 40, "ignore_eos": True}, (40, "length")),
        ({"max_tokens": 40, "min_tokens": 30}, (30, "stop")),
    ],
)
def test_answer_length_and_finish_reason(
    body: dict[str, object], expected: tuple[int, str]
) -> None:
    params = completion_params({"prompt": "a b c", **body})
    assert answer_length(params, natural=16, limit=1000) == expected


def test_answer_without_max_tokens_is_cut_by_the_context() -> None:
    params = completion_params({"prompt": "a b c d"})
    assert answer_length(params, natural=16, limit=10) == (6, "length")


def test_chat_max_completion_tokens_wins_over_max_tokens() -> None:
    params = chat_params(
        {
            "messages": [{"role": "user", "content": "x"}],
            "max_tokens": 9,
            "max_completion_tokens": 3,
        }
    )
    assert params.max_tokens == 3


def test_context_errors_use_vllms_wording() -> None:
    with pytest.raises(errors.SimError) as too_long:
        check_context(limit=10, prompt_tokens=10, max_tokens=None)
    assert too_long.value.body()["error"] == {
        "message": "This model's maximum context length is 10 tokens. However, your request "
        "has 10 input tokens. Please reduce the length of the input messages.",
        "type": "BadRequestError",
        "param": "input_tokens",
        "code": 400,
    }
    with pytest.raises(errors.SimError) as too_many:
        check_context(limit=10, prompt_tokens=4, max_tokens=7)
    assert too_many.value.status == 400
    assert too_many.value.message == (
        "'max_tokens' or 'max_completion_tokens' is too large: 7. This model's maximum context "
        "length is 10 tokens and your request has 4 input tokens (7 > 10 - 4)."
    )
    check_context(limit=10, prompt_tokens=4, max_tokens=6)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{not json", "JSON decode error"),
        (b"[1, 2]", "JSON object"),
    ],
)
def test_bad_bodies_are_400s(raw: bytes, fragment: str) -> None:
    with pytest.raises(errors.SimError) as caught:
        parse_json(raw)
    assert caught.value.status == 400
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    "body",
    [
        {"messages": []},
        {"messages": [{"content": "no role"}]},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": "10"},
        {"messages": [{"role": "user", "content": "x"}], "max_tokens": 0},
        {"messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": 1}},
        {"messages": [{"role": "user", "content": "x"}], "model": 3},
    ],
)
def test_invalid_chat_requests_are_400s(body: dict[str, object]) -> None:
    with pytest.raises(errors.SimError) as caught:
        chat_params(body)
    assert caught.value.error_type == "BadRequestError"


def test_completion_prompt_forms() -> None:
    assert completion_params({"prompt": ["one two"]}).prompt == "one two"
    assert len(completion_params({"prompt": [1, 2, 3]}).tokens) == 3
    with pytest.raises(errors.SimError):
        completion_params({"prompt": ["one", "two"]})


def test_embedding_inputs_and_encoding() -> None:
    params = embedding_params({"input": ["a", "b c"], "encoding_format": "base64"})
    assert (params.inputs, params.base64) == (["a", "b c"], True)
    assert embedding_params({"input": [[1, 2], [3]]}).inputs == ["1 2", "3"]
    with pytest.raises(errors.SimError):
        embedding_params({"input": 5})
