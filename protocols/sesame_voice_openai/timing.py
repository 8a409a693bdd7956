"""Word timings for captions: matching the input's words to Whisper's, estimates, and SRT/WebVTT."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from sesame_voice import Word

CUE_MAX_WORDS = 8
CUE_MAX_SECONDS = 5.0
"""A subtitle cue ends after a sentence, this many words, or this many seconds."""


def spoken_words(text: str) -> list[str]:
    """The text's words as written (punctuation kept), leaving out tokens with no letter or digit."""
    return [token for token in text.split() if any(c.isalnum() for c in token)]


def _key(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower()).strip("'")


def align_words(text: str, heard: Sequence[Word], duration: float) -> list[Word]:
    """The input's words timed by what Whisper heard: each word Whisper heard the same gets its time;
    the others share the time between their timed neighbours in proportion to their letters.
    With nothing heard, the words share the whole audio (an estimate)."""
    words = spoken_words(text)
    heard = [w for w in heard if _key(w.word)]
    times: list[tuple[float, float] | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(a=[_key(w) for w in words], b=[_key(w.word) for w in heard], autojunk=False)
    for block in matcher.get_matching_blocks():
        for i in range(block.size):
            source = heard[block.b + i]
            times[block.a + i] = (source.start, source.end)
    floor = heard[0].start if heard else 0.0
    ceiling = heard[-1].end if heard else duration
    return _fill_gaps(words, times, floor, max(floor, ceiling))


def _fill_gaps(words: list[str], times: list, floor: float, ceiling: float) -> list[Word]:
    """Untimed runs of words spread over the time between the timed words around them."""
    index = 0
    while index < len(words):
        if times[index] is not None:
            index += 1
            continue
        end = index
        while end < len(words) and times[end] is None:
            end += 1
        start_at = times[index - 1][1] if index else floor
        stop_at = times[end][0] if end < len(words) else ceiling
        stop_at = max(start_at, stop_at)
        weights = [max(1, sum(c.isalnum() for c in w)) for w in words[index:end]]
        position = start_at
        for offset, weight in enumerate(weights):
            step = (stop_at - start_at) * weight / sum(weights)
            times[index + offset] = (position, position + step)
            position += step
        index = end
    return [Word(start=round(s, 3), end=round(max(s, e), 3), word=w) for w, (s, e) in zip(words, times, strict=True)]


def _cues(words: Sequence[Word]) -> list[list[Word]]:
    cues: list[list[Word]] = []
    for word in words:
        current = cues[-1] if cues else None
        if (
            current is None
            or len(current) >= CUE_MAX_WORDS
            or word.end - current[0].start > CUE_MAX_SECONDS
            or current[-1].word.rstrip("\"')»”").endswith((".", "!", "?"))
        ):
            cues.append([word])
        else:
            current.append(word)
    return cues


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def subtitles(words: Sequence[Word], fmt: str) -> str:
    """The words as SubRip (``srt``) or WebVTT (``vtt``) cues: a sentence, 8 words or 5 s each."""
    blocks = []
    for number, cue in enumerate(_cues(words), start=1):
        start, end = cue[0].start, max(cue[-1].end, cue[0].start + 0.001)
        separator = "," if fmt == "srt" else "."
        timing = f"{_clock(start, separator)} --> {_clock(end, separator)}"
        text = " ".join(w.word for w in cue)
        blocks.append(f"{number}\n{timing}\n{text}\n" if fmt == "srt" else f"{timing}\n{text}\n")
    body = "\n".join(blocks)
    return body if fmt == "srt" else f"WEBVTT\n\n{body}"


def word_object(word: Word) -> dict:
    """A word as the API returns it."""
    return {"word": word.word, "start": word.start, "end": word.end}
