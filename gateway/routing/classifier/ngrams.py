"""Hashed word and character n-grams of a prompt's instruction window, in bounded time.

``buckets(instruction)`` turns the lower-cased instruction window that ``features.read``
returns into the sorted, de-duplicated bucket indexes of its words and word pairs (UTF-8 runs
between spaces, ASCII punctuation dropped) and its UTF-8 byte trigrams (which carry scripts
written without spaces, and word stems across inflections). ``model.Classifier`` sums a learned
log-count ratio per bucket; ``train`` fits that table. Each word and trigram is hashed with
CRC-32 from a starting value of its own kind (stable across processes and machines, unlike
``hash()``); a pair mixes its two words' hashes; all fold into ``BUCKETS`` buckets. Working on
bytes, not key strings, keeps it to about one C call per n-gram. At most ``MAX_WORDS`` words
and ``2 * CHAR_WINDOW`` bytes of trigrams are read, so the cost does not grow with the prompt.
"""

from __future__ import annotations

from itertools import pairwise
from zlib import crc32

BUCKETS = 1 << 14
MAX_WORDS = 128
CHAR_WINDOW = 240
_MASK = BUCKETS - 1
_CHARS, _WORDS = 0x9E3779B9, 0x85EBCA6B  # CRC-32 starting values, one per kind
_PAIR = 0x01000193  # multiplier that mixes a pair's two word hashes
_PUNCT = b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


def buckets(instruction: str) -> list[int]:
    """Sorted distinct bucket indexes of the n-grams of ``instruction`` (already lower-cased)."""
    if not instruction:
        return []
    # surrogatepass: a lone surrogate in client JSON must hash, not raise
    data = " ".join(instruction.split()).encode("utf-8", "surrogatepass")
    words = [crc32(w, _WORDS) for w in data.translate(None, _PUNCT).split()[:MAX_WORDS]]
    if len(data) > 2 * CHAR_WINDOW:
        data = data[:CHAR_WINDOW] + b"\n" + data[-CHAR_WINDOW:]
    found = {crc32(data[i : i + 3], _CHARS) & _MASK for i in range(len(data) - 2)}
    found.update([w & _MASK for w in words])
    found.update([(a * _PAIR ^ b) & _MASK for a, b in pairwise(words)])
    return sorted(found)
