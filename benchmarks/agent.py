"""Agent latency: end of the user's turn -> transcript -> first reply token -> first reply audio.

One sesame-voice server in this process (bundled Piper voice ``joe``, Whisper tiny.en) whose
responder is ``transformers serve`` running the tiny random chat model on 127.0.0.1 (what the tests
use; a real LLM's first token comes later). Two clients take turns on the same utterances (Piper
speech at 24 kHz), one after the other, in one run:

- ``realtime``: the ``openai`` SDK's realtime client, turn detection off, appends the utterance,
  commits it and asks for a response; stages from each ``response.done``'s ``latency``;
- ``session``: the session WebSocket's agent loop, microphone audio as 16-bit binary messages with
  turn detection off, then ``commit_audio``; stages from ``reply_done``'s ``latency`` (the reply is
  cancelled once its first audio arrived: it plays in real time and its length is not measured).

Time 0 is the commit, i.e. the moment a server VAD would decide the turn ended (with server VAD its
``silence_duration_ms``, 500 ms by default, comes before that). Prints every case and the medians
per loop, next to Home Assistant Assist's 0.38-0.74 s (reply audio after the end of speech, its
built-in intent agent).

    python benchmarks/agent.py [--rounds 5] [--reply-tokens 12]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
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


async def session_turn(ws, samples) -> dict:
    """One turn of the session WebSocket agent loop; its ``reply_done`` latency."""
    import aiohttp

    from sesame_voice.audio import to_pcm16

    for start in range(0, samples.size, 960):
        await ws.send_bytes(to_pcm16(samples[start : start + 960]))
    await ws.send_json({"type": "commit_audio"})
    cancelled = False
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            if not cancelled:  # the first reply audio is here: the rest plays in real time, skip it
                await ws.send_json({"type": "cancel"})
                cancelled = True
            continue
        event = json.loads(message.data)
        if event["type"] == "error":
            raise RuntimeError(event["message"])
        if event["type"] == "reply_done":
            return event["latency"]
    raise RuntimeError("connection closed")


def show(loop: str, round_: int, text: str, latency: dict) -> None:
    print(
        f"{loop:<8} round {round_ + 1} {text[:36]:<38} transcript {latency['transcript_s']:.3f} s  "
        f"first token {latency['first_token_s']:.3f} s  first audio {latency['first_audio_s']:.3f} s",
        flush=True,
    )


async def run(rounds: int, reply_tokens: int) -> None:
    import aiohttp
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
                rows: dict[str, list[dict]] = {"realtime": [], "session": []}
                async with aiohttp.ClientSession() as http:
                    async with http.post(f"http://127.0.0.1:{port}/v1/sessions", json={"voice": "joe"}) as answer:
                        session_id = (await answer.json())["id"]
                    async with (
                        client.realtime.connect(model="gpt-realtime") as connection,
                        http.ws_connect(f"ws://127.0.0.1:{port}/v1/sessions/{session_id}/ws") as ws,
                    ):
                        await connection.recv()
                        await connection.session.update(
                            session={
                                "type": "realtime",
                                "audio": {"input": {"turn_detection": None}, "output": {"voice": "joe"}},
                            }
                        )
                        await connection.recv()
                        await ws.receive_json()  # welcome
                        await ws.send_json(
                            {"type": "audio_in", "encoding": "s16le", "sample_rate": 24000, "turn_detection": None}
                        )
                        await ws.receive_json()
                        await one_turn(connection, clips[0])  # warm-up: Whisper and Piper loaded, not counted
                        await session_turn(ws, clips[0])
                        for round_ in range(rounds):
                            for text, clip in zip(UTTERANCES, clips):
                                latency = await one_turn(connection, clip)
                                rows["realtime"].append(latency)
                                show("realtime", round_, text, latency)
                                latency = await session_turn(ws, clip)
                                rows["session"].append(latency)
                                show("session", round_, text, latency)
    print()
    for loop, loop_rows in rows.items():
        for stage in ("transcript_s", "first_token_s", "first_audio_s"):
            values = [row[stage] for row in loop_rows]
            print(
                f"{loop:<8} {stage[:-2]:<12} median {statistics.median(values):.3f} s  min {min(values):.3f}  "
                f"max {max(values):.3f}  (n={len(values)})"
            )
        first_audio = statistics.median(row["first_audio_s"] for row in loop_rows)
        print(
            f"{loop:<8} Home Assistant Assist (built-in intent agent): {ASSIST[0]:.2f}-{ASSIST[1]:.2f} s to reply "
            f"audio; here median {first_audio:.3f} s ({first_audio / ASSIST[0]:.2f}x-{first_audio / ASSIST[1]:.2f}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reply-tokens", type=int, default=12)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.reply_tokens))


if __name__ == "__main__":
    sys.exit(main())
