"""Word timings from Piper's phoneme durations (piper-tts alignments, the model's ``w_ceil`` output)."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from sesame_voice import Word

_LOGGER = logging.getLogger(__name__)


def spoken_words(text: str) -> list[str]:
    """The text's words as written (punctuation kept), leaving out tokens with no letter or digit."""
    return [token for token in text.split() if any(c.isalnum() for c in token)]


def aligned_session(model_path: str, make_session):
    """An ONNX Runtime session of the model with its per-phoneme sample counts as a second output,
    or None when the ``onnx`` package is missing or the graph cannot be patched."""
    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError:
        _LOGGER.warning("Piper word timings need the onnx package (pip install 'piper-tts[alignment]')")
        return None
    model = onnx.load(str(Path(model_path)))
    try:
        add_alignment_output(model)
    except ValueError as err:  # already an output (a patched model file) or no Ceil node
        if "already" not in str(err):
            _LOGGER.warning("Piper model %s gives no phoneme durations: %s", model_path, err)
            return None
    return make_session(model.SerializeToString())


def _is_spoken(phoneme: str) -> bool:
    """True for a phoneme that sounds (not a word break, punctuation, or BOS/EOS/PAD marker)."""
    return any(unicodedata.category(c)[0] in "LM" for c in phoneme)


def phoneme_spans(alignments, sample_rate: int) -> list[tuple[float, float] | None]:
    """(start, end) seconds of each sounding phoneme of one Piper chunk, None at each word break.

    Each alignment covers a phoneme and the pad after it; punctuation and markers are pauses."""
    spans: list[tuple[float, float] | None] = []
    position = 0
    for alignment in alignments:
        begin, position = position, position + int(alignment.num_samples)
        if alignment.phoneme == " ":
            spans.append(None)
        elif _is_spoken(alignment.phoneme):
            spans.append((begin / sample_rate, position / sample_rate))
    return spans


def word_spans(phonemes: Sequence[tuple[float, float] | None]) -> list[tuple[float, float]]:
    """(start, end) of each espeak word: from its first sounding phoneme to the end of its last."""
    spans, current = [], []
    for span in [*phonemes, None]:
        if span is None:
            if current:
                spans.append((current[0][0], current[-1][1]))
            current = []
        else:
            current.append(span)
    return spans


def timed_words(words: Sequence[str], sizes: Sequence[tuple[int, int]], phonemes) -> tuple[Word, ...]:
    """``words`` timed by a chunk's ``phoneme_spans``; ``sizes[i]``: (espeak words, sounding phonemes)
    of ``words[i]`` said alone ("42" is "forty two": 2 words). Exact when the espeak words add up;
    else (espeak joined or split words in context) cut at phoneme boundaries in proportion to the
    words' phoneme counts."""
    spoken = [p for p in phonemes if p is not None]
    if not words or not spoken:
        return ()
    spans = word_spans(phonemes)
    result = []
    if sum(n for n, _ in sizes) == len(spans) and all(n for n, _ in sizes):
        index = 0
        for word, (count, _) in zip(words, sizes, strict=True):
            result.append(Word(start=round(spans[index][0], 3), end=round(spans[index + count - 1][1], 3), word=word))
            index += count
        return tuple(result)
    total = sum(max(1, p) for _, p in sizes)
    done = 0
    for word, (_, count) in zip(words, sizes, strict=True):
        first = round(done * len(spoken) / total)
        done += max(1, count)
        last = max(first, round(done * len(spoken) / total) - 1)
        last = min(last, len(spoken) - 1)
        first = min(first, last)
        result.append(Word(start=round(spoken[first][0], 3), end=round(spoken[last][1], 3), word=word))
    return tuple(result)


def share_words(sizes: Sequence[tuple[int, int]], groups: Sequence[int]) -> list[range]:
    """Which of a sentence's words (``sizes[i]`` espeak words each) fall in each of Piper's chunks
    (espeak sentences of ``groups[k]`` espeak words): filled in order; the last takes the rest."""
    shares, index = [], 0
    for k, group in enumerate(groups):
        first, filled = index, 0
        while index < len(sizes) and (k == len(groups) - 1 or index == first or filled + sizes[index][0] <= group):
            filled += sizes[index][0]
            index += 1
        shares.append(range(first, index))
    return shares


def word_counts(phoneme_sentences: Sequence[Sequence[str]]) -> list[int]:
    """Espeak words in each of Piper's sentences (its ``phonemize`` output)."""
    counts = []
    for phonemes in phoneme_sentences:
        words = "".join(p if _is_spoken(p) or p == " " else " " for p in phonemes).split()
        if phonemes:
            counts.append(len(words))
    return counts


def word_size(voice, word: str) -> tuple[int, int]:
    """(espeak words, sounding phonemes) of ``word`` said alone by the Piper ``voice``."""
    sentences = voice.phonemize(word)
    return sum(word_counts(sentences)), sum(_is_spoken(p) for s in sentences for p in s)
