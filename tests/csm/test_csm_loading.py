"""Loading CSM: offline overrides, and for every missing, refused or broken part an error of its own class
whose advice fits its cause."""

from __future__ import annotations

import json
import shutil

import pytest

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice.config import ConfigError, Settings

from .csm_helpers import collect, load_without

MISSING_ADVICE = ("hf download sesame/csm-1b", "MODEL_ID")
ACCESS_ADVICE = ("hf auth login", "accepted the licence", "https://huggingface.co/sesame/csm-1b")
UNREADABLE_ADVICE = ("damaged or are not a CSM-1B checkpoint",)
LOGIN_WORDS = ("hf auth login", "licence")


def _provider(tmp_path, model_id, environ=None, **plugin):
    from sesame_voice_csm import CsmProvider

    settings = Settings(
        cache_dir=tmp_path / "cache",
        voices_dir=tmp_path,
        plugins={"csm": {"backend": "mlx", "model_id": str(model_id), **plugin}},
        environ=environ or {},
    )
    return CsmProvider(settings)


def _failure(provider, kind: type) -> str:
    with pytest.raises(ProviderUnavailable) as err:
        provider.ensure_loaded()
    cause = err.value.__cause__ or err.value  # the provider's own error, under the engine's ProviderUnavailable
    assert type(cause) is kind, f"{type(cause).__name__}: {err.value}"
    status = provider.status()
    assert status["state"] == "failed" and status["error"] == str(err.value)
    with pytest.raises(ProviderUnavailable):  # remembered: no retry per request
        provider.ensure_loaded()
    return str(err.value)


def test_empty_model_folder_is_missing_files_and_says_how_to_download(tmp_path, csm_checkpoint):
    from sesame_voice_csm.common.errors import WeightsMissing

    empty = tmp_path / "empty"
    empty.mkdir()
    message = _failure(_provider(tmp_path, empty, mimi=str(csm_checkpoint.mimi_file)), WeightsMissing)
    assert all(part in message for part in MISSING_ADVICE), message
    assert "config.json" in message and not any(word in message for word in LOGIN_WORDS), message


