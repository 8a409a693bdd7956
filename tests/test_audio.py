"""sesame_voice.audio: encoders, decoders, resampler and time-stretch, with real decoders."""

from __future__ import annotations

import io
import struct
import wave

import numpy as np
import pytest
import soundfile as sf
import soxr

from sesame_voice.api.errors import InvalidRequest
from sesame_voice.audio import (
    CONTENT_TYPES,
    PCM_SAMPLE_RATE,
    WHOLE_FILE_FORMATS,
    StreamEncoder,
    StreamResampler,
    StreamStretcher,
    decode_audio,
    encode_audio,
    output_rate,
    time_stretch,
)
from sesame_voice.config import RESPONSE_FORMATS

IN_RATE = 22050
TONE_HZ = 440.0
ODD_CHUNKS = (1, 17, 441, 1000, 2203, 4099, 331)
LOSSLESS = ("flac", "wav", "pcm")
# Encoder delay/padding that a stream cannot signal (no gapless header): LAME ~1.5k samples,
# AAC 1024 priming samples plus the last frame's padding.
DURATION_SLACK_S = {"mp3": 0.08, "aac": 0.12, "opus": 0.01, "flac": 1e-3, "wav": 1e-3, "pcm": 1e-3}


def tone(seconds: float, rate: int = IN_RATE, freq: float = TONE_HZ, amp: float = 0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stream_encode(fmt: str, samples: np.ndarray, rate: int = IN_RATE, chunks=ODD_CHUNKS, **kw):
    """Encode in chunks of the given sizes (cycled); return (bytes, per-encode outputs, encoder)."""
    encoder = StreamEncoder(fmt, rate, **kw)
    outputs, i, j = [], 0, 0
    while i < len(samples):
        size = chunks[j % len(chunks)]
        outputs.append(encoder.encode(samples[i : i + size]))
        i, j = i + size, j + 1
    return b"".join(outputs) + encoder.finish(), outputs, encoder


def middle(y: np.ndarray, rate: int, edge_s: float = 0.1) -> np.ndarray:
    """The signal without its edges, where codecs prime and pad."""
    edge = int(edge_s * rate)
    return y[edge : len(y) - edge]


def tone_fraction(y: np.ndarray, rate: int, freq: float = TONE_HZ) -> float:
    """Share of the (middle) signal's energy explained by a sinusoid of ``freq``."""
    m = middle(y, rate).astype(np.float64)
    t = np.arange(len(m)) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef, *_ = np.linalg.lstsq(basis, m, rcond=None)
    return float(1.0 - np.sum((m - basis @ coef) ** 2) / np.sum(m**2))


def dominant_freq(y: np.ndarray, rate: int) -> float:
    """Peak frequency of the middle of ``y`` (Hann window, zero-padded FFT, parabolic peak)."""
    m = middle(y, rate).astype(np.float64)
    m = m * np.hanning(len(m))
    n_fft = 8 * int(2 ** np.ceil(np.log2(len(m))))
    mag = np.abs(np.fft.rfft(m, n_fft))
    k = int(np.argmax(mag[1:-1])) + 1
    a, b, c = np.log(mag[k - 1 : k + 2] + 1e-12)
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + shift) * rate / n_fft)


def roughness(y: np.ndarray, rate: int) -> float:
    """Largest second difference in the middle of ``y``: a click at a chunk join shows up here."""
    return float(np.abs(np.diff(middle(y, rate), 2)).max())


def tone_roughness(rate: int, amp: float = 0.5) -> float:
    """Largest second difference of the pure tone itself at ``rate``."""
    return amp * (2 * np.pi * TONE_HZ / rate) ** 2


# -- API basics ------------------------------------------------------------------------------


def test_content_types_cover_every_response_format():
    assert set(CONTENT_TYPES) == set(RESPONSE_FORMATS)
    assert CONTENT_TYPES["mp3"] == "audio/mpeg"
    assert CONTENT_TYPES["opus"] == "audio/ogg"
    assert CONTENT_TYPES["aac"] == "audio/aac"
    assert CONTENT_TYPES["pcm"] == "audio/pcm"


