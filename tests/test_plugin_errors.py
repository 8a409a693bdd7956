"""How plugin failures reach users: clashes, broken imports, a provider's client errors, bad sampling."""

from __future__ import annotations

import logging
import textwrap

import aiohttp
import openai
import pytest

from fakes import FakePlugin, ToneProvider
from sesame_voice import AudioChunk, InvalidRequest, Provider, Voice
from sesame_voice.app.cli import main


def _dist(site, name: str, module: str, source: str) -> None:
    """A minimal installed distribution ``name`` whose ``sesame_voice`` entry point is ``module``."""
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[sesame_voice]\n{module} = {module}\n")
    (site / f"{module}.py").write_text(textwrap.dedent(source))


TWIN = """
    from sesame_voice import Provider, hookimpl

    class Twin(Provider):
        name = "twin"

    @hookimpl
    def register_providers(register):
        register(Twin)
"""


@pytest.mark.parametrize("command", ["plugins", "voices"])
def test_a_provider_name_clash_is_one_clear_line_and_a_failure(tmp_path, monkeypatch, capsys, command):
    _dist(tmp_path, "twin-a", "twin_a", TWIN)
    _dist(tmp_path, "twin-b", "twin_b", TWIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main([command, "--voices-dir", str(tmp_path / "voices")]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert "'twin' registered by both plugin twin_" in lines[0]
    assert "twin_a (twin-a 1.0)" in lines[0] and "twin_b (twin-b 1.0)" in lines[0]


def test_a_plugin_that_fails_to_import_is_reported_once_per_command(tmp_path, monkeypatch, caplog):
    _dist(tmp_path, "broken-plugin", "broken_plugin", "raise ImportError('missing dependency foo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.ERROR, logger="sesame_voice.app.plugins"):
        assert main(["voices", "--voices-dir", str(tmp_path / "voices"), "--disable", "csm"]) == 0
    tracebacks = [r for r in caplog.records if r.exc_info and "broken_plugin" in r.getMessage()]
    assert len(tracebacks) == 1


class PickyProvider(Provider):
    """Speaks one chunk, then refuses the rest of the text as a client error."""

    name = "picky"

    def default_voices(self):
        return [Voice(name="picky", provider=self.name)]

    def synthesize(self, job):
        if "refuse-first" in job.text:
            raise InvalidRequest("this provider refuses such text", param="input")
        yield AudioChunk(__import__("numpy").zeros(2400, dtype="float32"), 24000)
        raise InvalidRequest("second sentence is not speakable", param="input")


async def test_a_providers_client_error_is_not_logged_as_a_server_error(start_server, caplog):
    async with start_server(plugins=[FakePlugin(PickyProvider)], disabled_plugins=("csm",)) as server:
        url = f"http://127.0.0.1:{server.http_port}/v1/audio/speech"
        with caplog.at_level(logging.DEBUG):
            async with aiohttp.ClientSession() as session:
                body = {"model": "tts-1", "voice": "picky", "input": "refuse-first please", "response_format": "pcm"}
                async with session.post(url, json=body) as response:
                    assert response.status == 400
                    assert (await response.json())["error"]["message"] == "this provider refuses such text"
                body["input"] = "One. Two."
                async with session.post(url, json=body) as response:
                    assert response.status == 200  # the status line left with the first chunk
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await response.read()  # the body is broken off: never mistaken for complete audio
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any(
        r.levelno == logging.WARNING and "second sentence is not speakable" in r.getMessage() for r in caplog.records
    )


async def test_sampling_overrides_through_the_openai_sdk_and_unknown_keys(start_server):
    async with start_server(plugins=[FakePlugin(ToneProvider)]) as server:
        client = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError) as caught:
            await client.audio.speech.create(
                model="tts-1", voice="tone", input="Hi.", extra_body={"sampling": {"temprature": 0.5}}
            )
        error = caught.value.body
        assert error["code"] == "unknown_sampling_parameter" and error["param"] == "sampling"
        assert "'temprature'" in error["message"]
        with pytest.raises(openai.BadRequestError, match="sampling must be an object"):
            await client.audio.speech.create(model="tts-1", voice="tone", input="Hi.", extra_body={"sampling": 3})
