"""Tests that catch a wrong model, not only a running one: the provider's frame step against mlx-audio's,
context, end of speech, the length cap, and the mlx-audio internals the provider still relies on."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest

from sesame_voice.api.types import ContextSegment
from sesame_voice.config import Settings

from .csm_helpers import run, started


def _frames(step, core, text_tokens, sampler, count: int, seed: int | None) -> np.ndarray:
    """``count`` frames from ``step(tokens, mask)`` fed back as mlx-audio's generate loop feeds them."""
    import mlx.core as mx

    core.setup_caches(1)  # fresh backbone and decoder caches
    if seed is not None:
        mx.random.seed(seed)
    tokens, mask = text_tokens.tokens[None], text_tokens.mask[None]
    frames = []
    for _ in range(count):
        sample = step(tokens, mask, sampler)
        mx.eval(sample)
        frames.append(np.array(sample)[0])
        tokens = mx.concatenate([sample, mx.zeros((1, 1), dtype=mx.int32)], axis=1)[:, None, :]
        mask = mx.concatenate([mx.ones_like(sample).astype(mx.bool_), mx.zeros((1, 1), dtype=mx.bool_)], axis=1)[
            :, None
        ]
    return np.stack(frames)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize(("temperature", "seed"), [(0.0, None), (0.9, 11)], ids=["greedy", "sampled-same-seed"])
def test_frame_step_gives_mlx_audios_generate_frame_tokens(csm_provider, compiled, temperature, seed):
    from mlx_audio.lm.sample_utils import make_sampler

    from sesame_voice_csm.mlx.speedups import FrameStep

    generator = csm_provider.backend.generator
    core = generator.core
    text = generator.text_tokens("Hello there, how are you?", 0)
    sampler = make_sampler(temp=temperature, top_k=50)
    step = FrameStep(core, compiled=compiled)
    reference = _frames(lambda t, m, s: core.generate_frame(t, m, None, s), core, text, sampler, 6, seed)
    ours = _frames(lambda t, m, s: step(t, m, s, ("test", temperature)), core, text, sampler, 6, seed)
    assert reference.shape == (6, 32) and len(np.unique(reference)) > 10  # real frames, not a constant
    np.testing.assert_array_equal(ours, reference)


def test_context_changes_the_tokens_generated(csm_provider, make_job):
    _, stats = run(csm_provider, make_job(["I am fine, thanks."], seed=4))
    alone = np.concatenate(stats.codes)
    context = [ContextSegment(text="Hi, how are you doing today?", speaker=1)]
    _, stats = run(csm_provider, make_job(["I am fine, thanks."], context=context, seed=4))
    with_context = np.concatenate(stats.codes)
    _, stats = run(csm_provider, make_job(["I am fine, thanks."], seed=4))
    np.testing.assert_array_equal(np.concatenate(stats.codes), alone)  # same seed: same
    assert alone.shape == with_context.shape
    differing_frames = (alone != with_context).any(axis=1).mean()
    assert differing_frames > 0.5, f"context changed only {differing_frames:.0%} of the frames"


@pytest.fixture(scope="module")
def one_frame_provider(tmp_path_factory, csm_checkpoint):
    """A CSM whose weights say one frame and then end of speech (an all-zero frame) under greedy sampling."""
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.mlx.testing import write_model

    root = tmp_path_factory.mktemp("csm-eos")
    model = write_model(root / "model", speaks_one_frame=True)
    provider = CsmProvider(
        Settings(
            cache_dir=root / "cache",
            voices_dir=root,
            plugins={"csm": {"model_id": str(model), "mimi": str(csm_checkpoint.mimi_file), "first_chunk_frames": 4}},
        )
    )
    provider.ensure_loaded()
    yield provider
    provider.close()


def test_end_of_speech_ends_the_stream_with_the_audio_before_it(one_frame_provider, make_job):
    job = make_job(["A sentence that would have room for many frames."], temperature=0.0)
    assert one_frame_provider.plan(job).groups[0].max_frames > 10
    chunks, stats = started(one_frame_provider, job)
    chunks = list(chunks)
    assert stats.frames == 1
    expected = np.zeros((1, 32), np.int32)
    expected[0, 0] = 5
    np.testing.assert_array_equal(np.concatenate(stats.codes), expected)  # the frame before the all-zero one
    assert [len(chunk.samples) for chunk in chunks] == [1920]  # delivered although below first_chunk_frames


@pytest.mark.parametrize("max_ms", [1000, 330, 250])
def test_a_capped_request_returns_exactly_the_capped_length(csm_provider, make_job, max_ms):
    sentences = [f"Sentence number {i} is here." for i in range(6)]
    job = make_job(sentences, max_ms=max_ms, seed=1)
    assert sum(g.max_frames for g in csm_provider.plan(job).groups) * 80 > max_ms
    audio, stats = run(csm_provider, job)
    assert len(audio) == max_ms * 24
    assert stats.frames == -(-max_ms * 24 // 1920)  # every frame within the cap delivered


def test_mlx_audio_internals_the_provider_relies_on_keep_their_shape(csm_provider):
    """Fails loudly when an mlx-audio upgrade changes a private piece the provider still uses."""
    import inspect

    from mlx_audio.codec.models.mimi.modules.conv import ConvTranspose1d, StreamableConvTranspose1d
    from mlx_audio.tts.models.sesame.sesame import SesameModel

    from sesame_voice_csm.mlx.speedups import convtr_fields

    core = csm_provider.backend.generator.core
    assert list(inspect.signature(SesameModel._embed_tokens).parameters) == ["self", "tokens"]
    assert list(inspect.signature(SesameModel._embed_audio).parameters) == ["self", "codebook", "tokens"]
    assert list(inspect.signature(SesameModel.generate_frame).parameters) == [
        "self",
        "tokens",
        "tokens_mask",
        "input_pos",
        "sampler",
    ]
    assert core.audio_head.shape[0] == core.args.audio_num_codebooks - 1
    conv = ConvTranspose1d(4, 4, 4, stride=2)
    fields = convtr_fields(conv)
    assert fields["weight"].shape == (4, 4, 4) and (fields["groups"], fields["stride"], fields["padding"]) == (1, 2, 0)
    assert "self.convtr.convtr._stride" in inspect.getsource(StreamableConvTranspose1d)
    from packaging.requirements import Requirement

    pinned = next(Requirement(r) for r in metadata.requires("sesame-voice") if r.startswith("mlx-audio"))
    assert pinned.specifier.contains(metadata.version("mlx-audio")), f"mlx-audio outside {pinned.specifier}"