@pytest.mark.parametrize(
    ("fmt", "rate", "expected"),
    [
        ("pcm", 22050, 24000),
        ("pcm", 48000, 24000),
        ("opus", 22050, 48000),
        ("opus", 24000, 48000),
        ("mp3", 22050, 22050),
        ("mp3", 24000, 24000),
        ("mp3", 23000, 24000),
        ("mp3", 96000, 48000),
        ("aac", 22050, 22050),
        ("aac", 23000, 24000),
        ("wav", 22050, 22050),
        ("flac", 16000, 16000),
    ],
)
def test_output_rate(fmt, rate, expected):
    assert output_rate(fmt, rate) == expected
    assert StreamEncoder(fmt, rate).sample_rate == expected


def test_unknown_format_is_an_invalid_request():
    with pytest.raises(InvalidRequest) as err:
        StreamEncoder("ogg", 24000)
    assert err.value.param == "response_format"
    with pytest.raises(InvalidRequest):
        encode_audio("m4a", tone(0.1), IN_RATE)


def test_encode_after_finish_raises():
    encoder = StreamEncoder("mp3", IN_RATE)
    encoder.encode(tone(0.1))
    encoder.finish()
    assert encoder.finish() == b""
    with pytest.raises(RuntimeError):
        encoder.encode(tone(0.1))


# -- every format, streamed and whole ---------------------------------------------------------


@pytest.mark.parametrize("fmt", RESPONSE_FORMATS)
@pytest.mark.parametrize("mode", ["streamed", "whole"])
def test_roundtrip_tone(fmt, mode):
    x = tone(2.0)
    if mode == "streamed":
        data, _, encoder = stream_encode(fmt, x)
        rate = encoder.sample_rate
        assert encoder.content_type == CONTENT_TYPES[fmt]
    else:
        data = encode_audio(fmt, x, IN_RATE)
        rate = output_rate(fmt, IN_RATE)
    y, decoded_rate = decode_audio(data, fmt)
    assert decoded_rate == rate
    duration = len(y) / decoded_rate
    assert 2.0 - 0.001 <= duration <= 2.0 + DURATION_SLACK_S[fmt], duration
    assert abs(dominant_freq(y, decoded_rate) - TONE_HZ) < 1.0
    assert tone_fraction(y, decoded_rate) > (0.9999 if fmt in LOSSLESS else 0.999)
    assert 0.45 < np.abs(middle(y, decoded_rate)).max() < 0.55
    # No click anywhere, joins included: the waveform stays as smooth as the tone itself.
    limit = tone_roughness(decoded_rate)
    if fmt in LOSSLESS:
        assert roughness(y, decoded_rate) < 1.05 * limit + 5e-4
    else:
        assert roughness(y, decoded_rate) < 1.5 * limit + 2e-3


@pytest.mark.parametrize("fmt", RESPONSE_FORMATS)
def test_streamed_chunking_matches_whole(fmt):
    """Odd chunk sizes give the same decoded signal as one chunk: nothing breaks at the joins."""
    x = tone(1.5)
    streamed, _, _ = stream_encode(fmt, x)
    one_chunk, _, _ = stream_encode(fmt, x, chunks=(len(x),))
    a, rate = decode_audio(streamed, fmt)
    b, _ = decode_audio(one_chunk, fmt)
    assert len(a) == len(b)
    assert np.abs(a - b).max() < 1e-3
    assert roughness(a, rate) <= 1.05 * roughness(b, rate) + 1e-4


