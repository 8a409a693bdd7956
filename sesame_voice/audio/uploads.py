"""What client uploads may be: an allow-list of containers and codecs, and truncation checks per container.

FFmpeg reads hundreds of formats; uploads are limited to the audio files people send (WAV, MP3,
FLAC, OGG/Opus/Vorbis, WebM/Matroska, MP4/M4A, AIFF, CAF, and ADTS AAC as the speech API writes
it) so a crafted file cannot reach rarely
used demuxers. Truncation is checked from each container's own bookkeeping, since FFmpeg decodes
what is there without complaint: the WAV/AIFF data size, Ogg's end-of-stream page, the MP4 index.
"""

from __future__ import annotations

import struct

ALLOWED_CONTAINERS = frozenset(
    {"wav", "w64", "mp3", "flac", "ogg", "matroska,webm", "mov,mp4,m4a,3gp,3g2,mj2", "aiff", "caf", "aac"}
)
"""PyAV ``container.format.name`` values accepted for uploads."""
ALLOWED_CODEC_PREFIXES = ("pcm_", "mp3", "flac", "vorbis", "opus", "aac", "alac")
"""Audio codecs accepted (``pcm_*`` covers every PCM sample format)."""


def container_refused(format_name: str) -> bool:
    return format_name not in ALLOWED_CONTAINERS


def codec_refused(codec_name: str) -> bool:
    return not codec_name.startswith(ALLOWED_CODEC_PREFIXES)


def looks_like_mp4(data: bytes) -> bool:
    """An ISO-BMFF file (MP4/M4A/MOV): its first box is ``ftyp``."""
    return data[4:8] == b"ftyp"


def truncation(format_name: str, data: bytes) -> str | None:
    """Why the file's own bookkeeping says it is cut short, or None."""
    if format_name == "wav":
        return _riff_truncation(data)
    if format_name == "ogg":
        return _ogg_truncation(data)
    return None


def _riff_truncation(data: bytes) -> str | None:
    """The ``data`` chunk promises more bytes than follow (a streamed 0/0xFFFFFFFF size promises nothing)."""
    offset = 12
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk == b"data":
            held = len(data) - offset - 8
            if size not in (0, 0xFFFFFFFF) and held < size:
                return f"its data chunk promises {size} bytes, the file holds {held}"
            return None
        offset += 8 + size + (size & 1)
    return "it ends before its data chunk"


def _ogg_truncation(data: bytes) -> str | None:
    """The last Ogg page is incomplete or lacks the end-of-stream flag."""
    start = data.rfind(b"OggS")
    if start < 0 or len(data) - start < 27:
        return "its last Ogg page is incomplete"
    segments = data[start + 26]
    lacing = data[start + 27 : start + 27 + segments]
    if len(lacing) < segments or len(data) - start < 27 + segments + sum(lacing):
        return "its last Ogg page is incomplete"
    if not data[start + 5] & 0x04:
        return "it has no end-of-stream page"
    return None
