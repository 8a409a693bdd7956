"""Real ``sesame-voice serve`` processes for tests: start one on a free loopback port, wait for a probe."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spawn_server(root: Path, port: int, **env: str) -> subprocess.Popen:
    """``sesame-voice serve`` on 127.0.0.1:``port`` with the Piper voice only (no CSM, Whisper, zeroconf).

    ``root`` gets its home, working folder and cache; its log is ``root/cache/server.log``.
    """
    home, cwd, cache = root / "home", root / "cwd", root / "cache"
    for folder in (home, cwd):
        folder.mkdir(parents=True, exist_ok=True)
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "CACHE_DIR": str(cache),
        "WYOMING_ENABLED": "false",
        "ZEROCONF_ENABLED": "false",
        "DISABLED_PLUGINS": "csm,whisper",
        "HF_HUB_OFFLINE": "1",
        "VOICES_DIR": str(root / "voices"),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "sesame_voice", "serve"],
        cwd=cwd,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_for(url: str, process: subprocess.Popen | None = None, status: int = 200, timeout: float = 120) -> dict:
    """Poll ``url`` until it answers ``status``; return its JSON. Fails if ``process`` exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with aiohttp.ClientSession() as http:
        while loop.time() < deadline:
            assert process is None or process.poll() is None, "the server exited"
            try:
                async with http.get(url) as response:
                    if response.status == status:
                        return await response.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """Kill ``process`` if it still runs (the end of a test, whatever happened)."""
    if process.poll() is None:
        process.kill()
        process.wait(10)
