"""The upstream client's tests run on asyncio's event loop and on uvloop's (the gateway's).

A folder of its own: pytest-asyncio's loop-factory hook applies to every test under the conftest
that defines it, and the rest of the integration tier runs on asyncio's loop alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import uvloop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
