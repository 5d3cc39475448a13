"""A block-hashed, LRU-bounded prefix cache, counted in tokens the way vLLM counts it.

A prompt is cut into full blocks of ``block_size`` tokens; each block's key chains the previous
block's key with its own tokens, so a block hits only when the whole prefix before it matches
(vLLM's automatic prefix caching). Partial trailing blocks are never cached, and like vLLM at
most ``len(prompt) - 1`` tokens hit, because the last prompt token is always recomputed to get
logits. Owned by ``switchman.sim.engine``, which looks prompts up at admission and inserts them
when their prefill finishes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


def block_keys(tokens: Sequence[str], block_size: int) -> list[int]:
    """Chained keys of the full blocks of ``tokens``."""
    keys: list[int] = []
    key = 0
    for start in range(0, len(tokens) - block_size + 1, block_size):
        key = hash((key, tuple(tokens[start : start + block_size])))
        keys.append(key)
    return keys


class PrefixCache:
    """Remembers up to ``max_blocks`` block keys, evicting the least recently used."""

    __slots__ = ("_blocks", "block_size", "max_blocks")

    def __init__(self, block_size: int, max_blocks: int) -> None:
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def lookup(self, keys: Sequence[int], prompt_tokens: int) -> int:
        """Tokens of the prompt already cached (a multiple of the block size); touches hits."""
        usable = min(len(keys), max(prompt_tokens - 1, 0) // self.block_size)
        hits = 0
        blocks = self._blocks
        for key in keys[:usable]:
            if key not in blocks:
                break
            hits += 1
        # Touch the tail first so a prefix's leading blocks are the last to be evicted.
        for key in reversed(keys[:hits]):
            blocks.move_to_end(key)
        return hits * self.block_size

    def insert(self, keys: Sequence[int]) -> None:
        """Remember the blocks of a prompt whose prefill finished."""
        if self.max_blocks <= 0:
            return
        blocks = self._blocks
        for key in reversed(keys):
            if key in blocks:
                blocks.move_to_end(key)
            else:
                blocks[key] = None
        while len(blocks) > self.max_blocks:
            blocks.popitem(last=False)
