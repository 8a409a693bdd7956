"""CSM on MLX (mlx-audio) behind the plugin's :class:`~sesame_voice_csm.common.backend.Backend` interface.

One request generates at a time (``concurrency`` 1): the model keeps one KV cache and one Mimi stream.
"""

from __future__ import annotations

import threading
from pathlib import Path

import mlx.core as mx

from sesame_voice_csm.common.backend import GeneratorBackend
from sesame_voice_csm.common.locate import Checkpoint
from sesame_voice_csm.common.plan import Plan, Stats
from sesame_voice_csm.mlx.generation import Generator
from sesame_voice_csm.mlx.loading import LoadedCsm, load_csm


class MlxGeneration:
    """One request's chunks and its own :class:`Stats`."""

    def __init__(self, generator: Generator, plan: Plan, cancelled: threading.Event) -> None:
        self.stats = Stats()
        self._chunks = generator.run(plan, cancelled, self.stats)

    def __iter__(self):
        return self._chunks


class MlxBackend(GeneratorBackend):
    """A loaded CSM on MLX."""

    name = "mlx"
    concurrency = 1

    def __init__(self, loaded: LoadedCsm, generator: Generator, watermark: bool) -> None:
        self.loaded = loaded
        self.generator = generator
        self.model_dir: Path = loaded.model_dir
        self.hub_id = loaded.hub_id
        self.codec_tag = loaded.codec_tag
        self.watermarks = watermark and loaded.model.watermarker is not None
        self.device = "metal" if mx.default_device() == mx.gpu else "cpu"
        self._encode_lock = threading.Lock()

    def generate(self, plan: Plan, cancelled: threading.Event) -> MlxGeneration:
        return MlxGeneration(self.generator, plan, cancelled)

    def close(self) -> None:
        self.loaded = self.generator = None


def load(checkpoint: Checkpoint, options, cache_dir: Path, progress) -> MlxBackend:
    """Build ``checkpoint`` on MLX with the plugin's ``options``."""
    loaded = load_csm(checkpoint, cache_dir, options.mimi, progress, quantize_bits=options.quantize_bits)
    generator = Generator(
        loaded.model, prefix_cache_size=options.prefix_cache_size, watermark=options.watermark, compiled=options.compile
    )
    return MlxBackend(loaded, generator, options.watermark)
