"""Fit long text into CSM's 2048-position window: frame budgets and sentence groups.

Every generation sees, in one causal sequence: the voice prompt and request context (fixed), the
previous group (its text and audio, so the voice carries over) and the current group's text plus
the audio frames it may generate. Each group is therefore kept within half of what the fixed part
leaves free, so "previous + current" always fits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sesame_voice.api.errors import InvalidRequest

WINDOW = 2048
FRAME_MS = 80
MIN_GROUP_POSITIONS = 48
"""Smallest room a group may have: a few words and their audio."""
_TERMINAL = ".!?…;:\"')]»"


@dataclass(frozen=True)
class Group:
    """Text generated in one pass, and the most 80 ms frames it may take."""

    text: str
    max_frames: int


def frame_budget(text: str, base_ms: int, per_char_ms: int, cap_frames: int) -> int:
    """Frames allowed for ``text``: generous for slow speech, but a model that never says EOS stops."""
    wanted = math.ceil((base_ms + per_char_ms * len(text)) / FRAME_MS)
    return max(1, min(wanted, cap_frames))


def finish_sentence(text: str) -> str:
    """End with punctuation, so the model closes the sentence instead of trailing off mid-word."""
    text = text.strip()
    return text if not text or text[-1] in _TERMINAL else text + "."


def plan_groups(
    sentences: Sequence[str],
    count_tokens: Callable[[str], int],
    fixed_positions: int,
    budget: Callable[[str], int],
    window: int = WINDOW,
) -> list[Group]:
    """Greedy groups of whole sentences (long sentences split at words) that each fit the room."""
    room = (window - fixed_positions) // 2
    if room < MIN_GROUP_POSITIONS:
        raise InvalidRequest(
            f"the voice prompt and context take {fixed_positions} of CSM's {window} positions, leaving too "
            "little for speech; use a shorter prompt clip or less context",
            param="context",
        )

    def cost(text: str) -> int:
        return count_tokens(text) + budget(text) + 2  # + pending frame + EOS frame

    pieces: list[str] = []
    for sentence in (s.strip() for s in sentences):
        if not sentence:
            continue
        sentence = finish_sentence(sentence)
        pieces.extend([sentence] if cost(sentence) <= room else _split_words(sentence, cost, room))
    groups: list[str] = []
    for piece in pieces:
        if groups and cost(groups[-1] + " " + piece) <= room:
            groups[-1] = groups[-1] + " " + piece
        else:
            groups.append(piece)
    return [Group(text, budget(text)) for text in groups]


def _split_words(sentence: str, cost: Callable[[str], int], room: int) -> list[str]:
    parts: list[str] = []
    current = ""
    for word in sentence.split():
        candidate = f"{current} {word}".strip()
        if current and cost(candidate) > room:
            parts.append(current)
            current = word
        else:
            current = candidate
    if current:
        parts.append(current)
    for part in parts:
        if cost(part) > room:
            raise InvalidRequest(f"a word is too long to speak: {part[:40]!r}", param="input")
    return parts
