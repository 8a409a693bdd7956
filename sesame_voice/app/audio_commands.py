"""``sesame-voice say`` and ``sesame-voice transcribe``: speech to a file and a file to text, without a server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from sesame_voice.api.types import SynthesisRequest
from sesame_voice.config import Settings


async def say(settings: Settings, args: argparse.Namespace, pm=None) -> int:
    from sesame_voice.app.server import Server
    from sesame_voice.audio import StreamEncoder, fix_wav_sizes

    text = sys.stdin.read() if args.text == "-" else args.text
    fmt = args.format or args.output.suffix.lstrip(".").lower() or settings.default_format
    if fmt == "ogg":
        fmt = "opus"
    request = SynthesisRequest(text=text, voice=args.voice, speed=args.speed, response_format=fmt, frontend="cli")
    try:
        out = args.output.open("wb")
    except OSError as err:
        print(f"sesame-voice: cannot write {args.output}: {err.strerror or err}", file=sys.stderr)
        return 1
    with out:
        async with Server(settings, pm=pm).prepared() as server, server.engine.synthesis(request) as synthesis:
            encoder = StreamEncoder(
                fmt,
                synthesis.sample_rate,
                mp3_bitrate=settings.mp3_bitrate,
                opus_bitrate=settings.opus_bitrate,
                aac_bitrate=settings.aac_bitrate,
            )
            async for chunk in synthesis:
                out.write(encoder.encode(chunk.samples))
            out.write(encoder.finish())
            if fmt == "wav":
                fix_wav_sizes(out)
            print(f"{args.output}: {fmt}, voice {synthesis.voice.name} via {synthesis.provider}", file=sys.stderr)
    return 0


async def transcribe(settings: Settings, args: argparse.Namespace, pm=None) -> int:
    from sesame_voice.app.server import Server
    from sesame_voice.audio import decode_file

    try:
        data = args.file.read_bytes()
    except OSError as err:
        print(f"sesame-voice: cannot read {args.file}: {err.strerror or err}", file=sys.stderr)
        return 1
    server = Server(settings, pm=pm)
    try:
        rate = server.speech_to_text.provider().sample_rate
        samples, rate = await asyncio.to_thread(decode_file, data, None, rate)
        transcript = await server.speech_to_text.transcribe(samples, rate, language=args.language, prompt=args.prompt)
    finally:
        await server.speech_to_text.aclose()
    if args.json:
        segments = [
            {"start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()} for s in transcript.segments
        ]
        print(
            json.dumps(
                {
                    "text": transcript.text,
                    "language": transcript.language,
                    "duration": round(transcript.duration, 3),
                    "provider": transcript.provider,
                    "model": transcript.model,
                    "segments": segments,
                },
                indent=2,
            )
        )
    else:
        print(transcript.text)
    return 0
