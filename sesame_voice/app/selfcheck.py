"""The startup self-check: providers, accelerators, encoders and voices, logged once and in /health."""

from __future__ import annotations

import functools
import logging
from typing import Any

_LOGGER = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _encoders() -> dict[str, bool]:
    from sesame_voice.audio import encoders_available

    return encoders_available()


def self_check(server) -> dict[str, Any]:
    """What the server can do right now: the report served in /health and logged at start."""
    providers = {name: provider.status() for name, provider in server.providers.items()}
    accelerators = {
        name: status.get("device") or "cpu" for name, status in providers.items() if status.get("state") == "ready"
    }
    return {
        "providers": {
            name: status.get("error") or status.get("progress") or status.get("state", "unknown")
            if status.get("state") != "ready"
            else f"ready on {accelerators[name]}"
            for name, status in providers.items()
        },
        "accelerators": accelerators,
        "encoders": _encoders(),
        "voices": {"loaded": len(server.voices.list()), "rejected": server.voices.errors},
    }


def log_self_check(server) -> None:
    """Log the self-check once: one line per provider, encoders, voices and rejected files."""
    report = self_check(server)
    _LOGGER.info("Self-check:")
    for name, state in report["providers"].items():
        _LOGGER.info("  provider %s: %s", name, state)
    missing = [fmt for fmt, ok in report["encoders"].items() if not ok]
    _LOGGER.info(
        "  encoders: %s%s",
        ", ".join(f for f, ok in report["encoders"].items() if ok),
        f" (missing: {', '.join(missing)})" if missing else "",
    )
    _LOGGER.info(
        "  voices: %d loaded, %d voice files rejected", report["voices"]["loaded"], len(report["voices"]["rejected"])
    )
    for name, why in report["voices"]["rejected"].items():
        _LOGGER.warning("  rejected %s: %s", name, why)
