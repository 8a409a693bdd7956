"""Text preparation: whitespace normalisation, sentence splitting, and text that arrives while it is spoken."""

from __future__ import annotations

import contextlib
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager

from sentence_stream import SentenceBoundaryDetector, stream_to_sentences

from sesame_voice.api.errors import InvalidRequest
from sesame_voice.api.lead import split_lead

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


WAIT_POLL_SECONDS = 0.05
"""How often a reader waiting for text checks whether its job was cancelled."""


def split_first_clause(sentence: str) -> list[str]:
    """Cut a sentence after its speakable lead (``sesame_voice.api.lead.split_lead``).

    The first audio of an utterance then waits for a few words instead of a whole sentence; later
    sentences are spoken whole, so prosody only changes at that one place.
    """
    return split_lead(sentence)


class TextSource:
    """The text of one utterance, whole or still arriving, handed to providers sentence by sentence.

    The event loop ``add``s text as it arrives (it may end mid-word) and ``finish``es it; a provider
    job in its worker thread iterates ``reader(...)``, which blocks until the next sentence is
    complete. Every reader starts at the first sentence, so a fallback provider hears it all. With
    ``first_clause`` the first sentence comes as its lead and the rest (``split_lead``), so a
    provider can start speaking after a few words.
    """

    def __init__(self, first_clause: bool = False, max_pending_chars: int | None = None) -> None:
        self.first_clause = first_clause
        self._max_pending = max_pending_chars
        self._pending = 0
        self._splitter = SentenceStream()
        self._sentences: list[str] = []
        self._done = False
        self._changed = threading.Condition()

    @classmethod
    def complete(cls, text: str, first_clause: bool = False) -> "TextSource":
        """A source that already holds all of ``text``."""
        source = cls(first_clause)
        source._publish(split_sentences(text))
        source._end()
        return source

    @property
    def done(self) -> bool:
        """True once no more text will come."""
        return self._done

    @property
    def ready(self) -> bool:
        """True once a provider has something to do: a complete sentence, or the end of the text."""
        with self._changed:
            return bool(self._sentences) or self._done

    def add(self, text: str) -> None:
        """Take the next piece of text; InvalidRequest if it runs on too long without a sentence end."""
        if self._done:
            return
        sentences = self._splitter.add(text)
        self._publish(sentences)
        self._pending = max(0, self._pending + len(text) - sum(len(s) + 1 for s in sentences))
        if self._max_pending is not None and self._pending > self._max_pending:
            self._end()
            raise InvalidRequest(
                f"no sentence end in {self._pending} characters of streamed text", param="text", code="input_too_long"
            )

    def finish(self) -> None:
        """No more text: the remainder becomes the last sentence."""
        if not self._done:
            self._publish(self._splitter.finish())
            self._end()

    def abort(self) -> None:
        """Stop after the sentences already complete; text still pending is dropped."""
        self._end()

    def _publish(self, sentences: list[str]) -> None:
        if not sentences:
            return
        with self._changed:
            for sentence in sentences:
                first = self.first_clause and not self._sentences
                self._sentences.extend(split_first_clause(sentence) if first else [sentence])
            self._changed.notify_all()

    def _end(self) -> None:
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def reader(
        self, cancelled: threading.Event | None = None, waiting: Callable[[], AbstractContextManager] | None = None
    ) -> "SentenceReader":
        """A re-iterable view of the sentences for one job (see ``SentenceReader``)."""
        return SentenceReader(self, cancelled, waiting)

    def _runs(
        self, cancelled: threading.Event | None, waiting: Callable[[], AbstractContextManager] | None
    ) -> Iterator[list[str]]:
        """Runs of sentences: each waits for at least one more and takes all that are complete."""
        index = 0
        while True:
            with self._changed:
                ready = index < len(self._sentences) or self._done
            if not ready:
                with waiting() if waiting is not None else contextlib.nullcontext():
                    with self._changed:
                        while index >= len(self._sentences) and not self._done:
                            if cancelled is not None and cancelled.is_set():
                                return
                            self._changed.wait(WAIT_POLL_SECONDS)
            with self._changed:
                run = self._sentences[index:]
            if not run:
                return
            index += len(run)
            yield run


class SentenceReader:
    """A job's sentences: each iteration starts at the first one and blocks until the next is complete.

    ``waiting`` (a context manager factory) wraps each wait for text, so a worker can let other jobs
    use the provider meanwhile; iteration ends early once ``cancelled`` is set.
    """

    def __init__(
        self,
        source: TextSource,
        cancelled: threading.Event | None,
        waiting: Callable[[], AbstractContextManager] | None,
    ) -> None:
        self.source = source
        self._cancelled = cancelled
        self._waiting = waiting

    def __iter__(self) -> Iterator[str]:
        for run in self.runs():
            yield from run

    def runs(self) -> Iterator[list[str]]:
        """The sentences in runs: each run is every sentence complete when it was taken."""
        return self.source._runs(self._cancelled, self._waiting)


def sentence_runs(sentences: Iterable[str]) -> Iterator[list[str]]:
    """``job.sentences`` in runs, each holding every sentence available when it was taken.

    A whole text is one run. A provider that plans several sentences at once (CSM's groups) plans
    run by run, so text that is still arriving does not hold up the first audio.
    """
    if isinstance(sentences, SentenceReader):
        yield from sentences.runs()
        return
    run = list(sentences)
    if run:
        yield run
