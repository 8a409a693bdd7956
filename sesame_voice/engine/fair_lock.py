"""Fair turns at one provider: concurrent jobs take turns chunk by chunk, in the order they asked."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator


class FairLock:
    """A first-come-first-served lock whose holder can step aside (after a chunk, or while it waits for text)."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._queue: deque[int] = deque()
        """Thread ids: the first holds the turn, the rest wait in order."""

    def acquire(self) -> None:
        """Queue up and wait until it is this thread's turn."""
        me = threading.get_ident()
        with self._changed:
            self._queue.append(me)
            while self._queue[0] != me:
                self._changed.wait()

    def release(self) -> None:
        """Hand the turn to the next thread in line."""
        with self._changed:
            self._queue.popleft()
            self._changed.notify_all()

    def holds(self) -> bool:
        """True if the calling thread has the turn."""
        with self._changed:
            return bool(self._queue) and self._queue[0] == threading.get_ident()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """``with turns.held():`` run with the turn."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def pass_on(self) -> None:
        """Let every thread already waiting have a turn, then continue."""
        with self._changed:
            if len(self._queue) < 2:
                return
        self.release()
        self.acquire()

    @contextlib.contextmanager
    def stepped_aside(self) -> Iterator[None]:
        """Give up the turn while blocked on something else (text still arriving); take it back after."""
        if not self.holds():
            yield
            return
        self.release()
        try:
            yield
        finally:
            self.acquire()
