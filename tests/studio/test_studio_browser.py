"""The studio in a real headless Chromium against a real server, directly and behind a path prefix."""

from __future__ import annotations

import base64
import io
import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from studio_support import SENTENCE, PrefixProxy, StudioServer

UPLOAD_TEXT = "Today the weather is sunny with a light breeze."
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
PROTECTED_KEY = "studio-key"
SCREENSHOT_ENV = "SESAME_STUDIO_SCREENSHOT"
"""Set to a path (docs/studio.png) to keep the screenshot the test takes."""


@pytest.fixture(scope="module", params=["direct", "prefix"])
def studio_url(request, studio_server) -> str:
    if request.param == "direct":
        return studio_server.url
    return request.getfixturevalue("prefix_proxy").url


def _wait(condition, timeout: float = 120, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _open(driver, url: str) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get_log("performance")
    driver.get(url)
    _wait(lambda: _listed_voices(driver), what="the voice list")


def _el(driver, element_id: str):
    return driver.find_element("id", element_id)


def _api_voices(server: StudioServer) -> set[str]:
    with urllib.request.urlopen(f"{server.url}v1/audio/voices", timeout=30) as response:
        return {voice["id"] for voice in json.load(response)["data"]}


def _listed_voices(driver) -> set[str]:
    return set(
        driver.execute_script(  # one snapshot: the table is rebuilt whenever the voices change
            "return [...document.querySelectorAll('#voices-table tbody tr')].map(r => r.dataset.voice)"
        )
    )


def _console_errors(driver) -> list[dict]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _requested_hosts(driver) -> set[str]:
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            url = message["params"].get("request", {}).get("url") or message["params"].get("url", "")
            parsed = urllib.parse.urlsplit(url)
            if parsed.scheme not in ("data", "blob", "about", "chrome", ""):
                hosts.add(parsed.netloc)
    return hosts


def _select(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(_el(driver, element_id)).select_by_value(value)


def _type(driver, element_id: str, text: str) -> None:
    element = _el(driver, element_id)
    element.clear()
    element.send_keys(text)


def _last_speech(driver) -> tuple[np.ndarray, int]:
    """The WAV the page built from the PCM it played (the download), read back with soundfile."""
    encoded = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
           const blob = window.studioLastSpeech();
           const reader = new FileReader();
           reader.onload = () => done(reader.result.split(",")[1]);
           reader.readAsDataURL(blob);"""
    )
    samples, rate = sf.read(io.BytesIO(base64.b64decode(encoded)), dtype="float32")
    return samples, rate


def _speak_in_page(driver, voice: str, text: str) -> tuple[np.ndarray, int, float]:
    _select(driver, "speak-voice", voice)
    _type(driver, "speak-text", text)
    _el(driver, "speak-button").click()
    played = _wait(lambda: _el(driver, "speak-status").get_attribute("data-played"), what="playback to end")
    samples, rate = _last_speech(driver)
    return samples, rate, float(played)


def _rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples))))


def test_page_loads_clean_lists_every_voice_and_speaks(browser, studio_server, studio_url, transcribe, wer, request):
    _open(browser, studio_url)
    assert _listed_voices(browser) == _api_voices(studio_server)
    samples, rate, played = _speak_in_page(browser, "joe", SENTENCE)
    assert _rms(samples) > 0.02
    assert abs(played - len(samples) / rate) < 0.01  # the page played what it offers to download
    assert wer(SENTENCE, transcribe(samples, rate)) <= 0.15
    status = _el(browser, "speak-status").text
    assert "from piper" in status and "first audio after" in status
    # The server at a glance shows the providers' states and the voices folder.
    overview = _wait(lambda: _el(browser, "server-overview").text, what="the overview")
    assert "piper (ready)" in overview and "csm (failed)" in overview and str(studio_server.voices) in overview
    if request.node.callspec.params["studio_url"] == "direct":
        target = os.environ.get(SCREENSHOT_ENV)
        browser.execute_script("window.scrollTo(0, 0)")
        path = Path(target) if target else studio_server.root / "studio.png"
        browser.save_screenshot(str(path))
        assert path.stat().st_size > 10_000
    assert _console_errors(browser) == []
    port = urllib.parse.urlsplit(studio_url).netloc
    assert _requested_hosts(browser) == {port}


def test_a_clone_from_an_uploaded_clip_appears_and_speaks(
    browser, studio_server, studio_url, transcribe, wer, tmp_path
):
    _open(browser, studio_url)
    name = "uploaded" + ("p" if "voice/studio" in studio_url else "d")
    clip = tmp_path / "clip.mp3"
    clip.write_bytes(studio_server.speech(UPLOAD_TEXT, fmt="mp3"))
    _el(browser, "clone-file").send_keys(str(clip))
    prefilled = _wait(lambda: _el(browser, "clone-transcript").get_attribute("value"), what="the transcript")
    assert wer(UPLOAD_TEXT, prefilled) <= 0.15  # the server's own speech-to-text filled it in
    _type(browser, "clone-name", name)
    _type(browser, "clone-description", "Joe, from an upload")
    _el(browser, "clone-save").click()
    _wait(lambda: "Saved" in _el(browser, "clone-status").text, what="the save")
    _wait(lambda: name in _listed_voices(browser), what="the new voice in the list")
    assert name in _api_voices(studio_server)
    assert (studio_server.voices / f"{name}.wav").is_file()
    # It speaks through the OpenAI route (Piper stands in for CSM, which has no weights here).
    speech, rate = sf.read(io.BytesIO(studio_server.speech(SENTENCE, voice=name)), dtype="float32")
    assert _rms(speech) > 0.02 and wer(SENTENCE, transcribe(speech, rate)) <= 0.15
    # And the page deletes it again.
    browser.find_element("css selector", f'#voices-table tr[data-voice="{name}"] button[aria-label^="Delete"]').click()
    browser.switch_to.alert.accept()
    _wait(lambda: name not in _listed_voices(browser), what="the voice to go")
    assert not (studio_server.voices / f"{name}.wav").exists()
    assert _console_errors(browser) == []


def test_the_microphone_clones_and_transcribes(browser, studio_server, studio_url, fake_microphone, transcribe, wer):
    """Chromium's fake capture device plays the WAV (SENTENCE) as the microphone."""
    _open(browser, studio_url)
    seconds = sf.info(str(fake_microphone)).duration
    name = "microphone" + ("p" if "voice/studio" in studio_url else "d")
    _el(browser, "clone-record").click()
    _wait(lambda: "Recording" in _el(browser, "clone-status").text, what="recording to start")
    time.sleep(seconds - 1.0)  # one pass of the file: the sentence and most of its trailing silence
    _el(browser, "clone-stop").click()
    prefilled = _wait(lambda: _el(browser, "clone-transcript").get_attribute("value"), what="the transcript")
    assert wer(SENTENCE, prefilled) <= 0.15, prefilled
    _type(browser, "clone-name", name)
    _el(browser, "clone-save").click()
    _wait(lambda: "Saved" in _el(browser, "clone-status").text, what="the save")
    assert name in _api_voices(studio_server)
    recorded, rate = sf.read(studio_server.voices / f"{name}.wav", dtype="float32")
    assert wer(SENTENCE, transcribe(recorded, rate)) <= 0.15

    _el(browser, "stt-record").click()
    _wait(lambda: "Recording" in _el(browser, "stt-status").text, what="recording to start")
    time.sleep(seconds - 1.0)
    _el(browser, "stt-stop").click()
    _wait(lambda: _el(browser, "stt-output").get_attribute("data-done"), what="the streamed transcript")
    assert wer(SENTENCE, _el(browser, "stt-output").text) <= 0.15
    assert _console_errors(browser) == []


def _converse(browser) -> None:
    """Open a conversation in the page, add a typed turn and have the voice speak one."""
    _select(browser, "talk-voice", "joe")
    _el(browser, "talk-open").click()
    _wait(lambda: "Session" in _el(browser, "talk-status").text, what="the session's welcome")
    _type(browser, "talk-text", "I had a long day.")
    _el(browser, "talk-add").click()
    _wait(lambda: len(browser.find_elements("css selector", "#talk-history li")) == 1, what="the first turn")
    _type(browser, "talk-text", "Tell me about it.")
    _el(browser, "talk-speak").click()
    _wait(lambda: len(browser.find_elements("css selector", "#talk-history li")) == 2, what="the spoken turn")
    turns = [item.text for item in browser.find_elements("css selector", "#talk-history li")]
    assert turns[0].startswith("You (speaker 1): I had a long day.") and "typed" in turns[0]
    assert turns[1].startswith("Voice: Tell me about it.") and "generated" in turns[1] and "from piper" in turns[1]


def test_a_conversation_shows_its_turns(browser, studio_server, studio_url, fake_microphone):
    _open(browser, studio_url)
    _converse(browser)
    # A turn from the microphone is transcribed by the server and joins the history.
    _el(browser, "talk-record").click()
    _wait(lambda: "Recording" in _el(browser, "talk-status").text, what="recording to start")
    time.sleep(sf.info(str(fake_microphone)).duration - 1.0)
    _el(browser, "talk-record-stop").click()
    _wait(lambda: len(browser.find_elements("css selector", "#talk-history li")) == 3, what="the recorded turn")
    third = browser.find_elements("css selector", "#talk-history li")[2].text
    assert "transcribed" in third and "kitchen" in third.lower()
    assert _console_errors(browser) == []


def test_axe_finds_no_serious_accessibility_violations(browser, studio_url):
    _open(browser, studio_url)
    browser.execute_script(AXE.read_text(encoding="utf-8"))
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations), e => done(String(e)));"
    )
    assert isinstance(result, list), result
    serious = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in result
        if v["impact"] in ("serious", "critical")
    ]
    assert serious == []


