"""The CSM plugin's own settings: the ``plugins: csm:`` table of the config file, plus a few env vars."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sesame_voice.config import ConfigError
from sesame_voice_csm.common.backend import BACKENDS

DEFAULT_MODEL_ID = "sesame/csm-1b"
ENV_OVERRIDES = {
    "model_id": "MODEL_ID",
    "tokenizer": "CSM_TOKENIZER",
    "mimi": "CSM_MIMI",
    "backend": "CSM_BACKEND",
    "device": "CSM_DEVICE",
    "dtype": "CSM_DTYPE",
    "max_batch": "CSM_MAX_BATCH",
}


@dataclass(frozen=True)
class CsmOptions:
    """Tuning and offline overrides of the CSM provider."""

    model_id: str = DEFAULT_MODEL_ID
    """CSM weights: a hub id (downloaded into the Hugging Face cache) or a local folder (env MODEL_ID)."""
    tokenizer: str | None = None
    """Llama 3 tokenizer: local folder or hub id (default: the model folder's own, else unsloth/Llama-3.2-1B)."""
    mimi: str | None = None
    """Mimi codec: a .safetensors file, a folder holding it, or a hub id (default kyutai/moshiko-pytorch-bf16)."""
    first_chunk_frames: int = 2
    """80 ms frames generated before the first chunk leaves (lower = earlier first audio)."""
    chunk_frames: int = 6
    """Frames per later chunk."""
    max_prompt_seconds: float = 30.0
    """Longest voice prompt clip accepted."""
    frame_budget_base_ms: int = 1500
    frame_budget_per_char_ms: int = 110
    """Per-group audio budget = base + per_char × characters (stops runaway silence without EOS)."""
    watermark: bool = True
    """Apply CSM's audio watermark when ``silentcipher`` is installed."""
    quantize_bits: int | None = None
    """Quantise backbone and decoder weights to 4 or 8 bits after loading (faster, slightly lower quality)."""
    compile: bool = False
    """Compile the per-codebook decoder step with ``mx.compile``."""
    prefix_cache_size: int = 8
    """Voice prompts whose backbone KV cache stays in memory."""
    backend: str = "auto"
    """auto | mlx | torch (see backend.py; auto = MLX on Apple Silicon, else PyTorch when installed)."""
    device: str | None = None
    """PyTorch device: cuda, cuda:1, cpu (default: cuda when available)."""
    dtype: str | None = None
    """PyTorch weights: bfloat16 or float32 (default: bfloat16 on CUDA and on CPUs with native bf16, else float32)."""
    max_batch: int = 8
    """PyTorch: most requests generated together in one batch (continuous batching)."""

    @classmethod
    def from_settings(cls, settings, env: Mapping[str, str] | None = None) -> "CsmOptions":
        """Options from ``settings.plugin_config('csm')`` with the env overrides of ``ENV_OVERRIDES``."""
        options = settings.plugin_settings("csm", cls, ENV_OVERRIDES, environ=env)
        if not str(options.model_id).strip():
            raise ConfigError("plugins.csm: model_id (MODEL_ID) must name a hub repository or a folder")
        if options.first_chunk_frames < 1 or options.chunk_frames < 1:
            raise ConfigError("plugins.csm: first_chunk_frames and chunk_frames must be at least 1")
        if options.backend not in BACKENDS:
            raise ConfigError(f"plugins.csm: backend must be auto, mlx or torch, got {options.backend!r}")
        if not 1 <= options.max_batch <= 64:
            raise ConfigError(f"plugins.csm: max_batch must be between 1 and 64, got {options.max_batch}")
        if options.quantize_bits not in (None, 4, 8):
            raise ConfigError(f"plugins.csm: quantize_bits must be 4 or 8, got {options.quantize_bits}")
        return options
