"""A gateway process with chosen telemetry, for ``bench.telemetry_overhead``.

``python -m bench.gateway_variant CONFIG PORT VARIANT`` where VARIANT names what is on, joined
by ``+``: ``metrics`` (recorded), ``tracing`` (sampled at 10% through a batch processor whose
exporter drops spans, so export I/O is not measured), ``accesslog`` (JSON lines to /dev/null);
``off`` records nothing.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from switchman.gateway.app import create_app
from switchman.gateway.telemetry.accesslog import AccessLog
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.telemetry.tracing import Tracing
from switchman.gateway.upstreams.config import ConfigWatcher


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _NullChild:
    def labels(self, *args: Any) -> _NullChild:
        return self

    def inc(self, *args: Any) -> None:
        pass

    def dec(self, *args: Any) -> None:
        pass

    def set(self, *args: Any) -> None:
        pass

    def observe(self, *args: Any) -> None:
        pass


class NullMetrics(Metrics):
    """Same families registered (so /metrics works), nothing recorded per request."""

    def __init__(self) -> None:
        super().__init__()
        for name in list(vars(self)):
            if name != "registry":
                setattr(self, name, _NullChild())


def main() -> None:
    config, port, variant = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    metrics = Metrics() if "metrics" in variant else NullMetrics()
    tracing = Tracing(None)
    access = AccessLog("off")
    if "tracing" in variant:
        environ = {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        }
        tracing = Tracing.with_processor(BatchSpanProcessor(DropExporter()), environ)
    if variant.endswith("accesslog"):
        logger = logging.getLogger("switchman.access")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = logging.FileHandler("/dev/null")
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        access = AccessLog("json", logger)
    watcher = ConfigWatcher(config, metrics)
    watcher.load_initial()
    app = create_app(watcher, metrics, tracing=tracing, access_log=access)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
