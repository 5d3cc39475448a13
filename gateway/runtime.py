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
from switchman.gateway.routing import RoutingTable
from switchman.gateway.upstreams import UpstreamClient


class Runtime:
    """Routing table and upstream clients of one config generation."""

    def __init__(
        self, config: GatewayConfig, generation: int, upstreams: dict[str, UpstreamClient]
    ) -> None:
        self.config = config
        self.generation = generation
        self.loaded_at = time.time()
        self.table = RoutingTable(config)
        self.upstreams = upstreams
        self._leases = 0
        self._retired_keep: set[UpstreamClient] | None = None
        self._closing: asyncio.Task[None] | None = None

    def acquire(self) -> None:
        self._leases += 1

    def release(self) -> None:
        self._leases -= 1
        if self._leases == 0 and self._retired_keep is not None:
            self._close_dropped()

    def retire(self, successor: Runtime | None) -> None:
        """Called once a newer Runtime serves; closes unshared clients when leases end."""
        self._retired_keep = set(successor.upstreams.values()) if successor else set()
        if self._leases == 0:
            self._close_dropped()

    def _close_dropped(self) -> None:
        keep = self._retired_keep or set()
        dropped = [client for client in self.upstreams.values() if client not in keep]
        if dropped and self._closing is None:
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
    """A Runtime for ``config``, reusing the previous one's clients where nothing changed."""
    old = previous.upstreams if previous else {}
    clients: dict[str, UpstreamClient] = {}
    for spec in config.upstreams:
        existing = old.get(spec.name)
        if existing is not None and existing.same_as(spec, environ):
            clients[spec.name] = existing
        else:
            clients[spec.name] = UpstreamClient(spec, environ)
    return Runtime(config, generation, clients)
