"""``GET /v1/models`` and ``GET /v1/models/{id}``: what a client can name, in its SDK's shape.

Registered by ``handlers``. Every route and every model of the current config is an entry, with
what a client can use it for: ``owned_by`` (the upstream serving a model, ``switchman`` for a
route), ``context_window`` and ``capabilities`` where known, the API ``endpoints`` it answers
and, under ``switchman``, the gateway's own view (route strategy and candidates, or upstream,
tier and price). A route's capabilities are those of any candidate (routing sends a request
needing one to a candidate that has it); its context window is its largest candidate's.

Clients of the Anthropic SDK (they send ``anthropic-version``) get Anthropic's shapes:
``{"type": "model", "id", "display_name", "created_at"}`` and a list with ``has_more``.
An unknown id is a 404 (``model_not_found``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from switchman.api.gatewayconfig import Model
from switchman.gateway.errors import ModelNotFound
from switchman.gateway.upstreams.runtime import Runtime

# Every model answers chat; the rest depends on the upstream kind (see ``_endpoints``).
_CHAT = ["/v1/chat/completions", "/v1/messages", "/v1/responses"]
_OPENAI = ["/v1/completions", "/v1/embeddings"]


def _capabilities(models: Iterable[Model]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("vision", "tools", "json_schema"):
        known = [getattr(m.capabilities, name) for m in models]
        out[name] = True if any(known) else (None if None in known else False)
    return out


def _window(models: Iterable[Model]) -> int | None:
    windows = [m.capabilities.context_window for m in models]
    known = [w for w in windows if w is not None]
    return max(known) if known and len(known) == len(windows) else None


def _endpoints(runtime: Runtime, models: Iterable[Model]) -> list[str]:
    upstreams = runtime.upstreams
    kinds = {upstreams[m.upstream].spec.kind for m in models if m.upstream in upstreams}
    return _CHAT + (_OPENAI if kinds - {"anthropic"} else [])


def _model_entry(runtime: Runtime, model: Model, created: int) -> dict[str, Any]:
    price = model.price.model_dump() if model.price is not None else None
    return {
        "id": model.name,
        "object": "model",
        "created": created,
        "owned_by": model.upstream,
        "context_window": model.capabilities.context_window,
        "capabilities": _capabilities([model]),
        "endpoints": _endpoints(runtime, [model]),
        "switchman": {
            "kind": "model",
            "upstream": model.upstream,
            "tier": model.tier,
            "capabilities": model.capabilities.model_dump(),
            "price": price,
        },
    }


def entries(runtime: Runtime) -> list[dict[str, Any]]:
    """Routes first, then models, in config order."""
    created = int(runtime.loaded_at)
    data: list[dict[str, Any]] = []
    for name, route in runtime.table.routes.items():
        candidates = list(route.candidates)
        data.append(
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "switchman",
                "context_window": _window(candidates),
                "capabilities": _capabilities(candidates),
                "endpoints": _endpoints(runtime, candidates),
                "switchman": {
                    "kind": "route",
                    "strategy": route.spec.strategy,
                    "candidates": [m.name for m in candidates],
                },
            }
        )
    data += [_model_entry(runtime, m, created) for m in runtime.table.models.values()]
    return data


def _anthropic(entry: dict[str, Any]) -> dict[str, Any]:
    created = datetime.fromtimestamp(entry["created"], UTC).isoformat().replace("+00:00", "Z")
    return {"type": "model", "id": entry["id"], "display_name": entry["id"], "created_at": created}


def _wants_anthropic(request: web.Request) -> bool:
    return "anthropic-version" in request.headers


def listing(request: web.Request, runtime: Runtime) -> web.Response:
    """``GET /v1/models``."""
    data = entries(runtime)
    if not _wants_anthropic(request):
        return web.json_response({"object": "list", "data": data})
    shaped = [_anthropic(e) for e in data]
    return web.json_response(
        {
            "data": shaped,
            "has_more": False,
            "first_id": shaped[0]["id"] if shaped else None,
            "last_id": shaped[-1]["id"] if shaped else None,
        }
    )


def retrieve(request: web.Request, runtime: Runtime) -> web.Response:
    """``GET /v1/models/{id}`` (ids may hold slashes, e.g. ``org/model``)."""
    wanted = request.match_info["id"]
    for entry in entries(runtime):
        if entry["id"] == wanted:
            body = _anthropic(entry) if _wants_anthropic(request) else entry
            return web.json_response(body)
    raise ModelNotFound(
        f"The model '{wanted}' does not exist on this gateway; GET /v1/models lists the "
        "routes and models it serves",
        param="model",
    )
