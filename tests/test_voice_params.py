"""Declared voice parameters (``Provider.voice_params``): checked in voice files at load and in every
request's ``sampling`` on every route, so a provider never sees a value outside what it declared."""

from __future__ import annotations

import asyncio
import io
import math

import aiohttp
import numpy as np
import openai
import pytest
import soundfile as sf
from conversation_fakes import legacy_plugin
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from fakes import FakePlugin
from sesame_voice import AudioChunk, ParamSpec, Provider, Voice
from sesame_voice.api.params import ParamError, checked_params
from sesame_voice.app.cli import main
from sesame_voice.config import Settings
from sesame_voice.voices.library import BUILTIN_PRESETS, VoiceLibrary
from sesame_voice_csm import CsmProvider
from sesame_voice_piper import PiperProvider


class BoundedProvider(Provider):
    """A four-speaker tone voice whose temperature is bounded tighter than the legacy API's own 0-5."""

    name = "bounded"
    sampling_params = ("temperature",)
    voice_params = {"speaker": ParamSpec(int, 0, 3), "temperature": ParamSpec(float, 0.0, 1.5)}

    def default_voices(self):
        return [Voice(name="bounded", provider=self.name, speakers=("a", "b", "c", "d"))]

    def synthesize(self, job):
        assert 0 <= job.params.get("temperature", 0) <= 1.5 and 0 <= job.params.get("speaker", 0) <= 3
        for _ in job.sentences:
            yield AudioChunk(np.full(2400, 0.1, dtype=np.float32), 24000)


# -- the declaration ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        (ParamSpec(float, 0.0, 2.0), 1, 1.0),
        (ParamSpec(float, 0.0, 2.0), 0.5, 0.5),
        (ParamSpec(int, 0, 100), 50.0, 50),
        (ParamSpec((int, str), 0, 10), "bob", "bob"),
        (ParamSpec((int, str), 0, 10), 3, 3),
        (ParamSpec(float, optional=True), None, None),
        (ParamSpec(bool), True, True),
    ],
)
def test_a_fitting_value_comes_back_in_its_declared_type(spec, value, expected):
    result = spec.check("x", value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("spec", "value", "words"),
    [
        (ParamSpec(float, 0.0, 2.0), "slow", "x must be a number between 0 and 2, got 'slow'"),
        (ParamSpec(float, 0.0, 2.0), 2.5, "x must be a number between 0 and 2, got 2.5"),
        (ParamSpec(float, 0.0, 2.0), -1, "got -1"),
        (ParamSpec(float), math.nan, "got nan"),
        (ParamSpec(float), math.inf, "got inf"),
        (ParamSpec(float, 0.0, 2.0), True, "got True"),
        (ParamSpec(float), None, "got null"),
        (ParamSpec(float), [1, 2], "got list"),
        (ParamSpec(int, 0, 100), 2.5, "x must be an integer between 0 and 100, got 2.5"),
        (ParamSpec(int, 0, 100), 10**30, "got 1e+30"),
        (ParamSpec(str, max_length=4), "hello", "at most 4 characters"),
    ],
)
def test_a_misfit_value_is_refused_naming_the_key_and_what_it_takes(spec, value, words):
    with pytest.raises(ParamError) as caught:
        spec.check("x", value)
    assert caught.value.name == "x" and words in str(caught.value)


def test_an_unknown_key_is_refused_with_the_closest_declared_one():
    specs = {"length_scale": ParamSpec(float), "volume": ParamSpec(float)}
    with pytest.raises(ParamError, match=r"unknown parameter 'lenght_scale' \(did you mean 'length_scale'\?\)"):
        checked_params(specs, {"lenght_scale": 1.0}, "provider piper")


@pytest.mark.parametrize("provider", [PiperProvider, CsmProvider])
def test_the_built_in_providers_declare_every_parameter_they_take(provider):
    assert set(provider.sampling_params) <= set(provider.voice_params)
    for name, spec in provider.voice_params.items():
        numeric = {int, float} & set(spec.kinds)
        assert not numeric or (spec.minimum is not None and spec.maximum is not None), name


def test_every_built_in_preset_fits_the_built_in_providers(tmp_path):
    providers = {"piper": PiperProvider(Settings()), "csm": CsmProvider(Settings())}
    library = VoiceLibrary(tmp_path, providers, "conversational")
    library.reload()
    assert library.errors == {}
    assert {path.stem for path in BUILTIN_PRESETS.glob("*.yaml")} <= {v.name for v in library.list()}


