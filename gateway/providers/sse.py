"""Incremental Server-Sent Events parsing and encoding.

The relay (``serve.relay``) feeds upstream bytes as they arrive and gets whole events back, each
with its original bytes, so OpenAI-compatible streams are relayed without re-encoding while the
relay still sees every event (to read usage, or to translate Anthropic's event sequence); a
decoder that reads a whole read's events at once (OpenAI's) takes them as one block of bytes
instead (``complete``), with no object per event. Follows the WHATWG event-stream format:
``\\n``, ``\\r\\n`` or ``\\r`` line ends, ``:`` comments, multi-line ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Event:
    """One dispatched event: ``raw`` is exactly what upstream sent, blank line included.

    A value: nothing changes one after it is made (not ``frozen``, which costs three times as
    much to build, once per streamed event).
    """

    raw: bytes
    event: str | None
    data: bytes

    @property
    def is_done(self) -> bool:
        """OpenAI's end-of-stream sentinel ``data: [DONE]``."""
        return self.data == b"[DONE]"


class SSEParser:
    """Turns a byte stream into events; keep one per upstream response."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[Event]:
        """Add bytes; return every event completed by them (possibly none)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        held = b""
        if buffer.find(b"\r") >= 0:  # (``find``: cheaper than ``in`` on bytes)
            if buffer.endswith(b"\r"):
                # Maybe the first half of a CRLF split across reads: decide on the next feed.
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[Event] = []
        start = 0
        find = buffer.find
        while (end := find(b"\n\n", start)) >= 0:
            if buffer.startswith(b"data: ", start) and find(b"\n", start, end) < 0:
                # The common case (one data line): no line loop.
                events.append(Event(buffer[start : end + 2], None, buffer[start + 6 : end]))
            elif (event := _parse_block(buffer[start : end + 2])) is not None:
                events.append(event)
            start = end + 2
        self._buffer = buffer[start:] + held
        return events

    def complete(self, chunk: bytes) -> bytes | None:
        """Add bytes; the events completed by them as one block of bytes, as they are (what
        ``block_events`` splits into the events ``feed`` would return), for a decoder that reads
        a whole read's events at once. None, with nothing taken, when they must go to ``feed``:
        no event completed yet, a CR (line ends to normalise), or a run of three line ends at the
        block's end (where the event boundary is only found from the start). Two short scans."""
        buffer = self._buffer + chunk if self._buffer else chunk
        end = buffer.rfind(b"\n\n") + 2
        if end < 3 or buffer[end - 3] == 10 or buffer.find(b"\r", 0, end) >= 0:  # 10: b"\n"
            return None
        if end == len(buffer):
            self._buffer = b""
            return buffer
        self._buffer = buffer[end:]
        return buffer[:end]

    def flush(self) -> list[Event]:
        """At end of stream: an unterminated final event is still dispatched."""
        rest, self._buffer = self._buffer, b""
        rest = rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not rest.strip():
            return []
        event = _parse_block(rest.rstrip(b"\n") + b"\n\n")
        return [event] if event is not None else []

    @property
    def pending(self) -> int:
        """Bytes held back waiting for the end of an event."""
        return len(self._buffer)


def block_events(block: bytes) -> list[Event]:
    """The events of a block ``SSEParser.complete`` returned, as ``feed`` returned them."""
    return SSEParser().feed(block)


def _parse_block(block: bytes) -> Event | None:
    name: str | None = None
    data_lines: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data_lines.append(value)
        elif field == b"event":
            name = value.decode("utf-8", "replace")
    if not data_lines and name is None:
        return None  # comment-only block (keep-alive)
    return Event(raw=block, event=name, data=b"\n".join(data_lines))


def encode(data: bytes, event: str | None = None) -> bytes:
    """Encode one event (single-line JSON data, as every API here sends)."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


DONE = encode(b"[DONE]")
