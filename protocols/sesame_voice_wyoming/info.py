"""The Wyoming ``info`` answer: one TTS program listing every voice the way Home Assistant shows it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from sesame_voice import Provider, Voice, __version__
from sesame_voice.api.languages import advertised

PROGRAM = "sesame-voice"
PROJECT_URL = ""
"""No public home yet; Home Assistant shows only the names."""
NOBODY = "no provider can speak it now"
ServingProvider = Callable[[Voice], "str | None"]


def wyoming_language(code: str) -> str:
    """``en-us`` / ``en_US`` / ``EN`` → ``en_US`` / ``en``: the spelling wyoming-piper and Home Assistant use."""
    language, _, region = code.replace("-", "_").partition("_")
    return f"{language.lower()}_{region.upper()}" if region else language.lower()


def voice_description(voice: Voice, default: bool) -> str:
    """What Home Assistant lists (and sorts by): the name first, then what it sounds like."""
    text = f"{voice.name}: {voice.description}" if voice.description else voice.name
    return f"{text} (default)" if default else text


def _attribution(voice: Voice, providers: Mapping[str, Provider], serving: ServingProvider) -> Attribution:
    """Who speaks the voice at this moment: its own provider, or the fallback standing in for it."""
    provider = providers.get(serving(voice) or "")
    name = (provider.description or provider.name) if provider is not None else NOBODY
    return Attribution(name=name, url=PROJECT_URL)


def _servable(voice: Voice, providers: Mapping[str, Provider]) -> bool:
    """True if at least one provider the voice may use is installed."""
    return any(name in providers for name, _ in voice.candidates())


def tts_voice(voice: Voice, providers: Mapping[str, Provider], serving: ServingProvider, default: bool) -> TtsVoice:
    """One voice as Home Assistant lists it; speakers only for multi-speaker voices."""
    return TtsVoice(
        name=voice.name,
        description=voice_description(voice, default),
        attribution=_attribution(voice, providers, serving),
        installed=_servable(voice, providers),
        version=__version__,
        languages=advertised(voice.languages),  # every spelling: Home Assistant checks list membership
        speakers=[TtsVoiceSpeaker(name=s) for s in voice.speakers] if len(voice.speakers) > 1 else None,
    )


def build_info(
    voices: Iterable[Voice], providers: Mapping[str, Provider], serving: ServingProvider, default_voice: str | None
) -> Info:
    """The ``info`` event for ``describe``: a single streaming-capable TTS program."""
    return Info(
        tts=[
            TtsProgram(
                name=PROGRAM,
                description="sesame-voice text to speech",
                attribution=Attribution(name="sesame-voice", url=PROJECT_URL),
                installed=True,
                version=__version__,
                voices=[tts_voice(voice, providers, serving, voice.name == default_voice) for voice in voices],
                supports_synthesize_streaming=True,
            )
        ]
    )