@pytest.mark.parametrize("fmt", ["mp3", "opus", "wav", "flac"])
@pytest.mark.parametrize("mode", ["streamed", "whole"])
def test_soundfile_decodes_too(fmt, mode):
    """libsndfile, a second decoder, reads what we write (it cannot read ADTS; raw PCM: see test_formats_read_back)."""
    x = tone(1.0)
    data = stream_encode(fmt, x)[0] if mode == "streamed" else encode_audio(fmt, x, IN_RATE)
    y, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == output_rate(fmt, IN_RATE)
    assert 1.0 - 0.001 <= len(y) / rate <= 1.0 + DURATION_SLACK_S[fmt]
    assert abs(dominant_freq(y, rate) - TONE_HZ) < 1.0
    # At 32 kbps libopus starts a pure tone in SILK/hybrid mode for ~0.4 s; libsndfile's libopus
    # decodes those frames a little differently from FFmpeg's own decoder (both are valid).
    assert tone_fraction(y, rate) > (0.99 if fmt == "opus" else 0.999)


def test_flac_whole_is_exact_and_has_length():
    x = tone(1.0)
    data = encode_audio("flac", x, IN_RATE)
    with sf.SoundFile(io.BytesIO(data)) as f:
        assert (f.samplerate, f.channels, f.frames) == (IN_RATE, 1, len(x))
        y = f.read(dtype="float32")
    assert np.abs(y - x).max() <= 1.0 / 32767 + 1e-6  # lossless up to 16-bit quantisation


def test_flac_is_always_whole_so_its_header_has_the_total():
    """libsndfile refuses a STREAMINFO saying 0 samples (all a stream could say), so FLAC is whole."""
    x = tone(1.0)
    data, outputs, encoder = stream_encode("flac", x)
    assert not encoder.streaming and not any(outputs)  # everything comes from finish()
    assert StreamEncoder("mp3", IN_RATE).streaming
    assert data[:4] == b"fLaC"
    assert data[4] & 0x7F == 0  # first metadata block is STREAMINFO
    total = int.from_bytes(data[8 + 13 : 8 + 18], "big") & ((1 << 36) - 1)
    assert total == len(x)
    y, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert rate == IN_RATE
    assert np.abs(y - x).max() <= 1.0 / 32767 + 1e-6


def test_mp3_whole_has_gapless_info_and_exact_length():
    x = tone(1.0)
    data = encode_audio("mp3", x, IN_RATE)
    assert b"Info" in data[:200] or b"Xing" in data[:200]
    y, rate = sf.read(io.BytesIO(data), dtype="float32")
    assert (rate, len(y)) == (IN_RATE, len(x))
    streamed, _, _ = stream_encode("mp3", x)
    assert streamed[0] == 0xFF and streamed[1] & 0xE0 == 0xE0  # starts with an MPEG frame sync
    assert b"ID3" not in streamed[:3]


def test_aac_is_adts_lc_mono_frames_end_to_end():
    x = tone(1.0)
    data, _, encoder = stream_encode("aac", x, aac_bitrate=48)
    rates = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000]
    pos, frames = 0, 0
    while pos < len(data):
        header = data[pos : pos + 7]
        assert header[0] == 0xFF and header[1] & 0xF0 == 0xF0, f"no ADTS sync at {pos}"
        assert (header[2] >> 6) + 1 == 2  # audio object type 2: AAC-LC
        assert rates[(header[2] >> 2) & 0x0F] == encoder.sample_rate
        assert ((header[2] & 1) << 2) | (header[3] >> 6) == 1  # channel configuration: mono
        length = ((header[3] & 0x03) << 11) | (header[4] << 3) | (header[5] >> 5)
        assert length >= 7
        pos, frames = pos + length, frames + 1
    assert pos == len(data)
    assert frames >= len(x) // 1024


def test_opus_is_ogg_with_opus_head():
    data, _, _ = stream_encode("opus", tone(1.0))
    assert data[:4] == b"OggS"
    assert data[28:36] == b"OpusHead"
    assert data[37] == 1  # channel count
    pages = data.count(b"OggS")
    assert pages >= 10  # short pages while streaming, so audio leaves promptly


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac"])
def test_bitrate_option_changes_size(fmt):
    x = tone(2.0)
    low = {f"{fmt}_bitrate": 24}
    high = {f"{fmt}_bitrate": 96}
    small, big = encode_audio(fmt, x, IN_RATE, **low), encode_audio(fmt, x, IN_RATE, **high)
    assert len(big) > 1.5 * len(small)
    if fmt == "opus":  # beyond what libopus takes for mono: clamped, not an error
        assert decode_audio(encode_audio("opus", x, IN_RATE, opus_bitrate=510), "opus")[1] == 48000
    # mp3 at 64 kbps by default: about 8 kB per second
    if fmt == "mp3":
        assert 14000 < len(encode_audio("mp3", x, IN_RATE)) < 18000


