"""sesame-voice: a self-hosted voice server around Sesame CSM-1B, extended through pluggy plugins."""

from .frontend import Announcement, Frontend
from .hookspecs import hookimpl
from .provider import Provider
from .stt import Segment, SpeechToTextUnavailable, SttProvider, Transcript, TranscriptionJob, Word
from .types import (
    AudioChunk,
    ContextSegment,
    InvalidRequest,
    Overloaded,
    ProviderFailed,
    ProviderJob,
    ProviderUnavailable,
    SesameVoiceError,
    SynthesisRequest,
    UnknownVoice,
    Voice,
)

__version__ = "0.1.0"

__all__ = [
    "Announcement",
    "AudioChunk",
    "ContextSegment",
    "Frontend",
    "InvalidRequest",
    "Overloaded",
    "Provider",
    "ProviderFailed",
    "ProviderJob",
    "ProviderUnavailable",
    "Segment",
    "SesameVoiceError",
    "SpeechToTextUnavailable",
    "SttProvider",
    "SynthesisRequest",
    "Transcript",
    "TranscriptionJob",
    "UnknownVoice",
    "Voice",
    "Word",
    "hookimpl",
    "__version__",
]
