"""``Tracing.shutdown``: the spans still queued are exported, and an exporter that does not
return (a collector that cannot be reached: the SDK waits 30 s and retries) does not hold a
stopping gateway past ``SHUTDOWN_S``; it says so in one warning."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from switchman.gateway.telemetry import tracing
from switchman.gateway.telemetry.tracing import Tracing


class Recording(SpanExporter):
    def __init__(self) -> None:
        self.names: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.names += [span.name for span in spans]
        return SpanExportResult.SUCCESS


class Stuck(SpanExporter):
    """An export that does not return until released (at most 30 s)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        return SpanExportResult.FAILURE


def one_span(traces: Tracing) -> None:
    span = traces.server_span("POST", "/v1/chat/completions", {})
    assert span is not None
    assert span.is_recording()
    tracing.end(span)


async def test_the_queued_spans_are_exported_at_shutdown() -> None:
    exporter = Recording()
    traces = Tracing.with_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    one_span(traces)
    assert exporter.names == []  # queued: the next scheduled export is a minute away
    await traces.shutdown()
    assert exporter.names == ["POST /v1/chat/completions"]


async def test_an_exporter_that_does_not_return_does_not_hold_the_shutdown(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tracing, "SHUTDOWN_S", 0.2)
    exporter = Stuck()
    traces = Tracing.with_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))
    one_span(traces)
    caplog.set_level(logging.WARNING, logger="switchman.gateway.tracing")
    try:
        async with asyncio.timeout(10):  # a generous deadline: the bound is 0.2 s
            await traces.shutdown()
        assert "did not take the last spans within" in caplog.text
    finally:
        exporter.release.set()
