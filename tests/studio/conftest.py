"""The studio in a real Chromium: a real server (``sesame-voice serve``), Selenium, a path-prefix proxy.

Chromium and its driver come from Debian (``apt-get install -y chromium chromium-driver``); the
registries offer no browser. Without them the tests skip, saying so. The browser runs headless,
sandbox off (root in CI), with a fresh profile and every host but the loopback unresolvable.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support import VOICES

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
SENTENCE = "Please turn on the kitchen lights at seven."


def _chromium() -> tuple[str, str] | None:
    browser = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    found = _chromium()
    if found is None:
        pytest.skip("Chromium is not installed here: apt-get install -y chromium chromium-driver")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


class StudioServer:
    """``sesame-voice serve`` on the loopback, as a user runs it."""

    def __init__(self, root: Path, api_key: str | None = None) -> None:
        self.root = root
        self.voices = root / "voices"
        shutil.copytree(VOICES, self.voices)
        (root / "no-csm-weights").mkdir()
        self.port = _free_port()
        self.api_key = api_key
        env = {
            **os.environ,
            "MODEL_ID": str(root / "no-csm-weights"),
            "CACHE_DIR": str(root / "cache"),
            "HF_HUB_OFFLINE": "1",
            "VOICES_POLL_INTERVAL": "0.2",
            "LOG_LEVEL": "info",
        }
        env.pop("API_KEY", None)
        if api_key:
            env["API_KEY"] = api_key
        self.log = open(root / "server.log", "wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sesame_voice",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-zeroconf",
                "--voices-dir",
                str(self.voices),
                "--disable",
                "wyoming",
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
        _wait_http(f"{self.url}health", self.process)
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _wait_ready(self, timeout: float = 180) -> None:
        """Until Piper and Whisper have loaded (CSM fails at once: no weights here)."""
        import json

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen(f"{self.url}health", timeout=5) as response:
                health = json.load(response)
            states = [p["state"] for p in {**health["providers"], **health["speech_to_text"]}.values()]
            if "loading" not in states and "unloaded" not in states:
                return
            time.sleep(0.5)
        raise RuntimeError("providers did not finish loading")

    def speech(self, text: str, voice: str = "joe", fmt: str = "wav") -> bytes:
        import json

        request = urllib.request.Request(
            f"{self.url}v1/audio/speech",
            method="POST",
            data=json.dumps({"model": "tts-1", "input": text, "voice": voice, "response_format": fmt}).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.read()

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory, chromium_paths):
    server = StudioServer(tmp_path_factory.mktemp("studio"))
    yield server
    server.close()


class PrefixProxy:
    """A reverse proxy serving the server under ``/voice/studio/`` (HTTP and WebSocket), like Ingress."""

    PREFIX = "/voice/studio"

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.port = _free_port()
        self.loop = asyncio.new_event_loop()
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.started.wait(30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.PREFIX}/"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.started.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        import aiohttp
        from aiohttp import web

        self.session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", self.PREFIX + "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _forward(self, request):
        import aiohttp
        from aiohttp import web

        path = "/" + request.match_info["tail"]
        url = self.target + path + (("?" + request.query_string) if request.query_string else "")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        headers["X-Ingress-Path"] = self.PREFIX
        if request.headers.get("Upgrade", "").lower() == "websocket":
            # As Home Assistant's Ingress does: the offered subprotocols go upstream, the first is answered.
            offered = request.headers.get("Sec-WebSocket-Protocol", "")
            protocols = [token.strip() for token in offered.split(",") if token.strip()]
            client = web.WebSocketResponse(protocols=protocols)
            await client.prepare(request)
            async with self.session.ws_connect(
                url,
                protocols=protocols,
                headers={
                    k: v
                    for k, v in headers.items()
                    if not k.lower().startswith("sec-websocket") and k.lower() not in ("upgrade", "connection")
                },
            ) as upstream:

                async def pump(source, sink):
                    async for message in source:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            await sink.send_str(message.data)
                        elif message.type == aiohttp.WSMsgType.BINARY:
                            await sink.send_bytes(message.data)
                        else:
                            break
                    await sink.close()

                await asyncio.gather(pump(client, upstream), pump(upstream, client), return_exceptions=True)
            return client
        async with self.session.request(
            request.method, url, headers=headers, data=await request.read(), allow_redirects=False
        ) as upstream:
            response = web.StreamResponse(
                status=upstream.status,
                headers={
                    k: v
                    for k, v in upstream.headers.items()
                    if k.lower() not in ("transfer-encoding", "content-length", "connection")
                },
            )
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    def close(self) -> None:
        async def stop():
            await self.runner.cleanup()
            await self.session.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def fake_microphone(studio_server, tmp_path_factory) -> Path:
    """A WAV the browser's fake capture device plays: half a second of silence, SENTENCE, two of silence."""
    samples, rate = sf.read(io.BytesIO(studio_server.speech(SENTENCE)), dtype="float32")
    silence = np.zeros(rate // 2, dtype=np.float32)
    path = tmp_path_factory.mktemp("microphone") / "speech.wav"
    sf.write(path, np.concatenate([silence, samples, silence, silence, silence, silence]), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(chromium_paths, fake_microphone, tmp_path_factory):
    """Headless Chromium with a fresh profile, no network beyond the loopback, a fake microphone."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--disable-default-apps",
        "--disable-extensions",
        "--window-size=1280,2200",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_microphone}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def prefix_proxy(studio_server):
    proxy = PrefixProxy(studio_server.url)
    yield proxy
    proxy.close()
