"""Anthropic Messages upstreams: OpenAI chat.completions in, ``POST /v1/messages`` out.

The translation itself is pure and lives in ``openai_anthropic``; this adapter adds the URL,
the ``x-api-key`` and ``anthropic-version`` headers, JSON encoding, and re-encodes translated
stream chunks as OpenAI SSE. Only chat is offered: Anthropic has no completions or embeddings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from switchman.api.gatewayconfig import AnthropicSettings
from switchman.gateway.errors import InvalidRequest
from switchman.gateway.providers.exchange import Operation, ResponseInfo, UpstreamCall, Usage
from switchman.gateway.providers.openai_anthropic import (
    MessagesStreamTranslator,
    chat_to_messages,
    error_to_openai,
    messages_to_chat,
)
from switchman.gateway.providers.openai_anthropic_stream import message_event
from switchman.gateway.providers.sse import DONE, Event, encode


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _usage(totals: dict[str, Any] | None) -> Usage | None:
    """Usage with the cache reads Anthropic reported (priced at the cached rate)."""
    return Usage.from_openai(totals) if totals else None


class AnthropicStream:
    """Translates Anthropic's streaming events into OpenAI chunks as they arrive."""

    __slots__ = ("_translator", "done", "finish_reasons", "model", "usage")

    def __init__(self, model: str, wants_usage: bool) -> None:
        self._translator = MessagesStreamTranslator(model, int(time.time()), wants_usage)
        self.usage: Usage | None = None
        self.model: str | None = model
        self.finish_reasons: list[str] = []
        self.done = False

    def feed(self, event: Event) -> bytes:
        found = message_event(event.event, event.data)
        if found is None:
            return b""
        name, data = found
        chunks = self._translator.feed(name, data)
        for chunk in chunks:
            for choice in chunk.get("choices", ()):
                if choice.get("finish_reason"):
                    self.finish_reasons.append(choice["finish_reason"])
        self.usage = _usage(self._translator.totals()) or self.usage
        self.done = self._translator.finished
        return b"".join(encode(_dumps(chunk)) for chunk in chunks)

    def finish(self) -> bytes:
        return DONE


class Anthropic:
    """Provider adapter for ``kind: anthropic`` upstreams."""

    name = "anthropic"

    def __init__(self, settings: AnthropicSettings, api_key: str | None) -> None:
        self._settings = settings
        self._headers = {"anthropic-version": settings.version}
        if api_key:
            self._headers["x-api-key"] = api_key

    def supports(self, op: Operation) -> bool:
        return op == "chat"

    def prepare(
        self, op: Operation, body: dict[str, Any], model_id: str, stream: bool
    ) -> UpstreamCall:
        if op != "chat":
            raise InvalidRequest(f"Anthropic upstreams serve only /v1/chat/completions, not {op}")
        translated = chat_to_messages(
            body,
            model_id,
            default_max_tokens=self._settings.default_max_tokens,
            api_version=self._settings.version,
        )
        translated["stream"] = stream
        return UpstreamCall(path="/v1/messages", body=_dumps(translated), headers=self._headers)

    def native_messages(
        self, body: dict[str, Any], model_id: str, stream: bool, headers: Mapping[str, str]
    ) -> UpstreamCall:
        """A client's own Messages body, untouched but for ``model`` and ``stream``.

        Used by ``inbound.edge`` for ``POST /v1/messages``: the client's ``anthropic-version``
        and ``anthropic-beta`` (in ``headers``) replace the configured version, since the body is
        written against them. The answer is decoded as for chat.
        """
        native = dict(body)
        native["model"] = model_id
        native["stream"] = stream
        return UpstreamCall(
            path="/v1/messages", body=_dumps(native), headers={**self._headers, **headers}
        )

    def decode(self, op: Operation, payload: bytes) -> tuple[bytes, ResponseInfo]:
        message = json.loads(payload)
        if not isinstance(message, dict):  # found by fuzzing: `null` was an AttributeError
            raise ValueError("upstream response is not a JSON object")
        chat = messages_to_chat(
            message, model=str(message.get("model", "")), created=int(time.time())
        )
        return _dumps(chat), ResponseInfo.from_openai(chat)

    def stream(self, op: Operation, model_id: str, wants_usage: bool) -> AnthropicStream:
        return AnthropicStream(model_id, wants_usage)

    def error(self, status: int, payload: bytes) -> dict[str, Any]:
        return error_to_openai(status, payload)
