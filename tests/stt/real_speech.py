"""Recordings of real human speech, read at run time from two Debian packages (no audio in this repo).

- ``pocketsphinx-testdata`` (BSD-2, Carnegie Mellon University / Alpha Cephei): CMU Sphinx test
  utterances and five LibriVox readings of *Sense and Sensibility* (LibriVox recordings are in the
  public domain), with their transcriptions.
- ``codec2-examples`` (LGPL-2.1, David Rowe): Harvard sentences and amateur-radio call-outs used to
  test the Codec 2 speech codec, 8 kHz.

``apt-get install pocketsphinx-testdata codec2-examples``. The references of the codec2 clips and
of the untranscribed Sphinx clips are written here (what the speakers say, numbers as digits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SPHINX = Path("/usr/share/pocketsphinx/test/data")
CODEC2 = Path("/usr/share/codec2")
PACKAGES = "pocketsphinx-testdata codec2-examples"
LONG_CLIP_START = 33.57
"""Seconds into codec2's all.wav where the last two call-outs (VK5QI, then VK5DGR) begin: 23.5 s
of one recording in which a call sign and a count are said over and over."""


@dataclass(frozen=True)
class Clip:
    name: str
    reference: str
    samples: np.ndarray
    """Mono float32 at ``rate``."""
    rate: int
    source: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


CODEC2_CLIPS = {
    "hts1a": "The Navy attacked the big task force.",
    "hts2a": "These days a chicken leg is a rare dish.",
    "mmt1": "It's easy to tell the depth of a well.",
    "morig": "That frog jumped through the weeds.",
    "forig": "Don't throw trash on the street.",
    "big_dog": "The big dog left to chew on the old rag doll.",
    "cross": "They took the cross town bus.",
    "vk5qi": "This is Victor Kilo 5 Quebec India, Victor Kilo 5 Quebec India, testing 1 2 3 4 5, 5 4 3 2 1.",
}
LONG_REFERENCE = (
    CODEC2_CLIPS["vk5qi"] + " This is VK5DGR, Victor Kilo 5 Delta Golf Romeo, testing 1 2 3 4 5 6 7 8 9 10."
)
SPHINX_CLIPS = {"goforward.raw": "Go forward 10 meters.", "something.raw": "Go somewhere and do something."}


def missing() -> str | None:
    """Why the corpus cannot be read, or None."""
    if not (SPHINX / "librivox").is_dir() or not (CODEC2 / "wav").is_dir():
        return f"the real-speech corpus is not installed: apt-get install {PACKAGES}"
    return None


def _read(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    if path.suffix == ".raw":  # headerless 16 kHz 16-bit little-endian mono
        return np.fromfile(path, "<i2").astype(np.float32) / 32768.0, 16000
    samples, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return samples.mean(axis=1), rate


def _transcriptions(path: Path) -> dict[str, str]:
    """Sphinx ``<s> words </s> (id)`` lines → {id: words}."""
    found = {}
    for line in path.read_text().splitlines():
        if "(" in line:
            text, _, ident = line.rpartition("(")
            found[ident.strip(" )")] = text.replace("<s>", "").replace("</s>", "").strip()
    return found


def clips() -> list[Clip]:
    """Every clip, shortest first; the last is the 23.5 s recording with repeated phrases."""
    if reason := missing():
        raise FileNotFoundError(reason)
    found = []
    for name, reference in SPHINX_CLIPS.items():
        found.append(Clip(name, reference, *_read(SPHINX / name), "pocketsphinx-testdata"))
    for folder, listing in (("librivox", "transcription"), ("cards", "cards.transcription")):
        for ident, text in _transcriptions(SPHINX / folder / listing).items():
            text = text.replace("a a amiable", "amiable").replace("mister", "mr")  # a stumble; Whisper's spelling
            found.append(
                Clip(
                    f"{folder}/{ident}",
                    text,
                    *_read(SPHINX / folder / f"{ident}.wav"),
                    "pocketsphinx-testdata (LibriVox, public domain)"
                    if folder == "librivox"
                    else "pocketsphinx-testdata",
                )
            )
    for name, reference in CODEC2_CLIPS.items():
        found.append(Clip(name, reference, *_read(CODEC2 / "wav" / f"{name}.wav"), "codec2-examples"))
    whole, rate = _read(CODEC2 / "wav" / "all.wav")
    found.append(
        Clip("all.wav from 33.6 s", LONG_REFERENCE, whole[int(LONG_CLIP_START * rate) :], rate, "codec2-examples")
    )
    return sorted(found, key=lambda clip: clip.duration)
