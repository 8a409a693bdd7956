"""Which backend the csm provider picks, and the settings that steer it."""

from __future__ import annotations

import pytest
from csm.csm_helpers import load_without, require

from sesame_voice.config import ConfigError, Settings
from sesame_voice_csm.common.backend import choose_backend
from sesame_voice_csm.common.options import CsmOptions


@pytest.mark.parametrize(
    "apple, has_torch, has_mlx, expected",
    [
        (True, True, True, "mlx"),  # Apple Silicon: MLX is native
        (True, True, False, "torch"),
        (False, True, True, "torch"),  # Linux with torch installed: PyTorch (CUDA when present, else CPU)
        (False, False, True, "mlx"),  # no torch: MLX's CPU build
    ],
)
def test_auto_backend(apple, has_torch, has_mlx, expected):
    backend, why = choose_backend("auto", apple=apple, has_torch=has_torch, has_mlx=has_mlx)
    assert backend == expected and why.startswith("auto")


def test_explicit_backend_wins_over_the_platform():
    assert choose_backend("mlx", apple=False, has_torch=True, has_mlx=True)[0] == "mlx"
    assert choose_backend("torch", apple=True, has_torch=True, has_mlx=True)[0] == "torch"


def test_backend_comes_from_the_plugin_table_or_csm_backend_env():
    settings = Settings(plugins={"csm": {"backend": "mlx", "max_batch": 3}})
    assert CsmOptions.from_settings(settings, env={}).backend == "mlx"
    assert CsmOptions.from_settings(settings, env={"CSM_BACKEND": "torch"}).backend == "torch"
    assert CsmOptions.from_settings(settings, env={"CSM_MAX_BATCH": "5"}).max_batch == 5
    with pytest.raises(ConfigError, match="backend"):
        CsmOptions.from_settings(Settings(plugins={"csm": {"backend": "tpu"}}), env={})
    with pytest.raises(ConfigError, match="max_batch"):
        CsmOptions.from_settings(Settings(plugins={"csm": {"max_batch": 0}}), env={})


def test_original_layout_weights_fall_back_to_mlx_under_auto(tmp_path, caplog):
    require("mlx.core", "mlx", "csm")
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.mlx.testing import write_checkpoint

    model_dir, mimi = write_checkpoint(tmp_path / "original", size="tiny")
    provider = CsmProvider(
        Settings(
            cache_dir=tmp_path / "cache",
            voices_dir=tmp_path,
            plugins={"csm": {"model_id": str(model_dir), "mimi": str(mimi)}},
        )
    )
    assert provider.backend_name == "torch" and provider.concurrency == 8  # auto on Linux with torch installed
    caplog.set_level("INFO", logger="sesame_voice_csm")
    provider.ensure_loaded()
    assert provider.status()["backend"] == "mlx"
    assert "original layout" in caplog.text
    provider.close()


def test_original_layout_with_torch_forced_says_how_to_fix(tmp_path):
    require("mlx.core", "mlx", "csm")  # the original-layout writer uses mlx
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.mlx.testing import write_checkpoint

    model_dir, _ = write_checkpoint(tmp_path / "original", size="tiny")
    provider = CsmProvider(
        Settings(
            cache_dir=tmp_path / "cache",
            voices_dir=tmp_path,
            plugins={"csm": {"model_id": str(model_dir), "backend": "torch"}},
        )
    )
    with pytest.raises(Exception, match="CSM_BACKEND=mlx"):
        provider.ensure_loaded()
    assert provider.status()["state"] == "failed"


def test_torch_backend_without_torch_gives_install_advice(tmp_path, hf_checkpoint):
    stdout = load_without(["torch", "transformers"], tmp_path, backend="torch", model_id=hf_checkpoint)
    assert "pip install 'sesame-voice[torch]'" in stdout


def test_dtype_and_device_choice():
    import torch

    from sesame_voice.api.errors import ProviderUnavailable
    from sesame_voice_csm.torch.model import cpu_has_bf16, pick_device, pick_dtype

    cpu = torch.device("cpu")
    assert pick_dtype("float32", cpu) == torch.float32 and pick_dtype("bf16", cpu) == torch.bfloat16
    assert pick_dtype(None, torch.device("cuda")) == torch.bfloat16
    assert pick_dtype(None, cpu) == (torch.bfloat16 if cpu_has_bf16() else torch.float32)
    with pytest.raises(ProviderUnavailable, match="float32, bfloat16"):
        pick_dtype("int3", cpu)
    assert pick_device("cpu") == cpu
    if not torch.cuda.is_available():
        assert pick_device(None) == cpu
        with pytest.raises(ProviderUnavailable, match="no CUDA GPU"):
            pick_device("cuda")