def test_a_protected_server_asks_for_the_key_and_converses_with_it(browser, chromium_paths, tmp_path):
    """The key reaches the session WebSocket too (issue 20: a subprotocol, the one thing a browser can
    set there), directly and through a proxy that forwards subprotocols as Home Assistant's Ingress does."""

    server = StudioServer(tmp_path, api_key=PROTECTED_KEY)
    proxy = PrefixProxy(server.url)
    try:
        for url in (server.url, proxy.url):
            browser.get(url)
            _wait(lambda: _el(browser, "key-form").is_displayed(), what="the key prompt")
            assert _listed_voices(browser) == set()
            _type(browser, "key-input", PROTECTED_KEY)
            _el(browser, "key-form").submit()
            _wait(lambda: _listed_voices(browser), what="the voice list")
            assert _listed_voices(browser) == _api_voices_with_key(server, PROTECTED_KEY)
            stored = browser.execute_script(
                "return [sessionStorage.getItem('sesame-voice-api-key'), localStorage.getItem('sesame-voice-api-key')]"
            )
            assert stored == [PROTECTED_KEY, None]  # kept in the tab only: "remember" was not ticked
            browser.get_log("browser")
            _converse(browser)
            assert _console_errors(browser) == []
            browser.execute_script("talk.socket.close()")  # a page kept in the back/forward cache keeps it open
            _wait(lambda: "closed" in _el(browser, "talk-status").text, what="the conversation to close")
            browser.execute_script("sessionStorage.clear(); localStorage.clear();")
        # A socket without the key, or with a wrong one, is refused; the right one opens.
        assert _socket_attempts(browser, server) == ["refused", "refused", "open"]
        # The key never reached the server's log (it is not in the URL; the handshake never echoes it).
        log = (server.root / "server.log").read_text(errors="replace")
        assert PROTECTED_KEY not in log and "sesame-voice-key." not in log
    finally:
        browser.execute_script("sessionStorage.clear(); localStorage.clear();")
        proxy.close()
        server.close()


