"""A CSM saved by the installed transformers itself (``save_pretrained``: ``rope_parameters``, no Sesame-only
keys), renamed to sesame/csm-1b's shard layout, loads and speaks on both backends, through ``MODEL_ID`` and
through the Hugging Face cache, and both backends pick the same greedy codes from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from csm.csm_helpers import collect, require

from sesame_voice.config import Settings

REPO = "someone/csm-finetune"
FRAME = 1920
OPTIONS = {"frame_budget_base_ms": 400, "frame_budget_per_char_ms": 0, "dtype": "float32"}


@pytest.fixture(scope="session")
def saved_checkpoint(tmp_path_factory) -> Path:
    from sesame_voice_csm.torch.testing import write_saved_checkpoint

    return write_saved_checkpoint(tmp_path_factory.mktemp("csm-saved") / "model")


@pytest.fixture(scope="session")
def real_mimi(tmp_path_factory) -> Path:
    """MLX reads Kyutai's full-size Mimi; the tiny checkpoint's codec is transformers' small test Mimi."""
    require("mlx.core", "mlx", "csm")
    from sesame_voice_csm.mlx.testing import MIMI_FILENAME, write_mimi

    return write_mimi(tmp_path_factory.mktemp("mimi") / MIMI_FILENAME)


def test_the_checkpoint_is_what_transformers_writes_today(saved_checkpoint):
    config = json.loads((saved_checkpoint / "config.json").read_text())
    assert "rope_parameters" in config and "rope_scaling" not in config
    assert "rope_parameters" in config["depth_decoder_config"]
    assert not {"audio_vocab_size", "audio_num_codebooks", "backbone_flavor"} & set(config)
    assert sorted(p.name for p in saved_checkpoint.glob("*.safetensors")) == [
        "transformers-00001-of-00002.safetensors",
        "transformers-00002-of-00002.safetensors",
    ]


def _settings(tmp_path: Path, backend: str, environ: dict, real_mimi: Path | None) -> Settings:
    plugin = {**OPTIONS, "backend": backend, **({"mimi": str(real_mimi)} if backend == "mlx" else {})}
    return Settings(cache_dir=tmp_path / "cache", voices_dir=tmp_path, plugins={"csm": plugin}, environ=environ)


@pytest.mark.parametrize("backend", ["mlx", "torch"])
@pytest.mark.parametrize("source", ["model_id_folder", "hf_cache"])
def test_loads_and_speaks_on_both_backends(saved_checkpoint, tmp_path, monkeypatch, make_job, backend, source, request):
    from sesame_voice_csm import CsmProvider

    mimi = request.getfixturevalue("real_mimi") if backend == "mlx" else None
    if source == "hf_cache":  # as `hf download someone/csm-finetune` left it, HF_HOME=tmp/hf, offline
        import huggingface_hub.constants

        from sesame_voice_csm.mlx.testing import write_hf_cache

        hub = tmp_path / "hf" / "hub"
        write_hf_cache(hub, REPO, saved_checkpoint)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        environ = {"MODEL_ID": REPO}
    else:
        environ = {"MODEL_ID": str(saved_checkpoint)}
    provider = CsmProvider(_settings(tmp_path, backend, environ, mimi))
    provider.ensure_loaded()
    try:
        assert provider.status()["state"] == "ready"
        assert provider.backend.name == backend
        assert provider.backend.hub_id == (REPO if source == "hf_cache" else None)
        audio = collect(provider, make_job(["Saved by transformers."], seed=1))
    finally:
        provider.close()
    assert len(audio) == 5 * FRAME and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_both_backends_pick_the_same_greedy_codes(saved_checkpoint, real_mimi, tmp_path, make_job):
    """The MLX side reads transformers 5's rope_parameters as transformers does: same backbone, same codes."""
    from sesame_voice_csm import CsmProvider

    codes = {}
    for backend in ("torch", "mlx"):
        provider = CsmProvider(_settings(tmp_path / backend, backend, {"MODEL_ID": str(saved_checkpoint)}, real_mimi))
        provider.ensure_loaded()
        try:
            job = make_job(["Both backends say this."], temperature=0, speaker=1)
            codes[backend] = np.concatenate([frame_codes for _, frame_codes in provider.start(job)], axis=1).T
        finally:
            provider.close()
    assert codes["torch"].shape == codes["mlx"].shape == (5, 32)
    np.testing.assert_array_equal(codes["torch"], codes["mlx"])
