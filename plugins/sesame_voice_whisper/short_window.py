"""Short utterances decoded in a short encoder window instead of Whisper's fixed 30 s.

Whisper pads every window to 30 s, so a 3 s voice command pays for 30 s of encoder work (most of
the time to transcript on a CPU). CTranslate2 encodes shorter inputs; below about 10 s the model
starts to repeat itself, so the window is max(10 s, duration + 3 s), at most 28 s (longer audio
goes straight to the 30 s window: the encoder would save under 7%). A result that does not end
the way a complete transcript ends (closing timestamp, nothing past the end of the audio, not
repetitive, confident) is thrown away and the caller decodes the audio the normal way.
"""

from __future__ import annotations

import numpy as np

MIN_FRAMES = 1000
"""Shortest window in 10 ms mel frames (10 s); shorter windows make Whisper repeat itself."""
TAIL_FRAMES = 300
"""Silence after the speech, in frames (3 s), so the model hears the utterance end."""
FULL_FRAMES = 3000
MAX_WINDOW_FRAMES = 2800
"""Longest short window (28 s, audio up to 25 s). Long real speech needs it too: in the 30 s window
it costs exactly what faster-whisper's own call costs, so only a shorter window makes it cheaper
(a 23.5 s recording: the same words, ~6% sooner). Since repeated phrases are no longer taken for
loops (LOOP_REPEATS), long real speech passes the checks; a rejected decode is still decoded again."""
TOKENS_PER_SECOND = 10
TOKEN_SLACK = 24
"""A short decode may produce at most len(prompt) + TOKEN_SLACK + TOKENS_PER_SECOND * duration tokens
(speech is under ~6 text tokens a second, plus timestamps): a loop is cut off early and rejected
instead of running to Whisper's 448 tokens before the audio is decoded again."""
LOOP_REPEATS = 3
"""A phrase said this many times in a row is a decoder loop; twice is how people repeat themselves."""
MAX_COMPRESSION_RATIO = 2.4
MIN_AVG_LOGPROB = -1.0
"""faster-whisper's own thresholds for a failed decode (repetition, low confidence)."""
END_SLACK = 0.5
"""Seconds: a decode that stops this long before the audio ends, or a segment that starts this
close to its end, is not trusted. (Timestamps in a short window run late, so a closing timestamp
after the end is accepted and clamped.)"""


def fits(duration: float) -> bool:
    """True if audio this long (seconds) gains from a short window."""
    return max(MIN_FRAMES, duration * 100 + TAIL_FRAMES) <= MAX_WINDOW_FRAMES


