"""Tight joins where one phrase was spoken in two calls (a lead cut at a word boundary).

A TTS call ends and starts with a sentence's silence (Piper: about 130 ms and 45 ms). Where a
phrase was cut only to start the first audio sooner (``sesame_voice.api.lead.Continued``), those
silences would add a pause the one-call audio does not have; ``trim_seam`` cuts them down to a
word gap and fades the cut, so the join has neither a doubled pause nor a click.
"""

from __future__ import annotations

import numpy as np

SILENCE_LEVEL = 0.003
"""Samples quieter than this (-50 dBFS) count as silence at a seam: a soft consonant starting the
next word (the "f" of "fox") stays above it and is never cut."""
KEEP_BEFORE_SECONDS = 0.02
"""Silence kept at the end of the piece before a seam."""
KEEP_AFTER_SECONDS = 0.02
"""Silence kept at the start of the piece after a seam."""
FADE_SECONDS = 0.004
"""The kept silence is faded to zero over this long at the cut, so the join never jumps."""


def trim_seam(samples: np.ndarray, rate: int, at_end: bool) -> np.ndarray:
    """``samples`` with the silence at its end (``at_end``) or start cut down to a word gap."""
    loud = np.flatnonzero(np.abs(samples) > SILENCE_LEVEL)
    if loud.size == 0:
        return samples[:0]
    fade = int(FADE_SECONDS * rate)
    if at_end:
        stop = min(len(samples), int(loud[-1]) + 1 + int(KEEP_BEFORE_SECONDS * rate))
        out = samples[:stop].astype(np.float32, copy=True)
        n = min(fade, stop - int(loud[-1]) - 1)
        if n > 0:
            out[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
        return out
    start = max(0, int(loud[0]) - int(KEEP_AFTER_SECONDS * rate))
    out = samples[start:].astype(np.float32, copy=True)
    n = min(fade, int(loud[0]) - start)
    if n > 0:
        out[:n] *= np.linspace(0.0, 1.0, n, dtype=np.float32)
    return out
