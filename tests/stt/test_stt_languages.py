"""One language-tag convention: ``en``, ``en-US`` and ``en_US`` work for speech to text and text to speech.

Home Assistant's wyoming integration builds an STT entity whose ``supported_languages`` is the
union of the languages of the installed models of ``info.asr[0]``, and a TTS entity listing each
installed voice under each of its languages; the pipeline picks a language with
``language_util.matches`` and every request is then checked by exact membership
(``metadata.language in supported_languages``). These tests apply that rule to the real ``info``.
"""

from __future__ import annotations

import io

import numpy as np
import openai
import pytest
import soundfile
from stt_helpers import pcm16, transcribe_like_home_assistant
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from wyoming.tts import Synthesize, SynthesizeVoice

from sesame_voice import InvalidRequest
from sesame_voice.api.languages import advertised, language_code, spellings, split_tag

HA_SENDS = ("en", "en-US", "en_US")


async def _info(port: int) -> Info:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        while (event := await client.read_event()) is not None:
            if Info.is_type(event.type):
                return Info.from_event(event)
    raise AssertionError("no info")


def ha_stt_languages(info: Info) -> list[str]:
    """WyomingSttProvider.__init__: the languages of the installed models of the first asr program."""
    return sorted({lang for model in info.asr[0].models if model.installed for lang in model.languages})


def ha_tts_languages(info: Info) -> set[str]:
    """WyomingTtsProvider: every language of an installed voice."""
    return {lang for voice in info.tts[0].voices if voice.installed for lang in voice.languages}


def test_tags_are_read_in_every_spelling_and_refused_when_they_are_not_tags():
    assert [language_code(tag) for tag in ("en", "EN", "en-US", "en_us", "en-Latn-US", " de_DE ")] == [
        "en",
        "en",
        "en",
        "en",
        "en",
        "de",
    ]
    assert language_code("") is None and language_code(None) is None
    assert split_tag("pt_br") == ("pt", "BR")
    assert spellings("en_US") == ["en", "en-US", "en_US"]
    assert advertised(["de_DE", "de-de"]) == ["de", "de-DE", "de_DE"]
    assert {"en", "en-US", "en_US", "en-GB", "en_GB"} <= set(advertised(["en"]))
    assert advertised(["ja"]) == ["ja"]
    for bad in ("english!", "e", "12", "en-", "x" * 40):
        with pytest.raises(InvalidRequest) as caught:
            language_code(bad)
        assert caught.value.param == "language"


async def test_home_assistant_finds_every_spelling_in_info_and_each_works(start_wyoming, echo_plugin):
    async with start_wyoming(plugins=[echo_plugin], disabled_plugins=("whisper", "csm")) as (server, port):
        info = await _info(port)
        stt, tts = ha_stt_languages(info), ha_tts_languages(info)
        for tag in HA_SENDS:
            assert tag in stt, f"Home Assistant would refuse STT language {tag!r}"
            assert tag in tts, f"Home Assistant would refuse TTS language {tag!r}"
        assert {"de", "de-DE", "de_DE"} <= set(stt)
        provider = server.speech_to_text.providers["echo"]
        for tag in HA_SENDS:
            events = await transcribe_like_home_assistant(port, pcm16(np.full(8000, 0.2)), language=tag)
            assert events[-1].type == "transcript" and events[-1].data["text"].endswith("hertz")
            assert provider.jobs[-1].language == "en" and events[-1].data["language"] == "en"
        for tag in HA_SENDS:
            samples = await _synthesize(port, "Hello there.", tag)
            assert samples.size > 1000 and float(np.abs(samples).max()) > 0.01


async def _synthesize(port: int, text: str, language: str) -> np.ndarray:
    """A ``synthesize`` with only a language, as Home Assistant sends it for the pipeline language."""
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Synthesize(text=text, voice=SynthesizeVoice(language=language)).event())
        pcm, rate = b"", 0
        while (event := await client.read_event()) is not None:
            if AudioChunk.is_type(event.type):
                chunk = AudioChunk.from_event(event)
                pcm, rate = pcm + chunk.audio, chunk.rate
            elif AudioStop.is_type(event.type):
                break
            elif event.type == "error":
                raise AssertionError(event.data)
    buffer = io.BytesIO()
    soundfile.write(buffer, np.frombuffer(pcm, "<i2"), rate, format="WAV", subtype="PCM_16")
    return soundfile.read(io.BytesIO(buffer.getvalue()), dtype="float32")[0]


@pytest.mark.parametrize("tag", ["en", "en-US", "en_US", "EN-us"])
async def test_openai_transcriptions_accept_every_spelling(start_server, echo_plugin, tag):
    async with start_server(plugins=[echo_plugin], disabled_plugins=("whisper", "csm")) as server:
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        buffer = io.BytesIO()
        soundfile.write(buffer, np.full(16000, 0.2, np.float32), 16000, format="WAV")
        verbose = await client.audio.transcriptions.create(
            model="echo-1", file=("a.wav", buffer.getvalue()), language=tag, response_format="verbose_json"
        )
        assert verbose.language == "english"
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.transcriptions.create(model="echo-1", file=("a.wav", buffer.getvalue()), language="e!")
        assert caught.value.body["param"] == "language"
