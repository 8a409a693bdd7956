"""Pure parts of the CSM plugin: window planning, the fast transposed convolution, compiled frame step."""

from __future__ import annotations

import numpy as np
import pytest

from sesame_voice.api.errors import InvalidRequest
from sesame_voice_csm.common.window import WINDOW, finish_sentence, frame_budget, plan_groups


def _words(text: str) -> int:
    return len(text.split()) + 3


def test_frame_budget_grows_with_text_and_respects_the_cap():
    assert frame_budget("Hi.", 1500, 110, 10_000) == 23
    assert frame_budget("x" * 100, 1500, 110, 10_000) > frame_budget("x" * 10, 1500, 110, 10_000)
    assert frame_budget("x" * 1000, 1500, 110, 50) == 50


def test_sentences_end_with_punctuation_so_the_last_word_is_spoken():
    assert finish_sentence("and then") == "and then."
    assert finish_sentence("Really?") == "Really?"


def test_plan_groups_keeps_sentences_whole_and_within_half_the_free_room():
    sentences = [f"Sentence {i} has several words in it." for i in range(50)]
    budget = lambda text: frame_budget(text, 1000, 80, 1125)  # noqa: E731
    groups = plan_groups(sentences, _words, fixed_positions=300, budget=budget)
    room = (WINDOW - 300) // 2
    assert len(groups) > 1
    assert all(_words(g.text) + g.max_frames + 2 <= room for g in groups)
    assert " ".join(g.text for g in groups) == " ".join(sentences)


