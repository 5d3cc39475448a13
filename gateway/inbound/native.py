"""An Anthropic upstream's stream relayed to an Anthropic client as it is.

Used by ``translation.Translation`` for ``POST /v1/messages`` when an attempt's upstream speaks
Messages natively and the attempt starts the answer (a continuation after a cut is translated
like any other: the client's message is already under way). Every event is relayed
byte-for-byte in meaning (re-framed as one ``event:`` + ``data:`` pair), so ``thinking`` and
``redacted_thinking`` blocks, signatures, citations and server-tool blocks reach the client;
a ``MessagesStreamTranslator`` reads the same events for what the pipeline needs (usage, finish
reasons, the end), and an in-band ``error`` event is the attempt's failure, never relayed.
``writer.TranslatedStream`` recognises these events by their name and passes them on, keeping
its encoder's state in step so a continuation goes on in the same message.
"""

from __future__ import annotations

import time

from switchman.gateway.providers.exchange import Usage
from switchman.gateway.providers.openai_anthropic import MessagesStreamTranslator
from switchman.gateway.providers.openai_anthropic_stream import message_event
from switchman.gateway.providers.sse import Event, encode


class NativeMessagesStream:
    """A stream decoder (``upstreams.client.StreamDecoder``) that keeps Anthropic's events."""

    __slots__ = ("_translator", "finish_reasons", "model", "usage")

    def __init__(self, model_id: str) -> None:
        self._translator = MessagesStreamTranslator(model_id, int(time.time()), True)
        self.usage: Usage | None = None
        self.model: str | None = model_id
        self.finish_reasons: list[str] = []

    @property
    def done(self) -> bool:
        return self._translator.finished

    def feed(self, event: Event) -> bytes:
        found = message_event(event.event, event.data)
        if found is None:
            return b""
        name, data = found
        for chunk in self._translator.feed(name, data):  # raises StreamError on "error"
            for choice in chunk.get("choices", ()):
                if choice.get("finish_reason"):
                    self.finish_reasons.append(choice["finish_reason"])
        totals = self._translator.totals()
        self.usage = Usage.from_openai(totals) if totals else self.usage
        if name == "message_start" and isinstance(data.get("message"), dict):
            model = data["message"].get("model")
            self.model = model if isinstance(model, str) and model else self.model
        return encode(event.data, name) if name else b""

    def finish(self) -> bytes:
        """Nothing after ``message_stop``; one for an upstream that ended without it."""
        return b"" if self.done else encode(b'{"type":"message_stop"}', "message_stop")
