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


def _state(status: dict) -> str:
    """``ready on cpu`` / why it failed / what it is doing / its state."""
    if status.get("state") == "ready":
        return f"ready on {status.get('device') or 'cpu'}"
    return status.get("error") or status.get("progress") or status.get("state", "unknown")


def stt_check(server) -> dict[str, dict[str, Any]]:
    """Each speech-to-text provider: its models, its state as voice providers show theirs, the default."""
    stt = server.speech_to_text
    default = stt.default_name()
    return {
        name: {"models": [provider.model_name()], "state": _state(provider.status()), "default": name == default}
        for name, provider in stt.providers.items()
    }


def self_check(server) -> dict[str, Any]:
    """What the server can do right now: the report served in /health and logged at start."""
    providers = {name: provider.status() for name, provider in server.providers.items()}
    accelerators = {
        name: status.get("device") or "cpu" for name, status in providers.items() if status.get("state") == "ready"
    }
    return {
        "providers": {name: _state(status) for name, status in providers.items()},
        "speech_to_text": stt_check(server),
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
    for name, stt in report["speech_to_text"].items():
        default = ", default" if stt["default"] else ""
        _LOGGER.info("  speech-to-text provider %s (%s%s): %s", name, ", ".join(stt["models"]), default, stt["state"])
    if not report["speech_to_text"]:
        _LOGGER.info("  speech-to-text: none installed")
    elif not any(stt["default"] for stt in report["speech_to_text"].values()):
        _LOGGER.warning(
            "  speech-to-text: the default provider %r is not installed", server.speech_to_text.default_name()
        )
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
