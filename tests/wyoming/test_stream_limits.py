"""Bounds on Wyoming streamed text: a total length and an overall deadline, however the chunks are paced."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice
from wyoming_helpers import read_reply

from fakes import FakePlugin, ToneProvider
from sesame_voice.config import ConfigError
from sesame_voice_wyoming.options import wyoming_options

GUARD_SECONDS = 30
"""Only a guard against a hang: a failing run stops here instead of never."""


async def _until_closed(client: AsyncTcpClient) -> list:
    """Events until the server closes (a reset also counts: it may close with our data unread)."""
    events = []
    with contextlib.suppress(ConnectionError):
        while (event := await client.read_event()) is not None:
            events.append(event)
    return events


async def _wait_idle(server) -> None:
    for _ in range(600):
        if server.engine.active == 0 and all(w.pending == 0 for w in server.engine.workers.values()):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the stream's synthesis never ended")


async def test_a_streamed_text_over_the_total_length_is_stopped_and_the_connection_closed(start_wyoming):
    wyoming = {"stream_max_chars": 200}
    async with start_wyoming(
        plugins=[FakePlugin(ToneProvider)], disabled_plugins=("piper",), plugin_settings={"wyoming": wyoming}
    ) as (server, frontend):
        async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="tone")).event())
            for _ in range(5):  # 250 characters in 50-character chunks, each far under MAX_INPUT_LENGTH
                await client.write_event(
                    SynthesizeChunk(text="Some words of a long answer, still going on ok. ").event()
                )
            events = await asyncio.wait_for(_until_closed(client), GUARD_SECONDS)
        errors = [e for e in events if e.type == "error"]
        assert [e.data["code"] for e in errors] == ["stream_too_long"]
        assert "200 characters" in errors[0].data["text"]
        await _wait_idle(server)


async def test_a_stream_past_its_deadline_is_stopped_even_while_chunks_keep_coming(start_wyoming):
    # The idle timer alone would never fire: a chunk arrives every 0.1 s.
    wyoming = {"stream_deadline": 1.0, "stream_idle_timeout": 0.5}
    async with start_wyoming(
        plugins=[FakePlugin(ToneProvider)], disabled_plugins=("piper",), plugin_settings={"wyoming": wyoming}
    ) as (server, frontend):
        tone = server.providers["tone"]
        assert not tone.takes_turns  # its one job thread is held while a stream waits for text
        client = AsyncTcpClient("127.0.0.1", frontend.port)
        await client.connect()
        try:
            await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="tone")).event())
            reading = asyncio.create_task(_until_closed(client))
            sent = 0
            while not reading.done() and sent < GUARD_SECONDS * 10:
                try:
                    await client.write_event(SynthesizeChunk(text="word ").event())
                except ConnectionError:  # the server hung up between our check and this chunk
                    break
                sent += 1
                await asyncio.sleep(0.1)
            events = await asyncio.wait_for(reading, GUARD_SECONDS)
        finally:
            # The server closes with our last chunks unread, so the kernel may answer with a reset.
            with contextlib.suppress(ConnectionError):
                await client.disconnect()
        codes = [e.data["code"] for e in events if e.type == "error"]
        assert codes == ["stream_deadline"], codes
        assert "1 s of synthesize-start" in next(e for e in events if e.type == "error").data["text"]
        await _wait_idle(server)
        # The provider is free again: another client is answered in full.
        async with AsyncTcpClient("127.0.0.1", frontend.port) as other:
            await other.write_event(Synthesize(text="Quick one.", voice=SynthesizeVoice(name="tone")).event())
            reply = await asyncio.wait_for(read_reply(other, ("audio-stop", "error")), GUARD_SECONDS)
        assert reply.types[-1] == "audio-stop"


def test_stream_bounds_are_settings_with_safe_defaults(make_settings):
    options = wyoming_options(make_settings())
    assert (options.stream_max_chars, options.stream_deadline) == (16384, 300.0)
    with pytest.raises(ConfigError, match="stream_deadline"):
        wyoming_options(make_settings(plugins={"wyoming": {"stream_deadline": 0}}))


async def test_a_stream_waiting_for_its_first_sentence_does_not_hold_the_provider(start_wyoming):
    async with start_wyoming(plugins=[FakePlugin(ToneProvider)], disabled_plugins=("piper",)) as (server, frontend):
        assert not server.providers["tone"].takes_turns  # one job at a time, like CSM
        async with AsyncTcpClient("127.0.0.1", frontend.port) as streaming:
            await streaming.write_event(SynthesizeStart(voice=SynthesizeVoice(name="tone")).event())
            await streaming.write_event(SynthesizeChunk(text="Let me think about").event())  # no sentence yet
            async with AsyncTcpClient("127.0.0.1", frontend.port) as other:
                await other.write_event(Synthesize(text="Quick one.", voice=SynthesizeVoice(name="tone")).event())
                reply = await asyncio.wait_for(read_reply(other, ("audio-stop", "error")), GUARD_SECONDS)
            assert reply.types[-1] == "audio-stop"  # served while the stream is still open and waiting
            await streaming.write_event(SynthesizeChunk(text=" that. Done.").event())
            await streaming.write_event(SynthesizeStop().event())
            streamed = await asyncio.wait_for(read_reply(streaming, ("synthesize-stopped", "error")), GUARD_SECONDS)
        assert streamed.types.count("audio-stop") == 1 and streamed.types[-1] == "synthesize-stopped"
        assert server.providers["tone"].sentences_done[-2:] == ["Let me think about that.", "Done."]
