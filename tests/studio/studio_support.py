"""The studio's test helpers: a real server process (``sesame-voice serve``) and a path-prefix proxy.

A module of its own (not conftest) so the test modules can import them by name.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from support import VOICES

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
SENTENCE = "Please turn on the kitchen lights at seven."


def find_chromium() -> tuple[str, str] | None:
    browser = next((shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


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
