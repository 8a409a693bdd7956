"""The beep provider: one tone per word; ``NAME.beep`` files holding a pitch in Hz become voices."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sesame_voice import AudioChunk, InvalidRequest, Provider, RejectedFile, Voice

RATE = 16000
WORD_SECONDS = 0.1
DEFAULT_PITCH = 440.0


class BeepProvider(Provider):
    """One 100 ms tone per word at the voice's ``pitch`` (a request may override it via ``sampling``)."""

    name = "beep"
    description = "Beeps, one per word"
    voice_file_suffixes = (".beep",)
    sampling_params = ("pitch",)

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.closed = 0
        """How often ``close()`` ran (the example's tests check it runs once, at shutdown)."""
        self.threads: set[str] = set()
        """Names of the threads the provider's methods ran in."""

    def default_voices(self):
        self.threads.add(_thread())
        return [
            Voice(
                name="beeper", provider=self.name, params={"pitch": DEFAULT_PITCH}, description="Example plugin voice"
            )
        ]

    def discover_voices(self, files):
        """``NAME.beep`` holding a pitch in Hz (20-8000) becomes voice NAME; anything else is rejected."""
        self.threads.add(_thread())
        for path in files:
            text = Path(path).read_text(encoding="utf-8", errors="replace").strip()
            try:
                pitch = float(text)
            except ValueError:
                yield RejectedFile(path, f"expected a pitch in Hz, found {text[:20]!r}")
                continue
            if not 20 <= pitch <= 8000:
                yield RejectedFile(path, f"pitch {pitch:g} Hz is outside 20-8000 Hz")
                continue
            yield Voice(
                name=Path(path).stem,
                provider=self.name,
                params={"pitch": pitch},
                description=f"Beeps at {pitch:g} Hz",
                source=Path(path),
            )

    def synthesize(self, job):
        try:
            pitch = float(job.params.get("pitch", DEFAULT_PITCH))
        except (TypeError, ValueError):
            raise InvalidRequest("pitch must be a number of Hz", param="sampling") from None
        t = np.arange(int(RATE * WORD_SECONDS)) / RATE
        tone = (0.2 * np.sin(2 * np.pi * pitch * t)).astype(np.float32)
        for sentence in job.sentences:
            if job.cancelled.is_set():
                return
            yield AudioChunk(np.concatenate([tone for _ in sentence.split()]), RATE)

    def close(self) -> None:
        self.closed += 1


def _thread() -> str:
    import threading

    return threading.current_thread().name
