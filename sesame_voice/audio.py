"""Audio encoders, decoders, streaming resampler and time-stretch of the core.

Every encoder is in-process: PyAV (bundled FFmpeg libraries) writes MP3 (LAME), Ogg Opus
(libopus), ADTS AAC-LC and FLAC into a non-seekable sink so each packet can be sent as soon as it
exists; WAV and raw PCM are written here directly. soxr resamples, chunk by chunk, seamlessly.
"""

from __future__ import annotations

import io
import logging
import struct
from fractions import Fraction

import av
import numpy as np
import soxr

from .types import InvalidRequest

_LOGGER = logging.getLogger(__name__)

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

_MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_AAC_RATES = (
    7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000,
)

# format -> (FFmpeg muxer, FFmpeg encoder) for the formats PyAV writes.
_AV_FORMATS = {
    "mp3": ("mp3", "libmp3lame"),
    "opus": ("ogg", "libopus"),
    "aac": ("adts", "aac"),
    "flac": ("flac", "flac"),
}
_OGG_PAGE_US = 100_000
"""Longest Ogg page in microseconds while streaming, so Opus leaves the muxer every 100 ms."""

_WAV_UNKNOWN_SIZE = 0xFFFFFFFF


def _check_format(fmt: str) -> str:
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
    _check_format(fmt)
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


def _as_mono(samples: np.ndarray) -> np.ndarray:
    """A float32 1-D copy of ``samples`` with NaN as silence; (n, 1) and (1, n) shapes allowed."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim > 1 and 1 in x.shape:
        x = x.reshape(-1)
    if x.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {x.shape}")
    return np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)


def _to_int16_bytes(x: np.ndarray) -> bytes:
    """Little-endian int16 PCM of float samples (clipped to [-1, 1])."""
    return np.clip(np.rint(x * 32767.0), -32768, 32767).astype("<i2").tobytes()


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


class StreamResampler:
    """Chunk-by-chunk float32 mono resampler over ``soxr.ResampleStream``; joins are seamless."""

    def __init__(self, in_rate: int, out_rate: int):
        self.in_rate = int(in_rate)
        self.out_rate = int(out_rate)
        self._stream = (
            None
            if self.in_rate == self.out_rate
            else soxr.ResampleStream(self.in_rate, self.out_rate, 1, dtype="float32", quality="HQ")
        )

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Resample the next chunk; the output may lag the input by the filter's delay."""
        x = _as_mono(samples)
        if self._stream is None:
            return x
        return np.asarray(self._stream.resample_chunk(x, last=False), dtype=np.float32).reshape(-1)

    def flush(self) -> np.ndarray:
        """Return the delayed tail; call once, after the last ``process``."""
        if self._stream is None:
            return np.zeros(0, dtype=np.float32)
        tail = self._stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
        return np.asarray(tail, dtype=np.float32).reshape(-1)


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
        data = _to_int16_bytes(x)
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
    nothing is returned before ``finish``, which then returns a file with exact lengths in its
    header (WAV sizes, FLAC STREAMINFO, MP3 Xing/LAME tag).
    """

    content_type: str
    sample_rate: int

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
        self.format = _check_format(fmt)
        self.content_type = CONTENT_TYPES[fmt]
        self.input_rate = int(input_rate)
        self.sample_rate = output_rate(fmt, self.input_rate)
        self._resampler = StreamResampler(self.input_rate, self.sample_rate)
        self._finished = False
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
        if self._finished:
            raise RuntimeError("encode() after finish()")
        x = np.clip(_as_mono(samples), -1.0, 1.0)
        return self._writer.write(self._resampler.process(x))

    def finish(self) -> bytes:
        """Flush the resampler and codec; the stream is complete after these bytes."""
        if self._finished:
            return b""
        self._finished = True
        tail = self._writer.write(np.clip(self._resampler.flush(), -1.0, 1.0))
        return tail + self._writer.close()


def encode_audio(fmt: str, samples: np.ndarray, input_rate: int, **bitrates: int) -> bytes:
    """Encode a whole buffer into one file of ``fmt`` (exact lengths in its header)."""
    encoder = StreamEncoder(fmt, input_rate, whole=True, **bitrates)
    return encoder.encode(samples) + encoder.finish()


def decode_audio(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """Decode bytes of one of the six formats to float32 mono and its sample rate.

    ``pcm`` is taken as 16-bit little-endian mono at 24 kHz; the rest is decoded by PyAV,
    which also reads streamed files whose header carries no length. Channels are averaged.
    """
    _check_format(fmt)
    if fmt == "pcm":
        usable = len(data) - len(data) % 2
        pcm = np.frombuffer(data[:usable], dtype="<i2")
        return pcm.astype(np.float32) / 32768.0, PCM_SAMPLE_RATE
    with av.open(io.BytesIO(data), mode="r") as container:
        if not container.streams.audio:
            raise ValueError(f"no audio stream in the {fmt} data")
        return _decode_container(container)


def _decode_container(container, max_seconds: float | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Every frame of the first audio stream as float32 mono (channels averaged) and its rate.

    With ``rate``, FFmpeg mixes down to mono and resamples while decoding (less memory for long files).
    """
    resampler = av.AudioResampler(format="fltp", layout="mono" if rate else None, rate=rate)
    parts: list[np.ndarray] = []
    stream = container.streams.audio[0]
    rate = rate or stream.codec_context.sample_rate or stream.rate or 0
    decoded = 0
    for frame in _frames(container, stream):
        for out in resampler.resample(frame):
            rate = out.sample_rate
            parts.append(out.to_ndarray().mean(axis=0))
            decoded += out.samples
            if max_seconds is not None and decoded > max_seconds * rate:
                raise InvalidRequest(f"the audio is longer than {max_seconds:.0f} s", param="file",
                                     code="audio_too_long")
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return samples, int(rate)


