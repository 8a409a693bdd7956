"""The CSM provider generating with the real mlx-audio CSM and Mimi code on a tiny random checkpoint."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sesame_voice.api.errors import InvalidRequest
from sesame_voice.api.types import AudioChunk, ContextSegment

from .csm_helpers import RATE, collect, run, started, write_clip


def test_chunks_are_24khz_float32_mono_and_stream_incrementally(csm_provider, make_job):
    job = make_job(["Hello there, this is a test.", "And a second sentence."], seed=1)
    arrivals = []
    chunks, stats = started(csm_provider, job)
    for chunk in chunks:
        arrivals.append((stats.frames, chunk))
    assert len(arrivals) >= 3
    for _, chunk in arrivals:
        assert isinstance(chunk, AudioChunk) and chunk.sample_rate == RATE
        assert chunk.samples.dtype == np.float32 and chunk.samples.ndim == 1
        assert np.isfinite(chunk.samples).all()
    frames_at_first, first = arrivals[0]
    assert frames_at_first == 2 and len(first.samples) == 2 * 1920  # first_chunk_frames = 2
    assert frames_at_first < stats.frames  # the first chunk left long before the generation ended
    assert sum(len(c.samples) for _, c in arrivals) == stats.frames * 1920
    assert stats.first_audio is not None


def test_a_voice_can_ask_for_an_earlier_first_chunk(csm_provider, make_job):
    first = next(iter(csm_provider.synthesize(make_job(["Quick."], seed=1, first_chunk_frames=1))))
    assert len(first.samples) == 1920


def test_same_seed_gives_identical_audio_so_decoder_state_is_reset(csm_provider, make_job):
    first = collect(csm_provider, make_job(["Same words twice."], seed=7))
    collect(csm_provider, make_job(["Something else in between."], seed=3))
    second = collect(csm_provider, make_job(["Same words twice."], seed=7))
    assert len(first) > 0
    np.testing.assert_array_equal(first, second)


def test_clone_prompt_tokens_are_computed_once_and_kept_on_disk(csm_provider, make_job, csm_settings):
    clip = write_clip(csm_settings.voices_dir / "once.wav", seed=11)
    before = csm_provider.prompts.encode_calls
    params = {"prompt_audio": "once.wav", "prompt_text": "a short test clip", "seed": 2}
    first, stats = run(csm_provider, make_job(**params))
    assert csm_provider.prompts.encode_calls == before + 1
    assert stats.prefill_positions > 0
    import hashlib

    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    assert csm_provider.prompts.cache_file(digest).is_file()
    second, stats = run(csm_provider, make_job(**params))
    assert csm_provider.prompts.encode_calls == before + 1  # not re-encoded
    assert stats.prefill_positions == 0  # prompt KV cache reused too
    np.testing.assert_array_equal(first, second)


def test_prompt_tokens_survive_a_restart(csm_settings, make_job):
    from sesame_voice_csm import CsmProvider

    write_clip(csm_settings.voices_dir / "restart.wav", seed=12)
    params = {"prompt_audio": str(csm_settings.voices_dir / "restart.wav"), "prompt_text": "hello", "seed": 1}
    first = CsmProvider(csm_settings)
    first.ensure_loaded()
    collect(first, make_job(**params))
    second = CsmProvider(csm_settings)
    second.ensure_loaded()
    collect(second, make_job(**params))
    assert first.prompts.encode_calls == 1 and second.prompts.encode_calls == 0


def test_cancellation_stops_within_one_frame(csm_provider, make_job):
    job = make_job(["A sentence that would take a good while to say out loud."], seed=4)
    received = 0
    chunks, stats = started(csm_provider, job)
    for _ in chunks:
        received += 1
        job.cancelled.set()
    assert received == 1
    assert stats.frames == 2  # the first chunk's frames, not one more


def test_cancellation_from_another_thread(csm_provider, make_job):
    job = make_job(["Another fairly long sentence to keep the model busy for a while."], seed=5)
    frames_when_cancelled = []
    chunks, stats = started(csm_provider, job)

    def cancel_later():
        frames_when_cancelled.append(stats.frames)
        job.cancelled.set()

    chunks = iter(chunks)
    next(chunks)
    timer = threading.Timer(0.05, cancel_later)
    timer.start()
    rest = list(chunks)
    timer.join()
    assert stats.frames <= frames_when_cancelled[0] + 1
    assert len(rest) <= 2


def test_long_text_is_split_into_groups_that_fit_the_window(csm_provider, make_job):
    sentences = [f"This is sentence number {i} of a long story." for i in range(40)]
    long_context = [ContextSegment(text="earlier words " * 300, speaker=1)]
    job = make_job(sentences, context=long_context, seed=1)
    plan = csm_provider.plan(job)
    assert len(plan.groups) > 1
    assert " ".join(g.text for g in plan.groups).split() == " ".join(sentences).split()
    fixed = sum(map(len, plan.context))
    room = (2048 - fixed) // 2
    for group in plan.groups:
        assert csm_provider.backend.count_text_tokens(group.text, 0) + group.max_frames + 2 <= room


def test_long_text_generation_rolls_the_window_without_overflow(csm_provider, make_job):
    count = csm_provider.backend.count_text_tokens
    filler = "padding words"
    while count(filler, 1) < 1700:
        filler += " padding words"
    sentences = [f"Part {i} of the story goes on with quite a few more words in it." for i in range(8)]
    job = make_job(sentences, context=[ContextSegment(text=filler, speaker=1)], seed=1)
    assert len(csm_provider.plan(job).groups) >= 3
    audio, stats = run(csm_provider, job)
    assert stats.rebuilds >= 1  # the cache restarted from prompt + previous group at least once
    assert len(audio) == stats.frames * 1920


def test_context_segments_with_audio_are_encoded(csm_provider, make_job):
    rng = np.random.default_rng(3)
    audio = (0.2 * rng.standard_normal(16_000)).astype(np.float32)
    context = [ContextSegment(text="Hi, how are you?", speaker=1, audio=audio, sample_rate=16_000)]
    before = csm_provider.prompts.encode_calls
    out = collect(csm_provider, make_job(["I am fine, thanks."], context=context, seed=1))
    assert len(out) > 0 and csm_provider.prompts.encode_calls == before + 1


def test_volume_param_scales_audio(csm_provider, make_job):
    loud = collect(csm_provider, make_job(["Volume."], seed=9))
    quiet = collect(csm_provider, make_job(["Volume."], seed=9, volume=0.5))
    np.testing.assert_allclose(quiet, np.clip(loud * 0.5, -1, 1), atol=1e-6)


@pytest.mark.parametrize(
    ("make_clip", "message"),
    [
        (lambda p: p.write_bytes(b"this is not audio at all" * 100), "not a readable audio file"),
        (lambda p: write_clip(p, seconds=31), "the limit is 30 s"),
        (lambda p: write_clip(p, seconds=0.2), "at least 0.5 s"),
        (lambda p: __import__("soundfile").write(str(p), np.zeros(RATE * 2, np.float32), RATE), "silent"),
        (lambda p: None, "cannot be read"),
    ],
    ids=["not-audio", "too-long", "too-short", "silent", "missing-file"],
)
def test_bad_clips_fail_the_request_with_a_clear_message(csm_provider, make_job, csm_settings, make_clip, message):
    path = csm_settings.voices_dir / "bad.wav"
    path.unlink(missing_ok=True)
    make_clip(path)
    with pytest.raises(InvalidRequest, match=message):
        list(csm_provider.synthesize(make_job(prompt_audio=str(path), prompt_text="words")))
    assert csm_provider.state == "ready"
    assert len(collect(csm_provider, make_job(seed=1))) > 0  # the provider still works


def test_clip_without_transcript_is_rejected(csm_provider, make_job, csm_settings):
    path = write_clip(csm_settings.voices_dir / "untranscribed.wav", transcript=None)
    with pytest.raises(InvalidRequest, match="no transcript"):
        list(csm_provider.synthesize(make_job(prompt_audio=str(path))))


@pytest.mark.parametrize(
    ("params", "name"),
    [({"temperature": "hot"}, "temperature"), ({"top_k": -1}, "top_k"), ({"speaker": "x"}, "speaker")],
)
def test_bad_sampling_params_are_invalid_requests(csm_provider, make_job, params, name):
    with pytest.raises(InvalidRequest) as err:
        list(csm_provider.synthesize(make_job(**params)))
    assert err.value.param == name


def test_builtin_prompt_from_the_model_folder(csm_provider, make_job, csm_checkpoint):
    prompts = csm_checkpoint.model_dir / "prompts"
    write_clip(prompts / "conversational_a.wav", seed=21, transcript="like revising for an exam")
    try:
        _, stats = run(csm_provider, make_job(prompt="conversational_a", seed=1))
        assert stats.prefill_positions > 0
    finally:
        for file in prompts.iterdir():
            file.unlink()
        prompts.rmdir()


def test_unavailable_builtin_prompt_degrades_to_no_prompt(csm_provider, make_job, monkeypatch, caplog):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    audio = collect(csm_provider, make_job(prompt="conversational_b", seed=1))
    assert len(audio) > 0
    assert "conversational_b" in caplog.text
