"""Which backend the csm provider picks, and the settings that steer it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sesame_voice.config import ConfigError, Settings
from sesame_voice_csm.backend import choose_backend
from sesame_voice_csm.options import CsmOptions


@pytest.mark.parametrize("apple, has_torch, has_mlx, expected", [
    (True, True, True, "mlx"),     # Apple Silicon: MLX is native
    (True, True, False, "torch"),
    (False, True, True, "torch"),  # Linux with torch installed: PyTorch (CUDA when present, else CPU)
    (False, False, True, "mlx"),   # no torch: MLX's CPU build
])
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
    pytest.importorskip("mlx.core")
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.testing import write_checkpoint

    model_dir, mimi = write_checkpoint(tmp_path / "original", size="tiny")
    provider = CsmProvider(Settings(model_id=str(model_dir), cache_dir=tmp_path / "cache", voices_dir=tmp_path,
                                    plugins={"csm": {"mimi": str(mimi)}}))
    assert provider.backend == "torch"  # auto on Linux with torch installed
    caplog.set_level("INFO", logger="sesame_voice_csm")
    provider.ensure_loaded()
    assert provider.status()["backend"] == "mlx"
    assert "original layout" in caplog.text
    provider.close()


def test_original_layout_with_torch_forced_says_how_to_fix(tmp_path):
    pytest.importorskip("mlx.core")  # the original-layout writer uses mlx
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.testing import write_checkpoint

    model_dir, _ = write_checkpoint(tmp_path / "original", size="tiny")
    provider = CsmProvider(Settings(model_id=str(model_dir), cache_dir=tmp_path / "cache", voices_dir=tmp_path,
                                    plugins={"csm": {"backend": "torch"}}))
    provider.reset_failure()
    with pytest.raises(Exception, match="CSM_BACKEND=mlx"):
        provider.ensure_loaded()
    assert provider.status()["state"] == "failed"


def test_torch_backend_without_torch_gives_install_advice(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from sesame_voice.config import Settings\n"
        "from sesame_voice.types import ProviderUnavailable\n"
        "import sesame_voice_csm\n"
        f"p = sesame_voice_csm.CsmProvider(Settings(cache_dir={str(tmp_path)!r}, plugins={{'csm': {{'backend': 'torch'}}}}))\n"
        "try:\n"
        "    p.ensure_loaded()\n"
        "except ProviderUnavailable as err:\n"
        "    print('UNAVAILABLE', err)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "UNAVAILABLE" in result.stdout, result.stderr
    assert "pip install 'sesame-voice[torch]'" in result.stdout
