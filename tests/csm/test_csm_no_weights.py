"""Without CSM weights neither torch nor MLX is imported (the idle server stays small), and the log says so
once; a load that fails after importing drops what it built."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice.config import Settings

HEAVY = ("torch", "transformers", "mlx", "mlx.core", "mlx_audio")
NOTICE = "neither torch nor MLX was imported"


def _load_in_a_fresh_interpreter(tmp_path, plugin: dict, env: dict) -> dict:
    code = (
        "import json, logging, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stderr)\n"
        "from sesame_voice.config import Settings\n"
        "from sesame_voice import ProviderUnavailable\n"
        "import sesame_voice_csm\n"
        f"p = sesame_voice_csm.CsmProvider(Settings(cache_dir={str(tmp_path / 'cache')!r}, "
        f"plugins={{'csm': {plugin!r}}}))\n"
        "error = None\n"
        "for _ in range(2):  # a second use of the failed provider does not try again\n"
        "    try:\n"
        "        p.ensure_loaded()\n"
        "    except ProviderUnavailable as err:\n"
        "        error = error or type(err.__cause__ or err).__name__\n"
        f"print(json.dumps({{'error': error, 'imported': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    clean = {key: value for key, value in os.environ.items() if not key.startswith(("HF_", "CSM_", "MODEL_ID"))}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**clean, **env}
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    answer["log"] = result.stderr
    return answer


@pytest.mark.parametrize("backend", ["auto", "mlx", "torch"])
def test_an_empty_model_folder_imports_no_backend(tmp_path, backend):
    empty = tmp_path / "empty"
    empty.mkdir()
    answer = _load_in_a_fresh_interpreter(tmp_path, {"model_id": str(empty), "backend": backend}, {})
    assert answer["error"] == "WeightsMissing" and answer["imported"] == [], answer
    assert answer["log"].count(NOTICE) == 1, answer["log"]


def test_a_hub_id_missing_from_an_offline_cache_imports_no_backend(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    answer = _load_in_a_fresh_interpreter(tmp_path, {"model_id": "sesame/csm-1b"}, env)
    assert answer["error"] == "WeightsMissing" and answer["imported"] == [], answer
    assert answer["log"].count(NOTICE) == 1, answer["log"]


def test_a_failed_load_keeps_nothing_it_built(tmp_path, csm_checkpoint):
    import shutil
    import weakref

    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.mlx import loading

    broken = tmp_path / "broken"
    shutil.copytree(csm_checkpoint.model_dir, broken)
    config = json.loads((broken / "config.json").read_text())
    config["hidden_size"] = 128  # the weights no longer fit: fails after tokenizer and Mimi were built
    (broken / "config.json").write_text(json.dumps(config))
    built = []
    load_mimi = loading.load_mimi

    def recording(path):
        codec = load_mimi(path)
        built.append(weakref.ref(codec))
        return codec

    provider = CsmProvider(
        Settings(
            cache_dir=tmp_path / "cache",
            voices_dir=tmp_path,
            plugins={"csm": {"model_id": str(broken), "mimi": str(csm_checkpoint.mimi_file), "backend": "mlx"}},
        )
    )
    loading.load_mimi = recording
    try:
        with pytest.raises(ProviderUnavailable):
            provider.ensure_loaded()
    finally:
        loading.load_mimi = load_mimi
    assert len(built) == 1 and built[0]() is None  # the codec it had loaded is gone
    assert provider.backend is None and provider.prompts is None


def test_model_id_comes_from_the_plugin_table_or_the_model_id_environment_name():
    from sesame_voice_csm.common.options import CsmOptions

    assert CsmOptions.from_settings(Settings(), env={}).model_id == "sesame/csm-1b"
    table = Settings(plugins={"csm": {"model_id": "/models/csm"}})
    assert CsmOptions.from_settings(table, env={}).model_id == "/models/csm"
    assert CsmOptions.from_settings(table, env={"MODEL_ID": "me/csm"}).model_id == "me/csm"
    from sesame_voice_csm.common.options import ENV_OVERRIDES

    assert ENV_OVERRIDES["model_id"] == "MODEL_ID"  # passed on by `sesame-voice service install`
