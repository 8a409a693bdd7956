"""The six response formats: their content types and the sample rate each stream carries."""

from __future__ import annotations

from sesame_voice.api.errors import InvalidRequest

CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
"""Content-Type of each response format, as OpenAI's speech API sends it."""

PCM_SAMPLE_RATE = 24000
"""Raw ``pcm`` is 16-bit little-endian mono at this rate, as OpenAI clients assume."""

OPUS_SAMPLE_RATE = 48000
"""Opus players decode at 48 kHz (RFC 7845 advises it), so the encoder is fed 48 kHz."""

WHOLE_FILE_FORMATS = ("flac",)
"""Formats written only once the audio is complete. A FLAC STREAMINFO must give the total sample
count: a streamed one says 0 (unknown), which FFmpeg reads but libsndfile (Python's
soundfile, librosa) refuses, so FLAC is sent whole, with exact totals and MD5."""

_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (
    7350,
    8000,
    11025,
    12000,
    16000,
    22050,
    24000,
    32000,
    44100,
    48000,
    64000,
    88200,
    96000,
)


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of the six formats, else an InvalidRequest naming them."""
    if fmt not in CONTENT_TYPES:
        raise InvalidRequest(
            f"unsupported response_format {fmt!r}; use one of {', '.join(CONTENT_TYPES)}",
            param="response_format",
        )
    return fmt


def _nearest_rate(rate: int, supported: tuple[int, ...]) -> int:
    """``rate`` if supported, else the lowest supported rate above it, else the highest."""
    if rate in supported:
        return rate
    above = [r for r in supported if r > rate]
    return above[0] if above else supported[-1]


def output_rate(fmt: str, input_rate: int) -> int:
    """Sample rate the stream for ``fmt`` carries, given the provider's rate.

    pcm is always 24 kHz and opus 48 kHz; mp3 and aac keep the input rate when the codec allows
    it (else the next allowed rate up); wav and flac keep the input rate.
    """
    check_format(fmt)
    if input_rate <= 0:
        raise ValueError(f"sample rate must be positive, not {input_rate}")
    if fmt == "pcm":
        return PCM_SAMPLE_RATE
    if fmt == "opus":
        return OPUS_SAMPLE_RATE
    if fmt == "mp3":
        return _nearest_rate(input_rate, _MP3_RATES)
    if fmt == "aac":
        return _nearest_rate(input_rate, _AAC_RATES)
    return int(input_rate)
