"""The speech-to-text provider kind: a third-party provider is discovered, served, and cancelled."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from stt_helpers import EchoPlugin, EchoStt, transcribe_like_home_assistant

from sesame_voice import Provider
from sesame_voice.app.cli import main
from sesame_voice.app.plugins import (
    PluginClash,
    collect_stt_providers,
    make_plugin_manager,
)


def test_builtin_whisper_is_an_entry_point_plugin():
    pm = make_plugin_manager()
    assert collect_stt_providers(pm)["whisper"].plugin == "whisper"
    assert pm.distributions["whisper"][0] == "sesame-voice"


def test_third_party_provider_is_collected_and_clashes_are_named():
    pm = make_plugin_manager(load_entry_points=False)
    pm.register(EchoPlugin(), name="first")
    assert collect_stt_providers(pm)["echo"].plugin == "first"
    pm.register(EchoPlugin(), name="second")
    with pytest.raises(PluginClash, match="'echo' registered by both plugin first and plugin second"):
        collect_stt_providers(pm)


def test_a_voice_provider_is_not_a_speech_to_text_provider():
    class NotStt(Provider):
        name = "voice"

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(EchoPlugin(NotStt))
    with pytest.raises(TypeError, match="not a named SttProvider"):
        collect_stt_providers(pm)


@pytest.mark.drives_hook("register_stt_providers")
async def test_third_party_provider_serves_every_frontend(start_server, echo_plugin):
    from openai import AsyncOpenAI

    async with start_server(plugins=[echo_plugin], disabled_plugins=("whisper", "csm")) as server:
        direct = await server.speech_to_text.transcribe(np.full(48000, 0.2, np.float32), 48000, language="de-DE")
        assert direct.text == "8000 samples at 8000 hertz" and direct.language == "de"
        assert direct.provider == "echo" and direct.model == "echo-1" and direct.duration == pytest.approx(1.0)
        client = AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        from stt_helpers import pcm16

        wav = _wav(np.full(32000, 0.2, np.float32), 16000)
        verbose = await client.audio.transcriptions.create(
            model="echo-1", file=("a.wav", wav), response_format="verbose_json"
        )
        assert verbose.text == "16000 samples at 8000 hertz second 2"
        assert [(s.start, s.end) for s in verbose.segments] == [(0.0, 1.0), (1.0, 2.0)]
        assert "echo-1" in [m.id for m in (await client.models.list()).data]
        events = await transcribe_like_home_assistant(
            next(f for f in server.frontends if f.name == "wyoming").port, pcm16(np.full(16000, 0.2))
        )
        assert events[-1].data["text"] == "8000 samples at 8000 hertz"
        assert server.health()["speech_to_text"]["echo"]["languages"] == ["en", "de"]


def _wav(samples: np.ndarray, rate: int) -> bytes:
    import io

    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format="WAV")
    return buffer.getvalue()


async def test_a_client_that_leaves_mid_stream_stops_the_transcription(start_server):
    import aiohttp

    class SlowEcho(EchoStt):
        name = "slowecho"
        delay = 0.5

    async with start_server(plugins=[EchoPlugin(SlowEcho)], disabled_plugins=("whisper", "csm")) as server:
        provider = server.speech_to_text.providers["slowecho"]
        form = aiohttp.FormData()
        form.add_field("file", _wav(np.full(16000 * 60, 0.2, np.float32), 16000), filename="long.wav")
        form.add_field("stream", "true")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{server.http_port}/v1/audio/transcriptions", data=form) as response:
                first = await response.content.readline()
                assert first.startswith(b"data: ") and b"transcript.text.delta" in first
        assert await asyncio.to_thread(provider.cancelled_seen.wait, 10)
        assert provider.jobs[0].cancelled.is_set()
        await asyncio.sleep(0.1)
        assert server.speech_to_text.workers["slowecho"].pending == 0


def test_transcribe_command_prints_text_and_json(tmp_path, capsys, wer):
    from sesame_voice.app.cli import main as cli

    audio = tmp_path / "fox.ogg"
    assert (
        cli(
            [
                "say",
                "The quick brown fox jumps over the lazy dog.",
                "-o",
                str(audio),
                "--voice",
                "joe",
                "--disable",
                "csm",
            ]
        )
        == 0
    )
    assert cli(["transcribe", str(audio), "--disable", "csm"]) == 0
    text = capsys.readouterr().out.strip()
    assert wer("The quick brown fox jumps over the lazy dog.", text) <= 0.1
    assert cli(["transcribe", str(audio), "--json", "--language", "en", "--disable", "csm"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["text"] == text and body["language"] == "en" and body["model"] == "tiny.en"
    assert body["segments"][0]["start"] == 0.0 and 2 < body["duration"] < 5


def test_transcribe_command_explains_bad_files(tmp_path, capsys):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio" * 100)
    assert main(["transcribe", str(junk), "--disable", "csm"]) == 1
    assert "not audio that can be decoded" in capsys.readouterr().err
    assert main(["transcribe", str(tmp_path / "missing.wav")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_plugins_command_lists_speech_to_text(capsys):
    assert main(["plugins", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stt_providers"] == {"whisper": "whisper"}
