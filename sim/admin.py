"""The simulator's admin endpoints: run-time faults and the record of received requests.

Contract (all JSON; errors in vLLM's shape):

- ``GET /admin/faults`` → the current faults (every field of ``switchman.sim.faults.Faults``).
- ``POST /admin/faults`` with an object → merges its fault fields into the current ones and
  answers the result. Two control keys: ``"reset": true`` first restores the start-up faults,
  ``"seed": N`` restarts the random sequence of the rate-based faults. Unknown keys or bad values
  → 400 and nothing changes.
- ``DELETE /admin/faults`` → restores the start-up faults.
- ``GET /admin/requests`` → ``{"object": "list", "data": [...]}``, oldest first, each entry with
  ``time``, ``method``, ``path``, ``query``, ``headers`` (lower-cased names) and ``body``.
- ``DELETE /admin/requests`` → forgets them.

The admin endpoints keep answering while the ``down`` fault refuses everything else, so a test
can bring a simulator back. Routes are added by ``switchman.sim.server``.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from switchman.sim import errors
from switchman.sim.params import parse_json
from switchman.sim.state import SimState


def add_routes(app: web.Application, state: SimState) -> None:
    faults = state.faults
    recorder = state.recorder

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(faults.current.model_dump())

    async def post_faults(request: web.Request) -> web.Response:
        raw = await request.read()
        changes = parse_json(raw) if raw.strip() else {}
        reset = changes.pop("reset", False)
        seed = changes.pop("seed", None)
        if not isinstance(reset, bool) or not (seed is None or type(seed) is int):
            raise errors.bad_request("`reset` must be a boolean and `seed` an integer.")
        previous = faults.current
        if reset:
            faults.reset()
        try:
            merged = faults.merge(changes)
        except ValidationError as exc:
            faults.current = previous
            raise errors.bad_request(f"Invalid faults: {exc}") from exc
        if seed is not None:
            faults.reseed(seed)
        return web.json_response(merged.model_dump())

    async def delete_faults(request: web.Request) -> web.Response:
        return web.json_response(faults.reset().model_dump())

    async def get_requests(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": recorder.entries()})

    async def delete_requests(request: web.Request) -> web.Response:
        recorder.clear()
        return web.json_response({"object": "list", "data": []})

    app.router.add_get("/admin/faults", get_faults)
    app.router.add_post("/admin/faults", post_faults)
    app.router.add_delete("/admin/faults", delete_faults)
    app.router.add_get("/admin/requests", get_requests)
    app.router.add_delete("/admin/requests", delete_requests)
