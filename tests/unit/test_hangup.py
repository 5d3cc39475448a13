"""The client-disconnect watcher (``serve.hangup``) with a fake connection.

Scenario matrix: a connection that stays open is never acted on; one whose transport closes (or
goes away) gets the watched task cancelled within one poll, ``fired`` set and ``absorb`` taking
the cancellation back (the task is no longer cancelling); a cancellation that is not the
watcher's is not absorbed and propagates; no connection, no watching; one poll watches many
requests, cancels only those whose client left, and stops polling once nothing is watched.
"""

from __future__ import annotations

import asyncio

import pytest

from switchman.gateway.serve.hangup import Hangup, Hangups


class Transport:
    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


class Connection:
    def __init__(self) -> None:
        self.transport: Transport | None = Transport()


async def watched(
    connection: Connection | None, hangups: Hangups | None = None
) -> tuple[Hangup, bool]:
    """Sleep under a watcher for up to 1 s; (the watcher, whether the watcher cancelled it).
    A cancellation the watcher does not absorb propagates."""
    hangup = (hangups or Hangups(0.01)).watch(connection)  # type: ignore[arg-type]
    try:
        await asyncio.sleep(1.0)
    except asyncio.CancelledError:
        if hangup.absorb():
            return hangup, True
        raise
    finally:
        hangup.close()
    return hangup, False


async def test_an_open_connection_is_left_alone() -> None:
    task = asyncio.create_task(watched(Connection()))
    await asyncio.sleep(0.1)
    assert not task.done()
    task.cancel()  # someone else's cancellation: not absorbed, it propagates
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("how", ["closing", "gone"])
async def test_a_closed_connection_cancels_the_task_and_the_cancellation_is_absorbed(
    how: str,
) -> None:
    connection = Connection()

    async def client_leaves() -> None:
        await asyncio.sleep(0.05)
        if how == "closing":
            assert connection.transport is not None
            connection.transport.closing = True
        else:
            connection.transport = None

    leaving = asyncio.create_task(client_leaves())
    started = asyncio.get_running_loop().time()
    task = asyncio.create_task(watched(connection))
    hangup, cancelled = await task
    await leaving
    assert cancelled
    assert hangup.fired
    assert asyncio.get_running_loop().time() - started < 0.5
    assert not task.cancelling()


async def test_without_a_connection_nothing_is_watched() -> None:
    hangup = Hangups(0.001).watch(None)
    await asyncio.sleep(0.01)
    assert not hangup.gone()
    assert not hangup.fired
    assert not hangup.absorb()
    hangup.close()


async def test_one_poll_cancels_only_the_requests_whose_client_left() -> None:
    hangups = Hangups(0.01)
    staying, leaving = Connection(), Connection()
    stays = asyncio.create_task(watched(staying, hangups))
    leaves = asyncio.create_task(watched(leaving, hangups))
    await asyncio.sleep(0.05)
    assert leaving.transport is not None
    leaving.transport.closing = True
    hangup, cancelled = await asyncio.wait_for(leaves, 0.5)
    assert cancelled
    assert hangup.fired
    assert not stays.done()
    stays.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stays
    await asyncio.sleep(0.03)  # nothing watched: the poll is not re-armed
    assert hangups._handle is None
