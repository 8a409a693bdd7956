"""Client audio is decoded, copied and resampled off the event loop: a ticker on the server's loop
keeps ticking while a large upload is transcribed and a long conversation context is decoded."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import aiohttp
import av
import numpy as np
import soundfile

from sesame_voice.audio import decode_file

TICK = 0.01
MAX_LAG = 1.0
"""Largest delay a 10 ms ticker may see; decoding the upload on the loop blocks it for many seconds;
the margin is for a loaded CI machine (GIL hand-offs, other processes)."""


def _silent_mp3(minutes: float, rate: int = 44100) -> bytes:
    """Quiet noise as a 32 kbps MP3 (long to decode, small to send; quiet, so no words are recognised)."""
    buffer = io.BytesIO()
    generator = np.random.default_rng(7)
    with av.open(buffer, "w", format="mp3") as output:
        stream = output.add_stream("libmp3lame", rate=rate)
        stream.layout = "mono"
        stream.bit_rate = 32000
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=rate)
        block = (generator.standard_normal(rate) * 1e-4).astype(np.float32)[None, :]
        for _ in range(int(minutes * 60)):
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate = rate
            for piece in resampler.resample(frame):
                for packet in stream.encode(piece):
                    output.mux(packet)
        for packet in stream.encode(None):
            output.mux(packet)
    return buffer.getvalue()


def _context_wav(seconds: float, rate: int = 48000) -> str:
    buffer = io.BytesIO()
    samples = (0.1 * np.sin(np.arange(int(seconds * rate)) * 0.05)).astype(np.float32)
    soundfile.write(buffer, samples, rate, format="WAV", subtype="FLOAT")
    return base64.b64encode(buffer.getvalue()).decode()


async def _ticker(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append(time.perf_counter() - before - TICK)


async def test_event_loop_keeps_ticking_during_large_upload_and_long_context(start_server):
    upload = await asyncio.to_thread(_silent_mp3, 15)
    started = time.perf_counter()
    await asyncio.to_thread(decode_file, upload, None, 16000)  # what the server would do on its loop if it blocked
    decode_seconds = time.perf_counter() - started
    context = [{"text": f"turn {n}", "speaker": 0, "audio": _context_wav(2.5)} for n in range(8)]
    async with start_server() as server:
        base = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/health") as response:  # wait for Whisper to load
                assert response.status == 200
            for _ in range(600):
                if server.speech_to_text.providers["whisper"].status().get("state") == "ready":
                    break
                await asyncio.sleep(0.1)
            lags: list[float] = []
            stop = asyncio.Event()
            ticker = asyncio.create_task(_ticker(lags, stop))
            form = aiohttp.FormData()
            form.add_field("file", upload, filename="long.mp3", content_type="audio/mpeg")
            form.add_field("model", "whisper-1")
            async with session.post(f"{base}/v1/audio/transcriptions", data=form) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["text"] == ""
            body = {"text": "Hello there.", "voice": "joe", "context": context, "output": "pcm"}
            async with session.post(f"{base}/csm/generate", json=body) as response:
                await response.read()
                assert response.status < 500
            stop.set()
            await ticker
    assert decode_seconds > 2 * MAX_LAG, (
        f"decoding the upload took {decode_seconds:.2f} s: too short to show a blocked loop"
    )
    assert max(lags) < MAX_LAG, (
        f"the event loop stalled {max(lags):.3f} s (decoding the upload takes {decode_seconds:.2f} s)"
    )
