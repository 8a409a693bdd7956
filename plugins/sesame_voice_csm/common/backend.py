"""Which engine runs CSM, and the one interface the provider drives either engine through.

``plugins.csm.backend`` / ``CSM_BACKEND`` is ``auto`` (default), ``mlx`` or ``torch``. ``auto`` picks
MLX on Apple Silicon and PyTorch elsewhere when torch and transformers are installed, else MLX.
Only installed packages are looked up here; nothing heavy is imported until a backend loads.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import numpy as np

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice_csm.common.plan import Plan, Stats

BACKENDS = ("auto", "mlx", "torch")
TORCH_ADVICE = "install it with: pip install 'sesame-voice[torch]' (see docs/csm.md for a CPU-only or CUDA torch)"
MODULES = {"mlx": "sesame_voice_csm.mlx.backend", "torch": "sesame_voice_csm.torch.backend"}
"""Each backend's module, imported only to load it; it offers ``load(checkpoint, options, cache_dir, progress)``."""


class Generation(Protocol):
    """One request's generation: iterate it for (24 kHz float32 PCM, Mimi codes codebooks × frames) chunks."""

    stats: Stats
    """This request's own timings and frame counts (never shared with another request)."""

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...


class Backend(Protocol):
    """A loaded CSM on one engine. The provider calls nothing else."""

    name: str
    """``mlx`` or ``torch``."""
    concurrency: int
    """Requests it generates at once (the provider admits no more, first come first served)."""
    device: str
    """Where it runs, for ``/health`` (``cpu``, ``metal``, ``cuda, bfloat16``)."""
    model_dir: Path
    hub_id: str | None
    codec_tag: str
    """Fingerprint of the Mimi codec: prompt token caches are only valid for one codec."""
    watermarks: bool

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Mimi codes (codebooks × frames) of 24 kHz mono audio (thread-safe)."""

    def count_text_tokens(self, text: str, speaker: int) -> int: ...

    def segment(self, text: str, speaker: int, codes: np.ndarray | None):
        """Model rows of a conversation turn (its text, then its audio if known)."""

    def generate(self, plan: Plan, cancelled: threading.Event) -> Generation:
        """Start generating ``plan``; stops within a frame of ``cancelled``."""

    def close(self) -> None:
        """Free the model (called once no request is inside ``generate`` any more)."""


class GeneratorBackend:
    """What both backends do the same way: their generator encodes (one clip at a time), counts and segments."""

    generator = None
    _encode_lock: threading.Lock

    def encode(self, samples: np.ndarray) -> np.ndarray:
        with self._encode_lock:
            return self.generator.encode(samples)

    def count_text_tokens(self, text: str, speaker: int) -> int:
        return self.generator.count_text_tokens(text, speaker)

    def segment(self, text: str, speaker: int, codes: np.ndarray | None):
        return self.generator.segment(text, speaker, codes)


MLX_ADVICE = "install it with: pip install 'sesame-voice[csm]'"
NEEDS = {
    "mlx": ("mlx and mlx-audio", ("mlx", "mlx_audio"), MLX_ADVICE),
    "torch": ("torch and transformers", ("torch", "transformers"), TORCH_ADVICE),
}


def import_backend(name: str):
    """Backend ``name``'s module (importing torch or mlx), or ProviderUnavailable saying what to install."""
    what, packages, advice = NEEDS[name]
    for attempt in range(3):
        try:
            return importlib.import_module(MODULES[name])
        except ImportError as err:
            if not all(installed(package) for package in packages):
                raise ProviderUnavailable(f"the {name} CSM backend needs {what} ({err}); {advice}") from None
            if attempt == 2:
                raise ProviderUnavailable(
                    f"the {name} CSM backend cannot import {what} although they are "
                    f"installed ({type(err).__name__}: {err}); reinstall them: {advice}"
                ) from None
            time.sleep(0.5)  # transformers' lazy imports fail while another thread is importing it
    raise AssertionError("unreachable")


def load_backend(name: str, checkpoint, options, cache_dir: Path, progress) -> Backend:
    """Import backend ``name`` (its torch or mlx with it) and load ``checkpoint`` on it."""
    return import_backend(name).load(checkpoint, options, cache_dir, progress)


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def choose_backend(
    option: str, *, apple: bool | None = None, has_torch: bool | None = None, has_mlx: bool | None = None
) -> tuple[str, str]:
    """(backend, why) for the configured ``option``."""
    option = (option or "auto").strip().lower()
    if option in ("mlx", "torch"):
        return option, "set by plugins.csm.backend / CSM_BACKEND"
    apple = apple_silicon() if apple is None else apple
    has_torch = (installed("torch") and installed("transformers")) if has_torch is None else has_torch
    has_mlx = installed("mlx") if has_mlx is None else has_mlx
    if apple and has_mlx:
        return "mlx", "auto: Apple Silicon"
    if has_torch:
        return "torch", "auto: PyTorch is installed"
    return "mlx", "auto: PyTorch is not installed (pip install 'sesame-voice[torch]')"
