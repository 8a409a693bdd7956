"""``sesame_voice.deadline``: a cancelled task stays cancelled even when the awaited operation
completes at the same moment (``asyncio.wait_for`` on Python 3.11 loses the cancellation then: a
cancelled agent reply read its LLM's buffered lines on and played to the end)."""

from __future__ import annotations

import asyncio

import pytest

from sesame_voice import deadline


async def _drain_ready_items(queue: asyncio.Queue, timed) -> None:
    while True:
        await timed(queue)


async def _cancelled_while_draining(timed) -> bool:
    """True if cancelling a task that keeps awaiting ready items through ``timed`` stops it."""
    queue: asyncio.Queue = asyncio.Queue()
    for _ in range(1000):
        queue.put_nowait(1)
    task = asyncio.create_task(_drain_ready_items(queue, timed))
    await asyncio.sleep(0)
    task.cancel()
    try:
        await asyncio.wait_for(asyncio.shield(task), 1.0)
    except asyncio.CancelledError:
        return True
    except asyncio.TimeoutError:
        task.cancel()  # a swallowed cancel: the task runs on; stop it for good
    return False


async def _with_deadline(queue: asyncio.Queue) -> None:
    async with deadline(5):
        await queue.get()


async def test_a_deadline_never_swallows_the_callers_cancellation():
    assert all([await _cancelled_while_draining(_with_deadline) for _ in range(10)])


async def test_a_deadline_still_times_out():
    with pytest.raises(asyncio.TimeoutError):
        async with deadline(0.05):
            await asyncio.sleep(5)
