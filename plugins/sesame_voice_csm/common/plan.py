"""What one CSM request generates, and how long it took: shared by the MLX and PyTorch backends."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .window import Group

SAMPLES_PER_FRAME = 1920
"""24 kHz samples in one 80 ms Mimi frame."""


@dataclass
class Plan:
    """Everything one request generates."""

    groups: list[Group]
    later_groups: Iterable[Group] = ()
    """Groups of text still arriving, planned as it comes (a streamed answer)."""
    speaker: int = 0
    prefix: list = field(default_factory=list)
    prefix_key: str | None = None
    """Identifies ``prefix`` (voice prompt) so its KV cache can be reused; None = do not keep it."""
    context: list = field(default_factory=list)
    temperature: float = 0.9
    top_k: int = 50
    seed: int | None = None
    first_chunk_frames: int = 2
    chunk_frames: int = 6
    max_samples: int | None = None
    """Stop the whole request after this much audio (24 kHz samples); the last chunk ends exactly there."""


@dataclass
class Stats:
    """Timings of the last run, for logs and benchmarks."""

    started: float = 0.0
    first_audio: float | None = None
    frames: int = 0
    frame_seconds: float = 0.0
    decode_seconds: float = 0.0
    prefill_positions: int = 0
    rebuilds: int = 0
    codes: list = field(default_factory=list)
    """The generated frames' codes (frames × codebooks), one array per group."""
