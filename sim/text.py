"""Deterministic text for the simulator: token estimation, answers and embeddings.

The token estimator is the word count: one token is one whitespace-separated word
(``str.split()``; an empty text still counts as one token), and a chat prompt is rendered as one
``<|role|>`` marker word per message followed by the message's words, so each message costs one
token more than its text. Answers are words drawn from a fixed vocabulary by a generator seeded
with a hash of the prompt: the same prompt always gets the same answer, a shorter answer is a
prefix of a longer one, and an answer can resume after its first words (continuation). Used by
``switchman.sim.params`` (prompts), ``switchman.sim.generation`` (answers) and
``switchman.sim.embeddings`` (vectors).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

# 64 words, so the top six bits of the generator's state pick one.
VOCABULARY = (
    "the", "model", "answers", "with", "simulated", "words", "that", "look", "like", "text",
    "and", "stay", "exactly", "same", "for", "each", "prompt", "so", "tests", "can", "compare",
    "them", "gateway", "routes", "every", "request", "to", "a", "replica", "which", "streams",
    "tokens", "back", "quickly", "while", "metrics", "show", "load", "cache", "queue", "prefix",
    "blocks", "fill", "memory", "latency", "grows", "under", "pressure", "but", "results",
    "remain", "deterministic", "enough", "benchmarks", "demos", "run", "fast", "on", "one",
    "small", "machine", "without", "real", "weights",
)  # fmt: skip

_MASK64 = (1 << 64) - 1


def tokenize(text: str) -> list[str]:
    """The simulator's tokens of ``text``: its whitespace-separated words (at least one)."""
    return text.split() or [""]


def count_tokens(text: str) -> int:
    """Estimated token count of ``text``: its number of words, at least 1."""
    return len(tokenize(text))


def render_chat(messages: Iterable[tuple[str, str]]) -> str:
    """A chat prompt as the simulator tokenizes it: ``<|role|> content`` per message."""
    return "\n".join(f"<|{role}|> {content}" for role, content in messages)


def answer_pieces(prompt: str, count: int, after: str = "") -> list[str]:
    """``count`` tokens of the answer to ``prompt``, each as streamed, following ``after``.

    The first piece is a bare word, later ones carry a leading space, so ``"".join(pieces)`` is
    the whole answer text. ``after`` is the start of the answer already written (a continued
    assistant message): the pieces resume after as many words as it has, and the first keeps its
    space unless ``after`` is empty or ends in whitespace, so ``after + "".join(pieces)`` reads
    as one answer.
    """
    skip = len(after.split())
    state = int.from_bytes(hashlib.blake2b(prompt.encode(), digest_size=8).digest(), "little")
    pieces: list[str] = []
    for index in range(skip + count):
        state = (state * 6364136223846793005 + 1442695040888963407) & _MASK64
        if index >= skip:
            word = VOCABULARY[state >> 58]
            pieces.append(word if index == 0 else " " + word)
    if pieces and skip and after[-1].isspace():
        pieces[0] = pieces[0][1:]
    return pieces


def embedding(text: str, dims: int) -> list[float]:
    """A unit-length vector derived from a hash of ``text``."""
    raw = hashlib.shake_128(text.encode()).digest(2 * dims)
    values = [
        int.from_bytes(raw[i : i + 2], "little") / 32767.5 - 1.0 for i in range(0, 2 * dims, 2)
    ]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]
