"""Real speech over Wyoming: Piper's bundled voice, assembled like Home Assistant, checked by Whisper."""

from __future__ import annotations

import asyncio

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)
from wyoming_helpers import read_reply, split_mid_word

TEXT = (
    "Good morning, the quick brown fox jumps over the lazy dog. "
    "The kitchen lights are now switched on. "
    "Today the weather is sunny and warm."
)
MAX_WER = 0.10


async def synthesize(port: int, text: str, voice: str | None) -> object:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name=voice) if voice else None).event())
        return await read_reply(client, ("audio-stop", "error"))


async def stream(port: int, text: str, voice: str | None) -> object:
    """What Home Assistant sends for streamed LLM text: start, chunks, the full text again, stop."""
    voice_event = SynthesizeVoice(name=voice) if voice else None
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(SynthesizeStart(voice=voice_event).event())
        for piece in split_mid_word(text, 6):
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(Synthesize(text=text, voice=voice_event).event())
        await client.write_event(SynthesizeStop().event())
        return await read_reply(client, ("synthesize-stopped",))


def check_reply(reply, transcribe, wer, streaming: bool) -> str:
    assert "error" not in reply.types, reply.of("error")[0].data
    assert reply.types[0] == "audio-start"
    assert reply.types.count("audio-start") == 1 and reply.types.count("audio-stop") == 1
    assert reply.types[-1] == ("synthesize-stopped" if streaming else "audio-stop")
    samples, rate = reply.samples()
    assert rate == 22050 and len(samples) / rate > 4.0
    heard = transcribe(samples, rate)
    assert wer(TEXT, heard) <= MAX_WER, heard
    return heard


@pytest.mark.parametrize("voice", ["joe", None])
async def test_synthesize_is_understood(piper_wyoming, transcribe, wer, voice):
    _, frontend = piper_wyoming
    check_reply(await synthesize(frontend.port, TEXT, voice), transcribe, wer, streaming=False)


async def test_streamed_text_split_mid_word_is_understood(piper_wyoming, transcribe, wer):
    _, frontend = piper_wyoming
    check_reply(await stream(frontend.port, TEXT, "joe"), transcribe, wer, streaming=True)


async def test_four_clients_at_once_are_all_understood(piper_wyoming, transcribe, wer):
    _, frontend = piper_wyoming
    jobs = [synthesize(frontend.port, TEXT, "joe"), stream(frontend.port, TEXT, "joe")] * 2
    replies = await asyncio.wait_for(asyncio.gather(*jobs), 120)
    for index, reply in enumerate(replies):
        check_reply(reply, transcribe, wer, streaming=index % 2 == 1)