BAD_FILES = {
    "slowpoke.yaml": ("provider: piper\nparams:\n  length_scale: slow\n", "params.length_scale (provider piper)"),
    "typo.yaml": ("provider: piper\nparams:\n  lenght_scale: 1.2\n", "did you mean 'length_scale'?"),
    "pause.yaml": (
        "provider: csm\nparams: {temperature: 0.7}\nfallbacks:\n  - provider: piper\n    sentence_pause: 1e9\n",
        "fallbacks[0].sentence_pause (provider piper): sentence_pause must be a number between 0 and 5",
    ),
    "hot.yaml": ("provider: csm\nparams:\n  temperature: 9\n", "temperature must be a number between 0 and 5, got 9"),
    "topkey.yaml": (
        "provider: piper\ndescripton: misspelled\n",
        "unknown key 'descripton' (did you mean 'description'?)",
    ),
    "langs.yaml": ("provider: piper\nlanguages: en\n", "'languages' must be a list"),
}


def test_voice_files_are_checked_at_load_and_a_good_one_comes_back_in_declared_types(tmp_path):
    for name, (text, _) in BAD_FILES.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "good.yaml").write_text(
        "provider: csm\nparams: {top_k: 40.0}\nfallbacks: [{provider: piper, volume: 1}]\n"
    )
    providers = {"piper": PiperProvider(Settings()), "csm": CsmProvider(Settings())}
    library = VoiceLibrary(tmp_path, providers, "good", builtin_folder=None)
    library.reload()
    for name, (_, reason) in BAD_FILES.items():
        assert reason in library.errors[name], name
    good = library.get("good")
    assert good.params == {"top_k": 40} and type(good.params["top_k"]) is int
    assert good.fallbacks == ({"provider": "piper", "volume": 1.0},)


def test_a_provider_that_declares_nothing_is_not_checked(tmp_path):
    (tmp_path / "free.yaml").write_text("provider: quiet\nparams: {anything: [1, 2]}\n")
    quiet = type("Quiet", (Provider,), {"name": "quiet"})(Settings())
    library = VoiceLibrary(tmp_path, {"quiet": quiet}, "free", builtin_folder=None)
    library.reload()
    assert library.errors == {} and library.get("free").params == {"anything": [1, 2]}


