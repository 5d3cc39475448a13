"""Affinity keys: prompt-prefix block hashes and session hashes.

Scenario matrix:
- off: no prefix affinity and no session header -> None; embeddings get no blocks
- prefix: a shared system prompt shares the leading block hashes, different prompts differ;
  hashes are cumulative (block k covers blocks 1..k); a short prompt is one partial block
- bounds: at most max_blocks blocks, whatever the length; a 32k-character prompt costs < 20 us
- prompt text: string content == text parts; images ignored; roles count; completions prompt as a
  string or a list of strings; token-id prompts and junk bodies never raise
- session: the configured header's value hashes to the same session; absent header -> no session
- stability: crc32 chains, the same in every process (no PYTHONHASHSEED dependence)
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import pytest

from switchman.api.resilience import Balance
from switchman.gateway.replicas.affinity import AffinityKey, affinity_key

SYSTEM = "You are a careful assistant. " * 40  # ~1,160 chars: four full 256-char blocks


def chat(*messages: tuple[str, Any]) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": r, "content": c} for r, c in messages]}


def key_of(body: dict[str, Any], balance: Balance | None = None, op: str = "chat") -> AffinityKey:
    key = affinity_key(op, body, {}, balance or Balance())
    assert key is not None
    return key


def test_no_key_without_prefix_affinity_or_session() -> None:
    off = Balance(prefix_affinity=False)
    assert affinity_key("chat", chat(("user", "hi")), {}, off) is None
    with_header = Balance(prefix_affinity=False, session_header="x-session-id")
    assert affinity_key("chat", chat(("user", "hi")), {}, with_header) is None


def test_embeddings_have_no_prefix_blocks() -> None:
    assert affinity_key("embeddings", {"input": SYSTEM}, {}, Balance()) is None


def test_shared_system_prompt_shares_leading_blocks() -> None:
    a = key_of(chat(("system", SYSTEM), ("user", "What is the capital of France?")))
    b = key_of(chat(("system", SYSTEM), ("user", "Write a haiku about rain.")))
    assert a.blocks[:4] == b.blocks[:4]
    assert a.blocks[-1] != b.blocks[-1]
    other = key_of(chat(("system", "Different. " * 100), ("user", "What is the capital?")))
    assert not set(other.blocks) & set(a.blocks)


def test_hashes_are_cumulative() -> None:
    a = key_of({"prompt": "A" * 256 + "B" * 256}, op="completions")
    b = key_of({"prompt": "C" * 256 + "B" * 256}, op="completions")
    assert len(a.blocks) == 2
    # Same second block, different first: block 2's hash covers block 1 too.
    assert a.blocks[1] != b.blocks[1]
    assert a.blocks[0] == zlib.crc32(b"A" * 256)
    assert a.blocks[1] == zlib.crc32(b"B" * 256, zlib.crc32(b"A" * 256))


def test_short_prompt_is_one_partial_block() -> None:
    key = key_of({"prompt": "hello"}, op="completions")
    assert key.blocks == (zlib.crc32(b"hello"),)
    assert key.session is None


def test_blocks_are_bounded_by_max_blocks() -> None:
    balance = Balance(block_chars=64, max_blocks=5)
    key = key_of(chat(("user", "x" * 32_000)), balance)
    assert len(key.blocks) == 5


def test_block_chars_sets_the_block_size() -> None:
    key = key_of({"prompt": "y" * 100}, Balance(block_chars=16), op="completions")
    assert len(key.blocks) == 7  # six full blocks and a partial one


def test_large_prompt_costs_well_under_20_microseconds() -> None:
    body = chat(("system", "s" * 16_000), ("user", "u" * 16_000))
    balance = Balance()
    affinity_key("chat", body, {}, balance)
    runs = 2000
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(runs):
            affinity_key("chat", body, {}, balance)
        best = min(best, (time.perf_counter() - start) / runs)
    assert best < 20e-6, f"{best * 1e6:.1f} us per key"


def test_text_parts_equal_string_content_and_images_are_ignored() -> None:
    plain = key_of(chat(("user", "describe this picture please")))
    parts = key_of(
        chat(
            (
                "user",
                [
                    {"type": "text", "text": "describe this "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "picture please"},
                ],
            )
        )
    )
    assert plain == parts


def test_roles_are_part_of_the_prompt_text() -> None:
    assert key_of(chat(("user", "same words"))) != key_of(chat(("system", "same words")))


def test_completions_prompt_list_of_strings() -> None:
    one = key_of({"prompt": ["first prompt", "second"]}, op="completions")
    same = key_of({"prompt": ["first prompt", "second"]}, op="completions")
    other = key_of({"prompt": ["other prompt", "second"]}, op="completions")
    assert one == same
    assert one != other


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"messages": "not a list"},
        {
            "messages": [
                None,
                3,
                {"role": 5, "content": None},
                {"content": [None, {"type": "text"}]},
            ]
        },
        {"prompt": [1, 2, 3]},
        {"prompt": 42},
        {"messages": [{"role": "user", "content": "\ud800 lone surrogate"}]},
    ],
)
def test_junk_bodies_never_raise(body: dict[str, Any]) -> None:
    for op in ("chat", "completions"):
        key = affinity_key(op, body, {}, Balance())
        assert key is None or isinstance(key.blocks, tuple)


def test_session_header_hashes_the_value() -> None:
    balance = Balance(session_header="X-Session-Id")
    body = chat(("user", "hi"))
    a = affinity_key("chat", body, {"x-session-id": "abc"}, balance)
    b = affinity_key("chat", chat(("user", "other")), {"X-Session-Id": "abc"}, balance)
    c = affinity_key("chat", body, {"x-session-id": "xyz"}, balance)
    assert a is not None
    assert b is not None
    assert c is not None
    assert a.session == b.session == zlib.crc32(b"abc")
    assert c.session != a.session
    no_header = affinity_key("chat", body, {}, balance)
    assert no_header is not None
    assert no_header.session is None


def test_session_only_key_when_prefix_affinity_is_off() -> None:
    balance = Balance(prefix_affinity=False, session_header="x-session-id")
    key = affinity_key("chat", chat(("user", "hi")), {"x-session-id": "s1"}, balance)
    assert key == AffinityKey((), zlib.crc32(b"s1"))
