"""Mid-stream failover: continue a cut stream from another upstream as if nothing happened.

Used by ``failover`` for routes with ``mid_stream: continue``. While a stream is relayed, a
``Transcript`` keeps the text the client received. When the upstream dies or stalls after that,
``Transcript.read`` recovers the partial answer, ``request_body`` asks the next attempt to
continue it (the conversation plus the partial assistant message, in the way that upstream
supports), and ``Continued`` wraps that attempt's stream decoder so its chunks carry the
original stream's id, creation time and model, without a second role delta, and its usage
counts the whole answer. The client sees one uninterrupted stream and one usage total.

Continuation mechanisms (``mechanisms``), tried in order per upstream: the upstream's configured
one (``vllm``: ``continue_final_message``; ``prefill``: a trailing assistant message, Anthropic's
default), then ``instruct`` (the partial answer plus a user turn asking to go on), which every
chat API accepts. A target that refuses a mechanism (a 4xx) is asked with the next one.

The join is verified (``Join``): an upstream may ignore the request and answer from scratch, or
repeat the end of what was sent. The continuation's first text is held until it is clear which:
a restart of the whole answer is trimmed; with ``instruct`` (a new turn, which models often open
by repeating the last words) a repeated tail of at least ``OVERLAP_MIN`` characters is trimmed
too, while ``vllm`` and ``prefill`` continue the message itself, so a tail they repeat is their
own text; anything else passes; a restart that goes another way (it repeats the opening, then
differs) cannot be joined and raises ``JoinUnverified``: the stream ends with one error event
rather than a corrupt answer.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from switchman.gateway.errors import UpstreamUnavailable
from switchman.gateway.providers.exchange import Usage
from switchman.gateway.providers.sse import Event, SSEParser, encode
from switchman.gateway.upstreams.client import StreamDecoder

# Text bytes kept per stream; a longer answer is not continued (memory stays bounded).
TRANSCRIPT_LIMIT = 1 << 20
IDENTITY_BYTES = 4096
COMPACT_BYTES = 16 * 1024  # raw SSE bytes held per stream before they are reduced to text
_TEXT = re.compile(rb'"(?:content|text)"\s*:\s*("[^"\\]*(?:\\.[^"\\]*)*")')
_CONTENT = re.compile(rb'"content"\s*:\s*("[^"\\]*(?:\\.[^"\\]*)*")')  # _TEXT, twice as fast
_FINISHED = re.compile(rb'"finish_reason"\s*:\s*"')

RESTART_MIN = 16  # repeating this much of the answer's opening (or all of it) is a restart
OVERLAP_MIN = 8  # a repeated tail shorter than this is taken as the continuation's own text
OVERLAP_MAX = 4096  # longest repeated tail looked for (bounds the held text and the search)
MECHANISMS = ("vllm", "prefill", "instruct")

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
    the answer's text, not its SSE framing. Tool-call deltas (chat's ``tool_calls``, or the
    ``tool_use`` blocks of an Anthropic stream relayed as it is) or a finish reason make the
    stream not continuable.
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
        tools = data.find(b'"tool_calls"') >= 0 or data.find(b'"tool_use"') >= 0
        if tools or _FINISHED.search(data):
            self._stop()
            return
        # A chat stream has no "text" key: a pattern with a longer literal prefix finds the same.
        pattern = _TEXT if data.find(b'"text"') >= 0 else _CONTENT
        literals = [literal for literal in pattern.findall(data) if len(literal) > 2]  # not ""
        if literals:
            self._literals += b",".join(literals)
            self._literals += b","
            self._tokens += len(literals)
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


class JoinUnverified(UpstreamUnavailable):
    """The continuation repeated the answer's opening and then went another way."""


def mechanisms(kind: str, configured: str | None) -> tuple[str, ...]:
    """The continuation mechanisms to try on an upstream, in order (see the module docstring)."""
    first = configured or ("prefill" if kind == "anthropic" else "instruct")
    return (first,) if first == "instruct" else (first, "instruct")


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


