"""Mid-stream failover: continue a cut stream from another upstream as if nothing happened.

Used by ``proxy`` for routes with ``mid_stream: continue``. While a stream is relayed, a
``Transcript`` keeps the text the client received. When the upstream dies or stalls after that,
``Transcript.read`` recovers the partial answer, ``request_body`` asks the next attempt to
continue it (the conversation plus the partial assistant message, in the way that upstream
supports), and ``Continued`` wraps that attempt's stream decoder so its chunks carry the
original stream's id, creation time and model, without a second role delta, and its usage
counts the whole answer. The client sees one uninterrupted stream and one usage total.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from switchman.gateway.providers.exchange import Usage
from switchman.gateway.providers.sse import Event, SSEParser, encode
from switchman.gateway.upstreams.client import StreamDecoder

# Text bytes kept per stream; a longer answer is not continued (memory stays bounded).
TRANSCRIPT_LIMIT = 1 << 20
IDENTITY_BYTES = 4096
COMPACT_BYTES = 16 * 1024  # raw SSE bytes held per stream before they are reduced to text
_TEXT = re.compile(rb'"(?:content|text)"\s*:\s*("(?:[^"\\]|\\.)*")')
_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')

INSTRUCTION = (
    "Your previous message was cut off. Continue it exactly where it stopped, mid-word if "
    "needed, without repeating any of it and without comment."
)


@dataclass(slots=True, frozen=True)
class Sent:
    """What the client has received of a stream so far."""

    id: str | None
    created: int | None
    model: str | None
    text: str
    tokens: int  # content chunks, one token each for vLLM; an estimate elsewhere
    continuable: bool  # false after tool-call deltas, a finish reason, or too much text


class Transcript:
    """What one committed stream sent the client, kept compactly where continuation is on.

    Writes are appended as they are (cheap on the per-chunk path) and compacted every
    ``COMPACT_BYTES``: one regex pass keeps only the JSON string literals of ``content`` /
    ``text`` (no JSON parsing), plus the first write for the stream's identity, so memory follows
    the answer's text, not its SSE framing. Tool-call deltas or a finish reason make the stream
    not continuable.
    """

    __slots__ = ("_first", "_literals", "_pending", "_pending_size", "_stopped", "_tokens", "limit")

    def __init__(self, limit: int = TRANSCRIPT_LIMIT) -> None:
        self._first = b""
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._literals = bytearray()
        self._tokens = 0
        self._stopped = False
        self.limit = limit

    def add(self, data: bytes) -> None:
        if self._stopped:
            return
        if not self._first:
            self._first = data[:IDENTITY_BYTES]
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= COMPACT_BYTES:
            self._compact()

    def _compact(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if b'"tool_calls"' in data or _FINISHED.search(data):
            self._stop()
            return
        for found in _TEXT.finditer(data):
            literal = found.group(1)
            if len(literal) > 2:  # not ""
                self._literals += literal + b","
                self._tokens += 1
        if len(self._literals) > self.limit:
            self._stop()  # over the limit: give the memory back, never continue

    def _stop(self) -> None:
        self._stopped = True
        self._pending.clear()
        self._literals = bytearray()

    def read(self) -> Sent:
        """The identity fields, the text so far, and whether it can go on."""
        if not self._stopped:
            self._compact()
        ident: dict[str, Any] = {}
        for event in SSEParser().feed(self._first):
            try:
                chunk = json.loads(event.data)
            except ValueError:
                continue
            if isinstance(chunk, dict):
                ident = chunk
                break
        try:
            parts = json.loads(b"[" + self._literals[:-1] + b"]")
        except ValueError:
            parts, self._stopped = [], True
        created = ident.get("created")
        return Sent(
            id=ident.get("id") if isinstance(ident.get("id"), str) else None,
            created=created if isinstance(created, int) else None,
            model=ident.get("model") if isinstance(ident.get("model"), str) else None,
            text="".join(p for p in parts if isinstance(p, str)),
            tokens=self._tokens,
            continuable=not self._stopped,
        )


def request_body(op: str, body: dict[str, Any], sent: Sent, mode: str) -> dict[str, Any] | None:
    """The body asking another upstream to continue ``sent``; None when that cannot work."""
    if not sent.continuable or body.get("n", 1) not in (1, None):
        return None
    out = dict(body)
    if op == "chat":
        messages = list(body["messages"])
        messages.append({"role": "assistant", "content": sent.text})
        if mode == "vllm":
            out["continue_final_message"] = True
            out["add_generation_prompt"] = False
        elif mode == "instruct":
            messages.append({"role": "user", "content": INSTRUCTION})
        out["messages"] = messages
    elif op == "completions" and isinstance(body.get("prompt"), str):
        out["prompt"] = body["prompt"] + sent.text
    else:
        return None
    for key in ("max_tokens", "max_completion_tokens"):
        limit = body.get(key)
        if type(limit) is int:
            out[key] = max(limit - sent.tokens, 1)
    return out


class Continued:
    """The continuation's decoder, re-labelled as the original stream (see module docstring)."""

    __slots__ = ("_inner", "_parser", "_sent")

    def __init__(self, inner: StreamDecoder, sent: Sent) -> None:
        self._inner = inner
        self._sent = sent
        self._parser = SSEParser()

    @property
    def done(self) -> bool:
        return self._inner.done

    @property
    def model(self) -> str | None:
        return self._inner.model

    @property
    def finish_reasons(self) -> list[str]:
        return self._inner.finish_reasons

    @property
    def usage(self) -> Usage | None:
        usage = self._inner.usage
        if usage is None:
            return None
        return Usage(
            prompt_tokens=max(usage.prompt_tokens - self._sent.tokens, 0),
            completion_tokens=usage.completion_tokens + self._sent.tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )

    def feed(self, event: Event) -> bytes:
        out = self._inner.feed(event)
        if not out:
            return out
        return b"".join(self._rewrite(e) for e in self._parser.feed(out))

    def finish(self) -> bytes:
        return self._inner.finish()

    def _rewrite(self, event: Event) -> bytes:
        if event.is_done:
            return event.raw
        try:
            chunk = json.loads(event.data)
        except ValueError:
            return event.raw
        if not isinstance(chunk, dict):
            return event.raw
        sent = self._sent
        for key, value in (("id", sent.id), ("created", sent.created), ("model", sent.model)):
            if value is not None and key in chunk:
                chunk[key] = value
        choices = chunk.get("choices")
        if isinstance(choices, list):
            kept = [c for c in choices if _keep(c)]
            if not kept and choices and "usage" not in chunk:
                return b""
            chunk["choices"] = kept
        usage = chunk.get("usage")
        if isinstance(usage, dict) and (total := self.usage) is not None:
            usage["prompt_tokens"] = total.prompt_tokens
            usage["completion_tokens"] = total.completion_tokens
            usage["total_tokens"] = total.prompt_tokens + total.completion_tokens
        return encode(json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode())


def _keep(choice: Any) -> bool:
    """Drop the continuation's opening role delta; keep everything with content or an end."""
    if not isinstance(choice, dict):
        return True
    delta = choice.get("delta")
    if isinstance(delta, dict):
        delta.pop("role", None)
        if not delta.get("content") and len(delta) <= 1:
            return bool(choice.get("finish_reason") or delta.get("tool_calls"))
    return True
