"""What an inbound endpoint hands the serve pipeline: its request as chat, and the way back.

Implements the ``ClientFormat`` protocols the pipeline declares (``serve.request``: the body and
each attempt's upstream call; ``serve.downstream``: the client's response). One ``Translation``
per request, made by ``messages`` or ``responses``:

- ``to_chat`` reads the client's body (strict JSON, as for chat) and translates it;
- ``prepare`` builds each attempt's upstream call: the client's own body, untouched but for
  ``model``, when the upstream speaks the client's format natively (Anthropic Messages to an
  Anthropic upstream, so ``cache_control``, ``thinking`` and beta fields all arrive); otherwise
  the upstream provider's call for the chat body; when the client used something chat cannot
  carry (``Translated.problems``) that candidate is skipped (a ``Failure`` of scope ``model``)
  and, when no candidate can take the request as it is, the client gets a 400 naming the field;
- ``native`` says whether an upstream speaks the client's format; then ``decoder`` relays its
  stream as it is (``inbound.native``: thinking blocks and all) for the attempt that starts the
  answer, and ``whole`` passes its whole answer on unchanged. Any other answer comes back
  through its provider as chat, re-encoded by ``stream_response`` (the client's stream,
  ``writer.TranslatedStream``) or ``whole`` (a whole answer in the client's format), so
  accounting, failover and mid-stream continuation stay one code path for every format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from aiohttp import web

from switchman.gateway.errors import InvalidRequest
from switchman.gateway.inbound.anthropic_openai import Translated
from switchman.gateway.inbound.native import NativeMessagesStream
from switchman.gateway.inbound.writer import Encoder, TranslatedStream
from switchman.gateway.providers.exchange import UpstreamCall
from switchman.gateway.serve.failures import Failure
from switchman.gateway.serve.request import loads
from switchman.gateway.upstreams.client import Provider, StreamDecoder


@runtime_checkable
class NativeMessages(Protocol):
    """An upstream provider that takes Anthropic Messages bodies as they are."""

    def native_messages(
        self, body: dict[str, Any], model_id: str, stream: bool, headers: Mapping[str, str]
    ) -> UpstreamCall: ...


class Translation:
    """One inbound request's translation; see the module docstring."""

    __slots__ = ("_encoder", "_native", "_translate", "_translated", "_whole", "body")

    def __init__(
        self,
        translate: Callable[[dict[str, Any]], Translated],
        encoder: Callable[[dict[str, Any]], Encoder],
        whole: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]],
        *,
        native: Mapping[str, str] | None = None,
    ) -> None:
        self._translate = translate
        self._encoder = encoder
        self._whole = whole
        self._native = native  # headers for a native Messages upstream; None: never native
        self._translated: Translated | None = None
        self.body: dict[str, Any] = {}  # the client's own body

    def to_chat(self, raw: bytes) -> dict[str, Any]:
        """The chat.completions body for the client's raw body; InvalidRequest if malformed."""
        if not raw:
            raise InvalidRequest("request body is empty; send a JSON object")
        body = loads(raw)
        if not isinstance(body, dict):
            raise InvalidRequest("request body must be a JSON object")
        self.body = body
        self._translated = self._translate(body)
        return self._translated.chat

    def prepare(
        self, provider: Provider, body: dict[str, Any], model_id: str, stream: bool
    ) -> UpstreamCall:
        """One attempt's upstream call; ``body`` is the chat body, or a continuation of it."""
        translated = self._translated
        assert translated is not None, "prepare before to_chat"
        fresh = body is translated.chat
        if fresh and self._native is not None and isinstance(provider, NativeMessages):
            return provider.native_messages(self.body, model_id, stream, self._native)
        if translated.problems:
            # Not this candidate's fault: the next one (an Anthropic model) may take it as it is;
            # when none can, this 400 is the answer.
            message, param = translated.problems[0]
            error = InvalidRequest(
                f"{message}; no candidate of this route that can take it was available "
                f"(tried a '{provider.name}' upstream)",
                param=param,
            )
            raise Failure("untranslatable", error, scope="model")
        return provider.prepare("chat", body, model_id, stream)

    def native(self, provider: Provider) -> bool:
        """Whether ``provider`` speaks the client's format (its fresh calls are
        ``native_messages``, and its answers go to the client as they are)."""
        return self._native is not None and isinstance(provider, NativeMessages)

    def decoder(self, provider: Provider, model_id: str) -> StreamDecoder | None:
        """For an attempt that starts the answer on an upstream speaking the client's format
        natively: a decoder relaying its events as they are. None: the provider's own (chat)."""
        return NativeMessagesStream(model_id) if self.native(provider) else None

    def stream_response(self, headers: dict[str, str]) -> web.StreamResponse:
        return TranslatedStream(self._encoder(self.body), headers=headers)

    def whole(self, payload: bytes) -> bytes:
        """A whole chat.completion in the client's format; a native upstream's own answer (an
        Anthropic Message) as it is."""
        answer = json.loads(payload)
        if answer.get("type") == "message" and self._native is not None:
            return payload
        answer = self._whole(answer, self.body)
        return json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode()
