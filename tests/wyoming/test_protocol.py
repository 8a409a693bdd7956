"""Wyoming protocol behaviour against a real server on 127.0.0.1, with deterministic fake providers."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)
from wyoming_helpers import read_reply, split_mid_word

from fakes import BrokenProvider, FakePlugin, SlowToneProvider, ToneProvider
from sesame_voice import AudioChunk as EngineChunk
from sesame_voice import Provider, Voice

TEXT = "First sentence here. Second one is low. And the third ends it."


class TwoRateProvider(Provider):
    """0.5 s per sentence: 16 kHz when the sentence says 'low', else 24 kHz; a two-speaker voice."""

    name = "tworate"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.speakers_seen: list = []

    def default_voices(self):
        return [Voice(name="duo", provider=self.name, description="Two speakers", speakers=("alice", "bob"))]

    def synthesize(self, job):
        self.speakers_seen.append(job.params.get("speaker"))
        for sentence in job.sentences:
            rate = 16000 if "low" in sentence.lower() else 24000
            t = np.arange(rate // 2) / rate
            yield EngineChunk((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)


class RecordingProvider(Provider):
    """Records every job it gets and each sentence as its worker thread reads it; 0.1 s of tone each."""

    name = "recorder"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.jobs: list[list[str]] = []
        self.first_read = threading.Event()

    def default_voices(self):
        return [Voice(name="recorder", provider=self.name)]

    def synthesize(self, job):
        heard: list[str] = []
        self.jobs.append(heard)
        for sentence in job.sentences:
            heard.append(sentence)
            self.first_read.set()
            yield EngineChunk(np.full(2400, 0.1, dtype=np.float32), 24000)


PLUGIN = FakePlugin(ToneProvider, SlowToneProvider, BrokenProvider, TwoRateProvider, RecordingProvider)


@pytest.fixture
async def fake_wyoming(start_wyoming):
    async with start_wyoming(plugins=[PLUGIN], default_voice="tone", disabled_plugins=("piper",)) as running:
        yield running


async def describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        reply = await read_reply(client, ("info",))
    return Info.from_event(reply.events[-1])


def audio_seconds(reply) -> float:
    start = AudioStart.from_event(reply.of("audio-start")[0])
    return sum(len(AudioChunk.from_event(e).audio) for e in reply.of("audio-chunk")) / (2 * start.rate)


async def test_describe_lists_every_voice_with_streaming(fake_wyoming):
    server, frontend = fake_wyoming
    info = await describe(frontend.port)
    (program,) = info.tts
    assert program.supports_synthesize_streaming and program.installed
    voices = {v.name: v for v in program.voices}
    assert set(voices) == {v.name for v in server.voices.list()}
    assert voices["duo"].description == "duo: Two speakers"  # Home Assistant lists voices by description
    assert voices["tone"].description == "tone: test tones (default)"
    assert [s.name for s in voices["duo"].speakers] == ["alice", "bob"]
    assert voices["tone"].speakers is None and voices["tone"].languages[:3] == ["en", "en-US", "en_US"]
    assert all(v.attribution.name and v.version for v in voices.values())


async def test_info_is_cached_and_refreshed_when_a_voice_is_added(fake_wyoming, voices_dir):
    server, frontend = fake_wyoming
    deadline = time.monotonic() + 30
    # Preloading changes provider states (CSM: idle, loading, failed), and a state change rebuilds info.
    while server.settings.preload and any(p.state in ("idle", "loading") for p in server.providers.values()):
        assert time.monotonic() < deadline, "providers never finished loading"
        await asyncio.sleep(0.05)
    cached = frontend.info_event()
    await describe(frontend.port)
    assert frontend.info_event() is cached  # answered from memory, not rebuilt per describe
    (voices_dir / "extra.yaml").write_text("provider: tone\ndescription: Added later\n")
    deadline = time.monotonic() + 10
    while "extra" not in [v.name for v in (await describe(frontend.port)).tts[0].voices]:
        assert time.monotonic() < deadline, "new voice never appeared in info"
        await asyncio.sleep(0.1)


async def test_ping_gets_pong(fake_wyoming):
    _, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Ping(text="hi").event())
        reply = await read_reply(client, ("pong",))
    assert reply.types == ["pong"] and reply.events[0].data["text"] == "hi"


async def test_synthesize_sends_one_start_chunks_one_stop(fake_wyoming):
    server, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        # no voice: the default one
        await client.write_event(Synthesize(text="This is one. This is two. This is three.").event())
        reply = await read_reply(client, ("audio-stop", "error"))
    assert reply.types[0] == "audio-start" and reply.types[-1] == "audio-stop"
    assert reply.types.count("audio-start") == 1 and reply.types.count("audio-stop") == 1
    assert set(reply.types[1:-1]) == {"audio-chunk"}
    start = AudioStart.from_event(reply.events[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    assert audio_seconds(reply) == pytest.approx(1.5, abs=0.01)
    assert server.providers["tone"].sentences_done[-3:] == ["This is one.", "This is two.", "This is three."]


async def test_first_clause_is_spoken_on_its_own(fake_wyoming):
    server, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Synthesize(text="All right then, the lights are on. See you, my friend.").event())
        reply = await read_reply(client, ("audio-stop", "error"))
    assert reply.types.count("audio-start") == 1 and reply.types[-1] == "audio-stop"
    assert server.providers["tone"].sentences_done == ["All right then,", "the lights are on.", "See you, my friend."]


async def test_an_answer_is_one_job_whose_text_arrives_in_order(fake_wyoming):
    server, frontend = fake_wyoming
    recorder = server.providers["recorder"]
    text = "All right then, the lights are on. The heating is set to twenty degrees. See you later."
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="recorder")).event())
        reply = await read_reply(client, ("audio-stop", "error"))
    assert reply.types[-1] == "audio-stop"
    spoken = ["All right then,", "the lights are on.", "The heating is set to twenty degrees.", "See you later."]
    assert recorder.jobs == [spoken]  # one job; its first clause first, for an early start

    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="recorder")).event())
        first_end = text.index("The heating")
        for piece in split_mid_word(text[: first_end + 3]):
            await client.write_event(SynthesizeChunk(text=piece).event())
        # The job is already speaking while the rest of the answer has not been written yet.
        assert await asyncio.to_thread(recorder.first_read.wait, 10)
        assert (await asyncio.wait_for(client.read_event(), 10)).type == "audio-start"
        # The provider reads on to the second clause once its first audio was sent (the text up
        # to there has arrived): wait for it rather than race it.
        deadline = time.monotonic() + 10
        while len(recorder.jobs[1]) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert recorder.jobs[1][:2] == spoken[:2]
        for piece in split_mid_word(text[first_end + 3 :]):
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(name="recorder")).event())  # HA's copy
        await client.write_event(SynthesizeStop().event())
        reply = await read_reply(client, ("synthesize-stopped",))
    assert reply.types.count("audio-stop") == 1 and reply.types[-1] == "synthesize-stopped"
    assert recorder.jobs[1] == spoken and len(recorder.jobs) == 2  # still one job for the whole stream
    assert server.metrics.summary()["requests"] == 2


async def test_a_stream_that_goes_quiet_ends_its_text_there(fake_wyoming):
    server, frontend = fake_wyoming
    recorder = server.providers["recorder"]
    frontend.stream_idle_timeout = 0.5
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="recorder")).event())
        await client.write_event(SynthesizeChunk(text="Hello there. And then").event())
        reply = await read_reply(client, ("error",))  # the client says nothing more
        assert reply.of("error")[0].data["code"] == "stream_timeout"
        await client.write_event(SynthesizeChunk(text=" too late.").event())
        await client.write_event(SynthesizeStop().event())
        reply = await read_reply(client, ("synthesize-stopped",))
    assert reply.types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert recorder.jobs == [["Hello there.", "And then"]]


def test_split_first_clause():
    from sesame_voice.api.text import split_first_clause

    assert split_first_clause("Well, yes.") == ["Well, yes."]  # too short to be worth it
    assert split_first_clause("It costs 1,000 euros today.") == ["It costs 1,000 euros today."]
    assert split_first_clause("Done: the timer is set.") == ["Done: the timer is set."]
    assert split_first_clause("The door is locked; the alarm is on.") == ["The door is locked;", "the alarm is on."]


async def test_speaker_is_passed_to_the_provider(fake_wyoming):
    server, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="duo", speaker="bob")).event())
        reply = await read_reply(client, ("audio-stop", "error"))
    assert reply.types[-1] == "audio-stop"
    assert server.providers["tworate"].speakers_seen == ["bob"]


async def test_streaming_speaks_sentences_as_they_complete(fake_wyoming):
    server, frontend = fake_wyoming
    tone = server.providers["tone"]
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="tone")).event())
        pieces = split_mid_word(TEXT)
        first_end = TEXT.index("Second")  # the first sentence is complete once the next word starts
        sent = 0
        for piece in pieces:
            await client.write_event(SynthesizeChunk(text=piece).event())
            sent += len(piece)
            if sent > first_end + 2:
                break
        first = await asyncio.wait_for(client.read_event(), 5)  # audio before the text is finished
        assert first.type == "audio-start"
        for piece in pieces[len(split_mid_word(TEXT[:sent])) :]:
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(Synthesize(text=TEXT, voice=SynthesizeVoice(name="tone")).event())  # HA's copy
        await client.write_event(SynthesizeStop().event())
        reply = await read_reply(client, ("synthesize-stopped",))
    types = ["audio-start", *reply.types]
    assert types[-2:] == ["audio-stop", "synthesize-stopped"]
    assert types.count("audio-start") == 1 and types.count("audio-stop") == 1
    assert tone.sentences_done == ["First sentence here.", "Second one is low.", "And the third ends it."]


async def test_streaming_keeps_the_first_format_and_resamples(fake_wyoming):
    _, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="duo")).event())
        for piece in split_mid_word(TEXT, 5):
            await client.write_event(SynthesizeChunk(text=piece).event())
        await client.write_event(SynthesizeStop().event())
        reply = await read_reply(client, ("synthesize-stopped",))
    rates = {AudioChunk.from_event(e).rate for e in reply.of("audio-chunk")}
    assert rates == {AudioStart.from_event(reply.of("audio-start")[0]).rate} == {24000}
    # 3 sentences × 0.5 s; the 16 kHz one was resampled to 24 kHz, not announced anew
    assert audio_seconds(reply) == pytest.approx(1.5, abs=0.02)
    samples, rate = reply.samples()
    assert rate == 24000 and np.abs(samples).max() > 0.1


async def test_empty_stream_still_ends_with_synthesize_stopped(fake_wyoming):
    _, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(SynthesizeStart().event())
        await client.write_event(SynthesizeStop().event())
        reply = await read_reply(client, ("synthesize-stopped",))
    assert reply.types == ["synthesize-stopped"]


async def test_unknown_voice_gives_error_and_server_keeps_serving(fake_wyoming):
    _, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Synthesize(text="Hello.", voice=SynthesizeVoice(name="nobody")).event())
        reply = await read_reply(client, ("audio-stop",))
    assert reply.types == ["error"]  # and the connection closed: HA waits for audio-stop otherwise
    assert reply.events[0].data["code"] == "voice_not_found" and "nobody" in reply.events[0].data["text"]

    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:  # streaming: error, then stopped
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="nobody")).event())
        await client.write_event(SynthesizeChunk(text="Hello there.").event())
        await client.write_event(SynthesizeStop().event())
        reply = await read_reply(client, ("synthesize-stopped",))
        assert reply.types == ["error", "synthesize-stopped"]
        await client.write_event(Synthesize(text="Still here.").event())  # same connection still works
        reply = await read_reply(client, ("audio-stop", "error"))
        assert reply.types[-1] == "audio-stop"


async def test_too_long_or_empty_text_gives_an_error_in_the_protocols_shape(start_wyoming):
    async with start_wyoming(
        plugins=[PLUGIN], default_voice="tone", disabled_plugins=("piper",), max_input_length=100
    ) as (_, frontend):
        async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
            await client.write_event(Synthesize(text="   ").event())
            reply = await read_reply(client, ("audio-stop",))
        assert reply.types == ["error"] and reply.events[0].data["code"] == "empty_input"
        async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
            await client.write_event(Synthesize(text="Words " * 30).event())
            reply = await read_reply(client, ("audio-stop",))
        assert reply.types == ["error"] and reply.events[0].data["code"] == "input_too_long"
        async with AsyncTcpClient("127.0.0.1", frontend.port) as client:  # a stream that never ends a sentence
            await client.write_event(SynthesizeStart().event())
            await client.write_event(SynthesizeChunk(text="It starts well. And then ").event())
            for _ in range(10):
                await client.write_event(SynthesizeChunk(text="it goes on and on ").event())
            await client.write_event(SynthesizeStop().event())
            reply = await read_reply(client, ("synthesize-stopped",))
        assert "input_too_long" in [e.data.get("code") for e in reply.of("error")]
        assert reply.types[-2:] == ["audio-stop", "synthesize-stopped"]  # the complete sentence was spoken
        assert audio_seconds(reply) == pytest.approx(0.5, abs=0.01)


async def test_unknown_speaker_and_bad_fields_give_errors(fake_wyoming):
    _, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="duo", speaker="eve")).event())
        reply = await read_reply(client, ("audio-stop",))
    assert reply.types == ["error"] and reply.events[0].data["code"] == "speaker_not_found"
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Event(type="synthesize", data={"text": 5}))
        reply = await read_reply(client, ("audio-stop",))
    assert reply.types == ["error"] and reply.events[0].data["code"] == "invalid_event"


async def test_provider_failure_gives_error(fake_wyoming):
    _, frontend = fake_wyoming
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Synthesize(text="Boom.", voice=SynthesizeVoice(name="broken")).event())
        reply = await read_reply(client, ("audio-stop",))
    assert reply.types == ["error"] and reply.events[0].data["code"] == "provider_error"


@pytest.mark.parametrize(
    "garbage",
    [b"this is not json\n", b'{"type": 5}\n', b'{"type": "synthesize", "data_length": -3}\n', b"x" * 70000 + b"\n"],
)
async def test_garbage_gives_error_and_server_keeps_serving(fake_wyoming, garbage):
    _, frontend = fake_wyoming
    reader, writer = await asyncio.open_connection("127.0.0.1", frontend.port)
    writer.write(garbage)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)  # error event, then the server closes
    writer.close()
    assert b'"type": "error"' in data and b"malformed_event" in data
    info = await describe(frontend.port)
    assert info.tts


async def test_a_slow_synthesis_does_not_block_other_clients(fake_wyoming):
    server, frontend = fake_wyoming
    long_text = " ".join(f"Sentence number {i}." for i in range(20))  # 20 × 0.3 s on slowtone
    async with AsyncTcpClient("127.0.0.1", frontend.port) as busy:
        await busy.write_event(Synthesize(text=long_text, voice=SynthesizeVoice(name="slowtone")).event())
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await describe(frontend.port)
        assert time.monotonic() - started < 0.5
        async with AsyncTcpClient("127.0.0.1", frontend.port) as other:  # other providers serve at once
            await other.write_event(Synthesize(text="Quick.", voice=SynthesizeVoice(name="tone")).event())
            reply = await asyncio.wait_for(read_reply(other, ("audio-stop", "error")), 2)
            assert reply.types[-1] == "audio-stop"


async def test_disconnect_stops_the_synthesis(fake_wyoming):
    server, frontend = fake_wyoming
    slow = server.providers["slowtone"]
    client = AsyncTcpClient("127.0.0.1", frontend.port)
    await client.connect()
    long_text = " ".join(f"Sentence number {i}." for i in range(30))  # 9 s of work
    await client.write_event(Synthesize(text=long_text, voice=SynthesizeVoice(name="slowtone")).event())
    assert (await client.read_event()).type == "audio-start"
    await client.disconnect()
    await asyncio.sleep(1.5)  # the next write or two fail, and the engine drops the rest
    stopped_at = len(slow.sentences_done)
    await asyncio.sleep(1.0)
    assert len(slow.sentences_done) == stopped_at < 10


async def test_four_clients_at_once(fake_wyoming):
    _, frontend = fake_wyoming

    async def one(index: int, streaming: bool):
        async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
            text = f"Client {index} says hello. Then it says goodbye."
            if streaming:
                await client.write_event(SynthesizeStart().event())
                for piece in split_mid_word(text):
                    await client.write_event(SynthesizeChunk(text=piece).event())
                await client.write_event(SynthesizeStop().event())
                return await read_reply(client, ("synthesize-stopped",))
            await client.write_event(Synthesize(text=text).event())
            return await read_reply(client, ("audio-stop", "error"))

    replies = await asyncio.wait_for(asyncio.gather(*(one(i, i % 2 == 0) for i in range(4))), 20)
    for reply in replies:
        assert reply.types.count("audio-start") == 1 and reply.types.count("audio-stop") == 1
        assert audio_seconds(reply) == pytest.approx(1.0, abs=0.01)


async def test_frontend_can_be_disabled(start_server):
    plugins = [PLUGIN]
    async with start_server(
        plugins=plugins, default_voice="tone", plugin_settings={"wyoming": {"enabled": False}}
    ) as server:
        assert "wyoming" in server.frontend_classes and not server.frontends


async def test_announces_the_bound_port(fake_wyoming):
    server, frontend = fake_wyoming
    (announcement,) = frontend.announcements()
    assert announcement.service_type == "_wyoming._tcp.local." and announcement.port == frontend.port != 0
    assert announcement.properties["voices"] == str(len(server.voices.list()))
    assert any(a.service_type == "_wyoming._tcp.local." for a in server.announcements())
