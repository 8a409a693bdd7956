"""The example plugin's own tests, written with sesame-voice's testing kit as any plugin author would."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from sesame_voice.app.cli import main
from sesame_voice.audio import decode_audio as decode
from sesame_voice.testing import SesameClient

WORD = 1600  # samples per word: 100 ms at 16 kHz


def pitch(samples, rate) -> int:
    """The strongest frequency, in Hz."""
    spectrum = abs(np.fft.rfft(samples))
    return round(spectrum.argmax() * rate / len(samples))


def client(server, api_key=None) -> SesameClient:
    return SesameClient(f"http://127.0.0.1:{server.http_port}", api_key)


async def wait_until(predicate, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.1)


@pytest.mark.drives_hook("register_providers", "resolve_voice")
async def test_provider_serves_through_the_openai_api_and_pitch_names(http_client):
    status, headers, body = await http_client.speech("one two three", voice="beeper")
    assert status == 200 and headers["X-Sesame-Provider"] == "beep"
    samples, rate = decode(body, "wav")
    assert rate == 16000 and len(samples) == 3 * WORD
    # resolve_voice: "beep:880" is no file, the plugin makes it up; the tone really is 880 Hz.
    status, _, body = await http_client.speech("one", voice="beep:880")
    assert status == 200 and pitch(*decode(body, "wav")) == 880


async def test_sampling_overrides_reach_the_provider_and_unknown_keys_are_refused(http_client):
    status, _, body = await http_client.speech("one", voice="beeper", sampling={"pitch": 1000})
    assert status == 200 and pitch(*decode(body, "wav")) == 1000
    status, _, body = await http_client.speech("one", voice="beeper", sampling={"pich": 1000})
    assert status == 400 and b"pich" in body and b"unknown_sampling_parameter" in body


@pytest.mark.drives_hook("register_frontends")
async def test_line_frontend(server):
    frontend = server.frontend("lines")
    reader, writer = await asyncio.open_connection("127.0.0.1", frontend.port)
    writer.write(b"beeper one two three\n")
    await writer.drain()
    answer = (await reader.readline()).decode().split()
    writer.close()
    assert answer == ["OK", "beep", str(3 * WORD), "16000"]


@pytest.mark.drives_hook("register_routes")
async def test_route_streams_wav_and_is_guarded_by_the_api_key(start_server):
    async with start_server(api_key="s3cret") as server:
        status, _, body = await client(server).request("POST", "/beep", json={"text": "a b"})
        assert status == 401 and b"invalid_api_key" in body
        status, _, body = await client(server, "s3cret").request("POST", "/beep", json={"text": "a b"})
        assert status == 200 and len(decode(body, "wav")[0]) == 2 * WORD
        status, _, body = await client(server, "s3cret").request("POST", "/beep", json={"text": "a", "voice": "nope"})
        assert status == 400 and b"voice_not_found" in body
        # A route marked public answers without the key; /health too.
        status, payload = await client(server).get_json("/beep/status")
        assert status == 200 and payload == {"requests": 2, "running": True}
        assert (await client(server).get_json("/health"))[0] == 200


@pytest.mark.drives_hook("register_commands")
def test_command_writes_beeps_with_the_global_options(tmp_path, capsys):
    voices = tmp_path / "voices"
    voices.mkdir()
    (voices / "low.beep").write_text("200")
    out = tmp_path / "out.wav"
    assert (
        main(["beep", "one two", "-o", str(out), "--voice", "low", "--voices-dir", str(voices), "--disable", "csm"])
        == 0
    )
    samples, rate = decode(out.read_bytes(), "wav")
    assert rate == 16000 and len(samples) == 2 * WORD
    assert "from beep" in capsys.readouterr().out


def test_disabled_plugin_has_no_command(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["beep", "x", "-o", str(tmp_path / "x.wav"), "--disable", "example"])
    assert "invalid choice: 'beep'" in capsys.readouterr().err
    monkeypatch.setenv("DISABLED_PLUGINS", "example")
    with pytest.raises(SystemExit):
        main(["beep", "x", "-o", str(tmp_path / "x.wav")])
    assert "invalid choice: 'beep'" in capsys.readouterr().err


@pytest.mark.drives_hook("server_lifespan")
async def test_lifecycle_close_once_at_shutdown_and_lifespan(start_server):
    async with start_server() as server:
        provider = server.providers["beep"]
        assert server.plugin_state("example")["running"] is True
        assert (await client(server).speech("one", voice="beeper"))[0] == 200
        assert provider.closed == 0
        # Provider methods run in the provider's own thread, default_voices included.
        assert provider.threads == {"provider-beep_0"}
    assert provider.closed == 1
    assert server.plugin_state("example")["running"] is False


@pytest.mark.drives_hook("voices_changed")
async def test_rejected_file_is_reported_and_other_voices_stay(start_server, voices_dir, capsys):
    (voices_dir / "good.beep").write_text("300")
    (voices_dir / "bad.beep").write_text("loud")
    async with start_server() as server:
        listing = await client(server).voices()
        names = {voice["id"] for voice in listing["data"]}
        assert {"good", "beeper"} <= names and "bad" not in names
        assert listing["errors"]["bad.beep"] == "expected a pitch in Hz, found 'loud'"
        # An edited file is reported as changed, a new one as added (voices_changed hook).
        (voices_dir / "good.beep").write_text("350")
        (voices_dir / "new.beep").write_text("500")
        state = server.plugin_state("example")

        async def seen() -> bool:
            changes = state.get("changes", [])
            return any("good" in c.changed for c in changes) and any("new" in c.added for c in changes)

        await wait_until(seen)
        assert not any("good" in c.added for c in state["changes"])
    assert await asyncio.to_thread(main, ["voices", "--voices-dir", str(voices_dir), "--disable", "csm"]) == 0
    out, err = capsys.readouterr()
    assert "good  [beep]" in out and "SKIPPED bad.beep: expected a pitch in Hz, found 'loud'" in err
