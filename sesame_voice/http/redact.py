"""Keep file-system paths out of what unauthenticated clients see (the public ``/health``)."""

from __future__ import annotations

import re
from typing import Any

_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~])(?:~|[A-Za-z]:)?[/\\](?:[^\s'\"`,;()\[\]{}<>]+)")
"""An absolute POSIX, home-relative or Windows path inside a message (URLs are left alone)."""
HIDDEN = "<path>"


def hide_paths(value: Any) -> Any:
    """``value`` (JSON-like) with every absolute file path in its strings replaced by ``<path>``."""
    if isinstance(value, str):
        return _ABSOLUTE_PATH.sub(HIDDEN, value)
    if isinstance(value, dict):
        return {hide_paths(key): hide_paths(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [hide_paths(item) for item in value]
    return value