def test_a_sentence_longer_than_the_room_is_split_at_words():
    sentence = " ".join(["word"] * 1200) + "."
    groups = plan_groups([sentence], _words, fixed_positions=0, budget=lambda text: len(text) // 8)
    assert len(groups) > 1
    assert " ".join(g.text for g in groups).split() == sentence.split()


def test_no_room_left_is_an_invalid_request():
    with pytest.raises(InvalidRequest, match="shorter prompt clip"):
        plan_groups(["Hi."], _words, fixed_positions=2000, budget=lambda text: 5)


def test_overlap_add_equals_mlx_conv_transpose():
    import mlx.core as mx

    from sesame_voice_csm.mlx.speedups import OverlapAdd

    for steps, cin, cout, kernel, stride, groups in [(2, 64, 32, 16, 8, 1), (7, 16, 8, 7, 3, 1), (3, 24, 24, 4, 2, 24)]:
        x = mx.random.normal((1, steps, cin))
        w = mx.random.normal((cout, kernel, cin // groups))
        expected = mx.conv_transpose1d(x, w, stride=stride, groups=groups)
        np.testing.assert_allclose(np.array(OverlapAdd(w, stride, groups)(x)), np.array(expected), atol=1e-4)


def test_fast_mimi_decodes_like_stock_mimi(csm_checkpoint):
    import mlx.core as mx
    from mlx_audio.codec.models.mimi.mimi import MimiStreamingDecoder

    from sesame_voice_csm.mlx.loading import load_mimi
    from sesame_voice_csm.mlx.speedups import install_fast_convtr

    stock, fast = load_mimi(csm_checkpoint.mimi_file), load_mimi(csm_checkpoint.mimi_file)
    assert (
        install_fast_convtr(fast) == 5
    )  # 4 decoder upsamplers + the codec-rate upsampler: none left on mlx-audio's path
    codes = mx.array(np.random.default_rng(0).integers(0, 2048, (1, 32, 3)).astype(np.uint32))
    a = np.array(MimiStreamingDecoder(stock).decode_frames(codes))
    b = np.array(MimiStreamingDecoder(fast).decode_frames(codes))
    scale = float(np.abs(a).max())
    np.testing.assert_allclose(b, a, atol=1e-3 * scale)


def test_compiled_frame_step_runs_and_is_repeatable(csm_checkpoint, tmp_path, make_job):
    from sesame_voice.config import Settings
    from sesame_voice_csm import CsmProvider

    from .csm_helpers import collect

    settings = Settings(
        cache_dir=tmp_path,
        voices_dir=tmp_path,
        plugins={
            "csm": {
                "model_id": str(csm_checkpoint.model_dir),
                "mimi": str(csm_checkpoint.mimi_file),
                "compile": True,
                "frame_budget_base_ms": 240,
                "frame_budget_per_char_ms": 0,
            }
        },
    )
    provider = CsmProvider(settings)
    provider.ensure_loaded()
    first = collect(provider, make_job(seed=5))
    second = collect(provider, make_job(seed=5))
    assert len(first) == 3 * 1920
    np.testing.assert_array_equal(first, second)


def _union_config() -> dict:
    from sesame_voice_csm.mlx.testing import model_config

    return model_config("tiny")


def test_mlx_config_reads_rope_parameters_as_rope_scaling_and_theta():
    from sesame_voice_csm.mlx.config import mlx_config

    config = _union_config()
    rope = {
        "rope_type": "llama3",
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    for part in (config, config["depth_decoder_config"]):
        part.pop("rope_scaling"), part.pop("rope_theta")
        part["rope_parameters"] = {**rope, "rope_theta": 250_000.0}
    for key in ("audio_vocab_size", "audio_num_codebooks", "backbone_flavor", "decoder_flavor"):
        config.pop(key)
    read = mlx_config(config)
    for part in (read, read["depth_decoder_config"]):
        assert part["rope_theta"] == 250_000.0 and part["rope_scaling"] == rope and "rope_parameters" not in part
    assert (read["audio_vocab_size"], read["audio_num_codebooks"]) == (2051, 32)
    assert "rope_parameters" in config  # the caller's dict is left as it was


def test_mlx_config_keeps_the_transformers_4_spelling_and_its_older_type_key():
    from sesame_voice_csm.mlx.config import mlx_config

    config = _union_config()
    config["rope_scaling"] = {"type": "llama3", "factor": 32.0}
    read = mlx_config(config)
    assert read["rope_scaling"]["factor"] == 32.0 and read["rope_theta"] == 500_000
    assert read["depth_decoder_config"]["rope_scaling"]["rope_type"] == "llama3"


def test_default_rotary_is_llama3_with_factor_one_which_changes_no_frequency():
    import mlx.core as mx
    from mlx_audio.tts.models.sesame.attention import Llama3ScaledRoPE

    from sesame_voice_csm.mlx.config import mlx_config

    config = _union_config()
    for part in (config, config["depth_decoder_config"]):
        part.pop("rope_scaling")
        part["rope_parameters"] = {"rope_type": "default", "rope_theta": part.pop("rope_theta")}
    read = mlx_config(config)
    assert read["rope_scaling"]["factor"] == 1.0
    freqs = 1.0 / (500_000.0 ** (mx.arange(0, 64, 2, dtype=mx.float32) / 64))
    rope = Llama3ScaledRoPE(64, scale_factor=read["rope_scaling"]["factor"])
    np.testing.assert_array_equal(np.array(rope._apply_scaling(freqs)), np.array(freqs))


@pytest.mark.parametrize(
    ("scaling", "message"),
    [
        ({"rope_type": "yarn", "factor": 4.0}, "rotary scaling 'yarn' is not supported"),
        ({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 2.0}, "low_freq_factor"),
    ],
    ids=["yarn", "llama3-other-factors"],
)
def test_a_rotary_scheme_mlx_cannot_run_is_refused_by_name(scaling, message):
    from sesame_voice_csm.common.checkpoint import CheckpointError
    from sesame_voice_csm.mlx.config import mlx_config

    config = _union_config()
    config["rope_scaling"] = scaling
    with pytest.raises(CheckpointError, match=message) as err:
        mlx_config(config)
    assert "CSM_BACKEND=torch" in str(err.value)


def test_a_config_without_sizes_names_what_it_lacks():
    from sesame_voice_csm.common.checkpoint import CheckpointError
    from sesame_voice_csm.mlx.config import mlx_config

    config = _union_config()
    del config["num_hidden_layers"], config["depth_decoder_config"]["hidden_size"]
    with pytest.raises(CheckpointError, match="num_hidden_layers, depth_decoder_config.hidden_size"):
        mlx_config(config)


def test_require_skips_only_when_the_distribution_is_not_installed():
    from .csm_helpers import require

    with pytest.raises(pytest.skip.Exception, match="no-such-dist-xyz is not installed"):
        require("no_such_module_xyz", "no-such-dist-xyz", "csm")
    with pytest.raises(ImportError):  # installed (mlx is) but the import fails: an error, not a skip
        require("mlx.no_such_submodule_xyz", "mlx", "csm")
    assert require("mlx.core", "mlx", "csm").__name__ == "mlx.core"
