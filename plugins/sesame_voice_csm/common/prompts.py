"""Voice prompts: clip checks, and their Mimi tokens computed once per clip and kept on disk."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sesame_voice.api.errors import InvalidRequest

_LOGGER = logging.getLogger(__name__)
SAMPLE_RATE = 24_000
MIN_SECONDS = 0.5
SILENCE_RMS = 1e-4


@dataclass(frozen=True)
class Prompt:
    """A voice prompt ready for the model: transcript, Mimi tokens (codebooks × frames), content hash."""

    text: str
    codes: np.ndarray
    digest: str


def to_mono_24k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Float32 mono at 24 kHz."""
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        import soxr

        samples = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(samples, dtype=np.float32)


class PromptStore:
    """Mimi tokens of prompt clips: on disk under ``folder`` keyed by the clip's sha256, and in memory.

    ``encode`` maps 24 kHz mono float32 samples to an int array (codebooks, frames); it is only called
    for clips never seen before (``encode_calls`` counts them).
    """

    def __init__(
        self,
        encode: Callable[[np.ndarray], np.ndarray],
        folder: Path,
        max_seconds: float = 30.0,
        memory_items: int = 32,
    ) -> None:
        self._encode = encode
        self.folder = Path(folder)
        self.max_seconds = max_seconds
        self.encode_calls = 0
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_items = memory_items

    def cache_file(self, digest: str) -> Path:
        """Where the tokens of the clip with this content hash live."""
        return self.folder / f"{digest}.npy"

    def clip(self, path: str | os.PathLike, text: str | None) -> Prompt:
        """The prompt of a clip file and its transcript; InvalidRequest says what is wrong with a bad one."""
        path = Path(path)
        name = path.name
        if not text or not str(text).strip():
            raise InvalidRequest(
                f"voice prompt {name} has no transcript: add {path.with_suffix('.txt').name} "
                "with the words spoken in the clip",
                param="voice",
            )
        try:
            data = path.read_bytes()
        except OSError as err:
            raise InvalidRequest(f"voice prompt {name} cannot be read: {err.strerror or err}", param="voice") from None
        digest = hashlib.sha256(data).hexdigest()
        codes = self._cached(digest)
        if codes is None:
            samples = self._decode_clip(data, name)
            codes = self._store(digest, self._encode_checked(samples))
        return Prompt(text=str(text).strip(), codes=codes, digest=digest)

    def audio(self, samples: np.ndarray, rate: int) -> np.ndarray:
        """Tokens of in-memory audio (conversation context), cached in memory only."""
        samples = to_mono_24k(samples, rate)
        digest = hashlib.sha256(samples.tobytes()).hexdigest()
        codes = self._memory.get(digest)
        if codes is None:
            codes = self._remember(digest, self._encode_checked(samples))
        return codes

    # -- internals -----------------------------------------------------------
    def _decode_clip(self, data: bytes, name: str) -> np.ndarray:
        import io

        import soundfile as sf

        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as err:  # noqa: BLE001 - libsndfile raises several kinds
            raise InvalidRequest(f"voice prompt {name} is not a readable audio file ({err})", param="voice") from None
        seconds = len(samples) / float(rate) if rate else 0.0
        if seconds < MIN_SECONDS:
            raise InvalidRequest(
                f"voice prompt {name} is {seconds:.2f} s long; use at least {MIN_SECONDS} s of speech", param="voice"
            )
        if seconds > self.max_seconds:
            raise InvalidRequest(
                f"voice prompt {name} is {seconds:.1f} s long; the limit is "
                f"{self.max_seconds:.0f} s (5-15 s of clean speech works best)",
                param="voice",
            )
        if not np.isfinite(samples).all() or float(np.sqrt(np.mean(np.square(samples)))) < SILENCE_RMS:
            raise InvalidRequest(f"voice prompt {name} is silent; record the speaker again", param="voice")
        return to_mono_24k(samples, rate)

    def _encode_checked(self, samples: np.ndarray) -> np.ndarray:
        self.encode_calls += 1
        codes = np.asarray(self._encode(samples)).astype(np.int32)
        if codes.ndim != 2 or codes.shape[1] == 0:
            raise InvalidRequest("voice prompt gave no audio tokens; use a longer clip", param="voice")
        return codes

    def _cached(self, digest: str) -> np.ndarray | None:
        codes = self._memory.get(digest)
        if codes is not None:
            self._memory.move_to_end(digest)
            return codes
        file = self.cache_file(digest)
        if file.is_file():
            try:
                return self._remember(digest, np.load(file).astype(np.int32))
            except (OSError, ValueError) as err:
                _LOGGER.warning("Ignoring unreadable prompt cache %s: %s", file, err)
        return None

    def _store(self, digest: str, codes: np.ndarray) -> np.ndarray:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.folder, suffix=".tmp", delete=False) as handle:
                np.save(handle, codes)
            os.replace(handle.name, self.cache_file(digest))
        except OSError as err:
            _LOGGER.warning("Cannot keep prompt tokens in %s: %s", self.folder, err)
        return self._remember(digest, codes)

    def _remember(self, digest: str, codes: np.ndarray) -> np.ndarray:
        codes.setflags(write=False)
        self._memory[digest] = codes
        self._memory.move_to_end(digest)
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)
        return codes
