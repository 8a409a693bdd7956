"""The Wyoming frontend driven the way Home Assistant 2026.11's ``wyoming`` integration drives it.

The integration (``homeassistant/components/wyoming/tts.py``) lists each installed voice under each
of its languages as ``Voice(voice_id=name, name=description)``, sorted by that description; a new
assist pipeline takes the first TTS language matching its own language and country
(``language_util.matches``) and the first voice listed for it. Streaming TTS sends
``synthesize-start``, ``synthesize-chunk``…, the whole text as ``synthesize``, ``synthesize-stop``,
and plays a WAV made of the first ``audio-start``'s header and every chunk until ``synthesize-stopped``.
"""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections import defaultdict

from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeStopped,
    SynthesizeVoice,
)

PIPELINE_LANGUAGE, COUNTRY = "en", "US"  # a stock English (United States) Home Assistant
ANSWER = "Sure, the kitchen lights are on now. Anything else?"


async def ha_describe(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                return Info.from_event(event)
    raise AssertionError("no info")


def ha_voices(info: Info) -> dict[str, list[tuple[str, str]]]:
    """WyomingTtsProvider.__init__: (voice_id, shown name) per language, sorted by the shown name."""
    program = next(tts for tts in info.tts if tts.installed)
    voices: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for voice in program.voices:
        if voice.installed:
            for language in voice.languages:
                voices[language].append((voice.name, voice.description or voice.name))
    return {language: sorted(listed, key=lambda v: v[1]) for language, listed in voices.items()}


def ha_language(supported: list[str], language: str, country: str) -> str | None:
    """language_util.matches(...)[0]: same language; its country's region first, then no region."""

    def parse(tag: str) -> tuple[str, str | None]:
        base, _, region = tag.replace("_", "-").partition("-")
        return base.lower(), region.upper() or None

    candidates = [tag for tag in supported if parse(tag)[0] == language]
    ranked = sorted(candidates, key=lambda tag: (parse(tag)[1] != country, parse(tag)[1] is not None))
    return ranked[0] if ranked else None


async def ha_stream(port: int, voice_id: str, text: str) -> tuple[bytes, list[str]]:
    """async_stream_tts_audio + _read_tts_audio: the WAV bytes Home Assistant plays, and the event types."""
    voice = SynthesizeVoice(name=voice_id, speaker=None)
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(SynthesizeStart(voice=voice).event())
        message = ""
        for index in range(0, len(text), 4):  # an LLM's deltas
            message += text[index : index + 4]
            await client.write_event(SynthesizeChunk(text=text[index : index + 4]).event())
        await client.write_event(Synthesize(text=message, voice=voice).event())
        await client.write_event(SynthesizeStop().event())
        data, types, header_sent = b"", [], False
        while event := await client.read_event():
            types.append(event.type)
            if header_sent and AudioChunk.is_type(event.type):
                data += AudioChunk.from_event(event).audio
            elif not header_sent and AudioStart.is_type(event.type):
                start = AudioStart.from_event(event)
                with io.BytesIO() as wav_io:
                    with wave.open(wav_io, "wb") as wav_file:
                        wav_file.setframerate(start.rate)
                        wav_file.setsampwidth(start.width)
                        wav_file.setnchannels(start.channels)
                    data = wav_io.getvalue()
                header_sent = True
            elif SynthesizeStopped.is_type(event.type):
                break
    return data, types


async def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        await asyncio.sleep(0.05)


async def test_home_assistant_picks_the_default_voice_and_shows_names(piper_wyoming):
    server, frontend = piper_wyoming
    csm = server.providers["csm"]
    await wait_until(lambda: csm.state == "failed")  # no CSM weights here: Piper stands in
    info = await ha_describe(frontend.port)

    voices = ha_voices(info)
    language = ha_language(list(voices), PIPELINE_LANGUAGE, COUNTRY)
    assert language in ("en-US", "en_US")  # every spelling is listed, each with the same voices
    assert voices["en"] == voices["en-US"] == voices["en_US"]
    shown = [name for _, name in voices[language]]
    assert [voice_id for voice_id, _ in voices[language]] == [
        "conversational",
        "fast",
        "joe",
        "maya",
        "mystic",
        "neutral",
        "professional",
        "warm",
        "whisper",
    ]
    assert shown[0] == "conversational: Natural, warm, unhurried conversation (default)"
    assert all(name.startswith(f"{voice_id}: ") for voice_id, name in voices[language])
    picked = voices[language][0][0]  # the pipeline's tts_voice
    assert picked == "conversational" == server.settings.default_voice

    program = info.tts[0]
    attribution = {voice.name: voice.attribution.name for voice in program.voices}
    piper = server.providers["piper"].description
    assert attribution["conversational"] == piper and attribution["joe"] == piper  # who speaks it now

    wav, types = await ha_stream(frontend.port, picked, ANSWER)
    assert types.count("audio-start") == 1 and types[-2:] == ["audio-stop", "synthesize-stopped"]
    with wave.open(io.BytesIO(wav), "rb") as reader:  # HA's streamed WAV: header with 0 frames, then PCM
        rate, width = reader.getframerate(), reader.getsampwidth()
    seconds = (len(wav) - 44) / (rate * width)
    assert rate == 22050 and width == 2 and seconds > 2.0


async def test_attribution_follows_the_provider_that_would_speak(piper_wyoming):
    server, frontend = piper_wyoming
    csm = server.providers["csm"]
    await wait_until(lambda: csm.state == "failed")
    before = {v.name: v.attribution.name for v in (await ha_describe(frontend.port)).tts[0].voices}
    csm.state, csm.error = "unloaded", None  # e.g. weights were installed: CSM is tried again first
    after = {v.name: v.attribution.name for v in (await ha_describe(frontend.port)).tts[0].voices}
    assert before["conversational"] == server.providers["piper"].description
    assert after["conversational"] == csm.description and after["joe"] == before["joe"]


async def test_a_language_picks_the_voice_that_speaks_it_best(piper_wyoming, voices_dir):
    from sesame_voice_wyoming.voice_choice import choose_voice

    server, frontend = piper_wyoming
    (voices_dir / "anna.yaml").write_text("provider: piper\ndescription: Anna\nlanguages: [de-de]\n")
    deadline = time.monotonic() + 20
    while "anna" not in (listed := {v.name: v.languages for v in (await ha_describe(frontend.port)).tts[0].voices}):
        assert time.monotonic() < deadline, "the new voice never appeared in info"
        await asyncio.sleep(0.1)
    assert listed["anna"] == ["de", "de-DE", "de_DE"]  # every spelling Home Assistant may send

    def picked(language: str) -> str:
        return choose_voice(server, {"language": language}).voice.name

    assert picked("en_US") == picked("en") == picked("en-GB") == "conversational"  # the default speaks English
    assert picked("de_DE") == picked("de") == "anna"
    async with AsyncTcpClient("127.0.0.1", frontend.port) as client:
        await client.write_event(Synthesize(text="Bonjour.", voice=SynthesizeVoice(language="fr_FR")).event())
        event = await client.read_event()
    assert event.type == "error" and event.data["code"] == "language_not_found"
