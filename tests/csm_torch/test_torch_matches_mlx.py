"""Both backends load the same transformers-format checkpoint and pick the same greedy codes."""

from __future__ import annotations

import numpy as np
import pytest

from sesame_voice.config import Settings


def test_mlx_and_torch_pick_the_same_greedy_codes(hf_checkpoint, make_job, tmp_path):
    pytest.importorskip("mlx.core", reason="the MLX backend is not installed")
    pytest.importorskip("mlx_audio", reason="the MLX backend is not installed")
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.testing import MIMI_FILENAME, write_mimi

    mimi = write_mimi(tmp_path / "mimi" / MIMI_FILENAME)  # MLX reads Kyutai's Mimi file; codes do not depend on it
    options = {"frame_budget_base_ms": 800, "frame_budget_per_char_ms": 0, "dtype": "float32"}

    def provider(backend: str) -> CsmProvider:
        settings = Settings(model_id=str(hf_checkpoint), cache_dir=tmp_path / backend, voices_dir=tmp_path,
                            plugins={"csm": {**options, "backend": backend, "mimi": str(mimi)}})
        loaded = CsmProvider(settings)
        loaded.ensure_loaded()
        return loaded

    job = make_job(["Both backends say this."], temperature=0, speaker=1)
    torch_side = provider("torch")
    torch_codes: list = []
    list(torch_side.generator.run(torch_side.plan(job), None, torch_codes))
    torch_side.close()

    mlx_side = provider("mlx")
    assert (tmp_path / "mlx" / "csm" / "converted").is_dir()  # MLX went through checkpoint.py's conversion
    mlx_codes: list = []
    step = mlx_side.generator.step

    def recording(*args):
        sample = step(*args)
        mlx_codes.append(np.array(sample)[0])
        return sample

    mlx_side.generator.step = recording
    list(mlx_side.generator.run(mlx_side.plan(job)))
    torch_codes, mlx_codes = np.array(torch_codes), np.array(mlx_codes)
    assert len(torch_codes) == len(mlx_codes) == 10
    np.testing.assert_array_equal(torch_codes[:, 0], mlx_codes[:, 0])  # codebook 0, from the backbone
    np.testing.assert_array_equal(torch_codes, mlx_codes)  # and the depth decoder's 31 others
