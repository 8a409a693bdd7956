"""A deadline for awaits that never swallows the caller's cancellation.

Python 3.11's ``asyncio.wait_for`` returns the result when the awaited operation completes just as
the calling task is cancelled, and the cancellation is lost (fixed in 3.12). A loop of fast awaits,
such as reading an LLM's buffered stream line by line, hits that window almost every time: a
cancelled reply then played on to its end. ``deadline`` is ``asyncio.timeout`` (3.11+), or
``async_timeout.timeout`` on 3.10 (installed with aiohttp there); both raise ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import sys

if sys.version_info >= (3, 11):
    deadline = asyncio.timeout
else:  # pragma: no cover - Python 3.10
    from async_timeout import timeout as deadline

__all__ = ["deadline"]
