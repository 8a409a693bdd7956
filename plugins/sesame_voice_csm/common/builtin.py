"""Sesame's built-in voice prompts (``prompt: conversational_a`` in a voice's params).

The hub repo sesame/csm-1b ships only ``prompts/*.wav``; their transcripts are the ones Sesame's
own generator uses, kept here in :data:`TRANSCRIPTS`.
"""

from __future__ import annotations

import logging
from pathlib import Path

_LOGGER = logging.getLogger(__name__)
PROMPT_REPO = "sesame/csm-1b"
TRANSCRIPTS = {
    "conversational_a": (
        "like revising for an exam I'd have to try and like keep up the momentum because I'd start really early "
        "I'd be like okay I'm gonna start revising now and then like you're revising for ages and then I just "
        "like start losing steam I didn't do that for the exam we had recently to be fair that was a more of a "
        "last minute scenario but like yeah I'm trying to like yeah I noticed this yesterday that like Mondays I "
        "sort of start the day with this not like a panic but like a"
    ),
    "conversational_b": (
        "like a super Mario level. Like it's very like high detail. And like, once you get into the park, it just "
        "like, everything looks like a computer game and they have all these, like, you know, if, if there's like "
        "a, you know, like in a Mario game, they will have like a question block. And if you like, you know, punch "
        "it, a coin will come out. So like everyone, when they come into the park, they get like this little "
        "bracelet and then you can go punching question blocks around."
    ),
}
"""Transcripts of the built-in prompts (from Sesame's csm repo); a ``prompts/NAME.txt`` next to the clip wins."""


def builtin_prompt(name: str, loaded) -> tuple[str, str] | None:
    """(wav path, transcript) of a built-in prompt, or None when its clip or transcript cannot be found.

    Looked for in the model folder's ``prompts/NAME.wav`` (+ ``.txt``), then in the hub repo
    (the model's own, then sesame/csm-1b) through the standard Hugging Face cache.
    """
    if not name.replace("_", "").isalnum():
        return None
    local = Path(loaded.model_dir) / "prompts" / f"{name}.wav"
    wav = str(local) if local.is_file() else None
    text = _read(local.with_suffix(".txt"))
    if wav is None:
        wav, text = _from_hub(name, loaded.hub_id)
    if wav is None:
        return None
    text = text or TRANSCRIPTS.get(name)
    if not text:
        _LOGGER.warning("CSM built-in prompt %s has no transcript (no prompts/%s.txt)", name, name)
    return (wav, text) if text else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _from_hub(name: str, hub_id: str | None) -> tuple[str | None, str | None]:
    from huggingface_hub import hf_hub_download

    for repo in dict.fromkeys([hub_id, PROMPT_REPO]):
        if not repo:
            continue
        try:
            wav = hf_hub_download(repo, f"prompts/{name}.wav")
        except Exception as err:  # noqa: BLE001 - offline, gated or absent: try the next source
            _LOGGER.debug("No prompt %s in %s: %s", name, repo, err)
            continue
        txt = Path(wav).with_suffix(".txt")
        return wav, _read(txt)
    return None, None
