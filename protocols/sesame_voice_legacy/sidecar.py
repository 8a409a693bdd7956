"""The Mimi-code sidecar: ``{text, speaker?, context?, max_audio_length_ms?}`` → Mimi codes or 24 kHz PCM as JSON."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace
from typing import Any

import numpy as np
from aiohttp import web

from sesame_voice import FRAME_SAMPLES, InvalidRequest, ProviderUnavailable, SynthesisRequest
from sesame_voice.audio import FRAME_RATE, Framer
from sesame_voice.http.context import parse_speaker, read_segments, transcribe_audio

from .options import OUTPUTS
from .output import provider_headers, synthesize_all
from .wrapper import MAX_AUDIO_MS, context_limits, number_field, text_field

CODEC = "mimi"


async def parse_sidecar(body: dict, query, options, server) -> tuple[SynthesisRequest, str, bool]:
    """The request, the output (mimi | pcm) and whether the client chose it."""
    output = body.get("output", query.get("output"))
    chosen = output not in (None, "")
    output = output if chosen else options.preferred_output
    if output not in OUTPUTS:
        raise InvalidRequest("output must be 'mimi' or 'pcm'", param="output")
    speaker = parse_speaker(body.get("speaker", options.speaker_default), "speaker")
    # Context audio is base64 WAV, or raw float32 at 24 kHz: the shape of this API's own pcm answers.
    context = await read_segments(
        body.get("context"),
        "context",
        context_limits(options),
        raw_rate=FRAME_RATE,
        require_text=False,
        default_speaker=speaker,
    )
    for index, segment in enumerate(context):
        if segment.text:
            continue
        if segment.audio is None:
            raise InvalidRequest(f"context[{index}] has neither text nor audio", param="context")
        # CSM needs each turn's words: audio-only turns go through the server's speech-to-text, if any.
        text = await transcribe_audio(
            server.speech_to_text, segment.audio, segment.sample_rate, param=f"context[{index}].text"
        )
        context[index] = replace(segment, text=text)
    voice = body.get("voice") or options.voice
    if not isinstance(voice, str):
        raise InvalidRequest("voice must be a voice name", param="voice")
    speech = SynthesisRequest(
        text=text_field(body),
        voice=voice,
        response_format="pcm",
        context=context,
        max_audio_length_ms=number_field(body, "max_audio_length_ms", int, 80, MAX_AUDIO_MS),
        sampling={"speaker": speaker},
        frontend="legacy",
    )
    return speech, output, chosen


async def sidecar_generate(request: web.Request, server, options, body: dict) -> web.Response:
    """Answer ``mimi_codes`` from a voice that generates Mimi codes, else (or when asked) ``audio_pcm``."""
    speech, output, chosen = await parse_sidecar(body, request.query, options, server)
    synthesis, chunks = await synthesize_all(server, speech)
    has_codes = bool(chunks) and all(c.codes is not None and c.codec == CODEC for c in chunks)
    if output == "mimi" and not has_codes:
        if chosen:
            reason = (
                f"voice {synthesis.voice.name!r} was served by {synthesis.provider}, which does not produce Mimi codes"
            )
            if synthesis.fell_back_from:
                raise ProviderUnavailable(
                    f"{reason} (fell back from {', '.join(synthesis.fell_back_from)}); "
                    "retry later or ask for output 'pcm'"
                )
            raise InvalidRequest(
                f"{reason}; use a CSM voice or ask for output 'pcm'", param="output", code="codes_unavailable"
            )
        output = "pcm"  # the client handles either answer; without a choice, codes are only a preference
    if output == "mimi":
        answer = _codes_answer(chunks)
    else:  # resampling minutes of audio is work for a thread, not the event loop
        answer = await asyncio.to_thread(_pcm_answer, chunks, synthesis.sample_rate)
    return web.json_response(answer, headers=provider_headers(synthesis))


def _codes_answer(chunks) -> dict[str, Any]:
    codes = np.concatenate([c.codes for c in chunks], axis=1)
    first = chunks[0]
    samples_per_frame = round(len(first.samples) / first.codes.shape[1])
    frame_rate = first.sample_rate / samples_per_frame
    return {
        "type": "mimi_codes",
        "n_q": int(codes.shape[0]),
        "sample_rate": int(first.sample_rate),
        "frame_rate": frame_rate,
        "frames": int(codes.shape[1]),
        "duration_ms": round(1000 * codes.shape[1] / frame_rate, 3),
        "codes": codes.astype(int).tolist(),
    }


def _pcm_answer(chunks, rate: int) -> dict[str, Any]:
    framer = Framer(rate)
    frames = [frame for chunk in chunks for frame in framer.push(chunk.samples)] + framer.flush()
    pcm = np.concatenate(frames).astype("<f4") if frames else np.zeros(0, "<f4")
    return {
        "type": "audio_pcm",
        "sample_rate": FRAME_RATE,
        "frame_samples": FRAME_SAMPLES,
        "frames": len(frames),
        "pcm": base64.b64encode(pcm.tobytes()).decode("ascii"),
    }
