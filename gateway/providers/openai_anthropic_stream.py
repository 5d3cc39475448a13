"""Anthropic's answers in OpenAI's words: a whole Message as a ``chat.completion``, the stream of
events as ``chat.completion.chunk`` dicts, and upstream errors as OpenAI error envelopes.

Re-exported by ``switchman.gateway.providers.openai_anthropic`` (the request side) for the
Anthropic provider, which keeps one ``MessagesStreamTranslator`` per streamed response and feeds
it each event parsed by ``switchman.gateway.providers.sse``. Pure: no I/O.

Choices where neither API reference decides: ids are Anthropic's prefixed with ``chatcmpl-``;
``thinking`` and server-tool blocks are left out; unknown event and block types are ignored
(Anthropic's versioning lets new ones appear); an ``error`` event raises ``StreamError``.
"""

from __future__ import annotations

import json
from typing import Any

from switchman.gateway.errors import GatewayError, openai_error_body

ID_PREFIX = "chatcmpl-"  # on Anthropic's msg_... id: OpenAI-looking yet traceable upstream
_EXCERPT_CHARS = 200  # of a non-JSON error body quoted in the message

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    # A paused server-tool turn: the client cannot resume it through chat.completions.
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# Anthropic error type -> (OpenAI error type, code). Anthropic's documented HTTP statuses:
# 400 invalid_request_error, 401 authentication_error, 402 billing_error, 403 permission_error,
# 404 not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error,
# 504 timeout_error, 529 overloaded_error.
_ERROR_TYPES: dict[str, tuple[str, str | None]] = {
    "invalid_request_error": ("invalid_request_error", None),
    "authentication_error": ("authentication_error", "authentication_error"),
    "billing_error": ("insufficient_quota", "billing_error"),
    "permission_error": ("permission_error", "permission_error"),
    "not_found_error": ("invalid_request_error", "not_found"),
    "request_too_large": ("invalid_request_error", "request_too_large"),
    "rate_limit_error": ("rate_limit_error", "rate_limit_exceeded"),
    "api_error": ("api_error", "upstream_error"),
    "timeout_error": ("api_error", "upstream_timeout"),
    "overloaded_error": ("api_error", "overloaded"),
}
_STATUS_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_TRANSIENT_ERRORS = frozenset(
    {"rate_limit_error", "api_error", "timeout_error", "overloaded_error"}
)


def finish_reason(stop_reason: object) -> str:
    """OpenAI ``finish_reason`` for an Anthropic ``stop_reason`` (null or unknown: ``stop``)."""
    if isinstance(stop_reason, str):
        return _FINISH_REASONS.get(stop_reason, "stop")
    return "stop"


def _count(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return 0


def openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """OpenAI ``usage`` from Anthropic's.

    Anthropic counts uncached, cache-written and cache-read input separately; their sum is the
    prompt (as OpenAI counts it), and the reads are OpenAI's ``cached_tokens``.
    """
    read = _count(usage.get("cache_read_input_tokens"))
    written = _count(usage.get("cache_creation_input_tokens"))
    prompt = _count(usage.get("input_tokens")) + written + read
    completion = _count(usage.get("output_tokens"))
    result: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
    }
    details = usage.get("output_tokens_details")
    if isinstance(details, dict) and "thinking_tokens" in details:
        result["completion_tokens_details"] = {
            "reasoning_tokens": _count(details["thinking_tokens"])
        }
    return result


def anthropic_error_type(error: object, status: int) -> str:
    """The Anthropic error type of an ``error`` object, or the one documented for ``status``."""
    if isinstance(error, dict) and isinstance(error.get("type"), str) and error["type"]:
        return str(error["type"])
    if status in _STATUS_ERROR_TYPES:
        return _STATUS_ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def openai_error(error: object, status: int, fallback_message: str) -> dict[str, Any]:
    """OpenAI error envelope for an Anthropic ``error`` object (``{"type", "message"}``).

    An unknown type keeps its name as ``code``; ``details.error_code`` (e.g.
    ``enforced_spend_limit_reached``) is more precise than the type and wins when present.
    """
    kind = anthropic_error_type(error, status)
    type_, code = _ERROR_TYPES.get(
        kind, ("invalid_request_error" if 400 <= status < 500 else "api_error", kind)
    )
    message = fallback_message
    if isinstance(error, dict):
        if isinstance(error.get("message"), str) and error["message"]:
            message = error["message"]
        details = error.get("details")
        if isinstance(details, dict) and isinstance(details.get("error_code"), str):
            code = details["error_code"]
    return openai_error_body(message, type_=type_, code=code)


class StreamError(GatewayError):
    """An ``error`` event inside an Anthropic stream (e.g. ``overloaded_error`` after the 200).

    ``body()`` is the OpenAI error envelope to send as the stream's last event (or as the response
    when nothing was relayed yet); ``retryable`` says whether another candidate may succeed.
    """

    status = 502
    type = "api_error"
    code = "upstream_error"

    def __init__(self, body: dict[str, Any], *, upstream_type: str) -> None:
        error = body["error"]
        super().__init__(str(error["message"]), code=error.get("code"))
        self.type = str(error["type"])
        self.upstream_type = upstream_type
        if upstream_type == "rate_limit_error":
            self.status = 429
        self._body = body

    @property
    def retryable(self) -> bool:
        return self.upstream_type in _TRANSIENT_ERRORS

    def body(self) -> dict[str, Any]:
        return self._body


