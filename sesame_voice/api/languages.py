"""One language-tag convention for speech to text and text to speech.

Every surface accepts ``en``, ``en-US``, ``en_US`` (any case). Internally a speech recogniser gets
the ISO 639 code (``en``); a voice keeps its region (``en_US``). What is advertised to clients
that match by exact list membership (Home Assistant's Wyoming STT and TTS check
``language in supported_languages``) lists each language in every spelling Home Assistant sends:
the bare code, ``xx-YY`` and ``xx_YY``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sesame_voice.api.errors import InvalidRequest

COMMON_REGIONS = {
    "en": ("US", "GB", "AU", "CA", "IE", "IN", "NZ", "ZA"),
    "de": ("DE", "AT", "CH"),
    "fr": ("FR", "BE", "CA", "CH"),
    "es": ("ES", "MX", "US", "AR"),
    "pt": ("PT", "BR"),
    "nl": ("NL", "BE"),
    "zh": ("CN", "TW", "HK"),
}
"""Regions listed for a language given without a region (Whisper's ``en``, a voice that says ``en``):
a recogniser of ``en`` understands ``en-GB`` as well. Other bare codes are listed bare only."""


def split_tag(tag: str) -> tuple[str, str]:
    """``en-us`` / ``en_US`` / ``EN`` → (``en``, ``US``) / (``en``, ``""``); InvalidRequest if it is no tag."""
    if not isinstance(tag, str):
        raise InvalidRequest("language must be a string such as 'en' or 'en-US'", param="language")
    language, dash, region = tag.strip().replace("_", "-").partition("-")
    language, region = language.lower(), region.split("-")[0].upper()
    if not (language.isalpha() and language.isascii() and 2 <= len(language) <= 3) or not (
        not dash or (region.isalnum() and region.isascii() and 2 <= len(region) <= 4)
    ):
        raise InvalidRequest(
            f"language {tag[:32]!r} is not a language tag such as 'en', 'en-US' or 'en_US'", param="language"
        )
    return language, region


def language_code(tag: str | None) -> str | None:
    """The ISO 639 code of ``tag`` (``en-US`` / ``en_US`` / ``EN`` → ``en``); empty or None → None."""
    if tag is None or (isinstance(tag, str) and not tag.strip()):
        return None
    return split_tag(tag)[0]


def wyoming_tag(tag: str) -> str:
    """``en-us`` / ``en_US`` / ``EN`` → ``en_US`` / ``en``: the spelling Piper voices carry."""
    language, region = split_tag(tag)
    return f"{language}_{region}" if region else language


def spellings(tag: str, regions: Iterable[str] = ()) -> list[str]:
    """Every spelling a client may send for ``tag``: ``en_US`` → ``en``, ``en-US``, ``en_US``.

    A bare code adds ``regions``.
    """
    language, region = split_tag(tag)
    wanted = [region] if region else list(regions)
    forms = [language]
    for each in wanted:
        forms += [f"{language}-{each}", f"{language}_{each}"]
    return forms


def advertised(tags: Iterable[str]) -> list[str]:
    """``tags`` in every spelling (a bare code with its COMMON_REGIONS), without duplicates, in their
    order; unreadable tags are left out."""
    found: dict[str, None] = {}
    for tag in tags:
        try:
            language, region = split_tag(tag)
        except InvalidRequest:
            continue
        regions = COMMON_REGIONS.get(language, ()) if not region else ()
        found.update(dict.fromkeys(spellings(tag, regions)))
    return list(found)
