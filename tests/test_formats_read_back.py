"""Every response format, streamed or in SSE events, read back by libsndfile and FFmpeg as clients do."""

from __future__ import annotations

import base64
import io
import json

import av
import numpy as np
import pytest
import soundfile as sf

from sesame_voice.audio import PCM_SAMPLE_RATE

TEXT = "Hello there. This is a short test of every format."
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
CODEC_SLACK_S = {"mp3": 0.08, "aac": 0.12, "opus": 0.03, "flac": 1e-3, "wav": 1e-3, "pcm": 1e-3}
"""Encoder delay and padding a decoder may or may not remove."""


def read_with_soundfile(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """What a Python client does with ``soundfile``; raw pcm needs its layout spelled out."""
    if fmt == "pcm":
        return sf.read(
            io.BytesIO(data),
            dtype="float32",
            format="RAW",
            subtype="PCM_16",
            samplerate=PCM_SAMPLE_RATE,
            channels=1,
            endian="LITTLE",
        )
    return sf.read(io.BytesIO(data), dtype="float32")


def read_with_av(data: bytes, fmt: str) -> tuple[np.ndarray, int]:
    """What a client does with PyAV (FFmpeg); raw pcm as s16le mono at 24 kHz."""
    options = {"format": "s16le", "options": {"sample_rate": str(PCM_SAMPLE_RATE), "ch_layout": "mono"}}
    with av.open(io.BytesIO(data), **(options if fmt == "pcm" else {})) as container:
        stream = container.streams.audio[0]
        frames = [frame.to_ndarray().astype(np.float32) for frame in container.decode(stream)]
        rate = stream.codec_context.sample_rate
    samples = np.concatenate([f.reshape(f.shape[0], -1) for f in frames], axis=1)
    if samples.dtype != np.float32 or np.abs(samples).max() > 1.5:  # integer sample formats
        samples = samples / 32768.0
    return samples.mean(axis=0), rate


async def _chunked(client, fmt: str) -> tuple[bytes, int]:
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="joe", input=TEXT, response_format=fmt
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        data = b"".join([chunk async for chunk in response.iter_bytes()])
        return data, int(response.headers["x-sample-rate"])


async def _sse(client, fmt: str) -> tuple[bytes, int]:
    events = []
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="joe", input=TEXT, response_format=fmt, stream_format="sse"
    ) as response:
        async for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
        rate = int(response.headers["x-sample-rate"])
    assert events[-1]["type"] == "speech.audio.done"
    return b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta"), rate


@pytest.mark.parametrize("delivery", ["chunked", "sse"])
@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_format_reads_back_with_soundfile_and_av(openai_client, fmt, delivery):
    data, rate = await (_chunked if delivery == "chunked" else _sse)(openai_client, fmt)
    decoded = {"av": read_with_av(data, fmt)}
    if fmt == "aac":
        # libsndfile has no AAC decoder at all (ADTS or MP4): users of soundfile read aac with av.
        with pytest.raises(sf.LibsndfileError):
            read_with_soundfile(data, fmt)
    else:
        decoded["soundfile"] = read_with_soundfile(data, fmt)
    durations = {}
    for reader, (samples, decoded_rate) in decoded.items():
        assert decoded_rate == rate, reader
        durations[reader] = len(samples) / decoded_rate
        assert 1.5 < durations[reader] < 6.0, (reader, durations[reader])
        assert 0.02 < float(np.sqrt(np.mean(samples**2))) < 0.5, reader  # speech, not silence or noise
    assert max(durations.values()) - min(durations.values()) <= CODEC_SLACK_S[fmt], durations
