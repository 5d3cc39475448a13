"""The access log: one structured line per request, written when the request is accounted.

Used by ``observe``. Fields are fixed and bounded (ids, route, model, upstream, attempts, status,
latency, time to first token, tokens, cost); never prompt or completion text, never headers.
``json`` writes one JSON object per line; ``text`` a ``key=value`` line for humans; ``off``
nothing.

Two sinks. The gateway process writes straight to stdout (``to_stdout``): lines are encoded with
orjson and copied into a buffer (one ``bytearray``) that is written and flushed at the end of the
event-loop iteration, and at most once per ``FLUSH_S`` (under load the next write waits out the rest
of that), so many lines share one write and none pays ``logging``'s per-record cost (a LogRecord,
handler locks, a formatter); when the loop was quiet a line is out within that same iteration.

Writes are at most PIPE_BUF bytes and end at a line end, so they are atomic on a pipe: the
workers of ``switchman gateway --workers N`` share stdout without interleaving lines.
Embedders and tests pass a ``logging.Logger`` instead, whose level then decides whether lines
are emitted.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import select
import sys
import time
from datetime import UTC, datetime
from typing import Any, BinaryIO, Literal

import orjson

Format = Literal["json", "text", "off"]

# Buffered lines are written at most this often: a write per loop iteration was a syscall per
# few requests under load.
FLUSH_S = 0.005


class AccessLog:
    """Formats and emits access records."""

    def __init__(
        self,
        fmt: Format = "json",
        logger: logging.Logger | None = None,
        *,
        stream: BinaryIO | None = None,
    ) -> None:
        self.format = fmt
        self.logger = logger or logging.getLogger("switchman.access")
        self._stream = stream
        # Lines waiting for ``flush``, copied into one buffer as they are made: the encoder's
        # bytes are freed at once (kept, each line was a fresh allocation: slower, measured).
        self._pending = bytearray()
        self._scheduled = False
        self._flushed = -FLUSH_S  # (time.monotonic) of the last write of buffered lines
        self._second = -1  # the second ``_prefix`` formats
        self._prefix = ""
        self._milli = -1  # the millisecond ``_stamp`` formats
        self._stamp = ""

    @classmethod
    def to_stdout(cls, fmt: Format) -> AccessLog:
        """Lines on stdout, bare (the gateway's own log goes to stderr)."""
        log = cls(fmt, stream=sys.stdout.buffer)
        atexit.register(log.flush)
        return log

    @property
    def enabled(self) -> bool:
        if self.format == "off":
            return False
        return self._stream is not None or self.logger.isEnabledFor(logging.INFO)

    def timestamp(self, now_ns: int | None = None) -> str:
        """``now_ns`` (default: now) as a line's ``time``: UTC to the millisecond, as
        ``datetime.isoformat(timespec="milliseconds")`` writes it
        (``2026-01-02T03:04:05.678+00:00``). The part up to the second is formatted once a
        second, the whole once a millisecond (lines of the same millisecond share it), not once
        a line."""
        milli = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
        if milli == self._milli:
            return self._stamp
        second, rest = divmod(milli, 1000)
        if second != self._second:
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        self._milli, self._stamp = milli, f"{self._prefix}.{rest:03d}+00:00"
        return self._stamp

    def write(self, record: dict[str, Any]) -> None:
        if self.format == "json":
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        elif self.format == "text":
            text = " ".join(f"{k}={v}" for k, v in record.items() if v is not None)
            line = f"{text}\n".encode()
        else:
            return
        if self._stream is None:
            self.logger.info(line[:-1].decode())
            return
        self._pending += line
        if not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a tool, a test): write now
                self.flush()
                return
            wait = self._flushed + FLUSH_S - time.monotonic()
            if wait > 0:
                loop.call_later(wait, self.flush)
            else:
                loop.call_soon(self.flush)
            self._scheduled = True

    def flush(self) -> None:
        """Write and flush every buffered line."""
        self._scheduled = False
        if not self._pending or self._stream is None:
            return
        lines, self._pending = self._pending, bytearray()
        self._flushed = time.monotonic()
        with contextlib.suppress(OSError, ValueError):  # stdout closed: nowhere to write
            for chunk in _chunks(lines):
                self._stream.write(chunk)
                self._stream.flush()


def _chunks(lines: bytearray) -> list[bytearray]:
    """``lines`` (each ending in a newline) cut into writes of at most PIPE_BUF bytes, each
    ending at a line end (a longer line is a write of its own): a write that small is atomic on
    a pipe, so the lines of several workers sharing stdout never interleave."""
    chunks: list[bytearray] = []
    start, size = 0, len(lines)
    while size - start > select.PIPE_BUF:
        cut = lines.rfind(b"\n", start, start + select.PIPE_BUF) + 1
        if cut <= start:  # one line longer than PIPE_BUF: alone
            cut = lines.find(b"\n", start) + 1 or size
        chunks.append(lines[start:cut])
        start = cut
    if start < size:
        chunks.append(lines[start:])
    return chunks
