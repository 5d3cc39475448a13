"""A minimal aiohttp relay: the floor the gateway's overhead is compared against.

``python -m bench.relay_baseline UPSTREAM_URL PORT`` forwards POST bodies to the upstream on one
pooled session (no connection cap) and returns (or streams) the answer unchanged: no parsing,
routing or metrics.
"""

from __future__ import annotations

import sys

import aiohttp
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)


async def relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    upstream = request.app[SESSION]
    url = request.app["upstream"] + request.path
    async with upstream.post(url, data=body, headers={"content-type": "application/json"}) as resp:
        if resp.headers.get("content-type", "").startswith("text/event-stream"):
            out = web.StreamResponse(status=resp.status)
            out.content_type = "text/event-stream"
            await out.prepare(request)
            async for chunk in resp.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out
        return web.Response(
            status=resp.status, body=await resp.read(), content_type="application/json"
        )


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    upstream, port = sys.argv[1], int(sys.argv[2])
    app = web.Application()
    app["upstream"] = upstream

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        yield
        await app[SESSION].close()

    app.cleanup_ctx.append(session)
    app.router.add_get("/health", health)
    app.router.add_post("/{tail:.*}", relay)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