class Join:
    """Verifies where a continuation's text joins what the client already has.

    ``feed`` takes each piece of the continuation's text and returns what may be sent now ("" while
    held); ``end`` decides on what is still held when the continuation finishes. ``dropped`` counts
    the pieces trimmed whole (one token each), so usage can leave them out.
    """

    __slots__ = ("_held", "_overlaps", "_pieces", "_sent", "decided", "dropped")

    def __init__(self, sent: str, *, overlaps: bool) -> None:
        self._sent = sent
        self._overlaps = overlaps  # trim a repeated tail too (see the module docstring)
        self._held = ""
        self._pieces: list[int] = []
        self.decided = not sent
        self.dropped = 0

    def feed(self, text: str) -> str:
        if self.decided:
            return text
        self._held += text
        self._pieces.append(len(text))
        trim = self._judge(final=False)
        return "" if trim is None else self._release(trim)

    def end(self) -> str:
        """The held text, judged as the whole continuation (nothing held: nothing to judge)."""
        if self.decided or not self._held:
            return ""
        trim = self._judge(final=True)
        return self._release(trim or 0)

    def _release(self, trim: int) -> str:
        self.decided = True
        kept = self._held[trim:]
        total = 0
        for size in self._pieces:
            total += size
            if total > trim:
                break
            self.dropped += 1
        self._held, self._pieces = "", []
        return kept

    def _judge(self, *, final: bool) -> int | None:
        """Characters to trim from the held text; None: not clear yet."""
        sent, held = self._sent, self._held
        significant = min(RESTART_MIN, len(sent))
        if held.startswith(sent):
            return len(sent)  # answered from scratch: the repeat is dropped
        if sent.startswith(held):  # so far, a repeat of the opening
            if not final:
                return None
            if len(held) >= significant:
                raise _unverified()
            return 0
        if _common_prefix(sent, held) >= significant:
            raise _unverified()  # a restart that went another way
        if not self._overlaps:
            return 0
        if not final and sent.endswith(held) and len(held) < min(len(sent), OVERLAP_MAX):
            return None  # so far, a repeat of the end: how long a one?
        for size in range(min(len(sent), len(held), OVERLAP_MAX), OVERLAP_MIN - 1, -1):
            if sent.endswith(held[:size]):
                return size
        return 0


def _common_prefix(a: str, b: str) -> int:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return size


def _unverified() -> JoinUnverified:
    return JoinUnverified(
        "the stream broke off and the upstream asked to continue it restarted the answer "
        "differently; the answer is incomplete"
    )


class Continued:
    """The continuation's decoder, re-labelled as the original stream, its join verified (see
    the module docstring)."""

    __slots__ = ("_inner", "_join", "_parser", "_sent", "_template")

    def __init__(self, inner: StreamDecoder, sent: Sent, mechanism: str) -> None:
        self._inner = inner
        self._sent = sent
        self._parser = SSEParser()
        self._join = Join(sent.text, overlaps=mechanism == "instruct")
        self._template: dict[str, Any] | None = None  # the last held content chunk

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
            completion_tokens=max(
                usage.completion_tokens + self._sent.tokens - self._join.dropped, 0
            ),
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )

    def feed(self, event: Event) -> bytes:
        out = self._inner.feed(event)
        if not out:
            return out
        return b"".join(self._rewrite(e) for e in self._parser.feed(out))

    def finish(self) -> bytes:
        return self._flush() + self._inner.finish()

    def _flush(self) -> bytes:
        """Judge and send what the join still holds (the continuation is ending)."""
        text = self._join.end()
        template, self._template = self._template, None
        if not text or template is None:
            return b""
        return self._encode(_with_content(template, text))

    def _rewrite(self, event: Event) -> bytes:
        if event.is_done:
            return self._flush() + event.raw
        chunk = json.loads(event.data)
        if not isinstance(chunk, dict):
            raise ValueError("a stream chunk that is not a JSON object")
        sent = self._sent
        for key, value in (("id", sent.id), ("created", sent.created), ("model", sent.model)):
            if value is not None and key in chunk:
                chunk[key] = value
        choices = chunk.get("choices")
        if isinstance(choices, list):
            kept = [c for c in choices if _keep(c)]
            if not kept and choices and chunk.get("usage") is None:
                return b""
            chunk["choices"] = kept
            if not self._join.decided and (content := _content(kept)) is not None:
                return self._hold(chunk, content)
        return self._flush() + self._encode(chunk)

    def _hold(self, chunk: dict[str, Any], content: str) -> bytes:
        text = self._join.feed(content)
        if not self._join.decided:
            self._template = chunk
            return b""
        self._template = None
        return self._encode(_with_content(chunk, text)) if text else b""

    def _encode(self, chunk: dict[str, Any]) -> bytes:
        usage = chunk.get("usage")
        if isinstance(usage, dict) and (total := self.usage) is not None:
            usage["prompt_tokens"] = total.prompt_tokens
            usage["completion_tokens"] = total.completion_tokens
            usage["total_tokens"] = total.prompt_tokens + total.completion_tokens
        return encode(json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode())


def _content(choices: list[Any]) -> str | None:
    """The text of a single-choice content delta without a finish reason; None otherwise."""
    if len(choices) != 1 or not isinstance(choices[0], dict) or choices[0].get("finish_reason"):
        return None
    delta = choices[0].get("delta")
    if not isinstance(delta, dict) or {k for k, v in delta.items() if v} - {"content"}:
        return None
    content = delta.get("content")
    return content if isinstance(content, str) else None


def _with_content(chunk: dict[str, Any], text: str) -> dict[str, Any]:
    choice = {**chunk["choices"][0], "delta": {"content": text}}
    return {**chunk, "choices": [choice]}


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
