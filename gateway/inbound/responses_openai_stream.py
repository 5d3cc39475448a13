"""The chat pipeline's answers as OpenAI Responses: a ``chat.completion`` as a ``response``
object, a stream of chat chunks as the Responses event sequence (``response.created``,
``response.output_item.added``, ``response.output_text.delta``, ...,
``response.completed``), each event with its ``sequence_number``.

Used by ``responses`` (whole answers) and by ``writer.TranslatedStream`` (one ``EventEncoder``
per client stream, so a stream continued after a cut stays one response with one usage).
Pure: no I/O.

Choices: the response id is the chat id with ``chatcmpl-`` replaced by ``resp_``, item ids
derive from it (``msg_...``, ``fc_...``); a ``length`` finish makes the response
``incomplete`` (``max_output_tokens``) and ``content_filter`` ``incomplete``
(``content_filter``); ``store`` is always reported ``false``. An error after the stream began
is an ``error`` event followed by ``response.failed``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from switchman.gateway.providers.openai_anthropic_stream import ID_PREFIX
from switchman.gateway.providers.sse import encode

_ECHOED = ("instructions", "max_output_tokens", "parallel_tool_calls", "temperature", "top_p")
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _created(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def responses_usage(usage: object) -> dict[str, Any]:
    """Responses usage for an OpenAI chat ``usage`` object (cache reads and writes kept)."""
    usage = usage if isinstance(usage, dict) else {}
    prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    cache = usage.get("prompt_tokens_details")
    cache = cache if isinstance(cache, dict) else {}
    reasoning = usage.get("completion_tokens_details")
    reasoning = reasoning if isinstance(reasoning, dict) else {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": _count(cache.get("cached_tokens")),
            "cache_write_tokens": _count(cache.get("cache_write_tokens")),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": _count(reasoning.get("reasoning_tokens"))},
        "total_tokens": prompt + completion,
    }


def _base_id(chat_id: object) -> str:
    return (chat_id if isinstance(chat_id, str) and chat_id else "gateway").removeprefix(ID_PREFIX)


def shell(request: dict[str, Any], chat_id: object, model: object, created: int) -> dict[str, Any]:
    """A ``response`` object without output, echoing what the client asked for."""
    response: dict[str, Any] = {
        "id": "resp_" + _base_id(chat_id),
        "object": "response",
        "created_at": created,
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "tools": request.get("tools") or [],
        "tool_choice": request.get("tool_choice") or "auto",
        "text": request.get("text") or {"format": {"type": "text"}},
        "metadata": request.get("metadata") or {},
        "store": False,
        "usage": None,
    }
    for name in _ECHOED:
        response[name] = request.get(name)
    if not isinstance(response["parallel_tool_calls"], bool):
        response["parallel_tool_calls"] = True  # the API's default
    return response


def _finish(response: dict[str, Any], finish: object, usage: object) -> None:
    reason = _INCOMPLETE.get(finish if isinstance(finish, str) else "")
    response["status"] = "incomplete" if reason else "completed"
    response["incomplete_details"] = {"reason": reason} if reason else None
    response["usage"] = responses_usage(usage)


def _call_item(base: str, index: int, call: dict[str, Any], status: str) -> dict[str, Any]:
    function = _object(call.get("function"))
    return {
        "type": "function_call",
        "id": f"fc_{base}_{index}",
        "call_id": call.get("id"),
        "name": function.get("name"),
        "arguments": function.get("arguments") or "",
        "status": status,
    }


def _message_item(base: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": []}] if status else []
    return {
        "type": "message",
        "id": f"msg_{base}",
        "status": status or "in_progress",
        "role": "assistant",
        "content": content,
    }


def chat_to_response(chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """A whole ``response`` for a whole ``chat.completion`` and the client's request body."""
    created = _created(chat.get("created"), int(time.time()))
    response = shell(request, chat.get("id"), chat.get("model"), created)
    base = _base_id(chat.get("id"))
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") if isinstance(choice, dict) else None
    message = message if isinstance(message, dict) else {}
    output: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        output.append(_message_item(base, message["content"], "completed"))
    for i, call in enumerate(message.get("tool_calls") or []):
        if isinstance(call, dict):
            output.append(_call_item(base, i, call, "completed"))
    response["output"] = output
    _finish(
        response,
        choice.get("finish_reason") if isinstance(choice, dict) else None,
        chat.get("usage"),
    )
    return response


