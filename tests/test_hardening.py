"""Careless input and exposure (issue 18, HTTP side): truncated uploads, allow-listed containers,
unspeakable input, one set of API-key headers on every route, a public /health without file paths."""

from __future__ import annotations

import asyncio
import io

import aiohttp
import av
import numpy as np
import pytest

from sesame_voice import InvalidRequest
from sesame_voice.audio import decode_file

UPLOADS = {
    "wav": ("wav", "pcm_s16le"),
    "mp3": ("mp3", "libmp3lame"),
    "flac": ("flac", "flac"),
    "ogg-opus": ("ogg", "libopus"),
    "webm-opus": ("webm", "libopus"),
    "m4a-aac": ("ipod", "aac"),
    "aiff": ("aiff", "pcm_s16be"),
}


def encode_tone(container: str, codec: str, seconds: float = 4.0, rate: int = 16000) -> bytes:
    """A 440 Hz tone written by PyAV in ``container`` with ``codec``."""
    samples = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream(codec, rate=48000 if codec == "libopus" else rate)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=stream.rate)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + 1024], format="flt", layout="mono")
            frame.sample_rate = rate
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    output.mux(packet)
        for piece in resampler.resample(None):
            for packet in stream.encode(piece):
                output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


@pytest.mark.parametrize("name", sorted(UPLOADS))
def test_every_allowed_container_decodes_whole_and_refuses_truncated(name):
    data = encode_tone(*UPLOADS[name])
    samples, rate = decode_file(data)
    assert abs(len(samples) / rate - 4.0) < 0.15
    with pytest.raises(InvalidRequest) as refused:
        decode_file(data[: int(len(data) * 0.6)])
    assert refused.value.code == "truncated_audio", str(refused.value)


def test_a_streamed_wav_without_sizes_is_not_called_truncated():
    data = bytearray(encode_tone("wav", "pcm_s16le"))
    chunk = data.find(b"data")
    data[4:8] = data[chunk + 4 : chunk + 8] = b"\xff\xff\xff\xff"  # the sizes a live stream writes
    samples, rate = decode_file(bytes(data))
    assert abs(len(samples) / rate - 4.0) < 0.15


@pytest.mark.parametrize("container, codec", [("au", "pcm_s16be"), ("wav", "adpcm_ima_wav")])
def test_containers_and_codecs_outside_the_allow_list_are_refused(container, codec):
    data = encode_tone(container, codec)
    with pytest.raises(InvalidRequest) as refused:
        decode_file(data)
    assert refused.value.code == "unsupported_audio_format"


async def test_input_without_speakable_text_is_an_openai_400(server, base_url):
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base_url}/v1/audio/speech", json={"model": "tts-1", "input": "...", "voice": "joe"}
        ) as response:
            assert response.status == 400
            error = (await response.json())["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == "no_speakable_text" and error["param"] == "input"


ROUTES = [
    ("GET", "/v1/models"),
    ("GET", "/v1/audio/voices"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/voices"),
    ("GET", "/"),
]


@pytest.mark.parametrize("method, path", ROUTES)
async def test_both_key_headers_work_on_every_route(start_server, method, path):
    async with start_server(api_key="s3cret") as running:
        base = f"http://127.0.0.1:{running.http_port}"
        async with aiohttp.ClientSession() as session:
            statuses = []
            for headers in ({}, {"Authorization": "Bearer s3cret"}, {"X-API-Key": "s3cret"}, {"X-API-Key": "wrong"}):
                async with session.request(method, base + path, headers=headers) as response:
                    statuses.append(response.status)
    assert statuses[0] == 401 and statuses[3] == 401
    assert statuses[1] == statuses[2] == 200


async def test_public_health_shows_no_file_paths(start_server, voices_dir, tmp_path):
    (voices_dir / "broken.yaml").write_text(f"provider: piper\nmodel: {tmp_path}/missing/voice.onnx\n: [\n")
    async with start_server(api_key="s3cret") as running:
        base = f"http://127.0.0.1:{running.http_port}"
        for _ in range(600):  # CSM fails to load from the empty MODEL_ID folder: its error names the path
            if running.providers["csm"].status().get("state") not in ("loading", "unloaded", None):
                break
            await asyncio.sleep(0.1)
        full = running.health()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/health") as response:
                public = await response.text()
            async with session.get(f"{base}/health", headers={"X-API-Key": "s3cret"}) as response:
                detailed = await response.text()
    assert str(tmp_path) in str(full) or str(voices_dir) in str(full), "the probe should carry a path"
    assert "/tmp" not in public and str(tmp_path) not in public
    assert str(tmp_path) in detailed
