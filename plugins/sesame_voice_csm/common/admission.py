"""Which requests are inside the provider: a first-come-first-served gate sized by the loaded backend, and
a count that ``close()`` waits on.

The engine reads a provider's ``concurrency`` once, before the model loads, so the provider offers
the most any backend could take (the torch batch size) and admits here only what the backend that
actually loaded can run: one at a time on MLX (a torch→MLX fallback included), the batch size on
PyTorch. Waiting requests are admitted in arrival order and leave the queue when cancelled.
"""

from __future__ import annotations

import collections
import threading

POLL_SECONDS = 0.05
"""How often a waiting request looks at its ``cancelled`` event."""


class Admission:
    """``with admission.request(cancelled) as admitted:`` - counted at once, and ``admitted`` once its turn came
    (False when it was cancelled or the provider closed while it waited)."""

    def __init__(self, limit: int = 1) -> None:
        self.limit = max(1, int(limit))
        self._lock = threading.Condition()
        self._queue: collections.deque[object] = collections.deque()
        self._running = 0
        self._inside = 0
        self.closing = False
        self.peak = 0
        """Most requests ever generating at once (tests and benchmarks read it)."""

    def resize(self, limit: int) -> None:
        """How many may generate at once from now on (the loaded backend's concurrency)."""
        with self._lock:
            self.limit = max(1, int(limit))
            self._lock.notify_all()

    @property
    def inside(self) -> int:
        """Requests inside ``synthesize`` now, waiting or generating."""
        return self._inside

    def request(self, cancelled: threading.Event) -> "_Inside":
        return _Inside(self, cancelled)

    def wait_empty(self, timeout: float | None = None) -> bool:
        """Block until no request is inside (True), or ``timeout`` seconds passed (False)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._inside == 0, timeout)

    # -- used by _Inside -------------------------------------------------------
    def _enter(self, cancelled: threading.Event) -> bool:
        ticket = object()
        with self._lock:
            self._inside += 1
            self._queue.append(ticket)
            try:
                while not (self._queue[0] is ticket and self._running < self.limit):
                    if cancelled.is_set() or self.closing:
                        return False
                    self._lock.wait(POLL_SECONDS)
                if cancelled.is_set() or self.closing:
                    return False
                self._running += 1
                self.peak = max(self.peak, self._running)
                return True
            finally:
                self._queue.remove(ticket)
                self._lock.notify_all()

    def _leave(self, admitted: bool) -> None:
        with self._lock:
            self._running -= int(admitted)
            self._inside -= 1
            self._lock.notify_all()


class _Inside:
    def __init__(self, admission: Admission, cancelled: threading.Event) -> None:
        self._admission, self._cancelled = admission, cancelled
        self.admitted = False

    def __enter__(self) -> bool:
        self.admitted = self._admission._enter(self._cancelled)
        return self.admitted

    def __exit__(self, *exc) -> None:
        self._admission._leave(self.admitted)
