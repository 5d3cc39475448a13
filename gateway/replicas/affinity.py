"""Affinity keys: what about a request should steer it to the same replica as earlier ones.

The failover loop (``serve.failover``) calls ``affinity_key`` (before picking a replica) and hands
the key to ``EndpointSet.pick`` and ``EndpointSet.served`` (``endpoints``). A key carries cumulative
hashes of the prompt's leading blocks (so prompts sharing a system prompt share the first hashes and
can land where that prefix is already in vLLM's KV cache) and, when configured, a hash of a session
header that pins a conversation to a replica.

Hashes are ``zlib.crc32`` chains, not ``hash()``: they must agree across the gateway's worker
processes (``SO_REUSEPORT``), or each worker would send one prefix to a different replica. The
work is bounded by ``block_chars * max_blocks`` characters whatever the prompt's length.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switchman.api.resilience import Balance


@dataclass(slots=True, frozen=True)
class AffinityKey:
    """The prefix-block hashes (block 1, blocks 1-2, ...) and the session hash of one request."""

    blocks: tuple[int, ...]
    session: int | None


def affinity_key(
    op: str, body: dict[str, Any], headers: Mapping[str, str], balance: Balance
) -> AffinityKey | None:
    """The request's affinity key, or None when neither prefix affinity nor a session applies.

    Blocks: the prompt text (chat: each message's role and text content in order; completions:
    the prompt strings) cut into ``balance.block_chars``-character blocks, at most
    ``balance.max_blocks``; a trailing partial block counts (it matches only an identical prompt).
    """
    session: int | None = None
    name = balance.session_header
    if name is not None:
        value = headers.get(name)
        if value is None:
            value = headers.get(name.lower())
        if value:
            session = zlib.crc32(value.encode("utf-8", "surrogatepass"))
    blocks: tuple[int, ...] = ()
    if balance.prefix_affinity and op != "embeddings":
        limit = balance.block_chars * balance.max_blocks
        text = _chat_text(body, limit) if op == "chat" else _prompt_text(body, limit)
        if text:
            blocks = _block_hashes(text, balance.block_chars, limit)
    if session is None and not blocks:
        return None
    return AffinityKey(blocks, session)


def _block_hashes(text: str, size: int, limit: int) -> tuple[int, ...]:
    """crc32 chain over the blocks; a block's bytes depend on that block alone: ASCII blocks
    hash their ASCII bytes, others their UTF-16 (cheaper to produce than UTF-8)."""
    if len(text) > limit:
        text = text[:limit]
    crc = 0
    hashes = []
    if text.isascii():  # the common case: slices of one buffer, no copies
        view = memoryview(text.encode("ascii"))
        for start in range(0, len(text), size):
            crc = zlib.crc32(view[start : start + size], crc)
            hashes.append(crc)
        return tuple(hashes)
    wide = memoryview(text.encode("utf-16-le", "surrogatepass"))
    fixed = len(wide) == 2 * len(text)  # no astral characters: two bytes each
    for start in range(0, len(text), size):
        block = text[start : start + size]
        data: bytes | memoryview
        if block.isascii():
            data = block.encode("ascii")
        elif fixed:
            data = wide[2 * start : 2 * (start + size)]
        else:
            data = block.encode("utf-16-le", "surrogatepass")
        crc = zlib.crc32(data, crc)
        hashes.append(crc)
    return tuple(hashes)


def _chat_text(body: dict[str, Any], limit: int) -> str:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    parts: list[str] = []
    length = 0
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        if isinstance(role, str):
            parts.append(role)
            parts.append("\n")
            length += len(role) + 1
        content = message.get("content")
        if isinstance(content, str):
            content = content[: max(limit - length, 0)]  # bounds the copy for huge prompts
            parts.append(content)
            length += len(content)
        elif isinstance(content, list):
            for part in content:
                # Text parts only: images and audio do not change which prefix is cached as text.
                if isinstance(part, dict) and part.get("type") == "text":
                    text = part.get("text")
                    if isinstance(text, str):
                        text = text[: max(limit - length, 0)]
                        parts.append(text)
                        length += len(text)
        parts.append("\n")
        length += 1
        if length >= limit:
            break
    return "".join(parts)


def _prompt_text(body: dict[str, Any], limit: int) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return prompt[:limit]
    if not isinstance(prompt, list):
        return ""
    parts: list[str] = []
    length = 0
    for item in prompt:
        if not isinstance(item, str):
            return "".join(parts)  # token ids: affinity on the strings before them only
        item = item[:limit]
        parts.append(item)
        parts.append("\n")
        length += len(item) + 1
        if length >= limit:
            break
    return "".join(parts)
