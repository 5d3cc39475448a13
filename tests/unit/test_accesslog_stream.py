"""The access log's stdout sink (``AccessLog(fmt, stream=...)``), which bypasses ``logging``.

Scenarios:
- inside an event loop, lines written in one iteration reach the stream together at the end of
  it (nothing before, everything after), one JSON object per line, in order;
- lines written within ``FLUSH_S`` of the last write wait for the rest of it (one write for
  all of them), however many loop iterations pass meanwhile;
- without a running loop a line is written at once;
- ``text`` writes ``key=value`` pairs and leaves out empty fields; ``off`` writes nothing;
- many lines are written in chunks of at most PIPE_BUF bytes, each ending at a line end (atomic
  on a pipe, so workers sharing stdout never interleave), and nothing is lost or reordered; a
  line longer than PIPE_BUF is a write of its own;
- a closed stream does not raise into the request that is being accounted;
- a line's ``time`` reads as ``datetime.isoformat(timespec="milliseconds")`` in UTC would write
  it, across second and millisecond boundaries too (the part up to the second is cached per
  second, the whole text per millisecond).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import select
import time
from datetime import UTC, datetime

import pytest

from switchman.gateway.telemetry import accesslog
from switchman.gateway.telemetry.accesslog import AccessLog


class Recorder(io.RawIOBase):
    """A binary stream that records each write separately."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)


async def test_lines_of_one_loop_iteration_are_written_together_at_its_end() -> None:
    out = Recorder()
    log = AccessLog("json", stream=out)  # type: ignore[arg-type]
    assert log.enabled
    log.write({"request_id": "a", "status": 200, "cost_usd": 0.5})
    log.write({"request_id": "b", "status": 404, "ttft_ms": None})
    assert out.writes == []
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    lines = b"".join(out.writes).decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {"request_id": "a", "status": 200, "cost_usd": 0.5},
        {"request_id": "b", "status": 404, "ttft_ms": None},
    ]
    assert len(out.writes) == 1


async def test_lines_soon_after_a_write_wait_for_the_next_one_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(accesslog, "FLUSH_S", 60.0)
    out = Recorder()
    log = AccessLog("json", stream=out)  # type: ignore[arg-type]
    log.write({"request_id": "a"})
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert out.writes == [b'{"request_id":"a"}\n']
    log.write({"request_id": "b"})
    log.write({"request_id": "c"})
    for _ in range(5):
        await asyncio.sleep(0)
    assert len(out.writes) == 1  # within FLUSH_S of the last write: held
    log.flush()  # what the timer armed for the end of FLUSH_S does
    assert out.writes[1:] == [b'{"request_id":"b"}\n{"request_id":"c"}\n']


def test_without_a_loop_a_line_is_written_at_once() -> None:
    out = Recorder()
    AccessLog("json", stream=out).write({"request_id": "x"})  # type: ignore[arg-type]
    assert out.writes == [b'{"request_id":"x"}\n']


def test_text_leaves_out_empty_fields_and_off_writes_nothing() -> None:
    out = Recorder()
    AccessLog("text", stream=out).write({"route": "auto", "ttft_ms": None})  # type: ignore[arg-type]
    assert out.writes == [b"route=auto\n"]
    silent = Recorder()
    off = AccessLog("off", stream=silent)  # type: ignore[arg-type]
    assert not off.enabled
    off.write({"route": "auto"})
    assert silent.writes == []


async def test_many_lines_go_out_in_line_aligned_writes_of_at_most_pipe_buf() -> None:
    out = Recorder()
    log = AccessLog("json", stream=out)  # type: ignore[arg-type]
    records = [{"request_id": f"r{i:04d}", "pad": "x" * 200} for i in range(100)]
    for record in records:
        log.write(record)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(out.writes) > 1
    assert all(len(w) <= select.PIPE_BUF and w.endswith(b"\n") for w in out.writes)
    lines = b"".join(out.writes).decode().splitlines()
    assert [json.loads(line) for line in lines] == records


async def test_a_line_longer_than_pipe_buf_is_a_write_of_its_own() -> None:
    out = Recorder()
    log = AccessLog("json", stream=out)  # type: ignore[arg-type]
    records = [{"request_id": f"r{i}", "pad": "x" * (300 if i != 7 else 2 * select.PIPE_BUF)}
               for i in range(30)]  # fmt: skip
    for record in records:
        log.write(record)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    (long,) = [w for w in out.writes if len(w) > select.PIPE_BUF]
    assert json.loads(long) == records[7]
    assert all(w.endswith(b"\n") for w in out.writes)
    # Lines are packed greedily: each write but the last could not take the next line.
    for write, following in itertools.pairwise(out.writes):
        assert len(write) + following.index(b"\n") + 1 > select.PIPE_BUF
    lines = b"".join(out.writes).decode().splitlines()
    assert [json.loads(line) for line in lines] == records


async def test_a_closed_stream_does_not_raise() -> None:
    out = io.BytesIO()
    log = AccessLog("json", stream=out)
    out.close()
    log.write({"request_id": "late"})
    await asyncio.sleep(0)
    log.flush()


def test_timestamps_read_as_isoformat_in_utc_to_the_millisecond() -> None:
    log = AccessLog("json")
    base = 1_796_547_599 * 1_000_000_000  # 2026-12-06T09:39:59 UTC
    late = base + 1_234_567_891
    same_ms, next_ms = late - 567_890, late + 432_109  # the same millisecond, the next one
    for ns in (base, base + 999_999_999, base + 1_000_000_000, late, same_ms, next_ms, base + 7):
        expected = datetime.fromtimestamp(ns // 1000 / 1e6, UTC).isoformat(timespec="milliseconds")
        assert log.timestamp(ns) == expected
    now = datetime.fromisoformat(log.timestamp())
    assert abs(now.timestamp() - time.time()) < 1
