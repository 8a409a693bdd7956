"""Fixtures for the CSM provider: a tiny random CSM checkpoint written once per session, and a loaded provider.

``csm_checkpoint`` (model folder + Mimi file) and ``csm_plugin_config`` are meant for reuse by
server tests:
``start_server(plugin_settings={"csm": {"model_id": str(csm_checkpoint.model_dir), **csm_plugin_config}})``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sesame_voice.api.types import ProviderJob
from sesame_voice.config import Settings

from .csm_helpers import FAST_BUDGET, job, require

require("mlx.core", "mlx", "csm")
require("mlx_audio", "mlx-audio", "csm")


@dataclass(frozen=True)
class CsmCheckpoint:
    """A random-weight CSM in the real on-disk formats."""

    model_dir: Path
    mimi_file: Path


@pytest.fixture(scope="session")
def csm_checkpoint(tmp_path_factory) -> CsmCheckpoint:
    """Tiny CSM (2-layer backbone and decoder, real 32-codebook Mimi) with random weights."""
    from sesame_voice_csm.mlx.testing import write_checkpoint

    model_dir, mimi_file = write_checkpoint(tmp_path_factory.mktemp("csm-tiny"), size="tiny")
    return CsmCheckpoint(model_dir, mimi_file)


@pytest.fixture(scope="session")
def csm_plugin_config(csm_checkpoint) -> dict[str, Any]:
    """``plugins.csm`` settings pointing at the tiny checkpoint's Mimi, with short frame budgets."""
    return {
        "mimi": str(csm_checkpoint.mimi_file),
        "first_chunk_frames": 2,
        "chunk_frames": 3,
        "backend": "mlx",
        **FAST_BUDGET,
    }


@pytest.fixture(scope="session")
def csm_settings(csm_checkpoint, csm_plugin_config, tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("csm-run")
    (root / "voices").mkdir()
    return Settings(
        cache_dir=root / "cache",
        voices_dir=root / "voices",
        plugins={"csm": {"model_id": str(csm_checkpoint.model_dir), **csm_plugin_config}},
    )


@pytest.fixture(scope="session")
def csm_provider(csm_settings):
    """One loaded provider shared by the tests (loading costs a few seconds)."""
    from sesame_voice_csm import CsmProvider

    provider = CsmProvider(csm_settings)
    provider.ensure_loaded()
    yield provider
    provider.close()


@pytest.fixture
def make_job() -> Callable[..., ProviderJob]:
    """``make_job(sentences, **params, context=[...], max_ms=None)``."""
    return job
