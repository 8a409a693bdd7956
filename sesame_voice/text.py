"""Text preparation: whitespace normalisation and sentence splitting for streaming."""

from __future__ import annotations

import re
import unicodedata

from sentence_stream import SentenceBoundaryDetector, stream_to_sentences

MAX_SENTENCE_CHARS = 400
"""Sentences longer than this are split further at clause or word boundaries."""

_CLAUSE_BREAK = re.compile(r"(?<=[,;:—–])\s+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def normalize(text: str) -> str:
    """Drop control characters and lone surrogates, collapse runs of whitespace (keeping paragraph
    breaks) and strip the ends."""
    text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cs"))
    paragraphs = [" ".join(part.split()) for part in _PARAGRAPH_BREAK.split(text)]
    return "\n\n".join(p for p in paragraphs if p)


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split text into sentences, none longer than ``max_chars``; nothing is dropped."""
    sentences: list[str] = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        for sentence in stream_to_sentences([paragraph]):
            sentences.extend(_split_long(sentence.strip(), max_chars))
    return [s for s in sentences if s]


def _split_long(sentence: str, max_chars: int) -> list[str]:
    """Break an over-long sentence at clause breaks, then at spaces, never inside a word."""
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for part in _CLAUSE_BREAK.split(sentence):
        for word in part.split(" ") if len(part) > max_chars else [part]:
            candidate = f"{current} {word}".strip()
            if current and len(candidate) > max_chars:
                pieces.append(current)
                current = word
            else:
                current = candidate
        if len(current) >= max_chars // 2:
            pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


class SentenceStream:
    """Incremental splitter for text that arrives in pieces (possibly mid-word)."""

    def __init__(self, max_chars: int = MAX_SENTENCE_CHARS) -> None:
        self._detector = SentenceBoundaryDetector()
        self._max_chars = max_chars

    def add(self, chunk: str) -> list[str]:
        """Feed more text; return the sentences it completed."""
        done: list[str] = []
        for sentence in self._detector.add_chunk(chunk):
            done.extend(split_sentences(sentence, self._max_chars))
        return done

    def finish(self) -> list[str]:
        """Return whatever text remains as final sentences."""
        return split_sentences(self._detector.finish(), self._max_chars)
