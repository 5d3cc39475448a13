"""The last N requests a simulator received, so tests can assert what a gateway sent upstream.

``switchman.sim.generation`` and ``switchman.sim.embeddings`` read API bodies through
``RequestRecorder.read_json``, which records the request (headers with lower-cased names, and the
JSON body, or its text when it is not JSON) before parsing can fail;
``switchman.sim.admin`` serves them at ``GET /admin/requests`` and clears them on ``DELETE``.
Bounded, and free when the capacity is 0 (benchmarks).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from aiohttp import web

from switchman.sim import errors
from switchman.sim.params import parse_json


class RequestRecorder:
    __slots__ = ("_entries",)

    def __init__(self, capacity: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=capacity)

    def record(self, request: web.Request, body: object) -> None:
        if self._entries.maxlen == 0:
            return
        self._entries.append(
            {
                "time": time.time(),
                "method": request.method,
                "path": request.path,
                "query": request.query_string,
                "headers": {name.lower(): value for name, value in request.headers.items()},
                "body": body,
            }
        )

    async def read_json(self, request: web.Request) -> dict[str, Any]:
        """The request's JSON object body (or a 400), recorded either way."""
        raw = await request.read()
        try:
            body = parse_json(raw)
        except errors.SimError:
            self.record(request, raw.decode(errors="replace"))
            raise
        self.record(request, body)
        return body

    def entries(self) -> list[dict[str, Any]]:
        """Oldest first."""
        return list(self._entries)

    def clear(self) -> None:
        self._entries.clear()