# -- WAV and raw PCM ---------------------------------------------------------------------------


def test_wav_streamed_header_has_unknown_sizes():
    x = tone(1.0)
    data, outputs, _ = stream_encode("wav", x)
    assert outputs[0][:4] == b"RIFF"  # the header leaves with the first chunk
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    (riff_size,) = struct.unpack("<I", data[4:8])
    fmt_size, tag, channels, rate, byte_rate, align, bits = struct.unpack("<IHHIIHH", data[16:36])
    (data_size,) = struct.unpack("<I", data[40:44])
    assert riff_size == data_size == 0xFFFFFFFF
    assert (fmt_size, tag, channels, rate) == (16, 1, 1, IN_RATE)
    assert (byte_rate, align, bits) == (2 * IN_RATE, 2, 16)
    assert data[36:40] == b"data"
    assert len(data) == 44 + 2 * len(x)
    assert data.count(b"RIFF") == 1


def test_wav_whole_header_has_exact_sizes():
    x = tone(1.0)
    data = encode_audio("wav", x, IN_RATE)
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    assert struct.unpack("<I", data[40:44])[0] == len(data) - 44 == 2 * len(x)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, IN_RATE)
        assert w.getnframes() == len(x)


def test_pcm_is_int16_le_at_24k():
    x = tone(1.0)
    data = encode_audio("pcm", x, IN_RATE)
    assert len(data) % 2 == 0
    n = len(data) // 2
    assert abs(n - len(x) * PCM_SAMPLE_RATE / IN_RATE) <= 2
    y = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    assert abs(dominant_freq(y, PCM_SAMPLE_RATE) - TONE_HZ) < 1.0  # read at 24 kHz: pitch right
    reference = soxr.resample(x, IN_RATE, PCM_SAMPLE_RATE, "HQ")
    m = min(len(reference), len(y))
    assert np.abs(y[:m] - reference[:m]).max() < 1e-3


def test_pcm_at_24k_is_not_resampled():
    x = tone(0.5, rate=24000)
    y, rate = decode_audio(stream_encode("pcm", x, rate=24000)[0], "pcm")
    assert rate == 24000
    assert len(y) == len(x)
    assert np.abs(y - x).max() <= 1.0 / 32767 + 1e-6


def test_input_is_clipped():
    x = np.concatenate([tone(0.5, amp=2.0), np.full(100, np.nan, np.float32)])
    y, _ = decode_audio(encode_audio("wav", x, IN_RATE), "wav")
    assert 0.999 < np.abs(y).max() <= 1.0
    assert np.all(y[-100:] == 0.0)
    # AAC takes float input, so only our clipping keeps a too-loud signal near full scale.
    y, _ = decode_audio(encode_audio("aac", tone(0.5, amp=2.0), IN_RATE), "aac")
    assert 0.8 < np.abs(y).max() < 1.3


@pytest.mark.parametrize("fmt", RESPONSE_FORMATS)
def test_empty_input_gives_a_decodable_file(fmt):
    empty = np.zeros(0, np.float32)
    for data in (encode_audio(fmt, empty, 24000), StreamEncoder(fmt, 24000).finish()):
        y, rate = decode_audio(data, fmt)
        assert rate == output_rate(fmt, 24000)
        assert len(y) / rate < 0.2
        assert np.abs(y).max(initial=0.0) < 1e-3


