"""Continuing a final assistant message in the simulator (vLLM's ``continue_final_message``).

Scenario matrix:
- parsing: continuation keeps the full prompt (partial text counted in the tokens) and seeds the
  answer with the conversation without the partial message; words already written are counted;
  without the flag nothing changes (``add_generation_prompt=false`` alone is accepted)
- validation (400s): add_generation_prompt true or omitted, final message not the assistant's,
  non-boolean flags
- answers: a cut answer plus its continuation equals the uncut answer, whatever the cut point;
  a partial ending in whitespace gets no doubled space; an empty partial is a fresh answer
- length: the natural length counts the words already written (at least one token is left);
  max_tokens still caps the continuation
"""

from __future__ import annotations

from typing import Any

import pytest

from switchman.sim import errors
from switchman.sim.params import answer_length, chat_params
from switchman.sim.text import answer_pieces, render_chat

QUESTION = {"role": "user", "content": "Where do the packets go?"}
SEED = render_chat([("user", "Where do the packets go?")])


def continuation(partial: str, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [QUESTION, {"role": "assistant", "content": partial}],
        "continue_final_message": True,
        "add_generation_prompt": False,
        **extra,
    }


def test_continuation_counts_the_partial_text_and_seeds_with_the_conversation_before_it() -> None:
    params = chat_params(continuation("the model answers"))
    assert params.prompt == render_chat(
        [("user", "Where do the packets go?"), ("assistant", "the model answers")]
    )
    assert len(params.tokens) == (1 + 5) + (1 + 3)
    assert params.seed == SEED
    assert params.partial == "the model answers"
    assert params.continued == 3


def test_without_the_flag_the_assistant_message_is_just_history() -> None:
    body = continuation("the model answers", continue_final_message=False)
    params = chat_params(body)
    assert params.seed == params.prompt
    assert (params.partial, params.continued) == ("", 0)
    plain = chat_params({"messages": [QUESTION], "add_generation_prompt": False})
    assert plain.seed == SEED


@pytest.mark.parametrize(
    ("extra", "param", "message"),
    [
        ({"add_generation_prompt": True}, "add_generation_prompt", "Cannot set both"),
        ({"add_generation_prompt": None}, "add_generation_prompt", "not compatible"),
        ({"continue_final_message": "yes"}, "continue_final_message", "must be a boolean"),
        ({"add_generation_prompt": 0}, "add_generation_prompt", "must be a boolean"),
    ],
)
def test_invalid_flag_combinations_are_400s(
    extra: dict[str, Any], param: str, message: str
) -> None:
    with pytest.raises(errors.SimError) as caught:
        chat_params(continuation("the", **extra))
    assert caught.value.status == 400
    assert caught.value.param == param
    assert message in caught.value.message


def test_final_message_must_be_the_assistants() -> None:
    body = {
        "messages": [{"role": "assistant", "content": "hi"}, QUESTION],
        "continue_final_message": True,
        "add_generation_prompt": False,
    }
    with pytest.raises(errors.SimError) as caught:
        chat_params(body)
    assert caught.value.status == 400
    assert caught.value.param == "messages"
    assert "final message is not from the assistant" in caught.value.message


@pytest.mark.parametrize("cut", [1, 2, 7, 15])
def test_cut_plus_continuation_is_the_uncut_answer(cut: int) -> None:
    whole = "".join(answer_pieces(SEED, 16))
    partial = "".join(answer_pieces(SEED, cut))
    params = chat_params(continuation(partial))
    count, finish = answer_length(params, natural=16, limit=1000)
    assert (count, finish) == (16 - cut, "stop")
    assert partial + "".join(answer_pieces(params.seed, count, params.partial)) == whole


def test_partial_ending_in_whitespace_gets_no_doubled_space() -> None:
    whole = "".join(answer_pieces(SEED, 6))
    partial = "".join(answer_pieces(SEED, 2)) + " \n"
    rest = answer_pieces(SEED, 4, partial)
    assert not rest[0].startswith(" ")
    assert (partial + "".join(rest)).split() == whole.split()


def test_empty_partial_is_a_fresh_answer() -> None:
    params = chat_params(continuation(""))
    assert params.continued == 0
    assert answer_pieces(params.seed, 5, params.partial) == answer_pieces(SEED, 5)


def test_natural_length_counts_written_words_and_leaves_at_least_one() -> None:
    params = chat_params(continuation(" ".join(["word"] * 20)))
    assert answer_length(params, natural=16, limit=1000) == (1, "stop")
    capped = chat_params(continuation("the model", max_tokens=3))
    assert answer_length(capped, natural=16, limit=1000) == (3, "length")
