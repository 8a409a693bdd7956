"""Pitch-preserving tempo change that streams: FFmpeg's ``atempo`` (WSOLA) through PyAV.

One ``StreamStretcher`` per stream keeps the filter's state across chunks and feeds it slices of
the same size whatever the chunks were, so a stretched stream is the very audio of the whole clip
stretched at once (no clicks at chunk joins), and its output lags its input by only the filter's
look-ahead (under 150 ms at speed 4, less when slower) plus one slice.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from av.filter import Graph

from sesame_voice.api.errors import InvalidRequest

from .pcm import as_mono

MIN_SPEED, MAX_SPEED = 0.25, 4.0
"""Tempo range of the speech APIs (OpenAI's ``speed``)."""
SLICE_SAMPLES = 512
"""Input is pushed in slices this long: ``atempo`` holds back the output of its latest input
frame until the next one arrives (small frames keep that small), and refuses a frame whose
output would be empty (so no frame is shorter)."""
END_PADDING_SECONDS = 0.2
"""Silence pushed after the last input: ``atempo`` drops its final look-ahead (up to ~0.15 s of
input at speed 4), so it is given silence to drop instead; the output is then trimmed."""
END_FADE_SECONDS = 0.005
"""The trimmed end fades out over this long, so a cut in mid-waveform cannot click."""
_ATEMPO_MIN, _ATEMPO_MAX = 0.5, 100.0
"""One ``atempo`` instance's range; slower tempos chain several."""


def _atempo_factors(speed: float) -> list[float]:
    """Factors within one atempo's range whose product is ``speed`` (0.25 -> [0.5, 0.5])."""
    factors = []
    while speed < _ATEMPO_MIN:
        factors.append(_ATEMPO_MIN)
        speed /= _ATEMPO_MIN
    while speed > _ATEMPO_MAX:
        factors.append(_ATEMPO_MAX)
        speed /= _ATEMPO_MAX
    return factors + [speed]


class StreamStretcher:
    """Chunk-by-chunk time-stretch of float32 mono audio by ``speed`` (2.0 halves the duration).

    ``process`` each chunk in order, then ``flush`` once; the concatenated output is
    ``round(len(input) / speed)`` samples long at the same sample rate and pitch.
    """

    def __init__(self, sample_rate: int, speed: float):
        if not speed > 0:
            raise ValueError(f"speed must be positive, not {speed}")
        self.sample_rate = int(sample_rate)
        self.speed = float(speed)
        self._samples_in = 0
        self._samples_out = 0
        self._unsent = np.zeros(0, np.float32)
        """Input not yet pushed: less than one slice."""
        self._samples_pushed = 0
        self._graph: Graph | None = None
        if abs(self.speed - 1.0) < 1e-6:
            return
        self._graph = Graph()
        time_base = Fraction(1, self.sample_rate)
        nodes = [
            self._graph.add_abuffer(format="flt", sample_rate=self.sample_rate, layout="mono", time_base=time_base)
        ]
        nodes += [self._graph.add("atempo", f"{factor:.9g}") for factor in _atempo_factors(self.speed)]
        nodes.append(self._graph.add("aformat", sample_fmts="flt", channel_layouts="mono"))
        nodes.append(self._graph.add("abuffersink"))
        for upstream, downstream in zip(nodes, nodes[1:]):
            upstream.link_to(downstream)
        self._graph.configure()
        self._source, self._sink = nodes[0], nodes[-1]
        self._time_base = time_base

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Stretch the next chunk; returns what the filter has ready (may be empty)."""
        x = as_mono(samples)
        self._samples_in += len(x)
        if self._graph is None:
            self._samples_out += len(x)
            return x
        pending = np.concatenate([self._unsent, x])
        whole_slices = len(pending) - len(pending) % SLICE_SAMPLES
        self._unsent = pending[whole_slices:]
        out = self._filter(pending[:whole_slices])
        self._samples_out += len(out)
        return out

    def flush(self) -> np.ndarray:
        """The filter's remaining output, cut (or padded with silence) to the exact length."""
        if self._graph is None:
            return np.zeros(0, np.float32)
        padding = -len(self._unsent) % SLICE_SAMPLES + int(END_PADDING_SECONDS * self.sample_rate)
        padding += -(len(self._unsent) + padding) % SLICE_SAMPLES  # whole slices only
        tail = self._filter(np.pad(self._unsent, (0, padding)))
        self._source.push(None)
        tail = np.concatenate([tail, _joined(self._pull())])
        self._graph = None
        missing = round(self._samples_in / self.speed) - self._samples_out - len(tail)
        if missing > 0:
            tail = np.concatenate([tail, np.zeros(missing, np.float32)])
        elif missing < 0:
            tail = tail[: max(0, len(tail) + missing)]
        fade = min(len(tail), int(END_FADE_SECONDS * self.sample_rate))
        if fade:
            tail[-fade:] *= np.cos(np.linspace(0, np.pi / 2, fade, dtype=np.float32))
        self._samples_out += len(tail)
        return tail

    def _filter(self, x: np.ndarray) -> np.ndarray:
        """Push ``x`` (whole slices) through the filter; return what comes out."""
        parts = []
        for start in range(0, len(x), SLICE_SAMPLES):
            frame = av.AudioFrame.from_ndarray(
                x[start : start + SLICE_SAMPLES].reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate = self.sample_rate
            frame.time_base = self._time_base
            frame.pts = self._samples_pushed
            self._samples_pushed += SLICE_SAMPLES
            self._source.push(frame)
            parts += self._pull()
        return _joined(parts)

    def _pull(self) -> list[np.ndarray]:
        parts = []
        while True:
            try:
                frame = self._sink.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return parts
            parts.append(frame.to_ndarray().reshape(-1))


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, np.float32)


def time_stretch(samples: np.ndarray, sample_rate: int, speed: float) -> np.ndarray:
    """A whole clip at tempo ``speed`` (0.25–4.0; 2.0 halves the duration), pitch kept."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise InvalidRequest(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, not {speed}", param="speed")
    stretcher = StreamStretcher(sample_rate, speed)
    head = stretcher.process(samples)
    return np.concatenate([head, stretcher.flush()])
