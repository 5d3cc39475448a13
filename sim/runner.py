"""Start a simulator inside the current event loop: ``await start(settings)`` → ``RunningSim``.

Used by tests, by ``switchman demo`` (several simulated backends in one process) and by
``switchman.sim.cli``. Port 0 picks a free port; ``RunningSim.url`` reports the real one.
Handlers are cancelled when their client disconnects (as vLLM aborts such requests), so stalled
or queued requests free their engine slot, and shutdown waits at most ``shutdown_timeout``
seconds for in-flight requests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from switchman.sim.server import create_app
from switchman.sim.settings import SimSettings
from switchman.sim.state import SIM_KEY, SimState

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RunningSim:
    """A started simulator; close it (or use ``async with``) to stop listening."""

    app: web.Application
    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL without a path, e.g. ``http://127.0.0.1:8000``; the API is under ``/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def state(self) -> SimState:
        """The running simulator's engine, faults, metrics and recorded requests."""
        return self.app[SIM_KEY]

    async def close(self) -> None:
        await self.runner.cleanup()

    async def __aenter__(self) -> RunningSim:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


async def start(
    settings: SimSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    shutdown_timeout: float = 1.0,
) -> RunningSim:
    """Listen on ``host:port`` (0: a free port) and return once connections are accepted."""
    app = create_app(settings)
    runner = web.AppRunner(
        app, handler_cancellation=True, shutdown_timeout=shutdown_timeout, access_log=None
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    real_port = int(runner.addresses[0][1])
    running = RunningSim(app=app, runner=runner, host=host, port=real_port)
    logger.info("simulator %s listening on %s", settings.served_names[0], running.url)
    return running
