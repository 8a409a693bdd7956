"""The CSM provider on its PyTorch backend (transformers' CSM and Mimi) with a tiny random checkpoint."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from csm.csm_helpers import RATE, collect, run, started, write_clip

from sesame_voice.api.types import AudioChunk, ContextSegment

FRAME = 1920


def _codes(provider, job) -> tuple[np.ndarray, np.ndarray]:
    """(codes frames × codebooks, audio) of a job run through the provider's backend."""
    chunks = list(provider.start(job))
    if not chunks:
        return np.zeros((0, 32), np.int32), np.zeros(0, np.float32)
    return np.concatenate([codes for _, codes in chunks], axis=1).T, np.concatenate([pcm for pcm, _ in chunks])


def test_status_and_startup_name_the_torch_backend(torch_provider):
    status = torch_provider.status()
    assert status["state"] == "ready"
    assert status["backend"] == "torch (cpu, float32)"
    assert torch_provider.concurrency == 4  # max_batch: the engine may hand it four requests at once


def test_backbone_step_matches_transformers_own_forward(torch_provider):
    """Our slot-batched attention gives the hidden states transformers computes for the same positions."""
    from sesame_voice_csm.torch.model import TorchCsm

    csm = torch_provider.backend.generator.csm
    fresh = TorchCsm(csm.model, csm.tokenizer, max_batch=2)
    rows = fresh.text_rows("Checking the backbone against transformers.", 0)
    with torch.inference_mode():
        embeds = fresh.embed(rows)
        fresh.slots.acquire()
        fresh.forward([0], embeds[None, :-3])  # a prefill, then three single-row steps
        ours = [fresh.forward([0], embeds[None, i : i + 1])[0] for i in range(len(rows) - 3, len(rows))]
        reference = csm.backbone(inputs_embeds=embeds[None]).last_hidden_state[0, -3:]
    torch.testing.assert_close(torch.stack(ours), reference, rtol=1e-4, atol=1e-4)


