"""Both backends load the same transformers-format checkpoint and pick the same greedy codes."""

from __future__ import annotations

import numpy as np
from csm.csm_helpers import require

from sesame_voice.config import Settings


def test_mlx_and_torch_pick_the_same_greedy_codes(hf_checkpoint, make_job, tmp_path):
    require("mlx.core", "mlx", "csm")
    require("mlx_audio", "mlx-audio", "csm")
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.mlx.testing import MIMI_FILENAME, write_mimi

    mimi = write_mimi(tmp_path / "mimi" / MIMI_FILENAME)  # MLX reads Kyutai's Mimi file; codes do not depend on it
    options = {"frame_budget_base_ms": 800, "frame_budget_per_char_ms": 0, "dtype": "float32"}

    def provider(backend: str) -> CsmProvider:
        settings = Settings(
            cache_dir=tmp_path / backend,
            voices_dir=tmp_path,
            plugins={"csm": {**options, "model_id": str(hf_checkpoint), "backend": backend, "mimi": str(mimi)}},
        )
        loaded = CsmProvider(settings)
        loaded.ensure_loaded()
        return loaded

    job = make_job(["Both backends say this."], temperature=0, speaker=1)
    torch_side = provider("torch")
    torch_codes = np.concatenate([codes for _, codes in torch_side.start(job)], axis=1).T
    torch_side.close()

    mlx_side = provider("mlx")
    assert (tmp_path / "mlx" / "csm" / "converted").is_dir()  # MLX went through checkpoint.py's conversion
    mlx_codes: list = []
    step = mlx_side.backend.generator.step

    def recording(*args):
        sample = step(*args)
        mlx_codes.append(np.array(sample)[0])
        return sample

    mlx_side.backend.generator.step = recording
    job = make_job(["Both backends say this."], temperature=0, speaker=1)  # the torch run ended (cancelled) the first
    list(mlx_side.start(job))
    torch_codes, mlx_codes = np.array(torch_codes), np.array(mlx_codes)
    assert len(torch_codes) == len(mlx_codes) == 10
    np.testing.assert_array_equal(torch_codes[:, 0], mlx_codes[:, 0])  # codebook 0, from the backbone
    np.testing.assert_array_equal(torch_codes, mlx_codes)  # and the depth decoder's 31 others
