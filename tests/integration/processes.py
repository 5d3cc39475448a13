"""Processes for the integration tier: ``switchman`` run as a user runs it, on a port of its own.

``free_port()`` picks a port, ``running(argv)`` starts a child process and always kills and
awaits it on the way out (``switchman(subcommand...)`` and ``gateway(config, port)`` build the
argv), ``wait_http(url)`` waits for an endpoint to answer 200. Test modules import it as
``import processes``, as they import ``fakes``.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path

import aiohttp

SWITCHMAN = (sys.executable, "-m", "switchman.cli.main")
PIPE = asyncio.subprocess.PIPE
DEVNULL = asyncio.subprocess.DEVNULL


def free_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_http(
    url: str, *, proc: asyncio.subprocess.Process | None = None, deadline: float = 20.0
) -> None:
    """Return once ``url`` answers 200; fail at ``deadline`` or as soon as ``proc`` exits."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    async with aiohttp.ClientSession() as session:
        while loop.time() < end:
            if proc is not None and proc.returncode is not None:
                err = (await proc.stderr.read()).decode() if proc.stderr is not None else ""
                raise AssertionError(f"the process exited {proc.returncode} before ready: {err}")
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} not ready within {deadline}s")


@asynccontextmanager
async def running(
    *argv: str,
    env: Mapping[str, str] | None = None,
    stdout: int = DEVNULL,
    stderr: int = DEVNULL,
    grace: float = 0.0,
    own_group: bool = False,
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``argv`` as a child process; on the way out, one still running gets SIGTERM and ``grace``
    seconds to exit (none by default), then is killed, and is always awaited. ``own_group``: in
    a process group of its own (whose id is its pid), as a shell runs a foreground job, so a
    test can signal the group as a terminal's Ctrl-C does."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=stdout, stderr=stderr, env=env, process_group=0 if own_group else None
    )
    try:
        yield proc
    finally:
        if proc.returncode is None and grace > 0:
            proc.send_signal(signal.SIGTERM)
            with suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), grace)
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def switchman(
    *args: str,
    env: Mapping[str, str] | None = None,
    stdout: int = DEVNULL,
    stderr: int = DEVNULL,
    grace: float = 0.0,
    own_group: bool = False,
) -> AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """``switchman ARGS...`` (this interpreter's package) as ``running`` starts it."""
    return running(
        *SWITCHMAN, *args, env=env, stdout=stdout, stderr=stderr, grace=grace, own_group=own_group
    )


def gateway(
    config: Path,
    port: int,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdout: int = DEVNULL,
    stderr: int = DEVNULL,
    grace: float = 0.0,
    own_group: bool = False,
) -> AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """``switchman gateway --config CONFIG --host 127.0.0.1 --port PORT ARGS...``."""
    argv = ("gateway", "--config", str(config), "--host", "127.0.0.1", "--port", str(port))
    return switchman(
        *argv, *args, env=env, stdout=stdout, stderr=stderr, grace=grace, own_group=own_group
    )
