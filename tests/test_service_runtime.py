"""Running as a service: unit files, logs, PID file, graceful SIGTERM and /metrics."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import plistlib
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import numpy as np
import openai
import pytest
import soundfile as sf
from prometheus_client.parser import text_string_to_metric_families

from fakes import FakePlugin, ToneProvider
from sesame_voice.api.lead import split_lead
from sesame_voice.app.cli import main
from sesame_voice.app.runtime import setup_logging
from sesame_voice.config import load_settings
from support import SENTENCES


def _dry_run(capsys, *args: str) -> str:
    """The file ``service install --dry-run`` would write."""
    assert main(["service", "install", "--dry-run", *args]) == 0
    out = capsys.readouterr().out
    body = out.split(":\n", 1)[1]
    return body.split("\n# would ", 1)[0]


def test_launchd_agent_is_a_plist_that_runs_this_install(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("WYOMING_URI", "tcp://0.0.0.0:10300")  # a plugin's setting travels too
    monkeypatch.setenv("SHELL", "/bin/zsh")  # unrelated variables do not
    voices = tmp_path / "my voices"
    text = _dry_run(capsys, "--manager", "launchd", "--env", "API_KEY=s3cret", "--voices-dir", str(voices))
    plist = plistlib.loads(text.encode())
    script = Path(sys.executable).with_name("sesame-voice")
    assert plist["ProgramArguments"] == [str(script), "serve"]
    assert script.is_file()
    env = plist["EnvironmentVariables"]
    assert "API_KEY" not in env and "s3cret" not in text  # secrets go to a 0600 file, not the plist
    assert env["WYOMING_URI"] == "tcp://0.0.0.0:10300" and "SHELL" not in env
    assert env["VOICES_DIR"] == str(voices.resolve())
    assert Path(env["CACHE_DIR"]).is_absolute()
    assert plist["Label"] == "com.sesame-voice.server"
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["RunAtLoad"] is True


@pytest.mark.parametrize("variant", ["user", "system"])
def test_systemd_unit_passes_systemd_analyze_verify(capsys, tmp_path, variant):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd package has it)")
    args = ["--manager", "systemd", "--env", 'GREETING=50% "quoted" back\\slash']
    if variant == "system":
        args.append("--system")
    unit = _dry_run(capsys, *args)
    assert f"ExecStart={Path(sys.executable).with_name('sesame-voice')} serve" in unit
    assert ("User=sesame-voice" in unit) == (variant == "system")  # a dedicated account, never root
    assert "EnvironmentFile=-" in unit
    path = tmp_path / "sesame-voice.service"
    path.write_text(unit)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    command = [analyze, *(["--user"] if variant == "user" else []), "verify", str(path)]
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # warnings (a bad key, bad quoting) count as failures


def test_secrets_go_to_a_0600_file_that_the_server_reads(tmp_path):
    from sesame_voice.app.service import plan, write_secrets

    settings = load_settings(env={}, dotenv_file=None, cache_dir=tmp_path / "cache")
    environ = {"CACHE_DIR": str(tmp_path / "cache"), "API_KEY": "s3cret", "HF_TOKEN": "hf_x", "PORT": "8899"}
    for kind in ("systemd", "launchd"):
        service = plan(
            settings, kind=kind, environ=environ, extra_env={"SESSION_STORE": "redis://:pw@127.0.0.1:6379/0"}
        )
        assert "s3cret" not in service.content and "hf_x" not in service.content and ":pw@" not in service.content
        assert set(service.secrets) == {"API_KEY", "HF_TOKEN", "SESSION_STORE"} and "8899" in service.content
    service.working_dir.mkdir(parents=True)
    write_secrets(service)
    assert service.secrets_path.stat().st_mode & 0o777 == 0o600
    read = load_settings(env={}, dotenv_file=service.secrets_path)
    assert read.api_key == "s3cret" and read.environ["SESSION_STORE"] == "redis://:pw@127.0.0.1:6379/0"


def test_log_file_receives_records_and_rotates(tmp_path):
    settings = load_settings(env={}, dotenv_file=None, cache_dir=tmp_path, log_max_bytes=2048, log_backups=2)
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        path = setup_logging(settings, to_file=True)
        assert path == tmp_path / "server.log"
        for index in range(100):
            logging.getLogger("sesame_voice.test").info("record number %03d with some padding text", index)
    finally:
        for handler in root.handlers:
            if handler not in before[0]:
                handler.close()
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    assert "record number 099" in path.read_text()
    rotated = tmp_path / "server.log.1"
    assert rotated.is_file() and "record number" in rotated.read_text()
    assert not (tmp_path / "server.log.3").exists()
    assert path.stat().st_size <= 2048


def _samples(families, name: str, **labels) -> float:
    total = 0.0
    for family in families:
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def test_metrics_move_as_requests_are_made(start_server, openai_client_for):
    async with start_server(plugins=[FakePlugin(ToneProvider)]) as server:
        base = f"http://127.0.0.1:{server.http_port}"
        async with aiohttp.ClientSession() as http:

            async def scrape():
                async with http.get(f"{base}/metrics") as response:
                    assert response.status == 200
                    assert response.headers["Content-Type"].startswith("text/plain")
                    return list(text_string_to_metric_families(await response.text()))

            before = await scrape()
            client = openai_client_for(base)
            audio = await client.audio.speech.create(
                model="tts-1", voice="tone", input=" ".join(SENTENCES[:2]), response_format="wav"
            )
            with pytest.raises(openai.APIStatusError):
                await client.audio.speech.create(model="tts-1", voice="nobody-by-this-name", input="Hello.")
            after = await scrape()
    samples, rate = sf.read(io.BytesIO(audio.content))
    pieces = len(split_lead(SENTENCES[0])) + 1  # the first sentence's lead is spoken on its own
    assert len(samples) / rate == pytest.approx(0.5 * pieces, abs=0.05)  # a 0.5 s tone per piece

    def moved(name: str, **labels) -> float:
        return _samples(after, name, **labels) - _samples(before, name, **labels)

    assert moved("sesame_voice_requests_total", frontend="openai", voice="tone", format="wav", status="ok") == 1
    assert moved("sesame_voice_requests_total", status="voice_not_found") == 1
    assert moved("sesame_voice_time_to_first_audio_seconds_count", voice="tone") == 1
    assert moved("sesame_voice_request_duration_seconds_count", voice="tone") == 1
    assert moved("sesame_voice_audio_seconds_total", provider="tone") == pytest.approx(0.5 * pieces, abs=0.05)
    assert moved("sesame_voice_real_time_factor_count", provider="tone") == 1
    assert _samples(after, "sesame_voice_voices") >= 1
    assert _samples(after, "sesame_voice_queue_depth", provider="tone") == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_healthy(base: str, process: subprocess.Popen, timeout: float = 120) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            assert process.poll() is None, "server exited during start-up"
            try:
                async with http.get(f"{base}/health") as response:
                    if response.status == 200 and (await response.json())["providers"]["piper"]["loaded"]:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.3)
    raise AssertionError("server did not become healthy")


async def test_sigterm_lets_a_long_stream_finish_then_exits_cleanly(tmp_path, transcribe, wer):
    """SIGTERM mid-stream: no new connections, the stream completes, exit 0, PID file removed."""
    home, cwd, cache = tmp_path / "home", tmp_path / "empty", tmp_path / "cache"
    for folder in (home, cwd):
        folder.mkdir()
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "CACHE_DIR": str(cache),
        "WYOMING_URI": "tcp://127.0.0.1:0",
        "ZEROCONF_ENABLED": "false",
        "DISABLED_PLUGINS": "csm",
        "SHUTDOWN_GRACE": "60",
        "HF_HUB_OFFLINE": "1",
        "PIPER_DETERMINISTIC": "true",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sesame_voice", "serve"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    text = " ".join(SENTENCES * 2)
    try:
        await _wait_healthy(base, process)
        pid_file = cache / "sesame-voice.pid"
        assert pid_file.read_text().strip() == str(process.pid)
        # A small receive buffer and slow reading keep the stream in flight while the server stops.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector, read_bufsize=4096) as http:
            body = {"model": "tts-1", "voice": "conversational", "input": text, "response_format": "wav"}
            async with http.post(f"{base}/v1/audio/speech", json=body) as response:
                assert response.status == 200
                received = bytearray(await response.content.readexactly(4096))
                process.send_signal(signal.SIGTERM)
                await asyncio.sleep(1.0)
                with pytest.raises(aiohttp.ClientConnectionError):
                    async with aiohttp.ClientSession() as other:
                        await other.get(f"{base}/health")
                async for block in response.content.iter_chunked(8192):
                    received.extend(block)
                    await asyncio.sleep(0.01)
        assert await asyncio.to_thread(process.wait, 60) == 0
    finally:
        if process.poll() is None:
            process.kill()
    samples, rate = sf.read(io.BytesIO(bytes(received)), dtype="float32")
    assert wer(text, transcribe(np.asarray(samples), rate)) <= 0.10
    assert not pid_file.exists()
    log = (cache / "server.log").read_text()
    assert "SIGTERM received" in log and "Stopped" in log