def _socket_attempts(browser, server: StudioServer) -> list[str]:
    """Open the session WebSocket from the page with no key, a wrong key, then the right one."""
    session = _create_session(server, PROTECTED_KEY)
    browser.get(server.url)
    _wait(lambda: _el(browser, "key-form").is_displayed(), what="the key prompt")
    return browser.execute_async_script(
        """const done = arguments[arguments.length - 1];
           const url = new URL("v1/sessions/" + arguments[0] + "/ws", location.href);
           url.protocol = "ws:";
           const token = (key) => "sesame-voice-key." + btoa(key).replace(/=+$/, "");
           const attempt = (protocols) => new Promise((resolve) => {
             const socket = new WebSocket(url, protocols);
             socket.onopen = () => { socket.close(); resolve("open"); };
             socket.onerror = () => resolve("refused");
           });
           (async () => done([
             await attempt(["sesame-voice"]),
             await attempt(["sesame-voice", token("wrong")]),
             await attempt(["sesame-voice", token(arguments[1])]),
           ]))();""",
        session,
        PROTECTED_KEY,
    )


def _create_session(server: StudioServer, key: str) -> str:
    request = urllib.request.Request(
        f"{server.url}v1/sessions",
        method="POST",
        data=b"{}",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["id"]


def _api_voices_with_key(server: StudioServer, key: str) -> set[str]:
    request = urllib.request.Request(f"{server.url}v1/audio/voices", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return {voice["id"] for voice in json.load(response)["data"]}
