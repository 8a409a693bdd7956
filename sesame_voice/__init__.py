"""sesame-voice: a self-hosted voice server around Sesame CSM-1B, extended through pluggy plugins."""

from .frontend import Announcement, Frontend
from .hookspecs import hookimpl
from .provider import Provider
from .responder import Responder, ResponderFailed, ResponderTimeout, ResponderUnavailable
from .stt import Segment, SpeechToTextUnavailable, SttProvider, Transcript, TranscriptionJob, Word
from .text import TextSource
from .types import (
    AudioChunk,
    ClipPolicy,
    ContextSegment,
    InvalidRequest,
    Overloaded,
    ProviderFailed,
    ProviderJob,
    ProviderUnavailable,
    RejectedFile,
    SesameVoiceError,
    SynthesisRequest,
    UnknownVoice,
    Voice,
)
from .voices import VoiceChanges

__version__ = "0.1.0"

__all__ = [
    "Announcement",
    "AudioChunk",
    "ClipPolicy",
    "ContextSegment",
    "Frontend",
    "InvalidRequest",
    "Overloaded",
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
    "hookimpl",
    "__version__",
]
