"""A local OTLP/HTTP trace collector for the benchmark: receives exports, counts spans.

``python -m bench.collector PORT`` accepts ``POST /v1/traces`` (OTLP protobuf, as the gateway's
exporter sends it), decodes each request and counts its spans; ``GET /stats`` answers
``{"requests": N, "spans": M}``. Used by ``bench.compare`` so that the gateway's 10% sampled
tracing pays for real export (serialisation and a socket) instead of dropping spans.
"""

from __future__ import annotations

import sys

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

COUNTS = web.AppKey("counts", dict[str, int])


async def traces(request: web.Request) -> web.Response:
    message = ExportTraceServiceRequest()
    message.ParseFromString(await request.read())
    counts = request.app[COUNTS]
    counts["requests"] += 1
    counts["spans"] += sum(
        len(scope.spans) for resource in message.resource_spans for scope in resource.scope_spans
    )
    return web.Response(
        body=ExportTraceServiceResponse().SerializeToString(),
        content_type="application/x-protobuf",
    )


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[COUNTS])


def app() -> web.Application:
    application = web.Application(client_max_size=64 * 2**20)
    application[COUNTS] = {"requests": 0, "spans": 0}
    application.router.add_post("/v1/traces", traces)
    application.router.add_get("/stats", stats)
    return application


if __name__ == "__main__":
    web.run_app(app(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
