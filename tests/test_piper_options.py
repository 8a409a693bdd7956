"""The Piper plugin's own settings reach its ONNX Runtime session."""

from __future__ import annotations

import pytest

from sesame_voice.config import ConfigError, load_settings


@pytest.mark.parametrize("raw, allowed", [(None, "0"), ("true", "1"), ("off", "0")])
def test_onnx_spinning_setting_reaches_the_session(tmp_path, raw, allowed):
    from sesame_voice_piper import PiperProvider, embedded_model

    env = {} if raw is None else {"PIPER_ONNX_SPINNING": raw}
    provider = PiperProvider(load_settings(env=env, dotenv_file=None, cache_dir=tmp_path))
    provider.ensure_loaded()
    session = provider._model(str(embedded_model())).session
    options = session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == allowed
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == allowed


def test_a_bad_piper_setting_names_itself():
    from sesame_voice_piper import PiperProvider

    with pytest.raises(ConfigError, match="PIPER_ONNX_SPINNING"):
        PiperProvider(load_settings(env={"PIPER_ONNX_SPINNING": "sometimes"}, dotenv_file=None))
