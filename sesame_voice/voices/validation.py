"""Voice files checked at load: the preset's own keys, and each provider's parameters against what
that provider declares (``Provider.voice_params``). A file that fails is rejected with the reason."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sesame_voice.api.params import ParamError, checked_params
from sesame_voice.api.responder import SYSTEM_PROMPT_PARAM
from sesame_voice.api.types import Voice

PRESET_KEYS = ("name", "provider", "params", "description", "aliases", "languages", "fallbacks", "speakers")
"""The keys a YAML preset may have; the provider's parameters go under ``params`` (or in a fallback)."""
PERSONA_PARAMS = (SYSTEM_PROMPT_PARAM,)
"""Keys under ``params`` that are the persona's (read by responders), not the provider's."""
_LISTS = ("aliases", "languages", "speakers", "fallbacks")


class VoiceFileError(ValueError):
    """A file in the voices folder cannot become a voice; the message says why."""


def check_preset(data: Mapping[str, Any]) -> None:
    """Refuse unknown top-level keys and top-level values of the wrong type (VoiceFileError)."""
    for key in data:
        if key not in PRESET_KEYS:
            close = difflib.get_close_matches(str(key), PRESET_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "provider parameters go under 'params'"
            raise VoiceFileError(f"unknown key {str(key)!r} ({hint}); a voice file has {', '.join(PRESET_KEYS)}")
    for key in _LISTS:
        if data.get(key) is not None and not isinstance(data[key], list):
            raise VoiceFileError(f"{key!r} must be a list, got {type(data[key]).__name__}")
    for key in ("name", "description"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise VoiceFileError(f"{key!r} must be a string, got {type(data[key]).__name__}")


def validated(voice: Voice, providers: Mapping[str, Any]) -> Voice:
    """``voice`` with each installed provider's parameters checked against its ``voice_params`` and in
    their declared types; VoiceFileError naming the provider, the key and what it takes.

    A provider that is not installed, or that declares no ``voice_params``, is not checked.
    """
    persona = {key: voice.params[key] for key in PERSONA_PARAMS if key in voice.params}
    provider_params = {key: value for key, value in voice.params.items() if key not in PERSONA_PARAMS}
    params = {**_checked(voice.provider, provider_params, providers, "params"), **persona}
    fallbacks = []
    for index, fallback in enumerate(voice.fallbacks):
        name = str(fallback["provider"])
        rest = {key: value for key, value in fallback.items() if key != "provider"}
        fallbacks.append({"provider": name, **_checked(name, rest, providers, f"fallbacks[{index}]")})
    return replace(voice, params=params, fallbacks=tuple(fallbacks))


def _checked(provider_name: str, values: Mapping[str, Any], providers: Mapping[str, Any], where: str) -> dict:
    specs = getattr(providers.get(provider_name), "voice_params", None)
    if not specs:
        return dict(values)
    try:
        return checked_params(specs, values, f"provider {provider_name}")
    except ParamError as err:
        raise VoiceFileError(f"{where}.{err.name} (provider {provider_name}): {err}") from None
