"""sesame-voice: a self-hosted voice server around Sesame CSM-1B, extended through pluggy plugins."""

from sesame_voice.api.deadline import deadline
from sesame_voice.api.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    Overloaded,
    ProviderFailed,
    ProviderUnavailable,
    SesameVoiceError,
    UnknownVoice,
)
from sesame_voice.api.frontend import Announcement, Frontend
from sesame_voice.api.hookspecs import hookimpl
from sesame_voice.api.lead import Continued, Lead, whole_sentences
from sesame_voice.api.params import ParamSpec
from sesame_voice.api.provider import Provider
from sesame_voice.api.responder import Responder, ResponderFailed, ResponderTimeout, ResponderUnavailable
from sesame_voice.api.stt import (
    Segment,
    SpeechToTextUnavailable,
    SttProvider,
    Transcript,
    TranscriptionJob,
    Word,
)
from sesame_voice.api.text import TextSource
from sesame_voice.api.types import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    AudioChunk,
    ClipPolicy,
    ContextSegment,
    ProviderJob,
    RejectedFile,
    SynthesisRequest,
    Voice,
)
from sesame_voice.api.version import __version__
from sesame_voice.voices.library import VoiceChanges

__all__ = [
    "Announcement",
    "AudioChunk",
    "ClipPolicy",
    "Conflict",
    "Continued",
    "ContextSegment",
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "Frontend",
    "InvalidRequest",
    "Lead",
    "NotFound",
    "Overloaded",
    "ParamSpec",
    "Provider",
    "ProviderFailed",
    "ProviderJob",
    "ProviderUnavailable",
    "RejectedFile",
    "Responder",
    "ResponderFailed",
    "ResponderTimeout",
    "ResponderUnavailable",
    "Segment",
    "SesameVoiceError",
    "SpeechToTextUnavailable",
    "SttProvider",
    "SynthesisRequest",
    "TextSource",
    "Transcript",
    "TranscriptionJob",
    "UnknownVoice",
    "Voice",
    "VoiceChanges",
    "Word",
    "deadline",
    "hookimpl",
    "whole_sentences",
    "__version__",
]
