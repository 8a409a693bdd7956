"""The project as users get it: a wheel in a fresh venv, started from an empty folder."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
from pathlib import Path

import aiohttp
import numpy as np
import soundfile as sf

TEXT = "Please turn on the kitchen lights."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_wheel_install_serves_presets_aliases_and_default_voice_from_an_empty_folder(
    installed_venv: Path, tmp_path: Path, openai_client_for, transcribe, wer
):
    home, cwd = tmp_path / "home", tmp_path / "empty"
    home.mkdir()
    cwd.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "HF_HUB_OFFLINE": "1", "LANG": "C.UTF-8"}
    script = installed_venv / "bin" / "sesame-voice"
    listed = subprocess.run([str(script), "voices", "--json"], cwd=cwd, env=env, capture_output=True, text=True)
    assert listed.returncode == 0, listed.stderr
    assert {"conversational", "professional", "fast", "whisper", "joe"} <= set(listed.stdout.split('"'))

    port = _free_port()
    serve_env = {
        **env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "WYOMING_URI": "tcp://127.0.0.1:0",
        "ZEROCONF_ENABLED": "false",
        "PIPER_DETERMINISTIC": "true",
    }
    process = subprocess.Popen(
        [str(script), "serve"], cwd=cwd, env=serve_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(600):
                assert process.poll() is None, process.stderr.read()
                try:
                    async with http.get(f"{base}/health") as response:
                        health = await response.json()
                        if health["providers"]["piper"]["loaded"]:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
            assert health["default_voice"] == "conversational" and health["status"] == "healthy"
            client = openai_client_for(base)
            spoken = {}
            for voice in ("conversational", "alloy"):
                audio = await client.audio.speech.create(model="tts-1", voice=voice, input=TEXT, response_format="wav")
                spoken[voice] = audio.content
            # No voice at all: the server's default voice.
            async with http.post(f"{base}/v1/audio/speech", json={"input": TEXT, "response_format": "wav"}) as response:
                assert response.status == 200, await response.text()
                assert response.headers["X-Sesame-Voice"] == "conversational"
                spoken["default"] = await response.read()
    finally:
        process.terminate()
        assert await asyncio.to_thread(process.wait, 60) == 0
    assert not (cwd / "voices").exists() and list(cwd.iterdir()) == []  # nothing written where it started
    assert (home / ".cache" / "sesame-voice" / "server.log").is_file()
    for voice, data in spoken.items():
        samples, rate = sf.read(io.BytesIO(data), dtype="float32")
        assert wer(TEXT, transcribe(np.asarray(samples), rate)) <= 0.10, voice
