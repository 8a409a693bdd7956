"""The studio in a real Chromium: a real server (``sesame-voice serve``), Selenium, a path-prefix proxy.

Chromium and its driver come from Debian (``apt-get install -y chromium chromium-driver``); the
registries offer no browser. Without them the tests skip, saying so. The browser runs headless,
sandbox off (root in CI), with a fresh profile and every host but the loopback unresolvable.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from studio_support import SENTENCE, PrefixProxy, StudioServer, find_chromium


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    found = find_chromium()
    if found is None:
        pytest.skip("Chromium is not installed here: apt-get install -y chromium chromium-driver")
    return found


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory, chromium_paths):
    server = StudioServer(tmp_path_factory.mktemp("studio"))
    yield server
    server.close()


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
