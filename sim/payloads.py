"""Response bodies and SSE chunks in the shapes vLLM's OpenAI server sends.

``StreamEncoder`` pre-encodes the constant part of a stream's chunks once per response, so each
token costs one small string concatenation rather than a ``json.dumps`` of the whole chunk. The
non-streaming builders return plain dicts. Used by ``switchman.sim.generation`` and
``switchman.sim.embeddings``.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any, Literal

DONE = b"data: [DONE]\n\n"


def usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }


class StreamEncoder:
    """Encodes the ``data:`` events of one chat or text completion stream."""

    __slots__ = ("_chat", "_head", "_object")

    def __init__(
        self, kind: Literal["chat", "completion"], response_id: str, created: int, model: str
    ) -> None:
        self._chat = kind == "chat"
        self._object = "chat.completion.chunk" if self._chat else "text_completion"
        self._head = (
            f'data: {{"id":{json.dumps(response_id)},"object":"{self._object}",'
            f'"created":{created},"model":{json.dumps(model)},"choices":'
        )

    def first(self) -> bytes:
        """The opening event: the assistant role for chat (as vLLM sends it), nothing else."""
        if not self._chat:
            return b""
        return (
            self._head + '[{"index":0,"delta":{"role":"assistant","content":""},'
            '"logprobs":null,"finish_reason":null}]}\n\n'
        ).encode()

    def token(self, piece: str, finish_reason: str | None = None) -> bytes:
        content = json.dumps(piece)
        finish = "null" if finish_reason is None else f'"{finish_reason}"'
        if self._chat:
            choice = f'{{"index":0,"delta":{{"content":{content}}},"logprobs":null,'
        else:
            choice = f'{{"index":0,"text":{content},"logprobs":null,'
        return f'{self._head}[{choice}"finish_reason":{finish}}}]}}\n\n'.encode()

    def usage(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> bytes:
        """The final ``stream_options.include_usage`` event: no choices, just usage."""
        body = json.dumps(usage(prompt_tokens, completion_tokens, cached_tokens))
        return f'{self._head}[],"usage":{body}}}\n\n'.encode()


def chat_completion(
    response_id: str, created: int, model: str, text: str, finish: str, usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "tool_calls": []},
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
            }
        ],
        "usage": usage,
        "prompt_logprobs": None,
    }


def text_completion(
    response_id: str, created: int, model: str, text: str, finish: str, usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": text,
                "logprobs": None,
                "finish_reason": finish,
                "stop_reason": None,
                "prompt_logprobs": None,
            }
        ],
        "usage": usage,
    }


def embedding_list(
    response_id: str,
    created: int,
    model: str,
    vectors: list[list[float]],
    prompt_tokens: int,
    *,
    as_base64: bool,
) -> dict[str, Any]:
    """OpenAI's embedding list; ``base64`` packs little-endian float32, as the SDK expects."""
    data = [
        {
            "index": index,
            "object": "embedding",
            "embedding": _base64(vector) if as_base64 else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    return {
        "id": response_id,
        "object": "list",
        "created": created,
        "model": model,
        "data": data,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens,
            "completion_tokens": 0,
            "prompt_tokens_details": None,
        },
    }


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
