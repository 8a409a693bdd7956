"""Requests running at once: admission sized by the backend that loaded, stats of each request its own,
and ``close()`` waiting for the requests still inside ``synthesize``.

Threads call ``synthesize`` as the engine's job threads do (the engine runs ``concurrency`` of them).
"""

from __future__ import annotations

import logging
import re
import threading

import numpy as np
import pytest
from csm.csm_helpers import require

from sesame_voice.config import Settings

FRAME = 1920


def _consume(provider, job, log: list, name: str, after_first=None) -> threading.Thread:
    """A thread reading ``job``'s chunks through ``synthesize``; ``after_first()`` runs after its first chunk."""

    def work() -> None:
        try:
            samples = []
            for index, chunk in enumerate(provider.synthesize(job)):
                samples.append(chunk.samples)
                if index == 0 and after_first is not None:
                    after_first()
            log.append((name, np.concatenate(samples) if samples else np.zeros(0, np.float32)))
        except BaseException as err:  # noqa: BLE001 - the test asserts there was none
            log.append((name, err))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def _wait(predicate, what: str) -> None:
    event = threading.Event()
    for _ in range(6000):
        if predicate():
            return
        event.wait(0.01)
    raise AssertionError(f"never happened: {what}")


def test_a_torch_to_mlx_fallback_admits_one_request_at_a_time_in_arrival_order(tmp_path, make_job):
    require("mlx.core", "mlx", "csm")
    from sesame_voice_csm import CsmProvider
    from sesame_voice_csm.mlx.testing import write_checkpoint

    model_dir, mimi = write_checkpoint(tmp_path / "original", size="tiny")
    provider = CsmProvider(
        Settings(
            cache_dir=tmp_path / "cache",
            voices_dir=tmp_path,
            plugins={
                "csm": {
                    "model_id": str(model_dir),
                    "mimi": str(mimi),
                    "max_batch": 4,
                    "first_chunk_frames": 1,
                    "chunk_frames": 1,
                    "frame_budget_base_ms": 480,
                    "frame_budget_per_char_ms": 0,
                }
            },
        )
    )
    assert provider.backend_name == "torch" and provider.concurrency == 4  # what the engine reads before loading
    provider.ensure_loaded()
    assert provider.status()["backend"] == "mlx" and provider.admission.limit == 1
    started: list[str] = []
    generate = provider.backend.generate

    def recording(plan, cancelled):
        started.append(plan.groups[0].text)
        return generate(plan, cancelled)

    provider.backend.generate = recording
    release = threading.Event()
    log: list = []
    try:
        first = _consume(provider, make_job(["First."], seed=1), log, "first", after_first=release.wait)
        _wait(lambda: started == ["First."], "the first request started")
        others = []
        for count, text in enumerate(["Second.", "Third."], start=2):
            others.append(_consume(provider, make_job([text], seed=count), log, text))
            _wait(lambda count=count: provider.admission.inside == count, f"{text} waits for its turn")
        assert started == ["First."]  # the others wait while the first one holds the model
        release.set()
        for thread in [first, *others]:
            thread.join(120)
    finally:
        release.set()
        provider.close()
    assert started == ["First.", "Second.", "Third."]  # first come, first served
    assert provider.admission.peak == 1
    assert [type(audio) for _, audio in log] == [np.ndarray] * 3 and all(len(audio) == 6 * FRAME for _, audio in log)


def test_two_concurrent_requests_each_get_their_own_stats(torch_provider, make_job, caplog):
    """Both requests share the batch; the frames each one logs are its own (3 and 7), not the other's."""
    caplog.set_level(logging.DEBUG, logger="sesame_voice_csm")
    both_started = threading.Barrier(2, timeout=120)
    sizes = torch_provider.backend.generator.loop.batch_sizes
    before = len(sizes)
    log: list = []
    threads = [
        _consume(
            torch_provider,
            make_job(["A sentence with room for many frames, more than seven."], seed=seed, max_ms=frames * 80),
            log,
            str(frames),
            after_first=both_started.wait,
        )
        for seed, frames in ((1, 3), (2, 7))
    ]
    for thread in threads:
        thread.join(120)
    lengths = {name: len(audio) // FRAME for name, audio in log}
    assert lengths == {"3": 3, "7": 7}, log
    assert 2 in sizes[before:]  # they did run together
    logged = sorted(int(n) for n in re.findall(r"CSM: (\d+) frames", caplog.text))
    assert logged == [3, 7], caplog.text


def test_start_gives_each_request_its_own_stats_object(torch_provider, make_job):
    first = torch_provider.start(make_job(["One."], seed=1, max_ms=160))
    second = torch_provider.start(
        make_job(["Two, a sentence long enough for five frames or more."], seed=2, max_ms=400)
    )
    assert first.stats is not second.stats
    list(first), list(second)
    assert (first.stats.frames, second.stats.frames) == (2, 5)


@pytest.fixture
def own_torch_provider(torch_settings):
    """A torch provider of its own (the test closes it)."""
    from sesame_voice_csm import CsmProvider

    provider = CsmProvider(torch_settings)
    provider.ensure_loaded()
    yield provider
    provider.close()


def test_close_waits_for_a_request_still_inside_synthesize(own_torch_provider, make_job):
    provider = own_torch_provider
    job = make_job(["A long answer that would take many frames to say out loud."] * 4, seed=3)
    reading = threading.Event()
    go_on = threading.Event()
    events: list = []

    def after_first() -> None:
        reading.set()
        go_on.wait(120)

    consumer = _consume(provider, job, events, "request ended", after_first=after_first)
    reading.wait(120)

    def close() -> None:
        provider.close()
        events.append(("closed", None))

    closer = threading.Thread(target=close, daemon=True)
    closer.start()
    closer.join(0.5)
    assert closer.is_alive(), "close() returned while a request was still inside synthesize"
    assert job.cancelled.is_set()  # close() cancelled it
    go_on.set()
    consumer.join(120)
    closer.join(120)
    assert [name for name, _ in events] == ["request ended", "closed"]
    assert isinstance(events[0][1], np.ndarray), events[0][1]  # it ended normally, cut short, no crash
    assert provider.backend is None and provider.admission.inside == 0
