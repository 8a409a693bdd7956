"""Streaming encoders of the six response formats: float32 mono chunks in, bytes out.

Every encoder is in-process: PyAV (bundled FFmpeg libraries) writes MP3 (LAME), Ogg Opus
(libopus) and ADTS AAC-LC into a non-seekable sink so each packet can be sent as soon as it
exists, and FLAC whole (see ``WHOLE_FILE_FORMATS``); WAV and raw PCM are written here directly.
"""

from __future__ import annotations

import io
import logging
import struct
import threading
from fractions import Fraction

import av
import numpy as np

from .formats import CONTENT_TYPES, WHOLE_FILE_FORMATS, check_format, output_rate
from .pcm import as_mono, to_pcm16
from .resampling import StreamResampler

_LOGGER = logging.getLogger(__name__)

# format -> (FFmpeg muxer, FFmpeg encoder) for the formats PyAV writes.
_AV_FORMATS = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
}


def encoders_available() -> dict[str, bool]:
    """Whether the bundled FFmpeg (PyAV) can encode each response format (wav and pcm need none)."""
    found = {"wav": True, "pcm": True}
    for fmt, (_, codec) in _AV_FORMATS.items():
        try:
            av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 - any failure means the format cannot be served
            found[fmt] = False
        else:
            found[fmt] = True
    return found


_OGG_PAGE_US = 100_000
"""Longest Ogg page in microseconds while streaming, so Opus leaves the muxer every 100 ms."""

_WAV_UNKNOWN_SIZE = 0xFFFFFFFF


def _wav_header(sample_rate: int, data_bytes: int | None) -> bytes:
    """44-byte header of 16-bit mono PCM WAV; unknown length gives 0xFFFFFFFF sizes."""
    if data_bytes is None or data_bytes + 36 > _WAV_UNKNOWN_SIZE:
        riff_size = data_size = _WAV_UNKNOWN_SIZE
    else:
        riff_size, data_size = data_bytes + 36, data_bytes
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


def fix_wav_sizes(file) -> None:
    """Write the real sizes into a streamed WAV (whose header says 0xFFFFFFFF) once it is complete.

    ``file`` is the seekable file the WAV stream was written to, from its first byte.
    """
    end = file.seek(0, 2)
    if end < 44 or end - 8 > _WAV_UNKNOWN_SIZE:
        return  # empty, or too long for WAV's 32-bit sizes: leave "unknown"
    file.seek(4)
    file.write(struct.pack("<I", end - 8))
    file.seek(40)
    file.write(struct.pack("<I", end - 44))
    file.seek(end)


