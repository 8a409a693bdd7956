"""The ``csm`` provider: Sesame CSM-1B on MLX (mlx-audio) or PyTorch (transformers), same voices and behaviour."""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from sesame_voice.provider import Provider
from sesame_voice.text import sentence_runs
from sesame_voice.types import AudioChunk, ClipPolicy, InvalidRequest, ProviderJob

from .backend import choose_backend
from .loading import import_mlx, load_csm
from .options import CsmOptions
from .prompts import MIN_SECONDS
from .window import FRAME_MS, MIN_GROUP_POSITIONS, WINDOW, frame_budget, plan_groups

_LOGGER = logging.getLogger(__name__)
SAMPLE_RATE = 24_000
DEFAULTS = {"speaker": 0, "temperature": 0.9, "top_k": 50, "max_audio_length_ms": 90_000}


class CsmProvider(Provider):
    """Conversational speech with voice prompts (clones), context and streaming, on MLX or PyTorch."""

    name = "csm"
    description = "Sesame CSM-1B: expressive, conversational, clones a voice from a short clip"
    sampling_params = ("temperature", "top_k", "seed", "speaker", "max_audio_length_ms", "volume",
                       "first_chunk_frames")
    supports_context = True
    context_sample_rate = SAMPLE_RATE
    CONTEXT_SHARE = 0.5
    """Share of the 2048-position window that voice prompt plus conversation context may fill."""
    BUILTIN_PROMPT_SECONDS = 12.0
    """Assumed length of a built-in prompt (``prompt: NAME``) when sizing the context."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.options = CsmOptions.from_settings(settings)
        self.clip_policy = ClipPolicy(min_seconds=MIN_SECONDS, max_seconds=self.options.max_prompt_seconds,
                                      clones=True, priority=10)
        self.backend, why = choose_backend(self.options.backend)
        self._auto = self.options.backend == "auto"
        self.concurrency = self.options.max_batch if self.backend == "torch" else 1
        """Requests the engine may run at once: the torch backend batches them, MLX takes one at a time."""
        self._serial = threading.Lock()
        _LOGGER.info("CSM backend: %s (%s)", self.backend, why)
        self.loaded = None
        self.generator = None
        self.prompts = None
        self._builtin_prompts: dict[str, tuple[str, str] | None] = {}
        """Built-in prompt lookups, found or not: an offline hub is asked once, not per request."""

    # -- lifecycle ---------------------------------------------------------
    def load(self) -> None:
        """Resolve and load weights, tokenizer and Mimi; raise ProviderUnavailable with advice."""
        if self.backend == "torch":
            from .backend import installed
            from .torch_backend import OriginalLayout

            try:
                return self._load_torch()
            except OriginalLayout:
                if not (self._auto and installed("mlx")):
                    raise
            self.backend = "mlx"
            _LOGGER.info("CSM backend: mlx (auto: the weights are in Sesame's original layout)")
        import_mlx()
        from .generation import Generator
        from .prompts import PromptStore

        def progress(message: str) -> None:
            self.progress = message
            _LOGGER.info("CSM: %s", message)

        cache_dir = Path(self.settings.cache_dir).expanduser()
        options = self.options
        self.loaded = load_csm(self.settings.model_id, cache_dir, options.tokenizer, options.mimi, progress,
                               quantize_bits=options.quantize_bits)
        self.generator = Generator(self.loaded.model, prefix_cache_size=options.prefix_cache_size,
                                   watermark=options.watermark, compiled=options.compile)
        self.prompts = PromptStore(self.generator.encode, cache_dir / "csm" / "prompts" / self.loaded.codec_tag,
                                   max_seconds=options.max_prompt_seconds)
        self.progress = None
        watermarked = getattr(self.loaded.model, "_watermarker", None) is not None and options.watermark
        import mlx.core as mx

        self.device = "metal" if mx.default_device() == mx.gpu else "cpu"
        _LOGGER.info("CSM ready from %s (watermark %s)", self.loaded.model_dir, "on" if watermarked else "off")

    def _load_torch(self) -> None:
        from .prompts import PromptStore
        from .torch_backend import load_torch_generator

        def progress(message: str) -> None:
            self.progress = message
            _LOGGER.info("CSM: %s", message)

        cache_dir = Path(self.settings.cache_dir).expanduser()
        options = self.options
        self.generator, self.loaded = load_torch_generator(self.settings.model_id, cache_dir, options, progress)
        self.prompts = PromptStore(self.generator.encode, cache_dir / "csm" / "prompts" / self.loaded.codec_tag,
                                   max_seconds=options.max_prompt_seconds)
        self.progress = None
        self.device = f"{self.loaded.device}, {self.loaded.dtype}"
        _LOGGER.info("CSM ready from %s on torch (%s, batches of up to %d, watermark %s)", self.loaded.model_dir,
                     self.device, options.max_batch, "on" if self.generator.watermarks else "off")

    def close(self) -> None:
        """Drop the model (and stop the torch backend's batching loop)."""
        if hasattr(self.generator, "close"):
            self.generator.close()
        self.loaded = self.generator = self.prompts = None

    # -- context -----------------------------------------------------------
    def context_cost(self, segment) -> float:
        """Window positions one context turn takes: text tokens (≤ one per 3 bytes) + its 80 ms frames + EOS."""
        positions = math.ceil(len(str(segment.text or "").encode()) / 3) + 3
        if segment.audio is not None and segment.sample_rate:
            positions += math.ceil(len(segment.audio) / segment.sample_rate * 1000 / FRAME_MS) + 1
        return float(positions)

    def context_window(self, params) -> float:
        """Positions left for context: a share of the window, less the voice prompt's estimated size."""
        prompt_seconds = 0.0
        if params.get("prompt_audio"):
            try:
                import soundfile as sf

                prompt_seconds = float(sf.info(str(params["prompt_audio"])).duration)
            except Exception:  # noqa: BLE001 - a bad clip is reported when it is used
                prompt_seconds = self.options.max_prompt_seconds
        elif params.get("prompt"):
            prompt_seconds = self.BUILTIN_PROMPT_SECONDS
        prompt_positions = math.ceil(prompt_seconds * 1000 / FRAME_MS) + 60 if prompt_seconds else 0
        return float(max(0, int(WINDOW * self.CONTEXT_SHARE) - prompt_positions))
    def status(self) -> dict:
        """Base status plus the backend in use (``torch (cuda, bfloat16)``, ``mlx``)."""
        info = super().status()
        info["backend"] = f"{self.backend} ({self.device})" if self.device and self.backend == "torch" else self.backend
        return info

    # -- work --------------------------------------------------------------
    def synthesize(self, job: ProviderJob) -> Iterator[AudioChunk]:
        """Stream the job's sentences in the voice its params describe."""
        with self._serial:  # planning (prompt caches, tokenizer) is one request at a time
            plan = self.plan(job)
        volume = _number({"volume": (job.params or {}).get("volume", 1.0)}, "volume", float, 0.0, 4.0)
        for samples, codes in self._generate(plan, job):
            if volume != 1.0:
                samples = np.clip(samples * volume, -1.0, 1.0).astype(np.float32)
            yield AudioChunk(samples=samples, sample_rate=SAMPLE_RATE, codes=codes, codec="mimi")
        if self.generator.stats.frames:
            stats = self.generator.stats
            _LOGGER.debug("CSM: %d frames, %.0f ms/frame, first audio after %.2f s", stats.frames,
                          1000 * stats.frame_seconds / stats.frames, stats.first_audio or 0.0)

    def _generate(self, plan, job: ProviderJob) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(PCM, Mimi codes as codebooks × frames) of each chunk."""
        if self.backend == "torch":  # the batching loop takes concurrent requests
            # The batch indexes a request's groups, so a streamed answer's text is awaited whole here.
            plan.groups, plan.later_groups = [*plan.groups, *plan.later_groups], ()
            frames: list[np.ndarray] = []  # filled by ``run`` in this thread before each chunk
            taken = 0
            for samples in self.generator.run(plan, job.cancelled, codes=frames):
                codes = np.stack(frames[taken:], axis=1).astype(np.int32)
                taken = len(frames)
                yield samples, codes
            return
        with self._serial:
            for samples in self.generator.run(plan, job.cancelled):
                yield samples, self.generator.last_codes

    def plan(self, job: ProviderJob):
        """Turn a job into a generation plan (tokens, groups, sampling)."""
        from .plan import Plan

        params = {**DEFAULTS, **dict(job.params or {})}
        speaker = _number(params, "speaker", int, 0, 1000)
        temperature = _number(params, "temperature", float, 0.0, 5.0)
        top_k = _number(params, "top_k", int, 0, 100_000)
        limit_ms = job.request.max_audio_length_ms or _number(params, "max_audio_length_ms", int, 80, 3_600_000)
        seed = _number(params, "seed", int, 0, 2**63) if params.get("seed") is not None else None
        first_chunk = _number({"first_chunk_frames": params.get("first_chunk_frames", self.options.first_chunk_frames)},
                              "first_chunk_frames", int, 1, 100)
        generator = self.generator
        prefix, prefix_key = self._prompt(params, speaker)
        context = self._context(job)
        fixed = sum(map(len, prefix)) + sum(map(len, context))
        while context and fixed > WINDOW - 2 * MIN_GROUP_POSITIONS - 200:
            fixed -= len(context.pop(0))  # oldest turns go first when the window is full
            _LOGGER.info("CSM: dropped the oldest context turn to fit the %d-position window", WINDOW)
        cap = max(1, math.ceil(limit_ms / FRAME_MS))
        options = self.options

        def budget(text: str) -> int:
            return frame_budget(text, options.frame_budget_base_ms, options.frame_budget_per_char_ms, cap)

        def count(text: str) -> int:
            return generator.count_text_tokens(text, speaker)

        # Text still arriving (a streamed answer) is planned run by run as it comes; the later groups
        # continue the same generation, so each is conditioned on the ones before it.
        runs = sentence_runs(job.sentences)
        groups = plan_groups(next(runs, []), count, fixed, budget)
        later = (group for run in runs for group in plan_groups(run, count, fixed, budget))
        return Plan(groups=groups, later_groups=later, speaker=speaker, prefix=prefix, prefix_key=prefix_key, context=context,
                    temperature=temperature, top_k=top_k, seed=seed, first_chunk_frames=first_chunk,
                    chunk_frames=options.chunk_frames,
                    max_samples=limit_ms * SAMPLE_RATE // 1000 if job.request.max_audio_length_ms else None)

    def _prompt(self, params: Mapping[str, Any], speaker: int):
        """Prefix rows of the voice prompt (clip + transcript) and a key for its cached KV state."""
        from .builtin import builtin_prompt

        audio, text = params.get("prompt_audio"), params.get("prompt_text")
        if not audio and params.get("prompt"):
            name = str(params["prompt"])
            if name not in self._builtin_prompts:
                found = builtin_prompt(name, self.loaded)
                self._builtin_prompts[name] = found
                if found is None:
                    _LOGGER.warning("CSM built-in prompt %r is unavailable; speaking without a voice prompt", name)
            found = self._builtin_prompts[name]
            if found is None:
                return [], None
            audio, text = found
        if not audio:
            return [], None
        path = Path(str(audio)).expanduser()
        if not path.is_absolute():
            path = Path(self.settings.voices_dir) / path
        prompt = self.prompts.clip(path, text)
        tokens = self.generator.segment(prompt.text, speaker, prompt.codes)
        text_digest = hashlib.sha256(prompt.text.encode()).hexdigest()[:16]
        return [tokens], f"{prompt.digest}:{speaker}:{text_digest}"

    def _context(self, job: ProviderJob) -> list:
        """Rows of the request's earlier conversation turns."""
        rows = []
        for index, segment in enumerate(job.request.context or []):
            if not segment.text or not str(segment.text).strip():
                raise InvalidRequest(f"context[{index}] has no text", param="context")
            codes = None
            if segment.audio is not None and len(segment.audio):
                if not segment.sample_rate:
                    raise InvalidRequest(f"context[{index}] has audio without a sample rate", param="context")
                codes = self.prompts.audio(segment.audio, int(segment.sample_rate))
            rows.append(self.generator.segment(str(segment.text), int(segment.speaker or 0), codes))
        return rows


def _number(params: Mapping[str, Any], name: str, kind: type, low: float, high: float):
    value = params.get(name)
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be a number, got {value!r}", param=name) from None
    if not low <= number <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}, got {number}", param=name)
    return number