# -- voice files through the server and the CLI -----------------------------------------------------
async def _voices(base_url: str) -> tuple[set[str], dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/v1/audio/voices") as response:
            assert response.status == 200
            payload = await response.json()
    return {v["id"] for v in payload["data"]}, payload["errors"]


async def _until(predicate, timeout: float = 15.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_rejected_voice_file_is_reported_never_a_500_and_a_fixed_one_is_picked_up(
    server, base_url, voices_dir, openai_client_for, caplog
):
    client = openai_client_for(base_url)
    (voices_dir / "slowpoke.yaml").write_text("provider: piper\nparams:\n  length_scale: slow\n")

    async def reported() -> bool:
        return "slowpoke.yaml" in (await _voices(base_url))[1]

    assert await _until(reported)
    names, errors = await _voices(base_url)
    assert "slowpoke" not in names and "joe" in names
    assert "length_scale must be a number between 0.2 and 5, got 'slow'" in errors["slowpoke.yaml"]
    assert any("slowpoke.yaml skipped" in r.getMessage() and "length_scale" in r.getMessage() for r in caplog.records)
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.speech.create(model="tts-1", voice="slowpoke", input="Hello.", response_format="wav")
    assert caught.value.status_code == 400 and caught.value.body["code"] == "voice_not_found"
    audio = await client.audio.speech.create(model="tts-1", voice="joe", input="Hello.", response_format="wav")
    samples, _ = sf.read(io.BytesIO(audio.content))
    assert len(samples) > 0  # the rest of the library keeps working

    (voices_dir / "slowpoke.yaml").write_text("provider: piper\nparams:\n  length_scale: 1.4\n")

    async def fixed() -> bool:
        return "slowpoke" in (await _voices(base_url))[0]

    assert await _until(fixed)
    assert "slowpoke.yaml" not in (await _voices(base_url))[1]
    audio = await client.audio.speech.create(model="tts-1", voice="slowpoke", input="Hello.", response_format="wav")
    slow, _ = sf.read(io.BytesIO(audio.content))
    assert len(slow) > len(samples)  # its length_scale reached Piper


def test_the_voices_command_shows_why_each_file_was_rejected(voices_dir, capsys):
    for name, (text, _) in BAD_FILES.items():
        (voices_dir / name).write_text(text)
    assert main(["voices", "--voices-dir", str(voices_dir)]) == 0
    captured = capsys.readouterr()
    for name, (_, reason) in BAD_FILES.items():
        assert f"SKIPPED {name}: " in captured.err and reason in captured.err, name
    assert "joe  [piper]" in captured.out


# -- sampling on every route ------------------------------------------------------------------------
async def test_openai_speech_refuses_misfit_sampling_naming_the_field(server, base_url, openai_client_for):
    client = openai_client_for(base_url)
    cases = [
        ("joe", {"sentence_pause": 1e9}, "sampling.sentence_pause", "between 0 and 5"),
        ("joe", {"length_scale": "slow"}, "sampling.length_scale", "got 'slow'"),
        ("joe", {"noise_scale": True}, "sampling.noise_scale", "got True"),
        ("joe", {"speaker": 10**9}, "sampling.speaker", "provider piper"),
        # CSM is installed but cannot load here (Piper serves): the answer does not depend on that.
        ("conversational", {"temperature": 9}, "sampling.temperature", "provider csm"),
        ("conversational", {"top_k": 2.5}, "sampling.top_k", "an integer"),
    ]
    for voice, sampling, param, words in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.speech.create(
                model="tts-1", voice=voice, input="Hi.", extra_body={"sampling": sampling}, response_format="wav"
            )
        error = caught.value.body
        assert (error["param"], error["code"]) == (param, "invalid_sampling_parameter"), sampling
        assert words in error["message"]
    with pytest.raises(openai.BadRequestError) as caught:  # a stream is refused before its first byte, too
        async with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="joe", input="Hi.", extra_body={"sampling": {"volume": -1}}, response_format="pcm"
        ):
            pass
    assert caught.value.body["param"] == "sampling.volume"

    async def seconds(sampling: dict) -> float:
        audio = await client.audio.speech.create(
            model="tts-1", voice="joe", input="One. Two.", extra_body={"sampling": sampling}, response_format="wav"
        )
        samples, rate = sf.read(io.BytesIO(audio.content))
        return len(samples) / rate

    plain, paused = await seconds({}), await seconds({"sentence_pause": 0.5})
    assert paused - plain == pytest.approx(1.0, abs=0.05)  # two sentences, 0.5 s after each


async def test_legacy_tts_refuses_a_value_beyond_the_voices_declared_range(start_server):
    async with start_server(plugins=[legacy_plugin(), FakePlugin(BoundedProvider)]) as server:
        url = f"http://127.0.0.1:{server.http_port}/tts"
        async with aiohttp.ClientSession() as session:
            body = {"text": "Hi.", "voice": "bounded", "temperature": 3.0}  # within the legacy API's own 0-5
            async with session.post(url, json=body) as response:
                assert response.status == 400
                error = await response.json()
            assert error["code"] == "invalid_sampling_parameter" and "sampling.temperature" in error["detail"]
            body["temperature"] = 1.0
            async with session.post(url, json=body) as response:
                assert response.status == 200
                samples, _ = sf.read(io.BytesIO(await response.read()))
                assert len(samples) == 2400


async def test_sessions_refuse_a_speaker_beyond_the_providers_range(server, base_url):
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/v1/sessions", json={"voice": "joe"}) as response:
            assert response.status == 201, await response.text()
            sid = (await response.json())["id"]
        async with session.post(f"{base_url}/v1/sessions/{sid}/speak", json={"text": "Hi.", "speaker": 20000}) as r:
            assert r.status == 400
            error = await r.json()  # the sessions API answers in the legacy servers' shape
        assert error["code"] == "invalid_sampling_parameter" and error["detail"].startswith("sampling.speaker must be")
        async with session.post(f"{base_url}/v1/sessions/{sid}/speak", json={"text": "Hi.", "format": "wav"}) as r:
            assert r.status == 200
            samples, _ = sf.read(io.BytesIO(await r.read()))
            assert len(samples) > 0


async def test_wyoming_answers_a_misfit_speaker_with_an_error_event(start_server):
    async with start_server(plugins=[FakePlugin(BoundedProvider)]) as server:
        port = next(f for f in server.frontends if f.name == "wyoming").port
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="bounded", speaker="9")).event())
            event = await client.read_event()
        assert event.type == "error" and event.data["code"] == "invalid_sampling_parameter"
        assert "speaker must be an integer between 0 and 3, got 9" in event.data["text"]
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Synthesize(text="Hi.", voice=SynthesizeVoice(name="bounded", speaker="3")).event())
            types = []
            while (event := await client.read_event()) is not None and event.type != "audio-stop":
                types.append(event.type)
        assert event is not None and "audio-chunk" in types
