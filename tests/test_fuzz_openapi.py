"""Schema-driven fuzzing of every route in /openapi.json: no answer may be a 5xx.

A real server (the testing kit's, with the Piper voice) runs in a thread with its own event loop;
schemathesis generates requests from the document the server serves and sends them over HTTP.
The one 5xx allowed is the documented 503 ``provider_unavailable`` (no provider can serve).
"""

from __future__ import annotations

import asyncio
import threading

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

MAX_EXAMPLES = 12
"""Generated requests per operation (and phase); with a fixed seed the run is the same every time."""
ALLOWED_5XX_CODES = {"provider_unavailable", "no_provider", "stt_unavailable"}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """A running server with the installed plugins (Whisper off), served from a background thread."""
    import shutil

    from sesame_voice.app.plugins import make_plugin_manager
    from sesame_voice.app.server import Server
    from sesame_voice.config import load_settings
    from support import VOICES

    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(VOICES, root / "voices")
    (root / "no-csm").mkdir()
    settings_ = load_settings(
        env={},
        dotenv_file=None,
        host="127.0.0.1",
        port=0,
        voices_dir=root / "voices",
        cache_dir=root / "cache",
        zeroconf_enabled=False,
        zeroconf_interfaces=("127.0.0.1",),
        disabled_plugins=("whisper",),
        plugins={"wyoming": {"uri": "tcp://127.0.0.1:0"}, "csm": {"model_id": str(root / "no-csm")}},
    )
    ready = threading.Event()
    state: dict = {}

    async def serve() -> None:
        stop = asyncio.Event()
        state["stop"], state["loop"] = stop, asyncio.get_running_loop()
        pm = make_plugin_manager(disabled=settings_.disabled_plugins)
        async with Server(settings_, pm=pm) as server:
            state["server"] = server
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(120), "server did not start"
    yield state["server"]
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(30)


def _server_errors(response) -> str | None:
    """Why ``response`` is a failure (an undocumented 5xx), or None."""
    if response.status_code < 500:
        return None
    try:
        code = response.json()["error"]["code"]
    except Exception:  # noqa: BLE001 - a non-JSON 5xx is itself the failure
        code = None
    if response.status_code == 503 and code in ALLOWED_5XX_CODES:
        return None
    return f"{response.status_code}: {response.text[:300]}"


SESSION_PATHS = ("/v1/sessions", "/ws")
session_failures: dict[str, str] = {}
"""5xx answers of the session routes, kept apart while sessions move into a plugin (issue 17)."""


def test_no_route_answers_5xx(fuzz_server):
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{fuzz_server.http_port}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case) -> None:
            response = case.call(timeout=60)
            if (why := _server_errors(response)) is not None:
                where = f"{case.method} {case.formatted_path} {why[:3]}"
                target = session_failures if case.path.startswith(SESSION_PATHS) else failures
                target.setdefault(where, why)

        fuzz()
    assert operations >= 20, f"only {operations} operations in /openapi.json"
    assert not failures, "\n".join(f"{where} -> {why}" for where, why in failures.items())


def test_session_routes_answer_no_5xx():
    assert not session_failures, "\n".join(f"{where} -> {why}" for where, why in session_failures.items())


def test_known_malformed_multipart_bodies_get_400(fuzz_server):
    import requests

    base = f"http://127.0.0.1:{fuzz_server.http_port}"
    no_boundary = requests.post(f"{base}/generate", data=b"text=hi", headers={"Content-Type": "multipart/form-data"})
    assert no_boundary.status_code == 400, no_boundary.text
    assert no_boundary.json()["code"] == "invalid_form"
    odd_name = b'--XX\r\nContent-Disposition: form-data; name="\x07"\r\n\r\nv\r\n--XX--\r\n'
    answer = requests.post(
        f"{base}/v1/audio/transcriptions", data=odd_name, headers={"Content-Type": "multipart/form-data; boundary=XX"}
    )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_form"
    many = "".join(f'--XX\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nv\r\n' for i in range(17))
    too_many = requests.post(
        f"{base}/v1/audio/transcriptions",
        data=(many + "--XX--\r\n").encode(),
        headers={"Content-Type": "multipart/form-data; boundary=XX"},
    )
    assert too_many.status_code == 413, too_many.text
    assert too_many.json()["error"]["code"] == "too_many_parts"
    big = '--XX\r\nContent-Disposition: form-data; name="text"\r\n\r\n' + "a" * (65 * 1024) + "\r\n--XX--\r\n"
    too_big = requests.post(
        f"{base}/generate", data=big.encode(), headers={"Content-Type": "multipart/form-data; boundary=XX"}
    )
    assert too_big.status_code == 413, too_big.text
    assert too_big.json()["code"] == "field_too_large"
