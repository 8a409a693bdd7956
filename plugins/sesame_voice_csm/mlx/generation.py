"""The CSM frame loop on top of mlx-audio's sesame model: cached prompt prefixes, rolling context, streaming.

A request is one causal sequence: ``[voice prompt][context…][group 1 text][frames…][EOS][group 2 text]…``.
The voice prompt's backbone KV cache is computed once per prompt and copied into each request, so
a reused clone costs no prefill. Later groups continue the same cache (conditioned on the earlier
groups' text and audio); when the 2048-position window would overflow, the cache restarts from the
prompt plus the previous group only. Audio leaves through Mimi's streaming decoder, reset per request.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

from sesame_voice_csm.common.plan import SAMPLES_PER_FRAME, Plan, Stats
from sesame_voice_csm.common.window import WINDOW

_LOGGER = logging.getLogger(__name__)


@dataclass
class Tokens:
    """Model input rows: ``tokens`` and ``mask`` of shape (positions, codebooks + 1)."""

    tokens: mx.array
    mask: mx.array

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @staticmethod
    def cat(parts: Sequence["Tokens"]) -> "Tokens":
        parts = [p for p in parts if len(p)]
        return Tokens(mx.concatenate([p.tokens for p in parts]), mx.concatenate([p.mask for p in parts]))


class Generator:
    """Runs plans on a loaded :class:`~sesame_voice_csm.mlx.loading.CsmModel` (only ever from one thread at a time)."""

    def __init__(self, model, prefix_cache_size: int = 8, watermark: bool = True, compiled: bool = False) -> None:
        from mlx_audio.lm.models.cache import make_prompt_cache

        self.model = model
        self.core = model.core
        self.codebooks = int(self.core.args.audio_num_codebooks)
        self.bins = int(model.codec.cfg.quantizer_bins)
        self._make_cache = make_prompt_cache
        self._prefixes: OrderedDict[str, list[tuple]] = OrderedDict()
        self._prefix_cache_size = prefix_cache_size
        self._watermark = watermark
        from sesame_voice_csm.mlx.speedups import FrameStep, install_fast_convtr

        self.step = FrameStep(self.core, compiled=compiled)
        if mx.default_device() == mx.cpu:
            install_fast_convtr(model.codec)

    # -- tokens --------------------------------------------------------------
    def text_tokens(self, text: str, speaker: int) -> Tokens:
        """``[speaker]text`` with bos/eos in the text column."""
        ids = self.model.text_tokens(text, speaker)
        tokens = np.zeros((len(ids), self.codebooks + 1), dtype=np.int32)
        tokens[:, -1] = ids
        mask = np.zeros_like(tokens, dtype=bool)
        mask[:, -1] = True
        return Tokens(mx.array(tokens), mx.array(mask))

    def count_text_tokens(self, text: str, speaker: int) -> int:
        return len(self.text_tokens(text, speaker))

    def audio_tokens(self, codes: np.ndarray, eos: bool = True) -> Tokens:
        """Audio rows for Mimi ``codes`` (codebooks × frames), with an end-of-audio row."""
        frames = codes.shape[1] + int(eos)
        tokens = np.zeros((frames, self.codebooks + 1), dtype=np.int32)
        tokens[: codes.shape[1], : self.codebooks] = codes[: self.codebooks].T
        mask = np.zeros_like(tokens, dtype=bool)
        mask[:, : self.codebooks] = True
        return Tokens(mx.array(tokens), mx.array(mask))

    def segment(self, text: str, speaker: int, codes: np.ndarray | None) -> Tokens:
        """A context segment: its text, then its audio if known."""
        parts = [self.text_tokens(text, speaker)]
        if codes is not None:
            parts.append(self.audio_tokens(codes))
        return Tokens.cat(parts)

    def encode(self, samples: np.ndarray) -> np.ndarray:
        """Mimi codes (codebooks × frames) of 24 kHz mono audio."""
        codes = self.model.codec.encode(mx.array(samples)[None, None, :])[0]
        return np.array(codes[: self.codebooks]).astype(np.int32)

    # -- cache ---------------------------------------------------------------
    def _prefill(self, tokens: Tokens, cache, stats: Stats) -> None:
        """Run the backbone over ``tokens`` into ``cache`` without sampling."""
        embeds = self.core._embed_tokens(tokens.tokens[None])
        h = mx.sum(embeds * tokens.mask[None, :, :, None], axis=2)
        self.core.backbone(h, cache=cache)
        mx.eval([c.keys for c in cache] + [c.values for c in cache])
        stats.prefill_positions += len(tokens)

    def _snapshot(self, plan: Plan, stats: Stats) -> list[tuple]:
        """(keys, values, offset) per layer after the plan's prefix, from memory when known."""
        key = plan.prefix_key
        if key is not None and key in self._prefixes:
            self._prefixes.move_to_end(key)
            return self._prefixes[key]
        cache = self._make_cache(self.core.backbone)
        if plan.prefix:
            self._prefill(Tokens.cat(plan.prefix), cache, stats)
        snapshot = [
            (c.keys[..., : c.offset, :], c.values[..., : c.offset, :], c.offset) if c.offset else None for c in cache
        ]
        mx.eval([s[:2] for s in snapshot if s])
        if key is not None:
            self._prefixes[key] = snapshot
            while len(self._prefixes) > self._prefix_cache_size:
                self._prefixes.popitem(last=False)
        return snapshot

    def _restore(self, snapshot: list[tuple]):
        cache = self._make_cache(self.core.backbone)
        for layer, saved in zip(cache, snapshot):
            if saved is not None:
                layer.keys, layer.values, layer.offset = saved[0][...], saved[1][...], saved[2]
        self.core.backbone_cache = cache
        return cache

    # -- generation ----------------------------------------------------------
    def _sampler(self, plan: Plan):
        from mlx_audio.lm.sample_utils import make_sampler

        base = make_sampler(temp=plan.temperature, top_k=plan.top_k)
        bins = self.bins
        return lambda logits: base(logits[..., :bins])  # never a code Mimi cannot decode

    def _frame_row(self, sample: mx.array) -> Tokens:
        tokens = mx.concatenate([sample, mx.zeros((1, 1), dtype=mx.int32)], axis=1).astype(mx.int32)
        return Tokens(tokens, self._frame_mask)

    def run(
        self, plan: Plan, cancelled: threading.Event | None = None, stats: Stats | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (float32 24 kHz PCM, Mimi codes codebooks × frames) chunks for ``plan``; returns within one
        frame of ``cancelled``. ``stats`` (this request's own) is filled as it goes."""
        cancelled = cancelled or threading.Event()
        stats = stats if stats is not None else Stats()
        stats.started = time.perf_counter()
        if plan.seed is not None:
            mx.random.seed(int(plan.seed))
        sampler, sampler_key = self._sampler(plan), (plan.temperature, plan.top_k)
        self._frame_mask = mx.array(np.r_[np.ones(self.codebooks, bool), False][None, :])
        eos_row = self.audio_tokens(np.zeros((self.codebooks, 0), np.int32))
        self.model.streaming_decoder.reset()
        snapshot = self._snapshot(plan, stats)
        cache = self._restore(snapshot)
        feed: list[Tokens] = list(plan.context)
        previous: Tokens | None = None
        undecoded: list[mx.array] = []
        threshold = plan.first_chunk_frames
        left = plan.max_samples  # audio still allowed, in samples (None: no cap)
        max_frames = None if left is None else -(-left // SAMPLES_PER_FRAME)
        total = 0
        for group in itertools.chain(plan.groups, plan.later_groups):
            if max_frames is not None and total >= max_frames:
                break
            text = self.text_tokens(group.text, plan.speaker)
            if cache[0].offset + sum(map(len, feed)) + len(text) + group.max_frames + 1 > WINDOW:
                stats.rebuilds += 1
                cache = self._restore(snapshot)
                feed = list(plan.context) + ([previous] if previous is not None else [])
            current = Tokens.cat(feed + [text])
            frames: list[mx.array] = []
            ended = False
            for _ in range(group.max_frames):
                if cancelled.is_set():
                    return
                if max_frames is not None and total >= max_frames:
                    break
                tick = time.perf_counter()
                sample = self.step(current.tokens[None], current.mask[None], sampler, sampler_key)
                mx.eval(sample)
                stats.frame_seconds += time.perf_counter() - tick
                if not mx.any(sample).item():
                    ended = True
                    break
                frames.append(sample)
                undecoded.append(sample)
                current = self._frame_row(sample)
                total += 1
                stats.frames += 1
                if len(undecoded) >= threshold:
                    audio, codes, left = _within(*self._decode(undecoded, stats), left)
                    yield audio, codes
                    undecoded, threshold = [], plan.chunk_frames
            feed = ([] if ended or not frames else [current]) + [eos_row]
            codes = np.array(mx.concatenate(frames, axis=0)).T if frames else np.zeros((self.codebooks, 0), np.int32)
            stats.codes.append(codes.T)
            previous = Tokens.cat([text, self.audio_tokens(codes)])
        if undecoded and not cancelled.is_set():
            audio, codes, _ = _within(*self._decode(undecoded, stats), left)
            yield audio, codes

    def _decode(self, samples: list[mx.array], stats: Stats) -> tuple[np.ndarray, np.ndarray]:
        tick = time.perf_counter()
        codes = mx.stack(samples, axis=-1)  # (1, codebooks, frames)
        host_codes = np.array(codes[0]).astype(np.int32)
        pcm = self.model.streaming_decoder.decode_frames(codes)[0, 0]
        if self._watermark and self.model.watermarker is not None:
            pcm = self._apply_watermark(pcm)
        audio = np.array(pcm, dtype=np.float32)
        stats.decode_seconds += time.perf_counter() - tick
        if stats.first_audio is None:
            stats.first_audio = time.perf_counter() - stats.started
        return audio, host_codes

    def _apply_watermark(self, pcm: mx.array) -> mx.array:
        from mlx_audio.tts.models.sesame.watermarking import watermark

        model = self.model
        if model.watermark_key is None:
            return pcm
        return mx.array(watermark(model.watermarker, pcm, model.sample_rate, model.watermark_key), dtype=mx.float32)


def _within(audio: np.ndarray, codes: np.ndarray, left: int | None) -> tuple[np.ndarray, np.ndarray, int | None]:
    """``audio`` cut to the ``left`` samples still allowed, its codes, and what is left after it."""
    if left is None:
        return audio, codes, None
    audio = audio[:left]
    return audio, codes, left - len(audio)
