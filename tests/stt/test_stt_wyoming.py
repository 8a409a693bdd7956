"""Wyoming speech to text, driven exactly as Home Assistant's wyoming stt integration drives it."""

from __future__ import annotations

import asyncio

import numpy as np
import soxr
from stt_helpers import pcm16, read_audio, transcribe_like_home_assistant
from wyoming.asr import Transcript
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from support import SENTENCES


async def piper_samples(server, text: str) -> tuple[np.ndarray, int]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
    audio = await client.audio.speech.with_raw_response.create(
        model="tts-1", voice="joe", input=text, response_format="wav"
    )
    return read_audio(audio.content)


async def test_describe_lists_the_asr_model_and_its_languages(start_wyoming):
    async with start_wyoming() as (server, port):
        await asyncio.wait_for(_loaded(server), 120)
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event(await client.read_event())
    program = info.asr[0]
    assert program.installed and program.supports_transcript_streaming
    assert [m.name for m in program.models] == ["tiny.en"] and program.models[0].languages[:3] == [
        "en",
        "en-US",
        "en_US",
    ]
    assert info.tts and info.tts[0].voices  # text to speech is still described beside it


async def _loaded(server) -> None:
    while server.speech_to_text.providers["whisper"].state != "ready":
        await asyncio.sleep(0.1)


async def test_home_assistant_transcription_streams_then_answers(start_wyoming, wer):
    async with start_wyoming() as (server, port):
        samples, rate = await piper_samples(server, SENTENCES[1])
        audio = pcm16(soxr.resample(samples, rate, 16000))
        events = await transcribe_like_home_assistant(port, audio)
    types = [e.type for e in events]
    assert types[0] == "transcript-start" and types[-2:] == ["transcript-stop", "transcript"]
    assert set(types[1:-2]) == {"transcript-chunk"}
    transcript = Transcript.from_event(events[-1])
    assert wer(SENTENCES[1], transcript.text) <= 0.1 and transcript.language == "en"
    assert " ".join(e.data["text"].strip() for e in events[1:-2]) == transcript.text


async def test_other_rates_and_channels_are_converted(start_wyoming, wer):
    async with start_wyoming() as (server, port):
        samples, rate = await piper_samples(server, SENTENCES[0])
        stereo = np.repeat(soxr.resample(samples, rate, 48000)[:, None], 2, axis=1)
        audio = (np.clip(stereo, -1, 1) * 2**31 * 0.99).astype("<i4").tobytes()
        events = await transcribe_like_home_assistant(port, audio, rate=48000, width=4, channels=2, chunk_bytes=4096)
    assert wer(SENTENCES[0], Transcript.from_event(events[-1]).text) <= 0.1


async def test_one_connection_serves_several_utterances_and_speech(start_wyoming, wer):
    """A satellite may keep its connection: transcribe twice, then synthesize, on one socket."""
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.tts import Synthesize

    async with start_wyoming() as (server, port):
        samples, rate = await piper_samples(server, SENTENCES[0])
        audio = pcm16(soxr.resample(samples, rate, 16000))
        async with AsyncTcpClient("127.0.0.1", port) as client:
            texts = []
            for _ in range(2):
                await client.write_event(Transcribe(language="en").event())
                await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=audio).event())
                await client.write_event(AudioStop().event())
                while not Transcript.is_type((event := await client.read_event()).type):
                    pass
                texts.append(Transcript.from_event(event).text)
            await client.write_event(Synthesize(text="Done.").event())
            while (event := await client.read_event()).type != "audio-stop":
                pass
    assert texts[0] == texts[1] and wer(SENTENCES[0], texts[0]) <= 0.1
