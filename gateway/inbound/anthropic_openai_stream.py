"""The chat pipeline's answers in Anthropic's words: a ``chat.completion`` as a Message, a stream
of ``chat.completion.chunk`` dicts as Anthropic's event sequence, and gateway errors as
``{"type": "error", "error": {"type", "message"}}`` with Anthropic's status codes.

Used by ``messages`` (whole answers, errors) and by ``writer.TranslatedStream`` (streams), one
``EventEncoder`` per client stream: it outlives the attempts of a request, so a stream continued
on another upstream after a cut stays one message (one ``message_start``, block indexes going on,
one ``message_delta`` with the usage total). Pure: no I/O. The other direction, for Anthropic
upstreams, is ``providers.openai_anthropic_stream``; its status-to-type table is reused here.

Choices: message ids are the chat id with ``chatcmpl-`` replaced by ``msg_``; ``stop`` becomes
``stop_sequence`` when the upstream names the matched stop string (vLLM's ``stop_reason``), else
``end_turn``; usage splits OpenAI's prompt count back into uncached input, cache reads
(``cached_tokens``) and cache writes (``cache_write_tokens``, from Anthropic upstreams). Gateway
statuses Anthropic does not use are mapped to the nearest it does: 502 (no upstream could
answer) to 529 ``overloaded_error`` (retried by the SDKs), 405 to 404 ``not_found_error``.
"""

from __future__ import annotations

import json
from typing import Any

from switchman.gateway.providers.openai_anthropic_stream import ID_PREFIX, anthropic_error_type
from switchman.gateway.providers.sse import encode

_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_STATUSES = {502: 529, 405: 404}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def message_id(chat_id: object) -> str:
    """``msg_`` + the chat id without ``chatcmpl-``; an Anthropic upstream's own id as it was."""
    text = chat_id if isinstance(chat_id, str) and chat_id else "gateway"
    text = text.removeprefix(ID_PREFIX)
    return text if text.startswith("msg_") else "msg_" + text


def stop_reason(choice: dict[str, Any]) -> tuple[str, str | None]:
    """Anthropic (stop_reason, stop_sequence) for a chat choice."""
    reason = choice.get("finish_reason")
    matched = choice.get("stop_reason")
    if reason == "stop" and isinstance(matched, str) and matched:
        return "stop_sequence", matched
    return _STOP_REASONS.get(reason if isinstance(reason, str) else "", "end_turn"), None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def anthropic_usage(usage: object) -> dict[str, int]:
    """Anthropic usage for an OpenAI ``usage`` object (cache reads and writes split out)."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    read, written = _count(details.get("cached_tokens")), _count(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(_count(usage.get("prompt_tokens")) - read - written, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
        "output_tokens": _count(usage.get("completion_tokens")),
    }


def chat_to_message(chat: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Message for a whole ``chat.completion``."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or []:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": _arguments(function.get("arguments")),
            }
        )
    reason, sequence = stop_reason(choice if isinstance(choice, dict) else {})
    return {
        "id": message_id(chat.get("id")),
        "type": "message",
        "role": "assistant",
        "model": chat.get("model"),
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic_usage(chat.get("usage")),
    }


def _arguments(arguments: object) -> dict[str, Any]:
    """Tool input from the call's JSON arguments; a model's malformed JSON is kept, not lost."""
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {"_raw_arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def error_status(status: int) -> int:
    return _STATUSES.get(status, status)


def error_body(status: int, message: str) -> dict[str, Any]:
    """Anthropic's error envelope for a gateway error of HTTP ``status``."""
    kind = anthropic_error_type(None, error_status(status))
    return {"type": "error", "error": {"type": kind, "message": message}}


class EventEncoder:
    """Chat chunks in, Anthropic stream events (SSE bytes) out; see the module docstring."""

    __slots__ = ("_blocks", "_kind", "_open", "_stop", "_tools", "_usage", "ended", "started")

    def __init__(self) -> None:
        self.started = False
        self.ended = False
        self._blocks = 0  # content blocks opened so far
        self._open: int | None = None  # the index of the open block
        self._kind: str | None = None  # its type
        self._tools: dict[int, int] = {}  # chat tool call index -> block index
        self._stop: tuple[str, str | None] | None = None
        self._usage: dict[str, int] | None = None

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """Events for one chat chunk (an ``{"error": ...}`` chunk becomes an ``error`` event)."""
        if self.ended:
            return b""
        error = chunk.get("error")
        if isinstance(error, dict):
            return self.error(error)
        out = b"" if self.started else self._start(chunk)
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        if chunk.get("usage"):
            self._usage = anthropic_usage(chunk["usage"])
            if self._stop is not None:
                out += self._end()
        return out

    def native(self, name: str, data: dict[str, Any]) -> bytes:
        """An Anthropic upstream's own event (``native``), relayed as it is; the state follows
        it, so a continuation after a cut goes on in the same message and block."""
        if self.ended:
            return b""
        index = data.get("index")
        if name == "message_start":
            self.started = True
        elif name == "content_block_start" and isinstance(index, int):
            block = data.get("content_block")
            self._open = index
            self._kind = str(block.get("type")) if isinstance(block, dict) else None
            self._blocks = max(self._blocks, index + 1)
        elif name == "content_block_stop":
            self._open = self._kind = None
        elif name == "message_stop":
            self.ended = True
        return _event(name, {k: v for k, v in data.items() if k != "type"})

    def done(self) -> bytes:
        """At the chat stream's ``[DONE]``: end the message if the usage chunk did not."""
        if self.ended or not self.started:
            return b""
        return self._end()

    def error(self, error: dict[str, Any]) -> bytes:
        """An in-band ``error`` event: the stream's last."""
        self.ended = True
        code = error.get("code")
        status = {"rate_limit_exceeded": 429, "upstream_timeout": 504}.get(str(code), 529)
        message = str(error.get("message") or "the upstream failed mid-stream")
        return encode(_dumps(error_body(status, message)), "error")

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self.started = True
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _event("message_start", {"message": message}) + _event("ping", {})

    def _choice(self, choice: dict[str, Any]) -> bytes:
        out = b""
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._kind != "text":
                out += self._open_block({"type": "text", "text": ""})
            out += _event(
                "content_block_delta",
                {"index": self._open, "delta": {"type": "text_delta", "text": text}},
            )
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out += self._tool_call(call)
        if choice.get("finish_reason"):
            out += self._close()
            self._stop = stop_reason(choice)
        return out

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = call.get("index", 0)
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        if index not in self._tools:
            block = {"type": "tool_use", "id": call.get("id"), "name": function.get("name")}
            out += self._open_block({**block, "input": {}})
            self._tools[index] = self._blocks - 1
        partial = function.get("arguments")
        if isinstance(partial, str) and partial:
            delta = {"type": "input_json_delta", "partial_json": partial}
            out += _event("content_block_delta", {"index": self._tools[index], "delta": delta})
        return out

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._open, self._kind = self._blocks, str(block["type"])
        self._blocks += 1
        return out + _event("content_block_start", {"index": self._open, "content_block": block})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._kind = self._open, None, None
        return _event("content_block_stop", {"index": index})

    def _end(self) -> bytes:
        self.ended = True
        reason, sequence = self._stop or ("end_turn", None)
        usage = self._usage or anthropic_usage(None)
        delta = {"stop_reason": reason, "stop_sequence": sequence}
        return (
            self._close()
            + _event("message_delta", {"delta": delta, "usage": usage})
            + _event("message_stop", {})
        )


def _event(name: str, data: dict[str, Any]) -> bytes:
    return encode(_dumps({"type": name, **data}), name)