def test_gated_hub_model_is_access_denied_with_the_login_and_licence_advice(tmp_path, monkeypatch):
    """A hub on 127.0.0.1 that answers as huggingface.co does for a gated repo before the licence is accepted."""
    import http.server
    import threading

    import huggingface_hub.constants

    class Gated(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{"error": "Access to model sesame/csm-1b is restricted. You must have access to it."}'
            self.send_response(401)
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

        def log_message(self, *args):
            pass

    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gated)
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{hub.server_port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    from sesame_voice_csm.common.errors import AccessDenied

    try:
        message = _failure(_provider(tmp_path, "sesame/csm-1b"), AccessDenied)
    finally:
        hub.shutdown()
    assert all(part in message for part in ACCESS_ADVICE), message
    assert "GatedRepoError" in message and "damaged" not in message, message


def test_corrupt_weights_are_unreadable_and_not_a_login_problem(tmp_path, csm_checkpoint):
    from sesame_voice_csm.common.errors import WeightsUnreadable

    broken = tmp_path / "broken"
    shutil.copytree(csm_checkpoint.model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    message = _failure(_provider(tmp_path, broken, mimi=str(csm_checkpoint.mimi_file)), WeightsUnreadable)
    assert all(part in message for part in UNREADABLE_ADVICE), message
    assert not any(word in message for word in LOGIN_WORDS), message


def test_weights_of_another_shape_are_unreadable_and_name_the_shape_error(tmp_path, csm_checkpoint):
    from sesame_voice_csm.common.errors import WeightsUnreadable

    other = tmp_path / "other"
    shutil.copytree(csm_checkpoint.model_dir, other)
    config = json.loads((other / "config.json").read_text())
    config["hidden_size"] = 128
    (other / "config.json").write_text(json.dumps(config))
    message = _failure(_provider(tmp_path, other, mimi=str(csm_checkpoint.mimi_file)), WeightsUnreadable)
    assert "could not be loaded" in message and "shape" in message.lower(), message
    assert all(part in message for part in UNREADABLE_ADVICE) and not any(w in message for w in LOGIN_WORDS), message


def test_a_config_that_is_not_json_is_unreadable(tmp_path, csm_checkpoint):
    from sesame_voice_csm.common.errors import WeightsUnreadable

    other = tmp_path / "not-json"
    shutil.copytree(csm_checkpoint.model_dir, other)
    (other / "config.json").write_text("{ this is not json")
    message = _failure(_provider(tmp_path, other, mimi=str(csm_checkpoint.mimi_file)), WeightsUnreadable)
    assert "not valid JSON" in message and not any(word in message for word in LOGIN_WORDS), message


def test_missing_mimi_names_the_override(tmp_path, csm_checkpoint):
    from sesame_voice_csm.common.errors import WeightsMissing

    message = _failure(
        _provider(tmp_path, csm_checkpoint.model_dir, mimi=str(tmp_path / "nowhere.safetensors")), WeightsMissing
    )
    assert "CSM_MIMI" in message


def test_corrupt_mimi_is_reported(tmp_path, csm_checkpoint):
    bad = tmp_path / "mimi.safetensors"
    bad.write_bytes(b"junk" * 10)
    from sesame_voice_csm.common.errors import WeightsUnreadable

    message = _failure(_provider(tmp_path, csm_checkpoint.model_dir, mimi=str(bad)), WeightsUnreadable)
    assert "not a Mimi checkpoint" in message


def test_missing_tokenizer_names_the_override(tmp_path, csm_checkpoint, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(csm_checkpoint.model_dir / name, bare / name)
    from sesame_voice_csm.common.errors import WeightsMissing

    message = _failure(_provider(tmp_path, bare, mimi=str(csm_checkpoint.mimi_file)), WeightsMissing)
    assert "CSM_TOKENIZER" in message


def test_tokenizer_and_mimi_from_env_overrides(tmp_path, csm_checkpoint, monkeypatch, make_job):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(csm_checkpoint.model_dir / name, bare / name)
    environ = {
        "CSM_TOKENIZER": str(csm_checkpoint.model_dir),
        "CSM_MIMI": str(csm_checkpoint.mimi_file.parent),
    }  # a folder holding the file works too
    provider = _provider(tmp_path, bare, environ, frame_budget_base_ms=160, frame_budget_per_char_ms=0)
    provider.ensure_loaded()
    assert provider.status()["state"] == "ready"
    assert len(collect(provider, make_job(seed=1))) > 0


def test_load_reports_progress_and_ready_status(tmp_path, csm_checkpoint, caplog):
    provider = _provider(tmp_path, csm_checkpoint.model_dir, mimi=str(csm_checkpoint.mimi_file))
    caplog.set_level("INFO", logger="sesame_voice_csm")
    provider.ensure_loaded()
    assert "CSM: loading CSM weights" in caplog.text
    # progress cleared once ready; MLX here runs on the CPU (Metal on Apple Silicon)
    assert provider.status() == {"state": "ready", "loaded": True, "backend": "mlx", "device": "cpu"}


def test_download_progress_reaches_status(tmp_path):
    from sesame_voice_csm.common.download import progress_bar

    seen = []
    bar = progress_bar(seen.append, "CSM weights")(total=200_000_000, unit="B", unit_scale=True)
    bar.update(100_000_000)
    bar.close()
    assert any("downloading CSM weights: 100/200 MB (50%)" in message for message in seen), seen


def test_plugin_imports_without_mlx_and_load_gives_install_advice(tmp_path, csm_checkpoint):
    stdout = load_without(
        ["mlx", "mlx.core", "mlx_audio"],
        tmp_path,
        backend="mlx",
        model_id=csm_checkpoint.model_dir,
        mimi=str(csm_checkpoint.mimi_file),
    )
    assert "pip install 'sesame-voice[csm]'" in stdout


def test_unknown_plugin_setting_is_a_config_error(tmp_path):
    from sesame_voice_csm.common.options import CsmOptions

    with pytest.raises(ConfigError, match="unknown setting 'chunk_size'"):
        CsmOptions.from_settings(Settings(plugins={"csm": {"chunk_size": 3}}), env={})
    with pytest.raises(ConfigError, match="first_chunk_frames"):
        CsmOptions.from_settings(Settings(plugins={"csm": {"first_chunk_frames": 0}}), env={})
    options = CsmOptions.from_settings(Settings(plugins={"csm": {"chunk_frames": "4"}}), env={"CSM_MIMI": "/m"})
    assert options.chunk_frames == 4 and options.mimi == "/m"


def test_registered_through_the_hook():
    import sesame_voice_csm
    from sesame_voice.app.plugins import make_plugin_manager

    pm = make_plugin_manager(load_entry_points=False)
    pm.register(sesame_voice_csm, name="csm-test")
    registered = []
    pm.hook.register_providers(register=registered.append)
    assert [cls.name for cls in registered] == ["csm"]
