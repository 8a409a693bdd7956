"""What a long-running server needs from its host: logging to a rotated file, and a PID file."""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
from collections.abc import Iterator
from pathlib import Path

from sesame_voice.config import DEFAULT_CACHE_DIR, OLD_CACHE_DIR, Settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_FILE_HANDLER_NAME = "sesame-voice-file"


def adopt_old_cache(settings: Settings) -> Path | None:
    """Move the cache of older releases (``~/.cache/sesame-tts``) to the default ``~/.cache/sesame-voice``.

    Only when CACHE_DIR is the default and does not exist yet; returns the folder moved, if any.
    """
    new, old = DEFAULT_CACHE_DIR.expanduser(), OLD_CACHE_DIR.expanduser()
    if Path(settings.cache_dir).expanduser() != new or new.exists() or not old.is_dir():
        return None
    try:
        new.parent.mkdir(parents=True, exist_ok=True)
        old.rename(new)
    except OSError as err:
        logging.getLogger(__name__).warning("Could not move the old cache %s to %s (%s)", old, new, err)
        return None
    return old


def setup_logging(settings: Settings, to_file: bool = False) -> Path | None:
    """Console logging at LOG_LEVEL, plus the rotated LOG_FILE when ``to_file``; returns its path."""
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    if not any(getattr(h, "name", None) == "sesame-voice-console" for h in root.handlers):
        console = logging.StreamHandler()
        console.name = "sesame-voice-console"
        console.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(console)
    path = settings.cache_path(settings.log_file) if to_file else None
    if path is None:
        return None
    for handler in [h for h in root.handlers if h.name == _FILE_HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=settings.log_max_bytes, backupCount=settings.log_backups, encoding="utf-8"
        )
    except OSError as err:
        logging.getLogger(__name__).warning("Cannot write the log file %s (%s); logging to the console only", path, err)
        return None
    handler.name = _FILE_HANDLER_NAME
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def pid_file(path: Path | None) -> Iterator[Path | None]:
    """Write this process's PID to ``path`` for the duration, and remove it at exit if still ours."""
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError, ValueError):
        other = int(path.read_text().strip())
        if other != os.getpid() and _alive(other):
            logging.getLogger(__name__).warning(
                "PID file %s names a running process (%d); another server may share this CACHE_DIR", path, other
            )
    path.write_text(f"{os.getpid()}\n")
    try:
        yield path
    finally:
        with contextlib.suppress(OSError, ValueError):
            if int(path.read_text().strip()) == os.getpid():
                path.unlink()
