"""Hashed word and character n-grams of a prompt's instruction window, in bounded time.

``buckets(instruction)`` turns the lower-cased instruction window that ``features.read``
returns into the sorted, de-duplicated bucket indexes of its word unigrams and bigrams (runs of
``\\w``) and its character trigrams (which carry scripts written without spaces, and word
stems across inflections). ``model.Classifier`` sums a learned log-count ratio per bucket;
``train`` fits that table. The hash is CRC-32 (stable across processes and machines, unlike
``hash()``), folded into ``BUCKETS`` buckets; at most ``MAX_WORDS`` words and ``2 * CHAR_WINDOW``
characters are read, so the cost does not grow with the prompt.
"""

from __future__ import annotations

import re
from itertools import pairwise
from zlib import crc32

BUCKETS = 1 << 14
MAX_WORDS = 160
CHAR_WINDOW = 240
_MASK = BUCKETS - 1
_WORD = re.compile(r"\w+")


def buckets(instruction: str) -> list[int]:
    """Sorted distinct bucket indexes of the n-grams of ``instruction`` (already lower-cased)."""
    if not instruction:
        return []
    words = _WORD.findall(instruction, 0, 4 * CHAR_WINDOW)[:MAX_WORDS]
    keys = {"w " + w for w in words}
    keys.update(["b " + a + " " + b for a, b in pairwise(words)])
    text = instruction
    if len(text) > 2 * CHAR_WINDOW:
        text = text[:CHAR_WINDOW] + "\n" + text[-CHAR_WINDOW:]
    text = " ".join(text.split())
    keys.update(["c " + text[i : i + 3] for i in range(len(text) - 2)])
    # surrogatepass: a lone surrogate in client JSON must hash, not raise
    return sorted({crc32(key.encode("utf-8", "surrogatepass")) & _MASK for key in keys})
