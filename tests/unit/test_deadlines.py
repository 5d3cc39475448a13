"""The process's deadlines (``serve.deadlines``): ``asyncio.timeout`` on one loop timer.

Scenarios: a block that overruns raises TimeoutError at its time and leaves its task not
cancelling; a block that ends in time is never cancelled later; deadlines entered out of order
each fire at their own time; a cancellation that is not the deadline's propagates as it is; no
limit (None) never fires; blocks that ended are dropped from the heap, which stays bounded; the
same Deadlines serves a later event loop. The first three also with ``enter``/``exit`` in place
of ``async with``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from switchman.gateway.serve.deadlines import Deadlines

Block = Callable[[Deadlines, float | None, float], Awaitable[float]]


async def limited(deadlines: Deadlines, limit: float | None, work: float) -> float:
    """Sleep ``work`` seconds under a ``limit``; the time at which the block was left."""
    loop = asyncio.get_running_loop()
    async with deadlines.after(limit):
        await asyncio.sleep(work)
    return loop.time()


async def limited_by_calls(deadlines: Deadlines, limit: float | None, work: float) -> float:
    """``limited`` with ``enter`` and ``exit`` in place of ``async with`` (as ``attempt`` and
    ``relay`` use a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = deadlines.after(limit).enter()
    try:
        await asyncio.sleep(work)
    except BaseException as exc:
        deadline.exit(type(exc), exc)
        raise
    deadline.exit(None, None)
    return loop.time()


BLOCKS = [limited, limited_by_calls]


@pytest.mark.parametrize("block", BLOCKS)
async def test_an_overrun_raises_timeout_at_its_time(block: Block) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await block(Deadlines(), 0.05, 5)
    assert 0.04 <= loop.time() - started < 0.5
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


@pytest.mark.parametrize("block", BLOCKS)
async def test_a_block_that_ends_in_time_is_left_alone(block: Block) -> None:
    deadlines = Deadlines()
    await block(deadlines, 0.05, 0)
    await asyncio.sleep(0.1)  # past the deadline: no cancellation arrives
    assert await block(deadlines, None, 0.01) > 0


async def test_deadlines_entered_out_of_order_fire_at_their_own_times() -> None:
    deadlines = Deadlines()
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def overrun(limit: float) -> float:
        with pytest.raises(TimeoutError):
            await limited(deadlines, limit, 5)
        return loop.time() - started

    late = asyncio.create_task(overrun(0.3))
    await asyncio.sleep(0)
    early = asyncio.create_task(overrun(0.05))
    fits = asyncio.create_task(limited(deadlines, 0.2, 0.1))
    early_s, late_s = await early, await late
    assert 0.04 <= early_s < 0.25
    assert 0.29 <= late_s < 0.8
    assert await fits - started < 0.3


@pytest.mark.parametrize("block", BLOCKS)
async def test_a_cancellation_that_is_not_the_deadlines_propagates(block: Block) -> None:
    task = asyncio.create_task(block(Deadlines(), 5, 5))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_limit_never_fires() -> None:
    deadlines = Deadlines()
    assert await limited(deadlines, None, 0.05) > 0
    assert deadlines._heap == []


async def test_blocks_that_ended_are_dropped_from_the_heap() -> None:
    deadlines = Deadlines()
    for _ in range(1000):
        await limited(deadlines, 60, 0)
    assert len(deadlines._heap) <= 2 * 65


def test_the_same_deadlines_serve_a_later_event_loop() -> None:
    deadlines = Deadlines()

    async def overrun() -> None:
        async with deadlines.after(30):  # its timer is still armed when the loop ends
            await asyncio.sleep(0)
        with pytest.raises(TimeoutError):
            await limited(deadlines, 0.02, 5)

    asyncio.run(overrun())
    asyncio.run(overrun())
