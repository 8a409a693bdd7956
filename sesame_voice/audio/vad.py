"""Server-side end-of-turn detection: a frame-energy voice activity detector (Realtime API, session WebSocket).

An energy VAD needs no model and no extra dependency, decides in microseconds per 20 ms frame and
is deterministic (tests can rely on it). It tells speech from silence and steady low noise, not
speech from loud music or chatter; ``threshold`` (0-1, OpenAI's knob) sets the level that counts as
speech: -60 dBFS at 0, -40 dBFS at 0.5 (the default), -20 dBFS at 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRAME_MS = 20
SPEECH_START_MS = 60
"""Speech must last this long before it counts (clicks and pops do not)."""


def threshold_dbfs(threshold: float) -> float:
    """The frame RMS level (dBFS) that counts as speech for OpenAI's 0-1 ``threshold``."""
    return -60.0 + 40.0 * min(max(float(threshold), 0.0), 1.0)


@dataclass
class VadEvent:
    """``speech_started`` or ``speech_stopped`` at ``ms`` from the start of the audio fed."""

    kind: str
    ms: int


class EnergyVad:
    """Feed 16-bit PCM; get speech start and stop events in audio time (milliseconds)."""

    def __init__(self, sample_rate: int, threshold: float = 0.5, silence_duration_ms: int = 500) -> None:
        self.sample_rate = sample_rate
        self.frame = sample_rate * FRAME_MS // 1000
        self.level = 10 ** (threshold_dbfs(threshold) / 20.0)
        self.silence_frames = max(1, silence_duration_ms // FRAME_MS)
        self.start_frames = SPEECH_START_MS // FRAME_MS
        self.in_speech = False
        self._pending = np.zeros(0, dtype=np.float32)
        self._frames_seen = 0
        self._loud_run = 0
        self._quiet_run = 0

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        """Float samples in [-1, 1]; the events their frames caused, in order."""
        data = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        whole = len(data) // self.frame * self.frame
        self._pending = data[whole:]
        events: list[VadEvent] = []
        if whole == 0:
            return events
        frames = data[:whole].reshape(-1, self.frame)
        loud = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1)) >= self.level
        for is_loud in loud:
            self._frames_seen += 1
            if is_loud:
                self._loud_run += 1
                self._quiet_run = 0
            else:
                self._quiet_run += 1
                self._loud_run = 0
            if not self.in_speech and self._loud_run >= self.start_frames:
                self.in_speech = True
                events.append(VadEvent("speech_started", (self._frames_seen - self._loud_run) * FRAME_MS))
            elif self.in_speech and self._quiet_run >= self.silence_frames:
                self.in_speech = False
                events.append(VadEvent("speech_stopped", (self._frames_seen - self._quiet_run) * FRAME_MS))
        return events

    @property
    def fed_ms(self) -> int:
        """Milliseconds of audio decided so far."""
        return self._frames_seen * FRAME_MS
