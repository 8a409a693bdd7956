"""Continuous batching for the PyTorch CSM backend: one loop thread steps every running request together.

Each request is the same causal sequence the MLX backend builds (``mlx/generation.py``): voice prompt,
context, then per sentence group its text, frames and an end-of-audio row, restarting from the
prompt when the 2048-position window would overflow. Requests wait in a queue and join the
running batch at the next frame boundary (their prefill runs alone, then they step with the
others); a finished or cancelled one leaves at the next boundary and frees its slot. The batch
never holds more than ``max_batch`` requests.

The loop only produces codes. Each caller's own thread (the engine runs up to ``max_batch``
``synthesize`` calls at once for this provider) turns its codes into audio through its own Mimi
stream, so decoding overlaps the next frame's forward pass.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from sesame_voice_csm.common.plan import SAMPLES_PER_FRAME, Plan, Stats
from sesame_voice_csm.common.window import WINDOW
from sesame_voice_csm.torch.mimi_stream import MimiStream
from sesame_voice_csm.torch.model import Rows, Sampling, TorchCsm

_LOGGER = logging.getLogger(__name__)
_DONE = object()


@dataclass
class Stream:
    """One request inside the loop: where it is in its plan, and the queue its codes leave by."""

    plan: Plan
    cancelled: threading.Event
    stats: Stats
    sampling: Sampling
    out: queue.Queue = field(default_factory=queue.Queue)
    slot: int = -1
    snapshot: list = field(default_factory=list)
    group: int = 0
    group_frames: list = field(default_factory=list)
    text: Rows | None = None
    pending: Rows | None = None
    """Rows the backbone has not seen yet (a prefill, or the last sampled frame)."""
    previous: Rows | None = None
    total: int = 0
    steps: int = 0
    """Forward passes this request took part in, and how many other requests shared them."""
    shared_steps: int = 0


class BatchLoop:
    """Owns the model's forward passes; ``submit`` a plan, read its codes from ``Stream.out``."""

    def __init__(self, csm: TorchCsm, max_batch: int, prefix_cache_size: int = 8, start: bool = True) -> None:
        self.csm = csm
        self.max_batch = max_batch
        self._waiting: queue.Queue[Stream] = queue.Queue()
        self._running: list[Stream] = []
        self._prefixes: OrderedDict[str, list] = OrderedDict()
        self._prefix_cache_size = prefix_cache_size
        self._wake = threading.Event()
        self._stop = False
        self.batch_sizes: list[int] = []
        """Rows of every batched decode step so far (for tests and benchmarks)."""
        self._thread = threading.Thread(target=self._loop, name="csm-torch-batch", daemon=True)
        if start:
            self._thread.start()

    def submit(self, plan: Plan, cancelled: threading.Event, stats: Stats) -> Stream:
        generator = None
        if plan.temperature > 0:
            generator = torch.Generator(device=self.csm.device.type if self.csm.device.type == "cuda" else "cpu")
            generator.manual_seed(int(plan.seed) if plan.seed is not None else int(torch.seed()) % 2**63)
        stream = Stream(
            plan=plan, cancelled=cancelled, stats=stats, sampling=Sampling(plan.temperature, plan.top_k, generator)
        )
        self._waiting.put(stream)
        self._wake.set()
        return stream

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    @property
    def running(self) -> int:
        """Requests in the batch now."""
        return len(self._running)

    @property
    def busy(self) -> bool:
        """Requests running or waiting to join."""
        return bool(self._running) or not self._waiting.empty()

    @torch.inference_mode()
    def tick(self) -> None:
        """One frame boundary: waiting requests join (while slots are free), then every running one steps."""
        self._admit()
        self._step()

    # -- the loop ------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop:
            if not self._running and self._waiting.empty():
                self._wake.wait(timeout=1.0)
                self._wake.clear()
                continue
            try:
                self.tick()
            except Exception as err:
                _LOGGER.exception("CSM batch step failed")
                for stream in self._running:
                    self._finish(stream, err)
                self._running = []
        stopped = RuntimeError("the CSM model was closed")
        for stream in self._running:
            self._finish(stream, stopped)
        self._running = []
        while not self._waiting.empty():
            self._waiting.get().out.put(stopped)

    def _admit(self) -> None:
        """New requests join at this frame boundary while slots are free."""
        while len(self._running) < self.max_batch and not self._waiting.empty():
            stream = self._waiting.get()
            if stream.cancelled.is_set():
                stream.out.put(_DONE)
                continue
            stream.slot = self.csm.slots.acquire()
            self._running.append(stream)
            stream.snapshot = self._prefix(stream)
            self._start_group(stream, list(stream.plan.context))

    def _prefix(self, stream: Stream) -> list:
        """The voice prompt's keys/values in the stream's slot: from memory, or prefilled once and kept."""
        plan, slots = stream.plan, self.csm.slots
        key = plan.prefix_key
        if key is not None and key in self._prefixes:
            self._prefixes.move_to_end(key)
            slots.restore(stream.slot, self._prefixes[key])
            return self._prefixes[key]
        slots.lengths[stream.slot] = 0
        if plan.prefix:
            rows = Rows.cat(plan.prefix)
            self.csm.forward([stream.slot], self.csm.embed(rows)[None])
            stream.stats.prefill_positions += len(rows)
        snapshot = slots.snapshot(stream.slot)
        if key is not None:
            self._prefixes[key] = snapshot
            while len(self._prefixes) > self._prefix_cache_size:
                self._prefixes.popitem(last=False)
        return snapshot

    def _start_group(self, stream: Stream, feed: list[Rows]) -> None:
        """Queue the next sentence group's rows, restarting from the prompt when the window would overflow."""
        plan, csm = stream.plan, self.csm
        group = plan.groups[stream.group]
        text = csm.text_rows(group.text, plan.speaker)
        if csm.slots.lengths[stream.slot] + sum(map(len, feed)) + len(text) + group.max_frames + 1 > WINDOW:
            stream.stats.rebuilds += 1
            csm.slots.restore(stream.slot, stream.snapshot)
            feed = list(plan.context) + ([stream.previous] if stream.previous is not None else [])
        stream.text, stream.group_frames = text, []
        stream.pending = Rows.cat(feed + [text])

    def _step(self) -> None:
        """One frame for every running request: prefills alone, then all single rows in one forward pass."""
        csm = self.csm
        for stream in [s for s in self._running if s.cancelled.is_set()]:
            self._leave(stream)
        if not self._running:
            return
        tick = time.perf_counter()
        ready = sorted((s for s in self._running if len(s.pending) == 1), key=lambda s: s.slot)  # contiguous slots
        lasts: dict[int, torch.Tensor] = {}
        if ready:
            rows = Rows.cat([s.pending for s in ready])
            hidden = csm.forward([s.slot for s in ready], csm.embed(rows)[:, None])
            lasts.update({id(s): h for s, h in zip(ready, hidden)})
            self.batch_sizes.append(len(ready))
        for stream in self._running:
            if id(stream) not in lasts:
                lasts[id(stream)] = csm.forward([stream.slot], csm.embed(stream.pending)[None])[0]
        streams = list(self._running)
        codes = csm.frame(torch.stack([lasts[id(s)] for s in streams]), [s.sampling for s in streams])
        codes = codes.cpu().numpy()
        seconds = time.perf_counter() - tick
        for stream, frame in zip(streams, codes):
            stream.steps += 1
            stream.shared_steps += len(streams) > 1
            stream.stats.frame_seconds += seconds
            self._advance(stream, frame)

    def _advance(self, stream: Stream, frame: np.ndarray) -> None:
        """Hand a sampled frame to the caller and decide what the stream feeds next."""
        plan, csm = stream.plan, self.csm
        group = plan.groups[stream.group]
        ended = not frame.any()
        if not ended:
            stream.group_frames.append(frame)
            stream.total += 1
            stream.stats.frames += 1
            stream.out.put(frame)
            stream.pending = Rows(
                np.r_[frame, 0][None].astype(np.int64), np.r_[np.ones(csm.codebooks, bool), False][None]
            )
        cap = None if plan.max_samples is None else -(-plan.max_samples // SAMPLES_PER_FRAME)
        capped = cap is not None and stream.total >= cap  # the engine trims the last chunk to the sample
        if not ended and len(stream.group_frames) < group.max_frames and not capped:
            return
        if capped or stream.group + 1 >= len(plan.groups):
            self._leave(stream)
            return
        eos = csm.audio_rows(np.zeros((csm.codebooks, 0), np.int64))
        feed = ([] if ended or not stream.group_frames else [stream.pending]) + [eos]
        codes = np.stack(stream.group_frames, axis=1) if stream.group_frames else np.zeros((csm.codebooks, 0), np.int64)
        stream.previous = Rows.cat([stream.text, csm.audio_rows(codes)])
        stream.group += 1
        self._start_group(stream, feed)

    def _leave(self, stream: Stream) -> None:
        self._running.remove(stream)
        self._finish(stream)

    def _finish(self, stream: Stream, error: BaseException | None = None) -> None:
        if stream.slot >= 0:
            self.csm.slots.release(stream.slot)
            stream.slot = -1
        stream.out.put(error if error is not None else _DONE)


class TorchGenerator:
    """The MLX ``Generator``'s interface on the PyTorch backend: tokens for planning, and ``run``."""

    def __init__(self, csm: TorchCsm, max_batch: int = 8, prefix_cache_size: int = 8, watermarker=None) -> None:
        self.csm = csm
        self.codebooks = csm.codebooks
        self.loop = BatchLoop(csm, max_batch, prefix_cache_size)
        self._watermarker = watermarker
        self._tokenizer_lock = threading.Lock()

    @property
    def watermarks(self) -> bool:
        return self._watermarker is not None

    def close(self) -> None:
        self.loop.close()

    # -- tokens (called from request threads) --------------------------------
    def text_tokens(self, text: str, speaker: int) -> Rows:
        with self._tokenizer_lock:
            return self.csm.text_rows(text, speaker)

    def count_text_tokens(self, text: str, speaker: int) -> int:
        return len(self.text_tokens(text, speaker))

    def segment(self, text: str, speaker: int, codes: np.ndarray | None) -> Rows:
        parts = [self.text_tokens(text, speaker)]
        if codes is not None:
            parts.append(self.csm.audio_rows(codes))
        return Rows.cat(parts)

    @torch.inference_mode()
    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Mimi codes (codebooks × frames) of 24 kHz mono audio."""
        codec = self.csm.model.codec_model
        audio = torch.as_tensor(samples, dtype=self.csm.dtype, device=self.csm.device)[None, None]
        codes = codec.encode(audio).audio_codes[0]
        return codes[: self.codebooks].cpu().numpy().astype(np.int32)

    # -- generation ----------------------------------------------------------
    def run(
        self, plan: Plan, cancelled: threading.Event | None = None, stats: Stats | None = None, on_frame=None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(float32 24 kHz PCM, Mimi codes codebooks × frames) chunks of ``plan``; the request leaves the
        batch within a frame of ``cancelled``. ``stats`` (this request's own) is filled as it goes;
        ``on_frame(codes)`` sees every sampled frame as it arrives (benchmarks time them)."""
        cancelled = cancelled or threading.Event()
        stats = stats if stats is not None else Stats()
        stats.started = time.perf_counter()
        stream = self.loop.submit(plan, cancelled, stats)
        mimi = MimiStream(self.csm.model.codec_model)
        undecoded: list[np.ndarray] = []
        threshold = plan.first_chunk_frames
        try:
            while True:
                item = stream.out.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                if on_frame is not None:
                    on_frame(item)
                undecoded.append(item)
                if len(undecoded) >= threshold and not cancelled.is_set():
                    yield self._decode(mimi, undecoded, stats)
                    undecoded, threshold = [], plan.chunk_frames
            if undecoded and not cancelled.is_set():
                yield self._decode(mimi, undecoded, stats)
        finally:
            cancelled.set()  # a caller that stops reading takes its request out of the batch

    def _decode(self, mimi: MimiStream, frames: list[np.ndarray], stats: Stats) -> tuple[np.ndarray, np.ndarray]:
        tick = time.perf_counter()
        host_codes = np.stack(frames, axis=1)
        codes = torch.as_tensor(host_codes[None], device=self.csm.device)
        pcm = mimi.decode(codes)[0, 0].float().cpu().numpy()
        if self._watermarker is not None:
            pcm = self._watermarker(pcm)
        stats.decode_seconds += time.perf_counter() - tick
        if stats.first_audio is None:
            stats.first_audio = time.perf_counter() - stats.started
        return np.ascontiguousarray(pcm, dtype=np.float32), host_codes.astype(np.int32)
