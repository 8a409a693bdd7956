"""The Wyoming ``info`` answer: one TTS program listing every voice."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from sesame_voice import Provider, Voice, __version__

PROGRAM = "sesame-voice"
PROJECT_URL = ""
"""No public home yet; Home Assistant shows only the names."""


def _attribution(voice: Voice, providers: Mapping[str, Provider]) -> Attribution:
    provider = providers.get(voice.provider)
    return Attribution(name=(provider.description if provider else "") or voice.provider, url=PROJECT_URL)


def _servable(voice: Voice, providers: Mapping[str, Provider]) -> bool:
    """True if at least one provider the voice may use is installed."""
    return any(name in providers for name, _ in voice.candidates())


def tts_voice(voice: Voice, providers: Mapping[str, Provider]) -> TtsVoice:
    """One voice as Home Assistant lists it; speakers only for multi-speaker voices."""
    return TtsVoice(
        name=voice.name,
        description=voice.description or voice.name,
        attribution=_attribution(voice, providers),
        installed=_servable(voice, providers),
        version=__version__,
        languages=list(voice.languages),
        speakers=[TtsVoiceSpeaker(name=s) for s in voice.speakers] if len(voice.speakers) > 1 else None,
    )


def build_info(voices: Iterable[Voice], providers: Mapping[str, Provider]) -> Info:
    """The ``info`` event for ``describe``: a single streaming-capable TTS program."""
    return Info(
        tts=[
            TtsProgram(
                name=PROGRAM,
                description="sesame-voice text to speech",
                attribution=Attribution(name="sesame-voice", url=PROJECT_URL),
                installed=True,
                version=__version__,
                voices=[tts_voice(voice, providers) for voice in voices],
                supports_synthesize_streaming=True,
            )
        ]
    )
