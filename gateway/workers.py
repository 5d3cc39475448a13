"""What the worker processes of one gateway share (``switchman gateway --workers N``).

Each worker is a whole gateway (its own event loop, config watcher, upstream pools, retry
budgets, breakers and decision log: per-process by design, see docs/workers.md) listening on
the same port with SO_REUSEPORT, so the kernel spreads connections over them. What must read as
one pod is answered by merging: ``app`` starts, next to the public listener, a private one on a
Unix socket in the supervisor's 0700 directory that serves this worker's own ``/metrics`` and
``/debug/decisions``; ``handlers`` then answers the public endpoints from every worker's
(``telemetry.merge`` labels each series with its worker). A worker that does not answer within
``SIBLING_TIMEOUT_S`` is left out of that one answer (its series are absent, never zeroed).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from switchman.gateway.telemetry.merge import label_workers

log = logging.getLogger("switchman.gateway.workers")

SIBLING_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Workers:
    """This process's place among the gateway's workers."""

    index: int
    count: int
    directory: Path

    def socket(self, index: int) -> Path:
        return self.directory / f"worker-{index}.sock"

    def ready_file(self, index: int) -> Path:
        """Exists once worker ``index`` listens: the supervisor tells a worker that could not
        start (restarting it would fail alike) from one that died while serving."""
        return self.directory / f"worker-{index}.ready"

    def listening(self) -> None:
        self.ready_file(self.index).touch()


WORKERS = web.AppKey("workers", Workers)

LocalMetrics = Callable[[], bytes]
LocalDecisions = Callable[[int, str | None], list[dict[str, Any]]]


def attach(
    app: web.Application, workers: Workers, metrics: LocalMetrics, decisions: LocalDecisions
) -> None:
    """Serve this worker's own metrics and decisions on its private socket while ``app`` runs."""
    app[WORKERS] = workers

    async def own_metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics(), content_type="text/plain")

    async def own_decisions(request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "50"))
        return web.json_response(decisions(limit, request.query.get("route")))

    private = web.Application()
    private.router.add_get("/metrics", own_metrics)
    private.router.add_get("/debug/decisions", own_decisions)

    async def serve(app: web.Application) -> AsyncIterator[None]:
        runner = web.AppRunner(private, access_log=None, handle_signals=False)
        await runner.setup()
        path = workers.socket(workers.index)
        path.unlink(missing_ok=True)  # left by this worker's predecessor
        await web.UnixSite(runner, str(path)).start()
        yield
        await runner.cleanup()

    app.cleanup_ctx.append(serve)


async def _siblings(workers: Workers, path: str) -> dict[int, bytes]:
    """``path`` from every other worker's private socket; missing answers left out."""

    async def one(index: int) -> tuple[int, bytes | None]:
        connector = aiohttp.UnixConnector(path=str(workers.socket(index)))
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as session,
                asyncio.timeout(SIBLING_TIMEOUT_S),
                session.get(f"http://worker{path}") as resp,
            ):
                resp.raise_for_status()
                return index, await resp.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("worker %d did not answer %s: %s", index, path, exc)
            return index, None

    others = [i for i in range(workers.count) if i != workers.index]
    answers = await asyncio.gather(*(one(i) for i in others))
    return {index: body for index, body in answers if body is not None}


async def merged_metrics(workers: Workers, own: bytes) -> bytes:
    """The pod's exposition: this worker's ``own`` and its siblings', labelled by worker."""
    answers = await _siblings(workers, "/metrics")
    answers[workers.index] = own
    return label_workers({str(i): answers[i] for i in sorted(answers)})


async def merged_decisions(
    workers: Workers, own: list[dict[str, Any]], limit: int, route: str | None
) -> list[dict[str, Any]]:
    """Recent decisions of every worker, newest first, each naming its ``worker``."""
    params: dict[str, str | int] = {"limit": limit}
    if route is not None:
        params["route"] = route
    entries = [{**e, "worker": workers.index} for e in own]
    query = "/debug/decisions?" + urlencode(params)
    for index, body in (await _siblings(workers, query)).items():
        entries += [{**e, "worker": index} for e in json.loads(body)]
    entries.sort(key=lambda e: e["time"], reverse=True)
    return entries[:limit]
