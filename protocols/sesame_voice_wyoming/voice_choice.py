"""Which voice a Wyoming request means: a name (+ speaker), a language, or the default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sesame_voice import (
    InvalidRequest,
    SesameVoiceError,
    SynthesisRequest,
    TextSource,
    UnknownVoice,
    Voice,
)

from .info import wyoming_language

FRONTEND = "wyoming"


@dataclass(frozen=True)
class VoiceChoice:
    """The voice a client asked for, checked against the voices folder."""

    voice: Voice
    requested: str | None
    """The name as the client sent it (None: the default voice); the engine resolves it again."""
    sampling: dict[str, Any] = field(default_factory=dict)

    def request(self, text: str = "", source: TextSource | None = None, first_clause: bool = False) -> SynthesisRequest:
        """The engine request in this voice for a whole ``text``, or for text arriving through ``source``."""
        return SynthesisRequest(
            text=text,
            text_source=source,
            first_clause=first_clause,
            voice=self.requested,
            frontend=FRONTEND,
            response_format="pcm",
            sampling=dict(self.sampling),
        )


def choose_voice(server, data: Any) -> VoiceChoice:
    """Resolve a Wyoming ``voice`` object (name + speaker, or language, or nothing)."""
    if data is None:
        data = {}
    if not isinstance(data, dict) or not all(isinstance(v, (str, type(None))) for v in data.values()):
        raise InvalidRequest("'voice' must be an object of strings (name, speaker, language)", param="voice")
    name, speaker, language = data.get("name") or None, data.get("speaker") or None, data.get("language") or None
    if name is None and language is not None:
        name = _voice_for_language(server, language)
    voice = server.engine.resolve_voice(SynthesisRequest(text="", voice=name, frontend=FRONTEND))
    sampling: dict[str, Any] = {}
    if speaker is not None:
        if speaker not in voice.speakers and not (voice.speakers and speaker.isdigit()):
            shown = ", ".join(voice.speakers) or "none"
            raise UnknownVoice(
                f"voice {voice.name} has no speaker {speaker[:64]!r} (speakers: {shown})",
                param="speaker",
                code="speaker_not_found",
            )
        sampling["speaker"] = int(speaker) if speaker.isdigit() and speaker not in voice.speakers else speaker
    return VoiceChoice(voice, name, sampling)


def _voice_for_language(server, language: str) -> str | None:
    """The voice for a ``language`` (None: the default voice).

    A voice that speaks it exactly wins over one that speaks another variant of it (an ``en_US``
    voice for ``en_GB``, an ``en_US`` voice for ``en``); among equals the default voice goes first.
    """
    wanted = wyoming_language(language)

    def fit(voice: Voice) -> int:
        spoken = [wyoming_language(lang) for lang in voice.languages]
        if wanted in spoken:
            return 2
        return 1 if any(lang.split("_")[0] == wanted.split("_")[0] for lang in spoken) else 0

    try:
        default: Voice | None = server.engine.resolve_voice(SynthesisRequest(text="", frontend=FRONTEND))
    except SesameVoiceError:
        default = None
    voices = server.voices.list()
    best = max((fit(voice) for voice in voices), default=0)
    if best == 0:
        raise UnknownVoice(f"no voice speaks language {language[:32]!r}", param="language", code="language_not_found")
    if default is not None and fit(default) == best:
        return None
    return next(voice.name for voice in voices if fit(voice) == best)
