"""Wyoming speech to text is bounded: streams at once, audio held per utterance; chunks are converted off the loop."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import soxr
from stt_helpers import EchoPlugin, pcm16, transcribe_like_home_assistant
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from sesame_voice.config import ConfigError
from sesame_voice_wyoming.options import wyoming_options

GUARD_SECONDS = 30
"""Only a guard against a hang: a failing run stops here instead of never."""
ECHO = {"plugins": [EchoPlugin()], "disabled_plugins": ("csm", "whisper")}
TONE = pcm16(0.3 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000))
"""One second of a 440 Hz tone at 16 kHz, 16-bit mono."""


async def _until_closed(client: AsyncTcpClient) -> list:
    events = []
    while (event := await client.read_event()) is not None:
        events.append(event)
    return events


async def _wait_for(condition) -> None:
    for _ in range(GUARD_SECONDS * 20):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def _open_utterance(port: int) -> AsyncTcpClient:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    await client.write_event(Transcribe(name="echo-1").event())
    await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
    await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=TONE).event())
    return client


async def test_streams_past_the_cap_are_refused_and_a_freed_slot_serves_again(start_wyoming):
    async with start_wyoming({"wyoming": {"max_stt_streams": 2}}, **ECHO) as (server, port):
        frontend = next(f for f in server.frontends if f.name == "wyoming")
        holders = [await _open_utterance(port) for _ in range(2)]
        await _wait_for(lambda: frontend.stt_slots.in_use == 2)
        refused = await _open_utterance(port)
        events = await asyncio.wait_for(_until_closed(refused), GUARD_SECONDS)  # answered, then hung up on
        await refused.disconnect()
        assert [e.type for e in events] == ["error", "transcript"]
        assert events[0].data["code"] == "overloaded" and "2 speech-to-text streams" in events[0].data["text"]
        assert Transcript.from_event(events[1]).text == ""
        # The held utterances are still served, and each frees its slot with its transcript.
        for client in holders:
            await client.write_event(AudioStop().event())
            while (event := await asyncio.wait_for(client.read_event(), GUARD_SECONDS)).type != "transcript":
                pass
            assert Transcript.from_event(event).text.startswith("8000 samples at 8000 hertz")
            await client.disconnect()
        assert frontend.stt_slots.in_use == 0
        events = await transcribe_like_home_assistant(port, TONE, language=None)
        assert events[-1].type == "transcript" and "error" not in [e.type for e in events]


async def test_an_utterance_over_the_byte_cap_is_refused_before_it_is_held(start_wyoming):
    cap = 16000 * 4  # one second of float32 mono at 16 kHz
    async with start_wyoming({"wyoming": {"max_audio_bytes": cap}}, **ECHO) as (server, port):
        frontend = next(f for f in server.frontends if f.name == "wyoming")
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe(name="echo-1").event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            for _ in range(3):  # three seconds: the second chunk would pass the cap
                await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=TONE).event())
            events = await asyncio.wait_for(_until_closed(client), GUARD_SECONDS)
        assert [e.type for e in events] == ["error", "transcript"]
        assert events[0].data["code"] == "audio_too_large" and str(cap) in events[0].data["text"]
        await _wait_for(lambda: frontend.stt_slots.in_use == 0)
        assert server.speech_to_text.providers["echo"].jobs == []  # nothing was transcribed


async def test_each_chunk_is_resampled_off_the_event_loop(start_wyoming, monkeypatch):
    threads: list[int] = []
    original = soxr.resample

    def watched(*args, **kwargs):
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(soxr, "resample", watched)
    loop_thread = threading.get_ident()  # the test and the server share one event loop
    async with start_wyoming(**ECHO) as (server, port):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe(name="echo-1").event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            high = pcm16(0.3 * np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000))
            for offset in range(0, len(high), 9600):  # chunks at 48 kHz in a 16 kHz utterance
                chunk = AudioChunk(rate=48000, width=2, channels=1, audio=high[offset : offset + 9600])
                await client.write_event(chunk.event())
            await client.write_event(AudioStop().event())
            while (event := await asyncio.wait_for(client.read_event(), GUARD_SECONDS)).type != "transcript":
                pass
    assert Transcript.from_event(event).text.startswith("8000 samples at 8000 hertz")  # 1 s, resampled
    assert len(threads) >= 10  # every chunk was resampled (and the job to the provider's rate)
    assert loop_thread not in threads


async def test_small_chunks_at_the_utterance_rate_skip_the_thread_hand_off(start_wyoming, monkeypatch):
    """A recording replayed faster than real time (hundreds of 1024-sample chunks) left a queue of
    thread hand-offs behind ``audio-stop`` (0.2 s for 23.5 s of audio): small chunks that need no
    resampling are converted on the loop; large ones still go to a thread."""
    import sesame_voice_wyoming.asr as asr

    handed_off: list[int] = []
    original = asr.asyncio.to_thread

    async def watched(function, *args, **kwargs):
        if function is asr.chunk_samples:
            handed_off.append(len(args[0]))
        return await original(function, *args, **kwargs)

    monkeypatch.setattr(asr.asyncio, "to_thread", watched)
    async with start_wyoming(**ECHO) as (server, port):
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Transcribe(name="echo-1").event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            second = pcm16(0.3 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000))
            for offset in range(0, len(second), 2048):
                await client.write_event(
                    AudioChunk(rate=16000, width=2, channels=1, audio=second[offset : offset + 2048]).event()
                )
            large = second * 2  # 64 000 bytes in one chunk
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=large).event())
            await client.write_event(AudioStop().event())
            while (event := await asyncio.wait_for(client.read_event(), GUARD_SECONDS)).type != "transcript":
                pass
    assert Transcript.from_event(event).text.startswith("24000 samples at 8000 hertz")  # 3 s: every chunk kept
    assert handed_off == [len(large)]


def test_stt_bounds_are_settings_with_safe_defaults(make_settings):
    options = wyoming_options(make_settings())
    assert (options.max_stt_streams, options.max_audio_bytes) == (8, 32 * 1024 * 1024)
    with pytest.raises(ConfigError, match="max_stt_streams"):
        wyoming_options(make_settings(plugins={"wyoming": {"max_stt_streams": 0}}))
