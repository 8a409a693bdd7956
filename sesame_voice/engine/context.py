"""Fitting conversation context to a provider: its sample rate and its context window."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sesame_voice.api.types import ContextSegment
from sesame_voice.audio.resampling import resample

if TYPE_CHECKING:  # pragma: no cover
    from sesame_voice.api.provider import Provider


def fit_context(
    provider: "Provider", context: Sequence[ContextSegment], params: Mapping[str, Any]
) -> list[ContextSegment]:
    """The newest segments that fit the provider's window, audio resampled to its context rate.

    Oldest segments go first; a provider without context support gets none.
    """
    if not provider.supports_context or not context:
        return []
    window = provider.context_window(params)
    kept: list[ContextSegment] = []
    used = 0.0
    for segment in reversed(context):
        cost = provider.context_cost(segment)
        if used + cost > window:
            break
        kept.append(segment)
        used += cost
    kept.reverse()
    rate = provider.context_sample_rate
    return [_resampled(segment, rate) for segment in kept] if rate else kept


def _resampled(segment: ContextSegment, rate: int) -> ContextSegment:
    if segment.audio is None or not segment.sample_rate or segment.sample_rate == rate:
        return segment
    return replace(segment, audio=resample(segment.audio, segment.sample_rate, rate), sample_rate=rate)
