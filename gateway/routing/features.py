"""What routing needs to know about one request, read once from the parsed body.

Built by ``proxy`` for each request and read by ``routing`` (capability and context filters, cost
and latency estimates). Cheap and bounded: text is measured, never copied or tokenized; the token
estimate is characters / 4 (the usual rule of thumb for English and code), images a flat cost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Tokens charged per image part (a 512x512 tile at high detail costs a few hundred; be generous).
IMAGE_TOKENS = 800
MESSAGE_OVERHEAD_TOKENS = 4
DEFAULT_OUTPUT_TOKENS = 256


@dataclass(slots=True)  # not frozen: a frozen init costs twice as much, once per request
class Features:
    """Needs and size of one request (read-only by convention)."""

    vision: bool
    tools: bool
    json_schema: bool
    prompt_tokens: int
    max_tokens: int | None  # what the client asked for, if anything

    @property
    def output_tokens(self) -> int:
        """Output tokens to expect, for cost and latency estimates."""
        return self.max_tokens if self.max_tokens is not None else DEFAULT_OUTPUT_TOKENS

    @property
    def total_tokens(self) -> int:
        """Prompt plus the requested completion: what the context window must hold."""
        return self.prompt_tokens + (self.max_tokens or 0)


def features(op: str, body: dict[str, Any], size: int | None = None) -> Features:
    """Read the request's needs; never raises on odd shapes (validation happened before).

    ``size`` is the raw body's length: tool definitions are then sized as what the body holds
    beyond the message text (O(1)) instead of walking them.
    """
    chars = 0
    images = 0
    if op == "chat":
        messages = body.get("messages")
        count = len(messages) if isinstance(messages, list) else 0
        for message in messages if isinstance(messages, list) else ():
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(content, list):
                for part in content:
                    if not isinstance(part, dict):
                        continue
                    kind = part.get("type")
                    if kind in ("image_url", "input_image", "image"):
                        images += 1
                    elif isinstance(text := part.get("text"), str):
                        chars += len(text)
        overhead = count * MESSAGE_OVERHEAD_TOKENS
    else:
        key = "prompt" if op == "completions" else "input"
        chars = _text_chars(body.get(key))
        overhead = 0
    tools = body.get("tools") or body.get("functions")
    has_tools = isinstance(tools, list) and bool(tools)
    if has_tools:
        chars += max(size - chars, 0) if size is not None else _text_chars(tools)
    response_format = body.get("response_format")
    json_schema = isinstance(response_format, dict) and response_format.get("type") == "json_schema"
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    max_tokens = limit if type(limit) is int and limit > 0 else None
    return Features(
        vision=images > 0,
        tools=has_tools,
        json_schema=json_schema,
        prompt_tokens=chars // 4 + overhead + images * IMAGE_TOKENS,
        max_tokens=max_tokens,
    )


def _text_chars(value: Any, depth: int = 0) -> int:
    """Characters of string content in a JSON value, bounded in depth."""
    if isinstance(value, str):
        return len(value)
    if depth > 8:
        return 0
    if isinstance(value, list):
        return sum(_text_chars(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return sum(len(k) + _text_chars(v, depth + 1) for k, v in value.items())
    return 0
