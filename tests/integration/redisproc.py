"""A real ``redis-server`` (the Debian package) for the integration tier, on a free port of
127.0.0.1 with a temporary directory and no persistence.

``RedisProcess.start()`` runs it and waits until it answers PING; ``stop()`` kills it (a test may
stop it mid-run and ``start()`` it again on the same port). ``make test-integration`` installs
the package first (``tests/integration/setup_redis.sh``); without it the tests that need Redis
fail and say what to install. Test modules import it as ``import redisproc``; the ``redis``
fixture in ``conftest`` starts one per test.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from pathlib import Path

import redis.asyncio as aioredis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """One redis-server child process."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not on PATH: run `bash tests/integration/setup_redis.sh` "
                "(or `sudo apt-get install -y redis-server`)"
            )
        self.binary = binary
        self.workdir = workdir
        self.port = _free_port()
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    await client.ping()
                    return
                except (aioredis.ConnectionError, OSError):
                    await asyncio.sleep(0.025)
            raise RuntimeError(f"redis-server on port {self.port} did not answer within 5 s")
        finally:
            await client.aclose()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.proc = None