class EventEncoder:
    """Chat chunks in, Responses stream events (SSE bytes) out; one per client stream."""

    __slots__ = (
        "_base",
        "_calls",
        "_finish",
        "_message",
        "_request",
        "_response",
        "_seq",
        "_text",
        "_usage",
        "ended",
    )

    def __init__(self, request: dict[str, Any]) -> None:
        self._request = request
        self._response: dict[str, Any] | None = None
        self._base = "gateway"
        self._seq = 0
        self._message: int | None = None  # output index of the open message item
        self._text: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}  # chat tool index -> open function_call
        self._finish: object = None
        self._usage: object = None
        self.ended = False

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if self.ended:
            return b""
        error = chunk.get("error")
        if isinstance(error, dict):
            return self._error(error)
        out = b"" if self._response is not None else self._start(chunk)
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                out += self._choice(choice)
        if chunk.get("usage"):
            self._usage = chunk["usage"]
            if self._finish is not None:
                out += self._end()
        return out

    def native(self, name: str, data: dict[str, Any]) -> bytes:
        """No upstream speaks Responses natively here: a named event never reaches this."""
        return b""

    def done(self) -> bytes:
        if self.ended or self._response is None:
            return b""
        return self._close_items() + self._end()

    def _event(self, name: str, data: dict[str, Any]) -> bytes:
        self._seq += 1
        return encode(_dumps({"type": name, "sequence_number": self._seq - 1, **data}), name)

    def _start(self, chunk: dict[str, Any]) -> bytes:
        created = _created(chunk.get("created"), 0)
        self._response = shell(self._request, chunk.get("id"), chunk.get("model"), created)
        self._base = _base_id(chunk.get("id"))
        snapshot = dict(self._response)
        return self._event("response.created", {"response": snapshot}) + self._event(
            "response.in_progress", {"response": snapshot}
        )

    def _choice(self, choice: dict[str, Any]) -> bytes:
        out = b""
        delta = _object(choice.get("delta"))
        text = delta.get("content")
        if isinstance(text, str) and text:
            if self._message is None:
                out += self._open_message()
            self._text.append(text)
            where = {"item_id": f"msg_{self._base}", "output_index": self._message}
            out += self._event(
                "response.output_text.delta",
                {**where, "content_index": 0, "delta": text, "logprobs": []},
            )
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                out += self._tool_call(call)
        if choice.get("finish_reason"):
            self._finish = choice["finish_reason"]
            out += self._close_items()
        return out

    def _open_message(self) -> bytes:
        assert self._response is not None
        self._message = len(self._response["output"])
        item = _message_item(self._base, "", "")
        self._response["output"].append(item)
        part = {"type": "output_text", "text": "", "annotations": []}
        where = {"item_id": item["id"], "output_index": self._message}
        return self._event(
            "response.output_item.added", {"output_index": self._message, "item": item}
        ) + self._event("response.content_part.added", {**where, "content_index": 0, "part": part})

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        assert self._response is not None
        out = b""
        index = call.get("index", 0)
        function = _object(call.get("function"))
        if index not in self._calls:
            out += self._close_message()
            item = _call_item(
                self._base,
                index,
                {**call, "function": {"name": function.get("name"), "arguments": ""}},
                "in_progress",
            )
            item["output_index"] = len(self._response["output"])
            self._calls[index] = item
            self._response["output"].append(item)
            shown = {k: v for k, v in item.items() if k != "output_index"}
            out += self._event(
                "response.output_item.added",
                {"output_index": item["output_index"], "item": shown},
            )
        item = self._calls[index]
        partial = function.get("arguments")
        if isinstance(partial, str) and partial:
            item["arguments"] += partial
            out += self._event(
                "response.function_call_arguments.delta",
                {"item_id": item["id"], "output_index": item["output_index"], "delta": partial},
            )
        return out

    def _close_message(self) -> bytes:
        if self._message is None or self._response is None:
            return b""
        index, self._message = self._message, None
        text = "".join(self._text)
        item = _message_item(self._base, text, "completed")
        self._response["output"][index] = item
        part = item["content"][0]
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return (
            self._event("response.output_text.done", {**where, "text": text, "logprobs": []})
            + self._event("response.content_part.done", {**where, "part": part})
            + self._event("response.output_item.done", {"output_index": index, "item": item})
        )

    def _close_items(self) -> bytes:
        out = self._close_message()
        for item in self._calls.values():
            if item["status"] == "completed":
                continue
            item["status"] = "completed"
            index = item.pop("output_index")
            out += self._event(
                "response.function_call_arguments.done",
                {"item_id": item["id"], "output_index": index, "arguments": item["arguments"]},
            )
            out += self._event("response.output_item.done", {"output_index": index, "item": item})
        return out

    def _end(self) -> bytes:
        assert self._response is not None
        self.ended = True
        _finish(self._response, self._finish, self._usage)
        name = (
            "response.completed"
            if self._response["status"] == "completed"
            else ("response.incomplete")
        )
        return self._event(name, {"response": self._response})

    def _error(self, error: dict[str, Any]) -> bytes:
        self.ended = True
        message = str(error.get("message") or "the upstream failed mid-stream")
        code = error.get("code") or "server_error"
        out = self._event("error", {"code": code, "message": message, "param": None})
        if self._response is not None:
            self._response["status"] = "failed"
            self._response["error"] = {"code": "server_error", "message": message}
            out += self._event("response.failed", {"response": self._response})
        return out
