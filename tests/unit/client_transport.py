"""A client connection without a socket, for the tests of the gateway's response writers
(``serve.downstream``, ``inbound.writer``): a transport that records each send, a mocked
request whose payload writer is aiohttp's own, on that transport."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import HttpVersion, HttpVersion11
from aiohttp.http_writer import StreamWriter
from aiohttp.test_utils import make_mocked_request


class Transport:
    """Records every send (``write`` or ``writelines``) as one bytes value."""

    def __init__(self, closing: bool = False) -> None:
        self.sends: list[bytes] = []
        self.closing = closing

    def write(self, data: Any) -> None:
        self.sends.append(bytes(data))

    def writelines(self, data: Any) -> None:
        self.sends.append(b"".join(data))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def mocked(
    transport: Transport, path: str = "/v1/chat/completions", version: HttpVersion = HttpVersion11
) -> tuple[web.Request, BaseProtocol]:
    """A POST to ``path`` whose writer is aiohttp's ``StreamWriter`` on ``transport``, and the
    writer's protocol (to pause and resume)."""
    protocol = BaseProtocol(asyncio.get_running_loop())
    protocol.transport = transport  # type: ignore[assignment]
    writer = StreamWriter(protocol, asyncio.get_running_loop())
    request = make_mocked_request("POST", path, writer=writer, version=version)
    return request, protocol
