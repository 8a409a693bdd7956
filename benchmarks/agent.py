"""Realtime agent latency: end of the user's turn -> transcript -> first reply token -> first reply audio.

One sesame-voice server in this process (bundled Piper voice ``joe``, Whisper tiny.en) whose
responder is ``transformers serve`` running the tiny random chat model on 127.0.0.1 (what the tests
use; a real LLM's first token comes later). The ``openai`` SDK's realtime client sends each
utterance (Piper speech at 24 kHz) with turn detection off, commits it and asks for a response;
time 0 is the commit, i.e. the moment a server VAD would decide the turn ended (with server VAD
its ``silence_duration_ms``, 500 ms by default, comes before that). Stages are read from each
``response.done``'s ``latency``. Prints every case and the medians, next to Home Assistant
Assist's 0.38-0.74 s (reply audio after the end of speech, its built-in intent agent).

    python benchmarks/agent.py [--rounds 5] [--reply-tokens 12]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != HERE]
UTTERANCES = [
    "Please turn on the kitchen lights.",
    "What time is it in Tokyo right now?",
    "Set a timer for ten minutes.",
    "How far is the moon from the earth?",
    "Add milk and bread to my shopping list.",
]
ASSIST = (0.38, 0.74)


async def speech_24k(port: int, text: str):
    import numpy as np
    import soundfile
    import soxr
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-bench", max_retries=0)
    answer = await client.audio.speech.with_raw_response.create(
        model="tts-1", voice="joe", input=text, response_format="wav"
    )
    samples, rate = soundfile.read(io.BytesIO(answer.content), dtype="float32")
    return soxr.resample(samples, rate, 24000).astype(np.float32)


async def one_turn(connection, samples) -> dict:
    from sesame_voice.audio import to_pcm16

    for start in range(0, samples.size, 2400):
        await connection.input_audio_buffer.append(
            audio=base64.b64encode(to_pcm16(samples[start : start + 2400])).decode("ascii")
        )
    await connection.input_audio_buffer.commit()
    await connection.response.create()
    async for event in connection:
        if event.type == "response.done":
            assert event.response.status == "completed", event.response
            return event.response.model_extra["latency"]
        if event.type == "error":
            raise RuntimeError(event.error.message)
    raise RuntimeError("connection closed")


async def run(rounds: int, reply_tokens: int) -> None:
    from openai import AsyncOpenAI

    from sesame_voice.app.server import Server
    from sesame_voice.config import load_settings
    from sesame_voice_responder.tiny_llm import serve_tiny_chat_model, write_tiny_chat_model

    with tempfile.TemporaryDirectory() as folder:
        model = write_tiny_chat_model(Path(folder) / "model")
        with serve_tiny_chat_model(model) as url:
            env = {
                "RESPONDER_URL": url,
                "RESPONDER_MODEL": str(model),
                "RESPONDER_TEMPERATURE": "0",
                "RESPONDER_MAX_TOKENS": str(reply_tokens),
            }
            settings = load_settings(
                env=env,
                dotenv_file=None,
                host="127.0.0.1",
                port=0,
                zeroconf_enabled=False,
                voices_dir=Path(folder) / "voices",
                cache_dir=Path(folder) / "cache",
                default_voice="joe",
                disabled_plugins=("csm",),
            )
            async with Server(settings) as server:
                port = server.http_port
                client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-bench", max_retries=0)
                clips = [await speech_24k(port, text) for text in UTTERANCES]
                rows = []
                async with client.realtime.connect(model="gpt-realtime") as connection:
                    await connection.recv()
                    await connection.session.update(
                        session={
                            "type": "realtime",
                            "audio": {"input": {"turn_detection": None}, "output": {"voice": "joe"}},
                        }
                    )
                    await connection.recv()
                    await one_turn(connection, clips[0])  # warm-up: Whisper and Piper loaded, not counted
                    for round_ in range(rounds):
                        for text, clip in zip(UTTERANCES, clips):
                            latency = await one_turn(connection, clip)
                            rows.append(latency)
                            print(
                                f"round {round_ + 1} {text[:36]:<38} transcript {latency['transcript_s']:.3f} s  "
                                f"first token {latency['first_token_s']:.3f} s  "
                                f"first audio {latency['first_audio_s']:.3f} s",
                                flush=True,
                            )
    print()
    for stage in ("transcript_s", "first_token_s", "first_audio_s"):
        values = [row[stage] for row in rows]
        print(
            f"{stage[:-2]:<12} median {statistics.median(values):.3f} s  min {min(values):.3f}  max {max(values):.3f}"
            f"  (n={len(values)})"
        )
    first_audio = statistics.median(row["first_audio_s"] for row in rows)
    print(
        f"Home Assistant Assist (built-in intent agent): {ASSIST[0]:.2f}-{ASSIST[1]:.2f} s to reply audio; "
        f"here median {first_audio:.3f} s ({first_audio / ASSIST[0]:.2f}x-{first_audio / ASSIST[1]:.2f}x of it)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reply-tokens", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.reply_tokens))


if __name__ == "__main__":
    sys.exit(main())