def message_event(name: str | None, data: bytes) -> tuple[str, dict[str, Any]] | None:
    """One Messages stream event's name and JSON object; None for an event without data.

    Data that is not a JSON object is a garbled or cut stream: ``ValueError``, a failure of the
    attempt (never skipped, which would silently drop part of the answer).
    """
    if not data:
        return None
    payload = json.loads(data)  # ValueError (JSONDecodeError) for garbled data
    if not isinstance(payload, dict):
        raise ValueError("a Messages stream event that is not a JSON object")
    return name or str(payload.get("type", "")), payload


class MessagesStreamTranslator:
    """Anthropic streaming events in, OpenAI ``chat.completion.chunk`` dicts out; one per stream.

    ``usage`` (prompt/completion/total tokens) is known from ``message_start`` on and complete
    after ``message_delta``; ``finished`` turns true at ``message_stop``.
    """

    __slots__ = (
        "_created",
        "_finish_sent",
        "_id",
        "_include_usage",
        "_model",
        "_tool_index",
        "_upstream_usage",
        "finished",
        "usage",
    )

    def __init__(self, model: str, created: int, include_usage: bool) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._id = ID_PREFIX + "anthropic"
        self._tool_index: dict[int, int] = {}  # content block index -> OpenAI tool call index
        self._upstream_usage: dict[str, Any] = {}
        self._finish_sent = False
        self.usage: dict[str, int] | None = None
        self.finished = False

    def feed(self, event: str, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Translate one event; raises ``StreamError`` for an ``error`` event."""
        kind = event or data.get("type")
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                if isinstance(message.get("id"), str) and message["id"]:
                    self._id = ID_PREFIX + message["id"]
                self._add_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "message_delta":
            self._add_usage(data.get("usage"))
            delta = data.get("delta")
            stop_reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            self._finish_sent = True
            return [self._chunk({}, finish_reason(stop_reason))]
        if kind == "message_stop":
            return self._stop()
        if kind == "error":
            error = data.get("error")
            body = openai_error(error, 500, "upstream stream failed")
            raise StreamError(body, upstream_type=anthropic_error_type(error, 500))
        return []  # ping, content_block_stop, and event types added after this was written

    def _block_start(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return []
        if block.get("type") == "tool_use":
            tool_index = len(self._tool_index)
            self._tool_index[_count(data.get("index"))] = tool_index
            call = {
                "index": tool_index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            return [self._chunk({"content": block["text"]})]
        return []  # thinking, redacted_thinking, server tool blocks: not part of chat.completions

    def _block_delta(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if kind == "input_json_delta":
            tool_index = self._tool_index.get(_count(data.get("index")))
            partial = delta.get("partial_json")
            if tool_index is None or not isinstance(partial, str) or not partial:
                return []
            call = {"index": tool_index, "function": {"arguments": partial}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # thinking_delta, signature_delta, citations_delta

    def _stop(self) -> list[dict[str, Any]]:
        self.finished = True
        chunks = [] if self._finish_sent else [self._chunk({}, "stop")]
        self._finish_sent = True
        if self._include_usage:
            chunks.append(
                {
                    "id": self._id,
                    "object": "chat.completion.chunk",
                    "created": self._created,
                    "model": self._model,
                    "choices": [],
                    "usage": openai_usage(self._upstream_usage),
                }
            )
        return chunks

    def totals(self) -> dict[str, Any] | None:
        """The whole OpenAI usage so far, cache reads and writes included (None before any)."""
        return openai_usage(self._upstream_usage) if self.usage is not None else None

    def _add_usage(self, usage: object) -> None:
        # message_delta counts are cumulative: later values replace earlier ones.
        if not isinstance(usage, dict):
            return
        self._upstream_usage.update({k: v for k, v in usage.items() if v is not None})
        totals = openai_usage(self._upstream_usage)
        self.usage = {
            "prompt_tokens": totals["prompt_tokens"],
            "completion_tokens": totals["completion_tokens"],
            "total_tokens": totals["total_tokens"],
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if self._include_usage:
            chunk["usage"] = None
        return chunk


def messages_to_chat(resp: dict[str, Any], *, model: str, created: int) -> dict[str, Any]:
    """OpenAI ``chat.completion`` for an Anthropic Message (``thinking`` blocks are left out)."""
    texts: list[str] = []
    tool_calls: list[dict[str, Any]] = []
    content = resp.get("content")
    for block in content if isinstance(content, list) else []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            function = {"name": block.get("name"), "arguments": arguments}
            tool_calls.append({"id": block.get("id"), "type": "function", "function": function})
    text = "".join(texts)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if tool_calls and not text else text,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    message_id = resp.get("id")
    usage = resp.get("usage")
    return {
        "id": ID_PREFIX + (message_id if isinstance(message_id, str) else "anthropic"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(resp.get("stop_reason")),
            }
        ],
        "usage": openai_usage(usage if isinstance(usage, dict) else {}),
    }


def error_to_openai(status: int, payload: bytes) -> dict[str, Any]:
    """OpenAI error envelope for an Anthropic error answer (JSON or not)."""
    try:
        parsed = json.loads(payload)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return openai_error(error, status, f"upstream returned HTTP {status}")
    return openai_error(None, status, _describe(status, payload))


def _describe(status: int, payload: bytes) -> str:
    # Only a short, printable excerpt of the body: it may be an HTML page from a proxy.
    text = " ".join(payload[: _EXCERPT_CHARS * 4].decode("utf-8", "replace").split())
    text = "".join(ch for ch in text if ch.isprintable())
    if not text:
        return f"upstream returned HTTP {status} with an empty body"
    if len(text) > _EXCERPT_CHARS:
        text = text[:_EXCERPT_CHARS] + "..."
    return f"upstream returned HTTP {status}: {text}"
