"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
from aiohttp import web


@pytest.fixture
def header_building(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the runs of aiohttp's own header building (``StreamResponse._prepare_headers``)."""
    runs = [0]
    original = web.StreamResponse._prepare_headers

    async def counted(self: web.StreamResponse) -> None:
        runs[0] += 1
        await original(self)

    monkeypatch.setattr(web.StreamResponse, "_prepare_headers", counted)
    return runs