# -- streaming really streams ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [f for f in RESPONSE_FORMATS if f not in WHOLE_FILE_FORMATS])
def test_encode_returns_bytes_before_finish(fmt):
    x = tone(3.0)
    step = IN_RATE // 10  # 100 ms chunks, like a provider yielding audio bit by bit
    encoder = StreamEncoder(fmt, IN_RATE)
    outputs = [encoder.encode(x[i : i + step]) for i in range(0, len(x), step)]
    tail = encoder.finish()
    early = sum(len(o) for o in outputs)
    assert any(outputs[:5]), "nothing came out in the first half second"
    assert sum(1 for o in outputs if o) >= len(outputs) // 2
    assert early > 0.8 * (early + len(tail))
    y, rate = decode_audio(b"".join(outputs) + tail, fmt)
    assert len(y) / rate >= 2.99


def test_sentences_in_a_row_form_one_stream():
    """The server encodes sentence after sentence into one encoder; a player hears them all."""
    sentences = [tone(0.7), np.zeros(int(0.3 * IN_RATE), np.float32), tone(0.5, freq=660.0)]
    for fmt in ("mp3", "opus"):
        encoder = StreamEncoder(fmt, IN_RATE)
        data = b"".join(encoder.encode(s) for s in sentences) + encoder.finish()
        y, rate = decode_audio(data, fmt)
        assert 1.49 <= len(y) / rate <= 1.6
        first = y[int(0.1 * rate) : int(0.6 * rate)]
        last = y[int(1.1 * rate) : int(1.4 * rate)]
        gap = y[int(0.8 * rate) : int(0.95 * rate)]
        assert abs(dominant_freq(np.pad(first, int(0.1 * rate)), rate) - 440) < 2
        assert abs(dominant_freq(np.pad(last, int(0.1 * rate)), rate) - 660) < 2
        assert np.abs(gap).max() < 0.02


# -- resampler ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("in_rate", "out_rate"), [(22050, 24000), (24000, 48000), (44100, 22050)])
def test_stream_resampler_is_seamless(in_rate, out_rate):
    x = tone(1.0, rate=in_rate)
    resampler = StreamResampler(in_rate, out_rate)
    parts, i, j = [], 0, 0
    while i < len(x):
        size = ODD_CHUNKS[j % len(ODD_CHUNKS)]
        parts.append(resampler.process(x[i : i + size]))
        i, j = i + size, j + 1
    y = np.concatenate(parts + [resampler.flush()])
    assert y.dtype == np.float32
    assert abs(len(y) - len(x) * out_rate / in_rate) <= 2
    reference = soxr.resample(x, in_rate, out_rate, "HQ")
    m = min(len(y), len(reference))
    assert np.abs(y[:m] - reference[:m]).max() < 1e-4
    assert roughness(y, out_rate) < 1.01 * tone_roughness(out_rate) + 1e-5


def test_stream_resampler_passthrough():
    x = tone(0.1)
    resampler = StreamResampler(IN_RATE, IN_RATE)
    assert np.array_equal(resampler.process(x), x)
    assert len(resampler.flush()) == 0


# -- time-stretch ---------------------------------------------------------------------------------


def local_tone_fits(y: np.ndarray, rate: int, freq: float = TONE_HZ, window_s: float = 0.05):
    """(share of energy a sinusoid of ``freq`` explains, its amplitude) per window of the middle."""
    m = middle(y, rate).astype(np.float64)
    n = int(window_s * rate)
    t = np.arange(n) / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    fits = []
    for start in range(0, len(m) - n + 1, n):
        piece = m[start : start + n]
        coef, *_ = np.linalg.lstsq(basis, piece, rcond=None)
        fits.append((1.0 - np.sum((piece - basis @ coef) ** 2) / np.sum(piece**2), float(np.hypot(*coef))))
    return np.array(fits)


@pytest.mark.parametrize("speed", [0.5, 2.0, 0.25, 4.0, 1.3])
def test_time_stretch_keeps_pitch_and_scales_duration(speed):
    rate = 24000
    x = tone(2.0, rate=rate)
    y = time_stretch(x, rate, speed)
    assert y.dtype == np.float32
    assert len(y) == round(len(x) / speed)
    assert abs(dominant_freq(y, rate) - TONE_HZ) < 1.0
    # Every 50 ms is the same clean tone at the same level: no smearing, no dips where frames join.
    fits = local_tone_fits(y, rate)
    assert fits[:, 0].min() > 0.998
    assert 0.49 < fits[:, 1].min() and fits[:, 1].max() < 0.51
    assert roughness(y, rate) < 1.01 * tone_roughness(rate)  # no clicks where frames join


