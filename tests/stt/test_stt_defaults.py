"""Which speech-to-text provider answers: the built-in Whisper unless DEFAULT_STT names another.

A third-party STT plugin (``echo``, registered here as a package would register it) never becomes
the default by being installed; it answers only when named or configured. Model names are unique
across providers, and a model nobody serves is a 400 ``model_not_found``.
"""

from __future__ import annotations

import argparse
import json
import logging

import aiohttp
import numpy as np
import openai
import pytest
import soxr
from stt_helpers import EchoPlugin, EchoStt, pcm16, read_audio, transcribe_like_home_assistant

from sesame_voice.app.audio_commands import transcribe as transcribe_command
from sesame_voice.app.plugins import PluginClash, make_plugin_manager, stt_providers
from sesame_voice.app.server import Server
from support import SENTENCES

OPENAI_NAMES = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")


def _client(server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)


async def _spoken(server, text: str) -> bytes:
    response = await _client(server).audio.speech.with_raw_response.create(
        model="tts-1", voice="joe", input=text, response_format="wav"
    )
    return response.content


def _wyoming_port(server) -> int:
    return next(f for f in server.frontends if f.name == "wyoming").port


async def test_whisper_stays_the_default_with_a_third_party_plugin_installed(
    start_server, echo_plugin, tmp_path, capsys, wer
):
    async with start_server(plugins=[echo_plugin]) as server:
        wav = await _spoken(server, SENTENCES[0])
        client = _client(server)
        for name in OPENAI_NAMES:
            answer = await client.audio.transcriptions.with_raw_response.create(model=name, file=("a.wav", wav))
            assert answer.headers["X-Sesame-Provider"] == "whisper", name
            assert wer(SENTENCES[0], answer.parse().text) <= 0.1
        named = await client.audio.transcriptions.with_raw_response.create(model="echo-1", file=("a.wav", wav))
        assert named.headers["X-Sesame-Provider"] == "echo" and "hertz" in named.parse().text
        samples, rate = read_audio(wav)
        events = await transcribe_like_home_assistant(_wyoming_port(server), pcm16(soxr.resample(samples, rate, 16000)))
        assert wer(SENTENCES[0], events[-1].data["text"]) <= 0.1
        check = server.health()["self_check"]["speech_to_text"]
        assert check["whisper"] == {"models": ["tiny.en"], "state": "ready on cpu", "default": True}
        assert check["echo"] == {"models": ["echo-1"], "state": "ready on cpu", "default": False}
        settings = server.settings
    audio = tmp_path / "said.wav"
    audio.write_bytes(wav)
    pm = make_plugin_manager(disabled=settings.disabled_plugins)
    pm.register(EchoPlugin(), name="third-party")
    args = argparse.Namespace(file=audio, json=True, language=None, prompt=None)
    assert await transcribe_command(settings, args, pm=pm) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["provider"] == "whisper" and wer(SENTENCES[0], body["text"]) <= 0.1


async def test_default_stt_setting_chooses_the_provider_everywhere(start_server, echo_plugin, tmp_path, capsys):
    async with start_server(plugins=[echo_plugin], default_stt="echo-1") as server:
        wav = await _spoken(server, SENTENCES[0])
        answer = await _client(server).audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=("a.wav", wav)
        )
        assert answer.headers["X-Sesame-Provider"] == "echo"
        events = await transcribe_like_home_assistant(_wyoming_port(server), pcm16(np.full(16000, 0.2)))
        assert events[-1].data["text"] == "8000 samples at 8000 hertz"
        assert server.health()["self_check"]["speech_to_text"]["echo"]["default"] is True
        assert server.problems() == []
        settings = server.settings
    audio = tmp_path / "said.wav"
    audio.write_bytes(wav)
    pm = make_plugin_manager(disabled=settings.disabled_plugins)
    pm.register(EchoPlugin(), name="third-party")
    args = argparse.Namespace(file=audio, json=True, language=None, prompt=None)
    assert await transcribe_command(settings, args, pm=pm) == 0
    assert json.loads(capsys.readouterr().out)["provider"] == "echo"


