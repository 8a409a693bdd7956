"""Encoding off the synthesis' critical path.

On a machine whose cores run the model (Piper's ONNX Runtime splits each operator over every
core), an encoder at the same priority preempts one of the model's threads and stalls the others
at the operator's end. After the first audio, streamed responses are therefore encoded in threads
of lower priority (``ENCODER_NICENESS``), which run in the model's idle moments; the first piece
and the end of the stream are encoded at normal priority, so neither the first byte nor the last
waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

ENCODER_NICENESS = 10
"""How much lower (Unix ``nice``) the encoder threads run than the server's own threads."""
T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lower_priority() -> None:
    """Lower the calling thread's priority (Linux: per thread); nothing where it cannot be."""
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + ENCODER_NICENESS)


def _encoder_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=os.cpu_count() or 2, thread_name_prefix="encoder", initializer=_lower_priority
            )
        return _pool


async def encode_in_background(function: Callable[..., T], *args) -> T:
    """``function(*args)`` in a low-priority encoder thread."""
    return await asyncio.get_running_loop().run_in_executor(_encoder_pool(), function, *args)
