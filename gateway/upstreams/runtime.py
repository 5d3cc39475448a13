"""A loaded config's live objects: the routing table plus the upstream clients it uses.

``config`` builds a new Runtime for each valid config and swaps it in whole. Requests lease the
Runtime they started with, so a reload never changes or closes anything under an in-flight
request: when a retired Runtime's last lease ends, the clients the new one did not keep are closed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from switchman.api.gatewayconfig import GatewayConfig
from switchman.gateway.routing.table import RoutingTable
from switchman.gateway.upstreams import credentials
from switchman.gateway.upstreams.client import UpstreamClient


class Runtime:
    """Routing table and upstream clients of one config generation."""

    def __init__(
        self,
        config: GatewayConfig,
        generation: int,
        upstreams: dict[str, UpstreamClient],
        table: RoutingTable | None = None,
    ) -> None:
        self.config = config
        self.generation = generation
        self.loaded_at = time.time()
        self.table = table if table is not None else RoutingTable(config)
        self.supports = {
            op: {name: client.provider.supports(op) for name, client in upstreams.items()}
            for op in ("chat", "completions", "embeddings")
        }
        self.upstreams = upstreams
        self._leases = 0
        self._retired = False
        self._released = False
        self._closing: asyncio.Task[None] | None = None
        for client in upstreams.values():
            client.holders += 1

    def acquire(self) -> None:
        self._leases += 1

    def release(self) -> None:
        self._leases -= 1
        if self._leases == 0 and self._retired:
            self._let_go()

    def retire(self) -> None:
        """Called once a newer Runtime serves; lets go of its clients when its leases end."""
        self._retired = True
        if self._leases == 0:
            self._let_go()

    def _let_go(self) -> None:
        """Drop this Runtime's hold on its clients; close those no Runtime holds any more.

        A client can be shared by several generations (kept across reloads), and an older
        generation may still stream on it, so a count of holders decides, not the successor.
        """
        if self._released:
            return
        self._released = True
        dropped = []
        for client in self.upstreams.values():
            client.holders -= 1
            if client.holders == 0:
                dropped.append(client)
        if dropped:
            self._closing = asyncio.get_running_loop().create_task(_close_all(dropped))

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await self._closing


async def _close_all(clients: list[UpstreamClient]) -> None:
    await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


def build(
    config: GatewayConfig,
    generation: int,
    previous: Runtime | None,
    environ: Mapping[str, str],
) -> Runtime:
    """A Runtime for ``config``, reusing the previous one's clients where nothing changed.

    Raises ConfigError (a route's weights file) before any client is made.
    """
    table = RoutingTable(config)
    old = previous.upstreams if previous else {}
    clients: dict[str, UpstreamClient] = {}
    for spec in config.upstreams:
        existing = old.get(spec.name)
        if existing is not None and existing.same_as(spec, environ):
            clients[spec.name] = existing
        else:
            clients[spec.name] = UpstreamClient(spec, environ)
            clients[spec.name].start()  # a no-op before the event loop runs; the app retries
    # Any upstream may echo any credential it was sent, so each redacts every one of them.
    admin = credentials.resolve(config.server.admin_token, environ)[0]
    redactor = credentials.Redactor.joined((c.redactor for c in clients.values()), admin)
    for client in clients.values():
        client.redactor = redactor
        client.edge = config.server.edge
    return Runtime(config, generation, clients, table)
