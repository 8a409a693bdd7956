"""CSM on PyTorch (transformers) behind the plugin's :class:`~sesame_voice_csm.common.backend.Backend` interface.

Up to ``max_batch`` requests generate at once (``concurrency``): they join one batching loop.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sesame_voice_csm.common.backend import GeneratorBackend
from sesame_voice_csm.common.locate import Checkpoint
from sesame_voice_csm.common.plan import Plan, Stats
from sesame_voice_csm.torch.batching import TorchGenerator
from sesame_voice_csm.torch.loading import LoadedTorchCsm, load_torch_generator


class TorchGeneration:
    """One request's chunks and its own :class:`Stats`."""

    def __init__(self, generator: TorchGenerator, plan: Plan, cancelled: threading.Event) -> None:
        self.stats = Stats()
        # The batch indexes a request's groups, so a streamed answer's text is awaited whole here.
        plan.groups, plan.later_groups = [*plan.groups, *plan.later_groups], ()
        self._chunks = generator.run(plan, cancelled, self.stats)

    def __iter__(self):
        return self._chunks


class TorchBackend(GeneratorBackend):
    """A loaded CSM on PyTorch, batching concurrent requests."""

    name = "torch"

    def __init__(self, generator: TorchGenerator, loaded: LoadedTorchCsm, max_batch: int) -> None:
        self.generator = generator
        self.loaded = loaded
        self.concurrency = max_batch
        self.model_dir: Path = loaded.model_dir
        self.hub_id = loaded.hub_id
        self.codec_tag = loaded.codec_tag
        self.watermarks = generator.watermarks
        self.device = f"{loaded.device}, {loaded.dtype}"
        self._encode_lock = threading.Lock()

    def generate(self, plan: Plan, cancelled: threading.Event) -> TorchGeneration:
        return TorchGeneration(self.generator, plan, cancelled)

    def close(self) -> None:
        """Stop the batching loop and drop the model."""
        if self.generator is not None:
            self.generator.close()
        self.generator = self.loaded = None


def load(checkpoint: Checkpoint, options, cache_dir: Path, progress) -> TorchBackend:
    """Build ``checkpoint`` (transformers format) on PyTorch with the plugin's ``options``."""
    generator, loaded = load_torch_generator(checkpoint, options, progress)
    return TorchBackend(generator, loaded, options.max_batch)