class _ByteSink:
    """Write-only, non-seekable file object: FFmpeg muxers then never seek back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class _AvWriter:
    """One PyAV output container and audio stream (mp3, opus, aac, flac)."""

    def __init__(self, fmt: str, sample_rate: int, bit_rate: int | None, whole: bool):
        muxer, codec = _AV_FORMATS[fmt]
        # A whole file goes to a seekable buffer so the muxer can rewrite its header at the end
        # (FLAC STREAMINFO totals and MD5, MP3 Xing/LAME gapless tag); a stream goes to a sink
        # that cannot seek, so every byte handed out stays valid.
        self._file: io.BytesIO | _ByteSink = io.BytesIO() if whole else _ByteSink()
        options = {"id3v2_version": "0"} if fmt == "mp3" else {}
        if fmt == "flac":
            options["metadata_header_padding"] = "0"  # else an 8 KiB PADDING block leads the stream
        if not whole:
            options["flush_packets"] = "1"
            if fmt == "opus":
                options["page_duration"] = str(_OGG_PAGE_US)
        self._container = av.open(self._file, mode="w", format=muxer, container_options=options)
        self._stream = self._container.add_stream(codec, rate=sample_rate)
        ctx = self._stream.codec_context
        ctx.layout = "mono"
        if fmt == "mp3":
            # LAME quality 7: about a third less CPU than the default at 64 kbit/s speech, where the
            # difference is inaudible; encoding competes with synthesis for the same cores.
            ctx.options = {"compression_level": "7"}
        if bit_rate:
            ctx.bit_rate = bit_rate
        self._rate = sample_rate
        self._pts = 0

    def _mux(self, packets) -> None:
        for packet in packets:
            self._container.mux(packet)

    def _take(self) -> bytes:
        return self._file.take() if isinstance(self._file, _ByteSink) else b""

    def write(self, x: np.ndarray) -> bytes:
        if len(x):
            frame = av.AudioFrame.from_ndarray(x.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self._rate
            frame.pts = self._pts
            frame.time_base = Fraction(1, self._rate)
            self._pts += len(x)
            self._mux(self._stream.encode(frame))  # PyAV re-frames to the codec's frame size
        return self._take()

    def abort(self) -> None:
        """Release the codec and container without flushing (the client is gone)."""
        try:
            self._container.close()
        except Exception:  # noqa: BLE001 - a half-written container may refuse to close cleanly
            pass

    def close(self) -> bytes:
        if self._pts == 0:  # no audio at all: 10 ms of silence keeps the file decodable
            self.write(np.zeros(max(1, self._rate // 100), dtype=np.float32))
        self._mux(self._stream.encode(None))
        self._container.close()
        if isinstance(self._file, io.BytesIO):
            return self._file.getvalue()
        return self._take()


class _PcmWriter:
    """Raw int16 PCM, optionally behind a WAV header."""

    def __init__(self, sample_rate: int, wav: bool, whole: bool):
        self._rate = sample_rate
        self._wav = wav
        self._whole = whole
        self._header_sent = False
        self._held: list[bytes] = []

    def write(self, x: np.ndarray) -> bytes:
        data = to_pcm16(x)
        if self._whole:
            self._held.append(data)
            return b""
        if self._wav and not self._header_sent:
            self._header_sent = True
            return _wav_header(self._rate, None) + data
        return data

    def close(self) -> bytes:
        if not self._whole:
            if self._wav and not self._header_sent:
                self._header_sent = True
                return _wav_header(self._rate, None)
            return b""
        data = b"".join(self._held)
        self._held.clear()
        return (_wav_header(self._rate, len(data)) if self._wav else b"") + data


class StreamEncoder:
    """Incremental encoder: float32 mono chunks in, bytes out.

    The concatenation of everything ``encode`` and ``finish`` return is ONE valid stream,
    decodable from its first byte to its last. Input is clipped to [-1, 1] and resampled to
    ``sample_rate`` with a streaming resampler, so chunk joins are seamless. With ``whole=True``
    (always for the formats in ``WHOLE_FILE_FORMATS``) nothing is returned before ``finish``,
    which then returns a file with exact lengths in its header (WAV sizes, FLAC STREAMINFO, MP3
    Xing/LAME tag); ``streaming`` says which it is.
    """

    content_type: str
    sample_rate: int
    streaming: bool

    def __init__(
        self,
        fmt: str,
        input_rate: int,
        *,
        mp3_bitrate: int = 64,
        opus_bitrate: int = 32,
        aac_bitrate: int = 64,
        whole: bool = False,
    ):
        self.format = check_format(fmt)
        self.content_type = CONTENT_TYPES[fmt]
        self.input_rate = int(input_rate)
        self.sample_rate = output_rate(fmt, self.input_rate)
        self._resampler = StreamResampler(self.input_rate, self.sample_rate)
        self._finished = False
        self._lock = threading.Lock()  # abort() from the loop waits for an encode() running in a thread
        whole = whole or fmt in WHOLE_FILE_FORMATS
        self.streaming = not whole
        if fmt in ("wav", "pcm"):
            self._writer: _AvWriter | _PcmWriter = _PcmWriter(self.sample_rate, fmt == "wav", whole)
        else:
            kbps = {"mp3": mp3_bitrate, "opus": opus_bitrate, "aac": aac_bitrate}.get(fmt)
            if fmt == "opus" and kbps and not 6 <= kbps <= 256:
                _LOGGER.debug("Opus bitrate %s kbps clamped to 6-256 (mono)", kbps)
                kbps = min(max(kbps, 6), 256)  # libopus refuses more than 256 kbps per channel
            self._writer = _AvWriter(fmt, self.sample_rate, kbps * 1000 if kbps else None, whole)

    def encode(self, samples: np.ndarray) -> bytes:
        """Encode the next chunk; may return ``b""`` while the codec buffers."""
        with self._lock:
            if self._finished:
                raise RuntimeError("encode() after finish()")
            x = np.clip(as_mono(samples), -1.0, 1.0)
            return self._writer.write(self._resampler.process(x))

    def abort(self) -> None:
        """Free the codec without finishing the stream (a client that went away); idempotent."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
            if isinstance(self._writer, _AvWriter):
                self._writer.abort()

    def finish(self) -> bytes:
        """Flush the resampler and codec; the stream is complete after these bytes."""
        with self._lock:
            if self._finished:
                return b""
            self._finished = True
            tail = self._writer.write(np.clip(self._resampler.flush(), -1.0, 1.0))
            return tail + self._writer.close()


def encode_audio(fmt: str, samples: np.ndarray, input_rate: int, **bitrates: int) -> bytes:
    """Encode a whole buffer into one file of ``fmt`` (exact lengths in its header)."""
    encoder = StreamEncoder(fmt, input_rate, whole=True, **bitrates)
    return encoder.encode(samples) + encoder.finish()
