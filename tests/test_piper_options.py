"""The Piper plugin's own settings: ONNX Runtime's thread spinning, deterministic output."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from sesame_voice import ProviderJob, SynthesisRequest, Voice
from sesame_voice.config import ConfigError, load_settings


@pytest.mark.parametrize("raw, allowed", [(None, "0"), ("true", "1"), ("off", "0")])
def test_onnx_spinning_setting_reaches_the_session(tmp_path, raw, allowed):
    from sesame_voice_piper import PiperProvider, embedded_model

    env = {} if raw is None else {"PIPER_ONNX_SPINNING": raw}
    provider = PiperProvider(load_settings(env=env, dotenv_file=None, cache_dir=tmp_path))
    provider.ensure_loaded()
    path = str(embedded_model())
    split = provider._split(path)  # the encoder and vocoder that speak; the whole graph made on first use
    for session in (split.encoder, split.vocoder, provider._model(path).session.load()):
        options = session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == allowed
        assert options.get_session_config_entry("session.inter_op.allow_spinning") == allowed


def test_a_bad_piper_setting_names_itself():
    from sesame_voice_piper import PiperProvider

    with pytest.raises(ConfigError, match="PIPER_ONNX_SPINNING"):
        PiperProvider(load_settings(env={"PIPER_ONNX_SPINNING": "sometimes"}, dotenv_file=None))


SENTENCE = "Please turn on the kitchen lights at seven."


def _provider(cache_dir, env: dict[str, str]):
    from sesame_voice_piper import PiperProvider

    provider = PiperProvider(load_settings(env=env, dotenv_file=None, cache_dir=cache_dir))
    provider.ensure_loaded()
    return provider


def _speak(provider, **params) -> np.ndarray:
    """``SENTENCE`` in the bundled voice, with the voice parameters ``params``."""
    from sesame_voice_piper import EMBEDDED_VOICE, embedded_model

    job = ProviderJob(
        sentences=[SENTENCE],
        voice=Voice(name=EMBEDDED_VOICE, provider="piper"),
        params={"model": str(embedded_model()), **params},
        request=SynthesisRequest(text=SENTENCE),
    )
    return np.concatenate([chunk.samples for chunk in provider.synthesize(job)])


def test_deterministic_piper_says_the_same_text_with_the_same_samples(tmp_path):
    provider = _provider(tmp_path / "a", {"PIPER_DETERMINISTIC": "true"})
    first = _speak(provider)
    assert len(first) > 0
    assert np.array_equal(_speak(provider), first)
    assert np.array_equal(_speak(provider, noise_scale=0.9, noise_w_scale=0.9), first)  # the setting wins
    other = _provider(tmp_path / "b", {"PIPER_DETERMINISTIC": "on"})  # its own ONNX session
    assert np.array_equal(_speak(other), first)


def test_piper_samples_noise_unless_deterministic(tmp_path):
    """The randomness the setting removes is there by default (so the test above proves something)."""
    provider = _provider(tmp_path, {})
    assert not provider.options.deterministic
    first, second = _speak(provider), _speak(provider)
    assert first.shape != second.shape or not np.array_equal(first, second)


async def test_the_test_servers_piper_is_deterministic(openai_client):
    """The project's test settings turn the noise off (tests/conftest.py), through the whole server."""
    spoken = [
        await openai_client.audio.speech.create(model="tts-1", voice="joe", input=SENTENCE, response_format="wav")
        for _ in range(2)
    ]
    first, second = (sf.read(io.BytesIO(response.read()), dtype="float32")[0] for response in spoken)
    assert len(first) > 0 and np.array_equal(first, second)
