"""The ``csm`` provider: Sesame CSM-1B on MLX (mlx-audio) or PyTorch (transformers), same voices and behaviour.

The provider plans requests and drives whichever backend loaded through one interface
(:class:`~sesame_voice_csm.common.backend.Backend`); it never asks which one it is.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import math
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sesame_voice.api.errors import InvalidRequest, ProviderUnavailable
from sesame_voice.api.params import ParamSpec
from sesame_voice.api.provider import Provider
from sesame_voice.api.text import sentence_runs
from sesame_voice.api.types import AudioChunk, ClipPolicy, ProviderJob
from sesame_voice_csm.common.admission import Admission
from sesame_voice_csm.common.backend import Generation, choose_backend, installed, load_backend
from sesame_voice_csm.common.checkpoint import TRANSFORMERS
from sesame_voice_csm.common.locate import Checkpoint, locate
from sesame_voice_csm.common.options import CsmOptions
from sesame_voice_csm.common.prompts import MIN_SECONDS
from sesame_voice_csm.common.window import FRAME_MS, MIN_GROUP_POSITIONS, WINDOW, frame_budget, plan_groups

_LOGGER = logging.getLogger(__name__)
SAMPLE_RATE = 24_000
DEFAULTS = {"speaker": 0, "temperature": 0.9, "top_k": 50, "max_audio_length_ms": 90_000}
CLOSE_WAIT_SECONDS = 60.0
"""How long ``close()`` waits for cancelled requests to leave ``synthesize`` (each leaves within a frame)."""


class OriginalLayout(ProviderUnavailable):
    """The weights are in Sesame's original layout, which only the MLX backend loads."""


