"""Fixtures for the PyTorch CSM backend: a tiny random CSM in transformers' format, and a provider on it.

The checkpoint is written by ``CsmForConditionalGeneration.save_pretrained`` (Mimi codec inside) and
loaded through ``MODEL_ID=folder`` exactly like ``sesame/csm-1b``. Runs on PyTorch's CPU build.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from csm.csm_helpers import FAST_BUDGET, job, require

from sesame_voice.config import Settings

require("torch", "torch", "torch")
require("transformers", "transformers", "torch")


@pytest.fixture(scope="session")
def hf_checkpoint(tmp_path_factory) -> Path:
    """Tiny transformers-format CSM (2-layer backbone and decoder, 32-codebook Mimi) with random weights."""
    from sesame_voice_csm.torch.testing import write_transformers_checkpoint

    return write_transformers_checkpoint(tmp_path_factory.mktemp("csm-hf") / "model", size="tiny")


@pytest.fixture(scope="session")
def torch_plugin_config() -> dict[str, Any]:
    return {
        "backend": "torch",
        "dtype": "float32",
        "first_chunk_frames": 2,
        "chunk_frames": 3,
        "max_batch": 4,
        **FAST_BUDGET,
    }


@pytest.fixture(scope="session")
def torch_settings(hf_checkpoint, torch_plugin_config, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("csm-torch-run")
    (root / "voices").mkdir()
    return Settings(
        cache_dir=root / "cache",
        voices_dir=root / "voices",
        plugins={"csm": {"model_id": str(hf_checkpoint), **torch_plugin_config}},
    )


@pytest.fixture(scope="session")
def torch_provider(torch_settings):
    """One loaded torch-backend provider shared by the tests."""
    from sesame_voice_csm import CsmProvider

    provider = CsmProvider(torch_settings)
    provider.ensure_loaded()
    yield provider
    provider.close()


@pytest.fixture
def make_job():
    """``make_job(sentences, **params, context=[...], max_ms=None)``."""
    return job
