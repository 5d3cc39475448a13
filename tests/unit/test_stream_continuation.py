"""Mid-stream continuation: reading what the client got, asking to go on, re-labelling chunks,
and verifying the join (restarts and, for ``instruct``, repeated tails trimmed; a restart that
goes another way refused; usage without what was dropped)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from switchman.gateway.providers.openai_compat import OpenAIStream
from switchman.gateway.providers.sse import SSEParser, encode
from switchman.gateway.serve.continuation import (
    INSTRUCTION,
    Continued,
    Join,
    JoinUnverified,
    Transcript,
    request_body,
)


def chunk(content: str | None = None, *, role: str | None = None, **extra: Any) -> bytes:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    body = {
        "id": extra.pop("id", "chatcmpl-first"),
        "object": "chat.completion.chunk",
        "created": extra.pop("created", 1700000000),
        "model": extra.pop("model", "small"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": extra.pop("finish", None)}],
        **extra,
    }
    return encode(json.dumps(body).encode())


def sent_so_far(*pieces: bytes) -> Transcript:
    transcript = Transcript()
    for piece in pieces:
        transcript.add(piece)
    return transcript


def test_transcript_recovers_identity_and_text() -> None:
    sent = sent_so_far(chunk("", role="assistant"), chunk("Hello"), chunk(" wor")).read()
    assert (sent.id, sent.created, sent.model) == ("chatcmpl-first", 1700000000, "small")
    assert sent.text == "Hello wor"
    assert sent.tokens == 2
    assert sent.continuable


def test_transcript_keeps_escapes_unicode_and_several_events_per_write() -> None:
    tricky = 'say "hi"\n\u00e9 \\ "text": x'
    compact = encode(json.dumps({"choices": [{"delta": {"content": "caf\u00e9"}}]}).encode())
    sent = sent_so_far(chunk("", role="assistant") + chunk(tricky), compact).read()
    assert sent.text == tricky + "caf\u00e9"
    assert sent.tokens == 2
    spaced = b'data: {"choices": [{"text" :  "one"}]}\n\ndata: {"choices": [{"text":"two"}]}\n\n'
    assert sent_so_far(spaced).read().text == "onetwo"


def test_tool_calls_and_finished_streams_are_not_continued() -> None:
    tool = chunk(None, role="assistant")
    tool_calls = json.loads(tool[6:])
    tool_calls["choices"][0]["delta"]["tool_calls"] = [{"index": 0, "id": "c1"}]
    assert not sent_so_far(encode(json.dumps(tool_calls).encode())).read().continuable
    assert not sent_so_far(chunk("done", finish="stop")).read().continuable


def test_transcript_over_its_limit_keeps_nothing_and_refuses() -> None:
    transcript = Transcript(limit=100)
    for _ in range(10):
        transcript.add(chunk("0123456789"))
    sent = transcript.read()
    assert not sent.continuable
    assert sent.text == ""


BODY: dict[str, Any] = {
    "model": "auto",
    "messages": [{"role": "user", "content": "count"}],
    "max_tokens": 10,
    "stream": True,
}


def test_vllm_continuation_uses_continue_final_message() -> None:
    sent = sent_so_far(chunk("one"), chunk(" two")).read()
    body = request_body("chat", BODY, sent, "vllm")
    assert body is not None
    assert body["messages"][-1] == {"role": "assistant", "content": "one two"}
    assert body["continue_final_message"] is True
    assert body["add_generation_prompt"] is False
    assert body["max_tokens"] == 8
    assert BODY["messages"] == [{"role": "user", "content": "count"}]  # not mutated


def test_prefill_and_instruct_continuations() -> None:
    sent = sent_so_far(chunk("one")).read()
    prefill = request_body("chat", BODY, sent, "prefill")
    assert prefill is not None
    assert prefill["messages"][-1]["role"] == "assistant"
    assert "continue_final_message" not in prefill
    instruct = request_body("chat", BODY, sent, "instruct")
    assert instruct is not None
    assert instruct["messages"][-2:] == [
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": INSTRUCTION},
    ]


def test_completions_continue_by_extending_the_prompt_and_n_gt_1_cannot() -> None:
    sent = sent_so_far(
        encode(json.dumps({"id": "c", "choices": [{"index": 0, "text": " there"}]}).encode())
    ).read()
    body = request_body("completions", {"prompt": "hi", "max_tokens": 5}, sent, "vllm")
    assert body == {"prompt": "hi there", "max_tokens": 4}
    assert request_body("chat", {**BODY, "n": 2}, sent, "vllm") is None


def events(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in SSEParser().feed(data) if not e.is_done]


def test_continued_chunks_carry_the_original_identity_and_one_usage_total() -> None:
    sent = sent_so_far(chunk("", role="assistant"), chunk("one"), chunk(" two")).read()
    decoder = Continued(OpenAIStream(wants_usage=True), sent, "vllm")
    parser = SSEParser()
    upstream = (
        chunk("", role="assistant", id="other", created=1, model="large")
        + chunk(" three", id="other", created=1, model="large")
        + chunk("", id="other", created=1, model="large", finish="stop")
        + encode(
            json.dumps(
                {
                    "id": "other",
                    "created": 1,
                    "model": "large",
                    "choices": [],
                    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
                }
            ).encode()
        )
        + encode(b"[DONE]")
    )
    out = b"".join(decoder.feed(e) for e in parser.feed(upstream)) + decoder.finish()
    chunks = events(out)
    assert [c["id"] for c in chunks] == ["chatcmpl-first"] * 3  # the role-only delta is gone
    assert {c["model"] for c in chunks} == {"small"}
    assert {c["created"] for c in chunks} == {1700000000}
    assert chunks[0]["choices"][0]["delta"] == {"content": " three"}
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[2]["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert decoder.usage is not None
    assert decoder.usage.completion_tokens == 3
    assert out.endswith(b"data: [DONE]\n\n")
    assert decoder.done


def test_long_streams_are_compacted_to_their_text_and_read_whole() -> None:
    transcript = Transcript()
    pieces = [f" w{i}" for i in range(2000)]  # far past one compaction (16 KiB of SSE)
    for piece in pieces:
        transcript.add(chunk(piece))
    assert len(transcript._literals) < 2000 * 16  # text literals kept, not the SSE framing
    sent = transcript.read()
    assert sent.text == "".join(pieces)
    assert sent.tokens == 2000
    assert sent.continuable


def test_long_completions_streams_are_compacted_by_their_text_keys() -> None:
    transcript = Transcript()
    pieces = [f' "w{i}"\\' for i in range(1500)]  # quotes and backslashes, escaped in JSON
    for piece in pieces:
        choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": None}
        transcript.add(encode(json.dumps({"id": "cmpl-1", "choices": [choice]}).encode()))
    assert len(transcript._literals) < 1500 * 16
    sent = transcript.read()
    assert sent.text == "".join(pieces)
    assert sent.tokens == 1500
    assert sent.continuable


# --- the join ------------------------------------------------------------------------------------

SENT = "The quick brown fox jumps over the lazy dog"


def joined(pieces: list[str], mechanism: str = "instruct") -> tuple[str, int]:
    """What the client gets of a continuation fed piece by piece, and the pieces dropped."""
    join = Join(SENT, overlaps=mechanism == "instruct")
    out = "".join(join.feed(piece) for piece in pieces) + join.end()
    return out, join.dropped


@pytest.mark.parametrize(
    ("pieces", "mechanism", "expected", "dropped"),
    [
        # a real continuation passes unchanged
        ([" and", " runs", " away."], "instruct", " and runs away.", 0),
        # answered from scratch: the repeat is dropped, whatever the mechanism
        (["The quick", " brown fox", " jumps over", " the lazy", " dog and", " runs."], "vllm",
         " and runs.", 4),
        ([SENT, " and runs."], "instruct", " and runs.", 1),
        # asked by instruct, the model repeats the last words first: trimmed
        (["the lazy dog", " and", " runs."], "instruct", " and runs.", 1),
        # vllm continues the message itself: a tail it writes again is its own text
        (["the lazy dog", " again."], "vllm", "the lazy dog again.", 0),
        # a short coincidence is not an overlap
        (["dog-", "like."], "instruct", "dog-like.", 0),
        # an empty continuation (the answer was complete) is fine
        ([], "instruct", "", 0),
    ],
    ids=["continues", "restart-vllm", "restart-one-piece", "overlap-instruct", "vllm-own-text",
         "short-coincidence", "empty"],
)  # fmt: skip
def test_the_join_trims_restarts_and_repeated_tails(
    pieces: list[str], mechanism: str, expected: str, dropped: int
) -> None:
    assert joined(pieces, mechanism) == (expected, dropped)


@pytest.mark.parametrize(
    "pieces",
    [
        ["The quick brown", " cat sleeps."],  # a restart that went another way
        ["The quick brown fox"],  # a restart that stopped short
    ],
    ids=["diverged", "short-restart"],
)
def test_a_join_that_cannot_be_verified_raises(pieces: list[str]) -> None:
    with pytest.raises(JoinUnverified):
        joined(pieces)


def test_the_join_holds_text_only_while_it_is_unclear() -> None:
    join = Join(SENT, overlaps=True)
    assert join.feed("The quick") == ""  # might be a restart
    assert join.feed(" brown fox jumps over the lazy dog") == ""
    assert join.feed(" too.") == " too."
    assert join.decided
    assert join.feed(" More.") == " More."


def test_continued_usage_leaves_out_what_the_join_dropped() -> None:
    sent = sent_so_far(chunk("", role="assistant"), chunk("Hello"), chunk(" world")).read()
    decoder = Continued(OpenAIStream(wants_usage=True), sent, "instruct")
    parser, out = SSEParser(), b""
    usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}  # its 3 pieces
    for raw in (
        chunk("", role="assistant", id="second"),
        chunk("Hello", id="second"),
        chunk(" world", id="second"),
        chunk("!", id="second"),
        chunk(None, id="second", finish="stop"),
        encode(json.dumps({"id": "second", "choices": [], "usage": usage}).encode()),
        b"data: [DONE]\n\n",
    ):
        for event in parser.feed(raw):
            out += decoder.feed(event)
    events = [json.loads(e.data) for e in SSEParser().feed(out) if not e.is_done]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == "!"
    assert events[-1]["usage"]["completion_tokens"] == 3  # 2 before the cut + 3 - 2 dropped
