"""``speed`` as OpenAI defines it (duration / speed) for every provider, stretched without clicks."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
import soundfile as sf

from fakes import RATE, FakePlugin, ToneProvider
from sesame_voice import AudioChunk, Provider, SynthesisRequest, Voice, hookimpl
from sesame_voice.audio import time_stretch
from sesame_voice.engine.shaping import split_speed
from support import SENTENCES

SPEEDS = (0.25, 0.5, 1.5, 2.0, 4.0)
TONE_TEXT = "This is the first sentence. Here comes the second one. And now the third sentence. Finally the fourth one."


def _tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


class NativeSpeedTone(Provider):
    """Renders tempos 0.5-2 itself, exactly: each sentence is a 0.5 s / ``job.speed`` tone."""

    name = "native-tone"
    native_speed_range = (0.5, 2.0)

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.speeds_seen: list[float] = []

    def default_voices(self):
        return [Voice(name="native-tone", provider=self.name)]

    def synthesize(self, job):
        self.speeds_seen.append(job.speed)
        for _ in job.sentences:
            yield AudioChunk(_tone(0.5 / job.speed, 330.0), RATE)


class GatedTone(Provider):
    """Yields its first sentence, then waits for the test to say it heard it before going on."""

    name = "gated"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.heard_first = threading.Event()
        self.waited_in_vain = False

    def default_voices(self):
        return [Voice(name="gated", provider=self.name)]

    def synthesize(self, job):
        for index, _ in enumerate(job.sentences):
            yield AudioChunk(_tone(0.5, 300.0 + 50 * index), RATE)
            if index == 0 and not self.heard_first.wait(timeout=30):
                self.waited_in_vain = True  # the engine held the first chunk back


class SpeedPlugin:
    @hookimpl
    def register_providers(self, register):
        register(NativeSpeedTone)
        register(GatedTone)


def test_split_speed_keeps_native_within_range_and_stretches_the_rest():
    assert split_speed(4.0, (1.0, 1.0)) == (1.0, 4.0)
    assert split_speed(1.02, (0.95, 1.05)) == (1.02, 1.0)
    native, stretch = split_speed(0.25, (0.5, 2.0))
    assert (native, stretch) == (0.5, 0.5)
    native, stretch = split_speed(4.0, (0.95, 1.05))
    assert native == 1.05 and native * stretch == pytest.approx(4.0)


async def _engine_audio(server, **request) -> tuple[np.ndarray, list[int]]:
    async with server.engine.synthesis(SynthesisRequest(**request)) as synthesis:
        chunks = [chunk async for chunk in synthesis]
    assert {chunk.sample_rate for chunk in chunks} == {RATE}
    return np.concatenate([c.samples for c in chunks]), [len(c.samples) for c in chunks]


@pytest.mark.parametrize("speed", SPEEDS)
async def test_stretched_stream_equals_the_whole_clip_stretched(start_server, speed):
    """Chunk joins leave no trace: no sample-to-sample jump beyond what the unstretched audio has."""
    async with start_server(plugins=[FakePlugin(ToneProvider)]) as server:
        plain, plain_chunks = await _engine_audio(server, text=TONE_TEXT, voice="tone")
        stretched, chunks = await _engine_audio(server, text=TONE_TEXT, voice="tone", speed=speed)
    assert len(plain_chunks) == 4 and len(chunks) >= 4  # one chunk per sentence: joins to cross
    whole = time_stretch(plain, RATE, speed)
    assert len(stretched) == len(whole) == round(len(plain) / speed)
    assert np.abs(stretched - whole).max() < 1e-6
    assert np.abs(np.diff(stretched)).max() <= 1.05 * np.abs(np.diff(plain)).max()


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
async def test_first_stretched_audio_comes_with_the_first_chunk(start_server, speed):
    """The provider is held after its first chunk until that chunk's audio reached the caller."""
    async with start_server(plugins=[SpeedPlugin()]) as server:
        provider = server.providers["gated"]
        request = SynthesisRequest(
            text="This is the first sentence. Here comes the second one.", voice="gated", speed=speed
        )
        async with server.engine.synthesis(request) as synthesis:
            samples = []
            async for chunk in synthesis:
                provider.heard_first.set()
                samples.append(chunk.samples)
    assert not provider.waited_in_vain, "first audio waited for the provider's second chunk"
    assert len(np.concatenate(samples)) == round(2 * 0.5 * RATE / speed)


async def test_native_speed_is_used_within_the_providers_range_only(start_server):
    async with start_server(plugins=[SpeedPlugin()]) as server:
        provider = server.providers["native-tone"]
        plain, _ = await _engine_audio(server, text=TONE_TEXT, voice="native-tone")
        for speed, native in ((1.5, 1.5), (4.0, 2.0), (0.25, 0.5)):
            provider.speeds_seen.clear()
            audio, _ = await _engine_audio(server, text=TONE_TEXT, voice="native-tone", speed=speed)
            assert provider.speeds_seen == [native]
            assert len(audio) == pytest.approx(len(plain) / speed, abs=4)


async def _api_audio(client, voice: str, text: str, speed: float) -> tuple[np.ndarray, int]:
    response = await client.audio.speech.create(
        model="tts-1", voice=voice, input=text, response_format="wav", speed=speed
    )
    samples, rate = sf.read(io.BytesIO(response.read()), dtype="float32")
    return samples, rate


@pytest.mark.parametrize(
    ("voice", "text"), [("tone", TONE_TEXT), ("native-tone", TONE_TEXT), ("joe", " ".join(SENTENCES))]
)
async def test_speed_divides_the_duration_for_every_provider(start_server, voice, text, transcribe, wer):
    """Through the OpenAI API: duration(speed) is duration(1.0) / speed within 10%, words intact."""
    from openai import AsyncOpenAI

    async with start_server(plugins=[FakePlugin(ToneProvider), SpeedPlugin()]) as server:
        client = AsyncOpenAI(
            base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="sk-test", max_retries=0, timeout=120
        )
        plain, rate = await _api_audio(client, voice, text, 1.0)
        base = len(plain) / rate
        for speed in SPEEDS:
            samples, rate = await _api_audio(client, voice, text, speed)
            duration = len(samples) / rate
            assert duration == pytest.approx(base / speed, rel=0.10), f"{voice} at {speed}: {duration:.2f}s"
            if voice == "joe" and speed in (0.5, 2.0):
                heard = transcribe(samples, rate)
                assert wer(text, heard) <= 0.10, f"at speed {speed} Whisper heard {heard!r}"
