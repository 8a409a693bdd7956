"""Sesame's built-in voice prompts (``prompt: conversational_a`` in a voice's params)."""

from __future__ import annotations

import logging
from pathlib import Path

_LOGGER = logging.getLogger(__name__)
PROMPT_REPO = "sesame/csm-1b"


def builtin_prompt(name: str, loaded, cache_dir: Path) -> tuple[str, str] | None:
    """(wav path, transcript) of a built-in prompt, or None when it cannot be found.

    Looked for in ``MODEL_ID/prompts/NAME.wav`` (+ ``.txt``), then on the hub (the model's own repo,
    then sesame/csm-1b) into ``cache_dir``; a missing transcript comes from mlx-audio's table.
    """
    if not name.replace("_", "").isalnum():
        return None
    local = Path(loaded.model_dir) / "prompts" / f"{name}.wav"
    wav = str(local) if local.is_file() else None
    text = _read(local.with_suffix(".txt"))
    if wav is None:
        wav, text = _from_hub(name, loaded.hub_id, cache_dir)
    if wav is None:
        return None
    if not text:
        text = _stock_transcript(loaded.model, name)
    return (wav, text) if text else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _from_hub(name: str, hub_id: str | None, cache_dir: Path) -> tuple[str | None, str | None]:
    from huggingface_hub import hf_hub_download

    for repo in dict.fromkeys([hub_id, PROMPT_REPO]):
        if not repo:
            continue
        try:
            wav = hf_hub_download(repo, f"prompts/{name}.wav", cache_dir=cache_dir / "hub")
        except Exception as err:  # noqa: BLE001 - offline, gated or absent: try the next source
            _LOGGER.debug("No prompt %s in %s: %s", name, repo, err)
            continue
        try:
            text = _read(Path(hf_hub_download(repo, f"prompts/{name}.txt", cache_dir=cache_dir / "hub")))
        except Exception:  # noqa: BLE001
            text = None
        return wav, text
    return None, None


def _stock_transcript(model, name: str) -> str | None:
    """mlx-audio keeps the transcripts of Sesame's prompts as constants of ``default_speaker_prompt``."""
    code = getattr(getattr(type(model), "default_speaker_prompt", None), "__code__", None)
    if code is None:
        return None
    texts = [c for c in code.co_consts if isinstance(c, str) and len(c) > 40]
    for names in (c for c in code.co_consts if isinstance(c, tuple) and name in c):
        if len(names) == len(texts):
            return texts[names.index(name)]
    return None
