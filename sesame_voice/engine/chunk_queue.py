"""The audio chunks of one job between its provider thread and the event loop, bounded.

The provider thread ``put``s each chunk and waits while ``bound`` chunks are still unread, so a
slow consumer slows the provider down instead of letting audio pile up in memory. The wait ends
when the consumer reads, when the job is cancelled, when the consumer ``close``s the queue (it
went away), or after ``stall_seconds`` without a read (a client that stopped reading must not
hold a model forever): the provider thread is then freed, never left waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

WAIT_POLL_SECONDS = 0.1
"""How often a waiting producer re-checks its job's ``cancelled`` flag (set from elsewhere)."""

STALL_SECONDS = 60.0
"""How long a producer waits for a consumer that reads nothing before giving the job up."""


class ChunkQueue:
    """An ``asyncio.Queue`` filled from a thread, holding at most ``bound`` unread chunks."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        bound: int,
        cancelled: threading.Event,
        stall_seconds: float = STALL_SECONDS,
    ) -> None:
        if bound < 1:
            raise ValueError(f"bound must be at least 1, got {bound}")
        self.bound = bound
        self.stall_seconds = stall_seconds
        self.stalled = False
        """Set when the consumer read nothing for ``stall_seconds`` while the queue was full."""
        self._loop = loop
        self._items: asyncio.Queue = asyncio.Queue()
        self._cancelled = cancelled
        self._space = threading.Condition()
        self._unread = 0
        """Chunks put and not yet taken (including any still on their way to the loop)."""
        self._closed = False

    def put(self, chunk, waiting: Callable[[], AbstractContextManager] | None = None) -> bool:
        """Hand over a chunk (from the producer thread), first waiting for room; False if the
        consumer is gone or the job was cancelled (the chunk is dropped: stop producing).

        ``waiting`` wraps the wait, so a provider can let other jobs have their turn meanwhile.
        """
        if self._full():
            with waiting() if waiting is not None else contextlib.nullcontext():
                with self._space:
                    give_up_at = time.monotonic() + self.stall_seconds
                    while self._unread >= self.bound and not self._stopped():
                        if time.monotonic() >= give_up_at:
                            self.stalled = True
                            return False
                        self._space.wait(WAIT_POLL_SECONDS)
        with self._space:
            if self._stopped():
                return False
            self._unread += 1
        self._send((True, chunk))
        return True

    def _full(self) -> bool:
        with self._space:
            return self._unread >= self.bound and not self._stopped()

    def put_final(self, item) -> None:
        """Hand over an end marker or error without waiting (it never counts against the bound)."""
        self._send((False, item))

    async def get(self):
        """The next item, once there is one; frees a place for the producer."""
        counted, item = await self._items.get()
        if counted:
            with self._space:
                self._unread -= 1
                self._space.notify_all()
        return item

    def close(self) -> None:
        """The consumer is gone: a producer waiting for room stops at once."""
        with self._space:
            self._closed = True
            self._space.notify_all()

    def _stopped(self) -> bool:
        return self._closed or self._cancelled.is_set()

    def _send(self, item) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed
            self._loop.call_soon_threadsafe(self._items.put_nowait, item)
