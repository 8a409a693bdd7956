"""Which engine runs CSM: MLX (Apple Silicon, or its CPU build) or PyTorch (CUDA, or the CPU on Linux).

``plugins.csm.backend`` / ``CSM_BACKEND`` is ``auto`` (default), ``mlx`` or ``torch``. ``auto`` picks
MLX on Apple Silicon and PyTorch elsewhere when torch and transformers are installed, else MLX.
Only installed packages are looked up; nothing heavy is imported here.
"""

from __future__ import annotations

import importlib.util
import platform
import sys

BACKENDS = ("auto", "mlx", "torch")
TORCH_ADVICE = "install it with: pip install 'sesame-voice[torch]' (see docs/csm.md for a CPU-only or CUDA torch)"


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def apple_silicon() -> bool:
    return sys.platform == "darwin" and platform.machine() == "arm64"


def choose_backend(option: str, *, apple: bool | None = None, has_torch: bool | None = None,
                   has_mlx: bool | None = None) -> tuple[str, str]:
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
