"""Audio out for the old clients: whole files with exact headers."""

from __future__ import annotations

import asyncio

import numpy as np
from aiohttp import web

from sesame_voice import AudioChunk, SynthesisRequest
from sesame_voice.audio import CONTENT_TYPES, encode_audio


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


async def audio_file(
    server, synthesis, chunks: list[AudioChunk], fmt: str, headers: dict | None = None
) -> web.Response:
    """One whole ``fmt`` file (exact lengths in its header, as the old servers answered)."""
    samples = np.concatenate([c.samples for c in chunks]) if chunks else np.zeros(0, np.float32)
    settings = server.settings
    data = await asyncio.to_thread(
        encode_audio,
        fmt,
        samples,
        synthesis.sample_rate,
        mp3_bitrate=settings.mp3_bitrate,
        opus_bitrate=settings.opus_bitrate,
        aac_bitrate=settings.aac_bitrate,
    )
    return web.Response(
        body=data, content_type=CONTENT_TYPES[fmt], headers={**provider_headers(synthesis), **(headers or {})}
    )


async def speak_file(server, speech: SynthesisRequest, fmt: str) -> web.Response:
    """Synthesise ``speech`` and answer it as one ``fmt`` file."""
    synthesis, chunks = await synthesize_all(server, speech)
    return await audio_file(server, synthesis, chunks, fmt)
