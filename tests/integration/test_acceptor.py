"""``acceptor``: connections are accepted in batches, on uvloop too, and a process out of file
descriptors pauses accepting instead of spinning.

- 200 clients connect while nothing accepts (the kernel completes their handshakes into the
  backlog); within a few loop iterations of the uvloop loop, all 200 have a protocol. uvloop's
  own server accepts one connection per iteration, which under load kept connections waiting
  for seconds.
- a listening socket whose ``accept`` fails with EMFILE: the acceptor logs what to do, stops
  watching the socket, and accepts the waiting client once the pause is over.
- the gateway itself through ``AcceptorSite``: it answers over HTTP, and after ``stop`` its port
  refuses connections.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiohttp import ClientSession

from switchman.gateway import acceptor
from switchman.gateway.acceptor import Acceptor, AcceptorSite, listening
from switchman.gateway.app import create_app
from switchman.gateway.listener import GatewayRunner
from switchman.gateway.telemetry.metrics import Metrics
from switchman.gateway.upstreams.config import ConfigWatcher


class Counting(asyncio.Protocol):
    def __init__(
        self, made: list[asyncio.BaseTransport], arrived: asyncio.Event | None = None
    ) -> None:
        self.made = made
        self.arrived = arrived

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)
        if self.arrived is not None:
            self.arrived.set()


def test_all_pending_connections_are_accepted_within_a_few_uvloop_iterations() -> None:
    async def main() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        made: list[asyncio.BaseTransport] = []
        sockets = listening("127.0.0.1", 0)
        port = sockets[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(200)]
        accepting = Acceptor(loop, sockets, lambda: Counting(made))
        try:
            for _ in range(10):
                await asyncio.sleep(0)
            return len(made), len(clients)
        finally:
            accepting.close()
            for transport in made:
                transport.close()
            for client in clients:
                client.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        accepted, connected = runner.run(main())
    assert connected == 200
    assert accepted == 200


class Exhausted(socket.socket):
    """A listening socket whose first ``accept`` fails as a process out of descriptors does."""

    failures = 1

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


async def test_out_of_descriptors_pauses_accepting_and_resumes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(acceptor, "PAUSE_S", 0.3)
    loop = asyncio.get_running_loop()
    sock = Exhausted(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    made: list[asyncio.BaseTransport] = []
    caplog.set_level(logging.ERROR, logger="switchman.gateway.acceptor")
    arrived = asyncio.Event()
    accepting = Acceptor(loop, [sock], lambda: Counting(made, arrived))
    client = socket.create_connection(sock.getsockname())
    try:
        await asyncio.sleep(0.1)
        assert made == []  # paused, not spinning on the readable socket
        assert "raise the process's open-file limit" in caplog.text
        assert len(caplog.records) == 1
        async with asyncio.timeout(5):
            await arrived.wait()
        assert len(made) == 1
    finally:
        accepting.close()
        for transport in made:
            transport.close()
        client.close()


async def test_the_gateway_serves_through_the_site_and_stops_listening(
    tmp_path: Path,
) -> None:
    path = tmp_path / "gateway.json"
    config = {
        "version": 1,
        "upstreams": [{"name": "nowhere", "base_url": "http://127.0.0.1:9/v1"}],
        "models": [{"name": "tiny", "upstream": "nowhere"}],
    }
    path.write_text(json.dumps(config))
    metrics = Metrics()
    watcher = ConfigWatcher(path, metrics, environ={})
    watcher.load_initial()
    runner = GatewayRunner(create_app(watcher, metrics), access_log=None)
    await runner.setup()
    site = AcceptorSite(runner, "127.0.0.1", 0)
    try:
        await site.start()
        assert site.name == f"http://127.0.0.1:{site.port}"
        async with ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{site.port}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{site.port}/v1/nowhere") as response:
                assert response.status == 404
                assert (await response.json())["error"]["code"] == "not_found"
        await site.stop()
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", site.port)
    finally:
        await runner.cleanup()


def test_a_busy_address_is_an_oserror_and_leaves_no_socket_open() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    try:
        with pytest.raises(OSError, match="in use") as caught:
            listening("127.0.0.1", holder.getsockname()[1])
        assert caught.value.errno == errno.EADDRINUSE
    finally:
        holder.close()


def test_workers_share_a_port_with_reuse_port() -> None:
    first = listening("127.0.0.1", 0, reuse_port=True)
    port = first[0].getsockname()[1]
    second = listening("127.0.0.1", port, reuse_port=True)
    try:
        assert second[0].getsockname()[1] == port
    finally:
        for sock in first + second:
            sock.close()