def test_time_stretch_keeps_both_partials_of_a_chord():
    rate = 24000
    t = np.arange(2 * rate) / rate
    x = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    for speed in (0.5, 2.0):
        y = time_stretch(x, rate, speed)
        spectrum = np.abs(np.fft.rfft(middle(y, rate) * np.hanning(len(middle(y, rate)))))
        freqs = np.fft.rfftfreq(len(middle(y, rate)), 1 / rate)
        top = sorted(freqs[np.argsort(spectrum)[-2:]])
        assert abs(top[0] - 220) < 3 and abs(top[1] - 330) < 3


def test_time_stretch_identity_and_bounds():
    x = tone(0.2)
    assert np.array_equal(time_stretch(x, IN_RATE, 1.0), x)
    assert len(time_stretch(np.zeros(0, np.float32), IN_RATE, 2.0)) == 0
    for speed in (0.2, 4.5):
        with pytest.raises(InvalidRequest):
            time_stretch(x, IN_RATE, speed)


def test_time_stretch_short_sentence():
    x = tone(0.05)  # shorter than a couple of frames
    y = time_stretch(x, IN_RATE, 0.5)
    assert abs(len(y) - 2 * len(x)) <= 1
    assert np.isfinite(y).all() and np.abs(y).max() < 0.6


def speech_like(seconds: float, rate: int = 24000) -> np.ndarray:
    """Voiced syllables: a gliding harmonic buzz under a 4 Hz envelope, with short silences."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    buzz = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2 * t), 0, None)
    return (0.3 * buzz * envelope).astype(np.float32)


@pytest.mark.parametrize("speed", [0.25, 0.5, 1.5, 2.0, 4.0])
def test_stream_stretcher_in_odd_chunks_equals_the_whole_clip_stretched(speed):
    """Chunk joins leave no trace: the stream is the whole clip stretched at once, sample for sample."""
    rate = 24000
    x = speech_like(3.0, rate)
    whole = time_stretch(x, rate, speed)
    for chunks in (ODD_CHUNKS, (12000,), (5000, 30000, 7)):
        stretcher = StreamStretcher(rate, speed)
        parts, i, j = [], 0, 0
        while i < len(x):
            size = chunks[j % len(chunks)]
            parts.append(stretcher.process(x[i : i + size]))
            i, j = i + size, j + 1
        y = np.concatenate(parts + [stretcher.flush()])
        assert len(y) == len(whole) == round(len(x) / speed)
        assert np.abs(y - whole).max() < 1e-6
        # No sample-to-sample jump beyond what the unstretched audio has.
        assert np.abs(np.diff(y)).max() <= np.abs(np.diff(x)).max() * 1.05


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
def test_stream_stretcher_output_keeps_up_with_its_input(speed):
    """Each chunk's audio leaves with it, less only the filter's look-ahead (< 150 ms of input)."""
    rate = 22050
    x = speech_like(2.0, rate)
    stretcher = StreamStretcher(rate, speed)
    step = rate // 5  # 200 ms chunks
    fed = out = 0
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        fed += len(chunk)
        out += len(stretcher.process(chunk))
        held_back = fed - out * speed  # input samples whose stretched audio has not come out yet
        assert out > 0, "the first chunk's audio must leave with it"
        assert 0 <= held_back <= 0.15 * rate, (start, held_back)
    assert out + len(stretcher.flush()) == round(len(x) / speed)


def test_stream_stretcher_at_speed_one_passes_audio_through():
    x = speech_like(0.5)
    stretcher = StreamStretcher(24000, 1.0)
    assert np.array_equal(stretcher.process(x), x)
    assert len(stretcher.flush()) == 0