def _frames(container, stream):
    """The stream's decoded frames, then None (which flushes the resampler)."""
    yield from container.decode(stream)
    yield None


def decode_file(data: bytes, max_seconds: float | None = None, rate: int | None = None) -> tuple[np.ndarray, int]:
    """Decode an audio file of any format PyAV (FFmpeg) reads to float32 mono and its sample rate
    (``rate`` if given: resampled while decoding).

    Raises ``InvalidRequest`` for empty data, data that is not audio, a corrupt or truncated file
    (decoding fails, or the header promises more than the data holds) and audio longer than
    ``max_seconds``.
    """
    if not data:
        raise InvalidRequest("the audio file is empty", param="file", code="empty_audio")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, EOFError) as err:
        raise InvalidRequest(f"the file is not audio that can be decoded ({err})", param="file",
                             code="invalid_audio_file") from None
    with container:
        if not container.streams.audio:
            raise InvalidRequest("the file has no audio stream", param="file", code="invalid_audio_file")
        try:
            samples, rate = _decode_container(container, max_seconds, rate)
        except (av.FFmpegError, ValueError, EOFError) as err:
            if isinstance(err, InvalidRequest):
                raise
            raise InvalidRequest(f"the audio file is corrupt or truncated ({err})", param="file",
                                 code="truncated_audio") from None
        promised = (container.duration or 0) / 1e6
    if rate <= 0 or samples.size == 0:
        raise InvalidRequest("the audio file holds no samples", param="file", code="empty_audio")
    decoded = samples.size / rate
    if promised - decoded > max(0.5, 0.1 * promised):
        raise InvalidRequest(
            f"the audio file is truncated: its header promises {promised:.1f} s, the data holds {decoded:.1f} s",
            param="file", code="truncated_audio",
        )
    return samples, rate


def time_stretch(samples: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """Change tempo by ``speed`` (0.25–4.0; 2.0 halves the duration) keeping the pitch.

    WSOLA: 30 ms Hann frames overlap-added at a fixed 50 % synthesis hop, each taken from the
    input near its nominal position at the offset (±12 ms) whose waveform best continues the
    previous frame, so periodic sounds keep their phase. Output length is ``len / speed``.
    """
    if not 0.25 <= speed <= 4.0:
        raise InvalidRequest(f"speed must be between 0.25 and 4.0, not {speed}", param="speed")
    x = _as_mono(samples)
    if abs(speed - 1.0) < 1e-6 or len(x) == 0:
        return x.copy()
    n_out = int(round(len(x) / speed))
    win = max(32, int(sample_rate * 0.030)) // 2 * 2
    half = hop = win // 2
    tol = max(1, int(sample_rate * 0.012))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)).astype(np.float32)
    pad = 2 * win + tol + int(np.ceil(2 * hop * speed))
    xp = np.concatenate([np.zeros(pad, np.float32), x, np.zeros(pad, np.float32)])
    n_frames = n_out // hop + 2
    out = np.zeros(n_frames * hop + win, dtype=np.float32)
    prev = -1
    for k in range(n_frames):
        nominal = pad + int(round(k * hop * speed)) - half  # start in xp of the analysis frame
        if prev < 0:
            start = nominal
        else:
            target = xp[prev + hop : prev + hop + win]  # where the previous frame would go on
            region = xp[nominal - tol : nominal + tol + win]
            corr = np.correlate(region, target, mode="valid")
            energy = np.cumsum(np.concatenate(([0.0], region.astype(np.float64) ** 2)))
            norm = np.sqrt(energy[win:] - energy[:-win] + 1e-9)
            start = nominal - tol + int(np.argmax(corr / norm))
        out[k * hop : k * hop + win] += window * xp[start : start + win]
        prev = start
    # Periodic Hann at 50 % overlap sums to 1, so no gain correction is needed.
    return out[half : half + n_out].copy()
