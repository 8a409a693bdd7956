#!/usr/bin/env python3
"""Start sesame-voice in the Home Assistant add-on and announce its Wyoming service.

Reads the add-on's options (``/data/options.json``, written by the Supervisor from config.yaml's
schema), turns them into the server's settings (environment variables, README "Configuration"),
starts ``python -m sesame_voice serve`` and, once its Wyoming port answers, posts the service to
the Supervisor's discovery API (``POST http://supervisor/discovery`` with ``SUPERVISOR_TOKEN``,
as the wyoming-piper add-on does through bashio) so Home Assistant offers it without zeroconf.
SIGTERM and SIGINT are passed on to the server, whose exit status this script exits with.

Standard library only. Outside the add-on (the tests) these environment variables move things:
``ADDON_OPTIONS`` (options file), ``ADDON_DATA`` (the /data folder), ``SUPERVISOR_API`` (as
bashio names it), ``ADDON_HOST``, ``ADDON_HTTP_PORT`` and ``ADDON_WYOMING_PORT`` (what to bind).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

HTTP_PORT = 8880
"""config.yaml's ingress_port: Ingress and the optional host port reach the HTTP API here."""
WYOMING_PORT = 10200
SUPERVISOR_API = "http://supervisor"
TOKEN_FILE = Path("/run/s6/container_environment/SUPERVISOR_TOKEN")
"""Where s6-overlay keeps the container's environment, should the token not be in ours."""
DISCOVERY_WAIT = 600.0
"""Seconds to wait for the Wyoming port before giving up on the announcement."""
LOG_LEVELS = {"debug", "info", "warning", "error", "critical"}

_LOGGER = logging.getLogger("sesame-voice-addon")


def load_options(path: Path) -> dict:
    """The add-on's options; the Supervisor has already checked them against config.yaml's schema."""
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    if not isinstance(options, dict):
        raise SystemExit(f"{path}: expected a JSON object of options")
    return options


def server_env(
    options: Mapping,
    data: Path,
    environ: Mapping[str, str],
    host: str = "0.0.0.0",
    http_port: int = HTTP_PORT,
    wyoming_port: int = WYOMING_PORT,
) -> dict[str, str]:
    """The server's environment: ``environ`` plus the settings that ``options`` and the add-on fix.

    Everything the server keeps lives under ``data`` (/data): voices (unless ``voices_dir`` names
    a folder in /share), converted weights and the Hugging Face cache. It listens on every address
    of the container, which Ingress and Home Assistant reach through the Supervisor's network."""
    cache = data / "cache"
    env = {key: value for key, value in environ.items() if key not in ("API_KEY", "HF_TOKEN", "STT_MODEL")}
    env.update(
        {
            "HOST": host,
            "PORT": str(http_port),
            "WYOMING_URI": f"tcp://{host}:{wyoming_port}",
            "CACHE_DIR": str(cache),
            "HF_HOME": str(cache / "huggingface"),
            "VOICES_DIR": str(options.get("voices_dir") or data / "voices"),
            "DEFAULT_VOICE": str(options.get("voice") or "conversational"),
            "MODEL_ID": str(options.get("csm_model") or "sesame/csm-1b"),
            "LOG_LEVEL": str(options.get("log_level") or "info").lower(),
            # The Supervisor collects the console log; a file in /data would only fill the backup.
            "LOG_FILE": "",
            "PID_FILE": "",
            # Multicast does not leave the add-on's network: the Supervisor's discovery replaces it.
            "ZEROCONF_ENABLED": "false",
        }
    )
    if env["LOG_LEVEL"] not in LOG_LEVELS:
        raise SystemExit(f"log_level must be one of {', '.join(sorted(LOG_LEVELS))}, got {env['LOG_LEVEL']!r}")
    for option, variable in (("api_key", "API_KEY"), ("hf_token", "HF_TOKEN"), ("stt_model", "STT_MODEL")):
        if options.get(option):
            env[variable] = str(options[option])
    return env


def discovery_message(hostname: str, wyoming_port: int = WYOMING_PORT) -> dict:
    """What Home Assistant's Wyoming integration reads from the Supervisor: ``config.uri``."""
    return {"service": "wyoming", "config": {"uri": f"tcp://{hostname}:{wyoming_port}"}}


def supervisor_token(environ: Mapping[str, str], token_file: Path = TOKEN_FILE) -> str | None:
    token = environ.get("SUPERVISOR_TOKEN")
    if not token and token_file.is_file():
        token = token_file.read_text(encoding="utf-8").strip()
    return token or None


def wait_for_port(host: str, port: int, deadline: float, server: subprocess.Popen | None = None) -> bool:
    """Until ``host:port`` accepts a connection (True), the deadline passes or the server exits."""
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=2):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def announce(api: str, token: str, message: dict, timeout: float = 10.0) -> str:
    """POST ``message`` to the Supervisor's /discovery; the uuid it answers with."""
    request = urllib.request.Request(
        f"{api.rstrip('/')}/discovery",
        data=json.dumps(message).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        answer = json.load(response)
    if answer.get("result") != "ok":
        raise RuntimeError(f"the Supervisor refused the discovery message: {answer.get('message', answer)}")
    return str(answer.get("data", {}).get("uuid", ""))


def announce_when_ready(server: subprocess.Popen, environ: Mapping[str, str], host: str, wyoming_port: int) -> None:
    """Wait for the Wyoming port, then tell the Supervisor; a failure is logged, never fatal."""
    token = supervisor_token(environ)
    if token is None:
        _LOGGER.warning("No SUPERVISOR_TOKEN: not announcing the Wyoming service (add it in Home Assistant by hand)")
        return
    local = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if not wait_for_port(local, wyoming_port, time.monotonic() + DISCOVERY_WAIT, server):
        _LOGGER.error("The Wyoming port %s never opened: not announced to Home Assistant", wyoming_port)
        return
    message = discovery_message(socket.gethostname(), wyoming_port)
    try:
        uuid = announce(environ.get("SUPERVISOR_API") or SUPERVISOR_API, token, message)
    except (OSError, ValueError, RuntimeError) as err:
        _LOGGER.error("Discovery message to Home Assistant failed: %s", err)
        return
    _LOGGER.info("Announced %s to Home Assistant (discovery %s)", message["config"]["uri"], uuid)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    environ = dict(os.environ)
    data = Path(environ.get("ADDON_DATA", "/data"))
    options = load_options(Path(environ.get("ADDON_OPTIONS", data / "options.json")))
    host = environ.get("ADDON_HOST", "0.0.0.0")
    http_port = int(environ.get("ADDON_HTTP_PORT", HTTP_PORT))
    wyoming_port = int(environ.get("ADDON_WYOMING_PORT", WYOMING_PORT))
    env = server_env(options, data, environ, host, http_port, wyoming_port)
    for folder in (Path(env["VOICES_DIR"]), Path(env["HF_HOME"])):
        folder.mkdir(parents=True, exist_ok=True)
    _LOGGER.info(
        "Starting sesame-voice: HTTP (studio, OpenAI API) on port %s, Wyoming on %s, voices in %s, API key %s",
        http_port,
        wyoming_port,
        env["VOICES_DIR"],
        "required" if env.get("API_KEY") else "not set",
    )
    server = subprocess.Popen([sys.executable, "-m", "sesame_voice", "serve"], env=env)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda received, _frame: server.send_signal(received))
    threading.Thread(target=announce_when_ready, args=(server, environ, host, wyoming_port), daemon=True).start()
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
