"""Audio out for the old clients: whole files with exact headers, and 80 ms frames of 24 kHz float32."""

from __future__ import annotations

import asyncio

import numpy as np
from aiohttp import web

from sesame_voice import FRAME_SAMPLES, AudioChunk, SynthesisRequest
from sesame_voice.audio import CONTENT_TYPES, StreamResampler, encode_audio

FRAME_RATE = 24000
# FRAME_SAMPLES: one 80 ms frame at 24 kHz, Mimi's frame and the packet of the old 80 ms voice loops.


class Framer:
    """Resamples audio to 24 kHz and cuts it into whole 1920-sample frames; ``flush`` zero-pads the last."""

    def __init__(self, input_rate: int) -> None:
        self._resampler = StreamResampler(input_rate, FRAME_RATE)
        self._pending = np.zeros(0, dtype=np.float32)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """The whole frames now available."""
        return self._cut(self._resampler.process(samples))

    def flush(self) -> list[np.ndarray]:
        """The remaining frames, the last padded with silence."""
        frames = self._cut(self._resampler.flush())
        if len(self._pending):
            frames.append(np.concatenate([self._pending, np.zeros(FRAME_SAMPLES - len(self._pending), np.float32)]))
            self._pending = np.zeros(0, dtype=np.float32)
        return frames

    def _cut(self, samples: np.ndarray) -> list[np.ndarray]:
        data = np.concatenate([self._pending, np.clip(samples, -1.0, 1.0).astype(np.float32)])
        whole = len(data) // FRAME_SAMPLES * FRAME_SAMPLES
        self._pending = data[whole:]
        return [data[i : i + FRAME_SAMPLES] for i in range(0, whole, FRAME_SAMPLES)]


async def synthesize_all(server, speech: SynthesisRequest) -> tuple[object, list[AudioChunk]]:
    """Run a synthesis to its end; the synthesis (provider, voice, rate) and every chunk."""
    async with server.engine.synthesis(speech) as synthesis:
        chunks = [chunk async for chunk in synthesis]
    return synthesis, chunks


def provider_headers(synthesis) -> dict[str, str]:
    """The X-Sesame-* headers the OpenAI frontend sends too."""
    headers = {"X-Sesame-Provider": synthesis.provider, "X-Sesame-Voice": synthesis.voice.name}
    if synthesis.fell_back_from:
        headers["X-Sesame-Fallback-From"] = ",".join(synthesis.fell_back_from)
    return headers


async def audio_file(server, synthesis, chunks: list[AudioChunk], fmt: str, headers: dict | None = None) -> web.Response:
    """One whole ``fmt`` file (exact lengths in its header, as the old servers answered)."""
    samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
    settings = server.settings
    data = await asyncio.to_thread(encode_audio, fmt, samples, synthesis.sample_rate, mp3_bitrate=settings.mp3_bitrate,
                                   opus_bitrate=settings.opus_bitrate, aac_bitrate=settings.aac_bitrate)
    return web.Response(body=data, content_type=CONTENT_TYPES[fmt],
                        headers={**provider_headers(synthesis), **(headers or {})})


async def speak_file(server, speech: SynthesisRequest, fmt: str) -> web.Response:
    """Synthesise ``speech`` and answer it as one ``fmt`` file."""
    synthesis, chunks = await synthesize_all(server, speech)
    return await audio_file(server, synthesis, chunks, fmt)