class CsmProvider(Provider):
    """Conversational speech with voice prompts (clones), context and streaming, on MLX or PyTorch."""

    name = "csm"
    description = "Sesame CSM-1B: expressive, conversational, clones a voice from a short clip"
    sampling_params = ("temperature", "top_k", "seed", "speaker", "max_audio_length_ms", "volume", "first_chunk_frames")
    voice_params = {
        "speaker": ParamSpec(int, 0, 1000, description="CSM speaker id"),
        "temperature": ParamSpec(float, 0.0, 5.0, description="sampling temperature (0: greedy)"),
        "top_k": ParamSpec(int, 0, 100_000, description="sample among the k likeliest codes (0: all)"),
        "seed": ParamSpec(int, 0, 2**63, optional=True, description="fixed seed for repeatable output"),
        "max_audio_length_ms": ParamSpec(int, 80, 3_600_000, description="audio budget of one request"),
        "volume": ParamSpec(float, 0.0, 4.0, description="output gain"),
        "first_chunk_frames": ParamSpec(int, 1, 100, description="80 ms frames in the first audio chunk"),
        "prompt": ParamSpec(str, max_length=200, description="a built-in voice prompt, e.g. conversational_a"),
        "prompt_audio": ParamSpec(str, max_length=4096, description="speaker clip (in the voices folder)"),
        "prompt_text": ParamSpec(str, max_length=20_000, description="the clip's transcript"),
    }
    """What CSM's voices take (the same bounds ``plan`` enforces)."""
    supports_context = True
    context_sample_rate = SAMPLE_RATE
    CONTEXT_SHARE = 0.5
    """Share of the 2048-position window that voice prompt plus conversation context may fill."""
    BUILTIN_PROMPT_SECONDS = 12.0
    """Assumed length of a built-in prompt (``prompt: NAME``) when sizing the context."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.options = CsmOptions.from_settings(settings)
        self.clip_policy = ClipPolicy(
            min_seconds=MIN_SECONDS, max_seconds=self.options.max_prompt_seconds, clones=True, priority=10
        )
        self.backend_name, why = choose_backend(self.options.backend)
        self._auto = self.options.backend == "auto"
        self.concurrency = self.options.max_batch if self.backend_name == "torch" else 1
        """The most requests the engine may hand over at once; ``admission`` lets in what the loaded backend runs."""
        self.admission = Admission(1)
        self._plan_lock = threading.Lock()
        """Planning (prompt caches, tokenizer) is one request at a time."""
        _LOGGER.info("CSM backend: %s (%s)", self.backend_name, why)
        self.backend = None
        self.prompts = None
        self._jobs: set[threading.Event] = set()
        """``cancelled`` events of the requests inside ``synthesize`` (``close()`` sets them)."""
        self._builtin_prompts: dict[str, tuple[str, str] | None] = {}
        """Built-in prompt lookups, found or not: an offline hub is asked once, not per request."""

    @property
    def model_id(self) -> str:
        return self.options.model_id

    # -- lifecycle ---------------------------------------------------------
    def load(self) -> None:
        """Find the weights, then import and load the backend; raise ProviderUnavailable with advice."""
        from sesame_voice_csm.common.prompts import PromptStore

        cache_dir = Path(self.settings.cache_dir).expanduser()
        try:
            checkpoint = locate(self.options.model_id, self.options.tokenizer, self._progress)
        except ProviderUnavailable as err:
            _LOGGER.info("CSM: no usable weights, so neither torch nor MLX was imported (%s)", type(err).__name__)
            raise
        name = self._backend_for(checkpoint)
        try:
            backend = load_backend(name, checkpoint, self.options, cache_dir, self._progress)
        except BaseException:
            self._release()
            raise
        self.backend, self.backend_name, self.device = backend, backend.name, backend.device
        self.admission.resize(backend.concurrency)
        self.prompts = PromptStore(
            backend.encode,
            cache_dir / "csm" / "prompts" / backend.codec_tag,
            max_seconds=self.options.max_prompt_seconds,
        )
        self.progress = None
        _LOGGER.info(
            "CSM ready from %s on %s (%s, %d at once, watermark %s)",
            backend.model_dir,
            backend.name,
            backend.device,
            backend.concurrency,
            "on" if backend.watermarks else "off",
        )

    def _progress(self, message: str) -> None:
        self.progress = message
        _LOGGER.info("CSM: %s", message)

    def _backend_for(self, checkpoint: Checkpoint) -> str:
        """The backend to load ``checkpoint`` on: torch reads only the transformers layout (auto falls back)."""
        if self.backend_name != "torch" or checkpoint.selection.format == TRANSFORMERS:
            return self.backend_name
        if self._auto and installed("mlx"):
            _LOGGER.info("CSM backend: mlx (auto: the weights are in Sesame's original layout)")
            return "mlx"
        raise OriginalLayout(
            f"{checkpoint.model_dir} holds CSM weights in Sesame's original layout; the torch backend loads the "
            "transformers layout that sesame/csm-1b ships (set MODEL_ID=sesame/csm-1b), or set CSM_BACKEND=mlx"
        )

    def _release(self) -> None:
        """Drop what a failed load left behind, so its memory goes back before the next attempt."""
        self.backend = self.prompts = None
        self.progress = None
        gc.collect()

    def close(self) -> None:
        """Cancel the requests still inside ``synthesize``, wait until they left, then free the model."""
        self.admission.closing = True
        for cancelled in list(self._jobs):
            cancelled.set()
        if not self.admission.wait_empty(CLOSE_WAIT_SECONDS):
            _LOGGER.warning(
                "CSM: %d requests still running after %.0f s; closing anyway", self.admission.inside, CLOSE_WAIT_SECONDS
            )
        if self.backend is not None:
            self.backend.close()
        self._release()

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
        info["backend"] = (
            f"{self.backend_name} ({self.device})"
            if self.device and self.backend_name == "torch"
            else self.backend_name
        )
        return info

    # -- work --------------------------------------------------------------
    def synthesize(self, job: ProviderJob) -> Iterator[AudioChunk]:
        """Stream the job's sentences in the voice its params describe, once the backend has room for it."""
        self._jobs.add(job.cancelled)
        try:
            with self.admission.request(job.cancelled) as admitted:
                if not admitted:
                    if self.admission.closing and not job.cancelled.is_set():
                        raise ProviderUnavailable("the CSM model is closing")
                    return
                generation = self.start(job)
                yield from self.chunks(generation, job)
                stats = generation.stats
                if stats.frames:
                    _LOGGER.debug(
                        "CSM: %d frames, %.0f ms/frame, first audio after %.2f s",
                        stats.frames,
                        1000 * stats.frame_seconds / stats.frames,
                        stats.first_audio or 0.0,
                    )
        finally:
            self._jobs.discard(job.cancelled)

    def chunks(self, generation: Generation, job: ProviderJob) -> Iterator[AudioChunk]:
        """``generation``'s (PCM, codes) as the job's audio chunks (its ``volume`` applied)."""
        volume = _number({"volume": (job.params or {}).get("volume", 1.0)}, "volume", float, 0.0, 4.0)
        for samples, codes in generation:
            if volume != 1.0:
                samples = np.clip(samples * volume, -1.0, 1.0).astype(np.float32)
            yield AudioChunk(samples=samples, sample_rate=SAMPLE_RATE, codes=codes, codec="mimi")

    def start(self, job: ProviderJob) -> Generation:
        """Plan ``job`` and start generating it: iterate the result for (PCM, codes); its ``stats`` are this job's."""
        backend = self.backend
        if backend is None:
            raise ProviderUnavailable("the CSM model is not loaded")
        with self._plan_lock:
            plan = self.plan(job)
        return backend.generate(plan, job.cancelled)

    def plan(self, job: ProviderJob):
        """Turn a job into a generation plan (tokens, groups, sampling)."""
        from sesame_voice_csm.common.plan import Plan

        params = {**DEFAULTS, **dict(job.params or {})}
        speaker = _number(params, "speaker", int, 0, 1000)
        temperature = _number(params, "temperature", float, 0.0, 5.0)
        top_k = _number(params, "top_k", int, 0, 100_000)
        limit_ms = job.request.max_audio_length_ms or _number(params, "max_audio_length_ms", int, 80, 3_600_000)
        seed = _number(params, "seed", int, 0, 2**63) if params.get("seed") is not None else None
        first_chunk = _number(
            {"first_chunk_frames": params.get("first_chunk_frames", self.options.first_chunk_frames)},
            "first_chunk_frames",
            int,
            1,
            100,
        )
        backend = self.backend
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
            return backend.count_text_tokens(text, speaker)

        # Text still arriving (a streamed answer) is planned run by run as it comes; the later groups
        # continue the same generation, so each is conditioned on the ones before it.
        runs = sentence_runs(job.sentences)
        groups = plan_groups(next(runs, []), count, fixed, budget)
        later = (group for run in runs for group in plan_groups(run, count, fixed, budget))
        return Plan(
            groups=groups,
            later_groups=later,
            speaker=speaker,
            prefix=prefix,
            prefix_key=prefix_key,
            context=context,
            temperature=temperature,
            top_k=top_k,
            seed=seed,
            first_chunk_frames=first_chunk,
            chunk_frames=options.chunk_frames,
            max_samples=limit_ms * SAMPLE_RATE // 1000 if job.request.max_audio_length_ms else None,
        )

    def _prompt(self, params: Mapping[str, Any], speaker: int):
        """Prefix rows of the voice prompt (clip + transcript) and a key for its cached KV state."""
        from sesame_voice_csm.common.builtin import builtin_prompt

        audio, text = params.get("prompt_audio"), params.get("prompt_text")
        if not audio and params.get("prompt"):
            name = str(params["prompt"])
            if name not in self._builtin_prompts:
                found = builtin_prompt(name, self.backend)
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
        tokens = self.backend.segment(prompt.text, speaker, prompt.codes)
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
            rows.append(self.backend.segment(str(segment.text), int(segment.speaker or 0), codes))
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