def test_streaming_mimi_decode_equals_one_full_decode(torch_provider):
    from sesame_voice_csm.torch.mimi_stream import MimiStream

    codec = torch_provider.backend.generator.csm.model.codec_model
    codes = torch.randint(0, 2048, (1, 32, 11), generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        full = codec.decode(codes).audio_values
    stream = MimiStream(codec)
    parts = [stream.decode(codes[..., a:b]) for a, b in [(0, 2), (2, 5), (5, 6), (6, 11)]]
    assert [p.shape[-1] for p in parts] == [2 * FRAME, 3 * FRAME, FRAME, 5 * FRAME]
    torch.testing.assert_close(torch.cat(parts, dim=-1), full, rtol=1e-4, atol=1e-4)


def test_chunks_are_24khz_float32_and_stream_before_generation_ends(torch_provider, make_job):
    sentences = ["Hello there, this is a test of streaming.", "And a second sentence."] * 3  # ~50 frames
    job = make_job(sentences, seed=1, first_chunk_frames=2)
    arrivals = []
    chunks, stats = started(torch_provider, job)
    for chunk in chunks:
        arrivals.append((stats.frames, chunk))
    assert len(arrivals) >= 3
    for _, chunk in arrivals:
        assert isinstance(chunk, AudioChunk) and chunk.sample_rate == RATE
        assert chunk.samples.dtype == np.float32 and chunk.samples.ndim == 1 and np.isfinite(chunk.samples).all()
    assert len(arrivals[0][1].samples) == 2 * FRAME  # first_chunk_frames = 2, then chunk_frames = 3
    assert {len(c.samples) for _, c in arrivals[1:-1]} == {3 * FRAME}
    assert arrivals[0][0] < stats.frames  # the first chunk left while later frames were still to come
    assert sum(len(c.samples) for _, c in arrivals) == stats.frames * FRAME
    assert stats.first_audio is not None and np.abs(np.concatenate([c.samples for _, c in arrivals])).max() > 0
    # Each chunk carries the Mimi codes of exactly its frames (what the legacy sidecar answers with).
    for _, chunk in arrivals:
        assert chunk.codec == "mimi" and chunk.codes.shape == (32, len(chunk.samples) // FRAME)


def test_same_seed_gives_identical_audio_and_another_seed_does_not(torch_provider, make_job):
    first = collect(torch_provider, make_job(["Same words twice."], seed=7))
    collect(torch_provider, make_job(["Something else in between."], seed=3))
    second = collect(torch_provider, make_job(["Same words twice."], seed=7))
    other = collect(torch_provider, make_job(["Same words twice."], seed=8))
    assert len(first) > 0
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, other)


def test_context_is_honoured(torch_provider, make_job):
    plain, _ = _codes(torch_provider, make_job(["Reply to that."], temperature=0))
    context = [ContextSegment(text="Earlier the other speaker said something.", speaker=1)]
    with_text, _ = _codes(torch_provider, make_job(["Reply to that."], context=context, temperature=0))
    assert not np.array_equal(plain, with_text)  # greedy: only the context can change the codes
    before = torch_provider.prompts.encode_calls
    rng = np.random.default_rng(0)
    audio = (0.2 * rng.standard_normal(RATE)).astype(np.float32)
    spoken = [
        ContextSegment(text="Earlier the other speaker said something.", speaker=1, audio=audio, sample_rate=RATE)
    ]
    with_audio, _ = _codes(torch_provider, make_job(["Reply to that."], context=spoken, temperature=0))
    assert torch_provider.prompts.encode_calls == before + 1  # the turn's audio went through Mimi's encoder
    assert not np.array_equal(with_text, with_audio)


def test_clone_prompt_is_encoded_once_and_its_kv_cache_reused(torch_provider, make_job, torch_settings):
    write_clip(torch_settings.voices_dir / "clone.wav", seed=11)
    params = {"prompt_audio": "clone.wav", "prompt_text": "a short test clip", "seed": 2}
    before = torch_provider.prompts.encode_calls
    first, stats = run(torch_provider, make_job(**params))
    assert torch_provider.prompts.encode_calls == before + 1
    assert stats.prefill_positions > 0
    second, stats = run(torch_provider, make_job(**params))
    assert torch_provider.prompts.encode_calls == before + 1
    assert stats.prefill_positions == 0  # prompt keys/values came from memory
    np.testing.assert_array_equal(first, second)


def test_long_text_rolls_the_window_like_the_mlx_backend(torch_provider, make_job):
    sentence = "This sentence is repeated many times to overflow the window of the model. "
    job = make_job([sentence] * 40, seed=1, frame_budget_base_ms=160)
    plan = torch_provider.plan(job)
    assert len(plan.groups) > 1
    audio, stats = run(torch_provider, job)
    assert stats.rebuilds >= 1 and len(audio) == stats.frames * FRAME


def test_max_audio_length_caps_frames(torch_provider, make_job):
    audio = collect(torch_provider, make_job(["A sentence long enough to need many frames."], seed=1, max_ms=240))
    assert len(audio) == 3 * FRAME


def test_cancellation_takes_the_request_out_within_one_frame(torch_provider, make_job):
    job = make_job(["A sentence that would take a good while to say out loud, if it ever ended."] * 6, seed=4)
    chunks, stats = started(torch_provider, job)
    chunks = iter(chunks)
    next(chunks)
    job.cancelled.set()
    frames_after_cancel = stats.frames
    rest = list(chunks)
    loop = torch_provider.backend.generator.loop
    for _ in range(1000):  # the loop drops it at its next frame boundary
        if loop.running == 0:
            break
        threading.Event().wait(0.01)
    assert loop.running == 0
    assert stats.frames <= frames_after_cancel + 1
    assert stats.frames < sum(g.max_frames for g in torch_provider.plan(job).groups)
    assert rest == []


@pytest.mark.parametrize("params", [{"temperature": 0}, {"temperature": 0.9, "top_k": 50}], ids=["greedy", "sampled"])
def test_a_request_joining_a_running_batch_gets_what_it_would_get_alone(torch_provider, make_job, params):
    """Continuous batching: B joins A at a frame boundary; they share forward passes; neither output changes."""
    from sesame_voice_csm.common.plan import Stats
    from sesame_voice_csm.torch.batching import _DONE, BatchLoop
    from sesame_voice_csm.torch.model import TorchCsm

    csm = torch_provider.backend.generator.csm
    loop = BatchLoop(TorchCsm(csm.model, csm.tokenizer, max_batch=2), max_batch=2, start=False)
    plan_a = torch_provider.plan(make_job(["The first speaker talks for a while."], seed=5, **params))
    plan_b = torch_provider.plan(make_job(["Another voice joins in."], seed=6, speaker=1, **params))

    def finish(*streams):
        while loop.busy:
            loop.tick()
        results = []
        for stream in streams:
            frames = []
            while (item := stream.out.get()) is not _DONE:
                frames.append(item)
            results.append(np.array(frames))
        return results

    (alone_a,) = finish(loop.submit(plan_a, threading.Event(), Stats()))
    (alone_b,) = finish(loop.submit(plan_b, threading.Event(), Stats()))
    assert loop.batch_sizes and max(loop.batch_sizes) == 1
    loop.batch_sizes.clear()
    a = loop.submit(plan_a, threading.Event(), Stats())
    for _ in range(3):
        loop.tick()
    b = loop.submit(plan_b, threading.Event(), Stats())
    together_a, together_b = finish(a, b)
    assert 2 in loop.batch_sizes and b.shared_steps > 0 and a.shared_steps == b.shared_steps
    assert a.steps > b.shared_steps  # A ran alone before B joined
    np.testing.assert_array_equal(together_a, alone_a)
    np.testing.assert_array_equal(together_b, alone_b)


def test_batch_never_exceeds_max_batch(torch_provider, make_job):
    from sesame_voice_csm.common.plan import Stats
    from sesame_voice_csm.torch.batching import BatchLoop
    from sesame_voice_csm.torch.model import TorchCsm

    csm = torch_provider.backend.generator.csm
    loop = BatchLoop(TorchCsm(csm.model, csm.tokenizer, max_batch=2), max_batch=2, start=False)
    streams = [
        loop.submit(torch_provider.plan(make_job(["Three at once."], seed=i)), threading.Event(), Stats())
        for i in range(3)
    ]
    loop.tick()
    assert loop.running == 2
    while loop.busy:
        loop.tick()
    assert max(loop.batch_sizes) == 2
    assert all(s.stats.frames > 0 for s in streams)  # the third joined once a slot was free


def test_bfloat16_weights_stream_finite_audio(torch_settings, make_job):
    from dataclasses import replace

    from sesame_voice_csm import CsmProvider

    settings = replace(torch_settings, plugins={"csm": {**torch_settings.plugins["csm"], "dtype": "bfloat16"}})
    provider = CsmProvider(settings)
    provider.ensure_loaded()
    try:
        assert provider.status()["backend"] == "torch (cpu, bfloat16)"
        audio = collect(provider, make_job(["Half precision."], seed=1))
    finally:
        provider.close()
    assert len(audio) > 0 and audio.dtype == np.float32 and np.isfinite(audio).all() and np.abs(audio).max() > 0