def transcribe_short(
    model, samples: np.ndarray, language: str, prompt: str | None, beam_size: int
) -> list[dict] | None:
    """Segments (start, end, text, tokens, scores) of a short utterance, or None if no result is reliable.

    The window is encoded once. The beam's hypotheses are tried best first; when the best one ran
    into a loop (cut off at the token limit), the same encoder output is decoded once more ranked
    by total instead of average log-probability, where a loop cannot win by its length. Both cost
    a decoder pass, far less than encoding a 30 s window again.
    """
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    duration = len(samples) / model.feature_extractor.sampling_rate
    hop = model.feature_extractor.hop_length
    frames = max(MIN_FRAMES, len(samples) // hop + TAIL_FRAMES)
    if frames > MAX_WINDOW_FRAMES:
        return None
    # Pad with digital silence before the mel transform, as Whisper pads its 30 s windows.
    features = model.feature_extractor(np.pad(samples, (0, frames * hop - len(samples))))[:, :frames]
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    previous = tokenizer.encode(" " + prompt.strip()) if prompt else []
    request = model.get_prompt(tokenizer, previous, without_timestamps=False)
    encoded = model.encode(features)
    limit = TOKEN_SLACK + int(TOKENS_PER_SECOND * duration)
    for length_penalty in LENGTH_PENALTIES:
        result = model.model.generate(
            encoded,
            [request],
            beam_size=beam_size,
            num_hypotheses=beam_size,
            length_penalty=length_penalty,
            max_length=min(model.max_length, len(request) + limit),
            suppress_blank=True,
            suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
            max_initial_timestamp_index=50,
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        passing = []
        for tokens, score in zip(result.sequences_ids, result.scores):
            tokens = list(tokens)
            avg_logprob = score * max(len(tokens), 1) ** length_penalty / (len(tokens) + 1)
            segments = _checked(model, tokenizer, tokens, avg_logprob, result.no_speech_prob, frames, duration)
            if segments is not None:
                passing.append((score, segments))
        if passing:
            return _fullest(passing, length_penalty)
        best = result.sequences_ids[0]
        if best and best[-1] >= tokenizer.timestamp_begin:
            return None  # the best hypothesis closed by itself and was still unreliable: not a loop
    return None


LENGTH_PENALTIES = (1.0, 0.0)
"""Whisper's ranking (average log-probability), then total log-probability for a decode that looped."""


OMISSION_MARGIN = 0.05
"""Average log-probability by which a hypothesis that says everything the best one says and more
may trail it and still be kept: in a short window the beam's length normalisation tends to drop a
quiet first word (``And Mr. John Dashwood…`` → ``Mr. John Dashwood…``), which the 30 s window keeps."""


def _fullest(passing: list[tuple[float, list[dict]]], length_penalty: float) -> list[dict]:
    """The best hypothesis, or a nearly as likely one that contains all of its words and more."""
    best_score, chosen = passing[0]
    if length_penalty == 0.0:
        return chosen  # total log-probability: scores are not comparable per token
    for score, segments in passing[1:]:
        if best_score - score <= OMISSION_MARGIN and _contains(_words(segments), _words(chosen)):
            chosen = segments
    return chosen


def _words(segments: list[dict]) -> list[str]:
    return [word.strip(".,!?;:\"'").lower() for s in segments for word in s["text"].split()]


def _contains(longer: list[str], shorter: list[str]) -> bool:
    """True if ``longer`` has more words and every word of ``shorter`` in order among them."""
    if len(longer) <= len(shorter):
        return False
    remaining = iter(longer)
    return all(any(word == other for other in remaining) for word in shorter)


def _checked(model, tokenizer, tokens, avg_logprob, no_speech_prob, frames, duration) -> list[dict] | None:
    """The segments of one hypothesis if it ends the way a complete transcript ends, else None."""
    from faster_whisper.transcribe import get_compression_ratio

    if len(tokens) < 2 or tokens[-1] < tokenizer.timestamp_begin:
        return None  # no closing timestamp: the decode ran off
    pieces, _, finished = model._split_segments_by_timestamps(tokenizer, tokens, 0.0, frames, duration, 0)
    last = (tokens[-1] - tokenizer.timestamp_begin) * model.time_precision
    if not finished and last < duration - END_SLACK:
        return None  # the model wants to go on before the audio ended: decode it the normal way
    segments = []
    for piece in pieces:
        text_tokens = [t for t in piece["tokens"] if t < tokenizer.eot]
        text = tokenizer.decode(text_tokens)
        if piece["start"] > duration - END_SLACK or piece["start"] > piece["end"]:
            return None  # speech "heard" after the audio ended
        if text.strip():
            segments.append(
                {
                    "start": piece["start"],
                    "end": min(piece["end"], duration),
                    "text": text,
                    "tokens": text_tokens,
                    "avg_logprob": avg_logprob,
                    "no_speech_prob": no_speech_prob,
                    "compression_ratio": get_compression_ratio(text),
                }
            )
    texts = [s["text"].strip().lower() for s in segments]
    whole = " ".join(texts)
    if not whole or get_compression_ratio(whole) > MAX_COMPRESSION_RATIO or avg_logprob < MIN_AVG_LOGPROB:
        return None
    if repetitive(texts):
        return None
    return segments


def repetitive(texts: list[str]) -> bool:
    """A phrase (1-12 words, or a whole segment) said LOOP_REPEATS times in a row: the short
    window's way of failing. Real speech repeats a call sign or a sentence twice; loops go on."""
    if any(texts[i : i + LOOP_REPEATS] == [texts[i]] * LOOP_REPEATS for i in range(len(texts) - LOOP_REPEATS + 1)):
        return True
    words = [word.strip(".,!?;:") for word in " ".join(texts).split()]
    for size in range(1, 13):
        for start in range(len(words) - size * LOOP_REPEATS + 1):
            phrase = words[start : start + size]
            if all(words[start + k * size : start + (k + 1) * size] == phrase for k in range(1, LOOP_REPEATS)):
                return True
    return False
