"""First audio sooner: where an answer's first sentence is cut so its opening can be spoken first.

One policy for every route (Wyoming, OpenAI speech in audio and SSE, sessions, realtime): the
engine's ``TextSource`` hands the provider ``split_lead(first_sentence)`` instead of the sentence.
Later sentences are spoken whole, so prosody changes at one place only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

LEAD_MIN_WORDS = 2
"""A lead cut at a clause break has at least this many words, and so has the rest: "Sure," alone is
joined with the next clause instead ("Sure, I have switched off the lights, | and ...")."""
LEAD_MAX_WORDS = 7
"""A clause lead longer than this waits too long (Piper's time grows with the lead's audio); the
sentence is cut at a word boundary inside it instead ("Sure, I have switched off | the kitchen
lights, and ..."). With 10, an answer opening with "Sure," waited for the whole 8-word clause."""
WORD_CUT_MIN_WORDS = 7
"""A sentence with no usable clause break is cut at a word boundary only from this many words on."""
WORD_CUT_RANGE = (3, 5)
"""A word-boundary lead has this many words (fewest, most); the rest keeps at least ``WORD_CUT_TAIL``."""
WORD_CUT_TAIL = 3
CUT_BEFORE = frozenset(
    "and but or so because while when with without to in on at for from of by about after before "
    "into over under is are was were will would can could should has have had".split()
)
"""Words a phrase naturally starts with: a word cut before one of them is preferred."""

_CLAUSE_END = re.compile(r"[,;:\u2013\u2014]\s+")


class Lead(str):
    """The first piece of a sentence cut by ``split_lead``; the next piece is the rest of it."""


class Continued(Lead):
    """A lead cut at a word boundary: the next piece continues its phrase without a pause.

    A provider that speaks pieces one call at a time joins this piece's end to the next piece's
    start tightly (``sesame_voice.audio.trim_seam``) instead of leaving a sentence's silence there.
    """


def split_lead(sentence: str) -> list[str]:
    """Cut ``sentence`` after its speakable lead; ``[sentence]`` when no cut is worth it.

    The first clause break whose lead and rest both have ``LEAD_MIN_WORDS`` words ("All right
    then, | the lights are on."); leading one-word clauses ride along with the next one. With no
    such break, a long enough sentence is cut at a word boundary after a few words, returned as
    ``Continued`` ("The weather today | is sunny and warm with a light breeze.").
    """
    words = len(sentence.split())
    for match in _CLAUSE_END.finditer(sentence):
        head, tail = sentence[: match.end()].strip(), sentence[match.end() :].strip()
        head_words = len(head.split())
        if len(tail.split()) < LEAD_MIN_WORDS or head_words > LEAD_MAX_WORDS:
            break
        if head_words >= LEAD_MIN_WORDS:
            return [Lead(head), tail]
    if words < WORD_CUT_MIN_WORDS:
        return [sentence]
    return _word_cut(sentence)


def _word_cut(sentence: str) -> list[str]:
    """Cut after ``WORD_CUT_RANGE`` words, before a phrase-starting word where there is one."""
    words = sentence.split()
    fewest, most = WORD_CUT_RANGE
    most = min(most, len(words) - WORD_CUT_TAIL)
    if most < fewest:
        return [sentence]
    target = round(len(words) * 0.4)
    candidates = range(fewest, most + 1)
    natural = [k for k in candidates if _bare(words[k]) in CUT_BEFORE and _bare(words[k - 1]) not in CUT_BEFORE]
    cut = min(natural or candidates, key=lambda k: abs(k - target))
    if not words[cut - 1][-1].isalnum():  # "lights," or "on:" ends a clause the first loop refused
        return [Lead(" ".join(words[:cut])), " ".join(words[cut:])]
    return [Continued(" ".join(words[:cut])), " ".join(words[cut:])]


def whole_sentences(pieces: Iterable[str], joining: type[Lead] = Lead) -> Iterator[str]:
    """``pieces`` with each lead of type ``joining`` joined to the rest of its sentence again: for a
    provider that starts speaking inside a sentence and needs no cut (Piper joins only ``Continued``
    word cuts; a cut at a clause break, where the voice pauses anyway, still shortens its first call)."""
    pieces = iter(pieces)
    for piece in pieces:
        if isinstance(piece, joining):
            rest = next(pieces, None)
            yield piece if rest is None else f"{piece} {rest}"
        else:
            yield piece


def _bare(word: str) -> str:
    return word.strip(".,;:!?\"'()").lower()