async def test_a_default_that_is_not_installed_is_reported_not_replaced(start_server, echo_plugin):
    async with start_server(
        plugins=[echo_plugin], default_stt="parakeet", disabled_plugins=("whisper", "csm")
    ) as server:
        health = server.health()
        assert health["status"] != "ok" and health["problems"] == server.problems()
        assert any("DEFAULT_STT='parakeet'" in problem for problem in health["problems"])
        wav = await _spoken(server, SENTENCES[0])
        with pytest.raises(openai.APIStatusError) as caught:
            await _client(server).audio.transcriptions.create(model="whisper-1", file=("a.wav", wav))
        assert caught.value.status_code == 503 and caught.value.body["code"] == "stt_unavailable"
        events = await transcribe_like_home_assistant(_wyoming_port(server), pcm16(np.full(16000, 0.2)))
        assert events[0].type == "error" and events[0].data["code"] == "stt_unavailable"
        assert events[-1].data["text"] == ""


async def test_unknown_model_is_a_400_model_not_found(start_server, echo_plugin):
    async with start_server(plugins=[echo_plugin], disabled_plugins=("whisper", "csm")) as server:
        wav = await _spoken(server, SENTENCES[0])
        with pytest.raises(openai.BadRequestError) as caught:
            await _client(server).audio.transcriptions.create(model="whisper-large-v9", file=("a.wav", wav))
        error = caught.value.body
        assert error["code"] == "model_not_found" and error["param"] == "model" and error["type"]
        assert "echo-1" in error["message"]
        form = aiohttp.FormData()
        form.add_field("file", wav, filename="a.wav")
        form.add_field("model", "nobody")
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{server.http_port}/v1/audio/transcriptions"
            async with http.post(url, data=form) as response:
                assert response.status == 400
                assert (await response.json())["error"]["code"] == "model_not_found"
        from wyoming.asr import Transcribe
        from wyoming.audio import AudioChunk, AudioStart, AudioStop
        from wyoming.client import AsyncTcpClient

        async with AsyncTcpClient("127.0.0.1", _wyoming_port(server)) as client:
            await client.write_event(Transcribe(name="nobody").event())
            await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=b"\x10\x00" * 16000).event())
            await client.write_event(AudioStop().event())
            error = await client.read_event()
            assert error.type == "error" and error.data["code"] == "model_not_found"


class EchoTwin(EchoStt):
    """Another provider name, the same model name as ``echo``."""

    name = "echo-twin"


class NamedLikeEcho(EchoStt):
    """A model called like the ``echo`` provider."""

    name = "mimic"

    def model_name(self) -> str:
        return "echo"


@pytest.mark.parametrize("other", [EchoTwin, NamedLikeEcho])
def test_two_providers_serving_one_model_name_clash(make_settings, other):
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(EchoPlugin(), name="first")
    pm.register(EchoPlugin(other), name="second")
    with pytest.raises(PluginClash, match=r"model '(echo-1|echo)' served by both provider .*--disable second"):
        stt_providers(pm, make_settings())
    with pytest.raises(PluginClash):
        Server(make_settings(), pm=pm)


async def test_self_check_lists_a_failed_provider_with_its_reason_and_health_hides_paths(start_server, caplog):
    missing = "/nonexistent/models/faster-whisper-small"
    with caplog.at_level(logging.INFO, logger="sesame_voice.app.selfcheck"):
        async with start_server(plugin_settings={"whisper": {"model": missing, "local_files_only": True}}) as server:
            while server.speech_to_text.providers["whisper"].state != "failed":
                await __import__("asyncio").sleep(0.05)
            check = server.health()["self_check"]["speech_to_text"]["whisper"]
            assert check["models"] == ["faster-whisper-small"] and check["default"] is True
            assert "could not load" in check["state"]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{server.http_port}/health") as response:
                    public = await response.text()
            assert "could not load" in public and "/nonexistent" not in public
            while "speech-to-text provider whisper" not in caplog.text:
                await __import__("asyncio").sleep(0.05)
    line = next(r.getMessage() for r in caplog.records if "speech-to-text provider whisper" in r.getMessage())
    assert "(faster-whisper-small, default)" in line and "could not load" in line
