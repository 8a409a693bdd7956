"""Find CSM's files before any backend is imported: the weights folder, its config, its format, the tokenizer.

Everything here uses only the standard library and huggingface_hub, so a server without weights
never imports torch or MLX; the backend is imported once :func:`locate` has found a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import CheckpointError, Selection, select_weights
from .download import missing_model_files, resolve_files, resolve_model_repo
from .errors import (
    AccessDenied,
    DownloadFailed,
    WeightsMissing,
    WeightsUnreadable,
    is_hub_id,
    missing_advice,
    unreadable_advice,
)

DEFAULT_TOKENIZER = "unsloth/Llama-3.2-1B"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"]
ProgressCallback = Callable[[str], None]


@dataclass
class Checkpoint:
    """A complete local CSM checkpoint, ready for a backend to load."""

    model_id: str
    model_dir: Path
    hub_id: str | None
    """The hub id the weights came from, if any (for built-in prompts)."""
    config: dict
    selection: Selection
    """The weight files of the one format that is loaded."""
    tokenizer_dir: Path
    llama_template: bool
    """Whether the tokenizer gets the Llama 3 bos/eos template (mlx-audio's default)."""


def locate(model_id: str, tokenizer: str | None, progress: ProgressCallback) -> Checkpoint:
    """Resolve (and download if needed) every file of ``model_id``; raise a load error with fitting advice."""
    model_dir, hub_id = resolve_model_dir(model_id, progress)
    config = read_config(model_dir, model_id)
    try:
        selection = select_weights(model_dir)
    except CheckpointError as err:
        raise WeightsUnreadable(
            f"CSM weights in {model_dir} could not be read ({err}). " + unreadable_advice(model_id)
        ) from None
    tokenizer_dir, llama_template = resolve_tokenizer(tokenizer, model_dir, config, progress)
    return Checkpoint(model_id, model_dir, hub_id, config, selection, tokenizer_dir, llama_template)


def resolve_model_dir(model_id: str, progress: ProgressCallback) -> tuple[Path, str | None]:
    """A complete local folder of the weights (from the HF cache or downloaded for a hub id) and the hub id."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        try:
            missing = missing_model_files(path)
        except CheckpointError as err:
            raise WeightsUnreadable(
                f"CSM weights in {path} could not be read ({err}). " + unreadable_advice(model_id)
            ) from None
        if missing:
            raise WeightsMissing(
                f"CSM weights {model_id!r}: {path} lacks {', '.join(missing)}. " + missing_advice(model_id)
            )
        return path, None
    if not is_hub_id(model_id):
        raise WeightsMissing(
            f"CSM weights: MODEL_ID {model_id!r} is neither a folder nor a hub id (owner/name). "
            + missing_advice(model_id)
        )
    return resolve_model_repo(model_id, progress), model_id


def read_config(model_dir: Path, model_id: str) -> dict:
    """``config.json`` of the weights folder as a dict."""
    config_file = model_dir / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except OSError as err:
        raise WeightsMissing(
            f"{config_file} cannot be read ({err.strerror or err}). " + missing_advice(model_id)
        ) from None
    except ValueError as err:
        raise WeightsUnreadable(f"{config_file} is not valid JSON ({err}). " + unreadable_advice(model_id)) from None
    if not isinstance(config, dict):
        raise WeightsUnreadable(f"{config_file} holds no JSON object. " + unreadable_advice(model_id))
    return config


def resolve_tokenizer(
    option: str | None, model_dir: Path, config: dict, progress: ProgressCallback
) -> tuple[Path, bool]:
    """Local tokenizer folder, and whether it gets the Llama 3 bos/eos template (mlx-audio's default)."""
    source = option or config.get("text_tokenizer")
    llama_template = not config.get("text_tokenizer") or bool(option)
    if not source and ((model_dir / "tokenizer.json").is_file() or (model_dir / "tokenizer.model").is_file()):
        return model_dir, True
    source = source or DEFAULT_TOKENIZER
    path = Path(source).expanduser()
    if path.is_dir():
        return path, llama_template
    if not is_hub_id(source):
        raise WeightsMissing(
            f"CSM tokenizer {source!r} is neither a folder nor a hub id; set CSM_TOKENIZER "
            "(plugins.csm.tokenizer) to a local folder with tokenizer.json"
        )
    try:
        return resolve_files(source, TOKENIZER_FILES, "Llama tokenizer", progress), llama_template
    except AccessDenied as err:
        raise AccessDenied(
            f"cannot get the CSM text tokenizer: {err} (the Llama 3.2 licence), or set CSM_TOKENIZER "
            "(plugins.csm.tokenizer) to a local folder with tokenizer.json"
        ) from None
    except (WeightsMissing, DownloadFailed) as err:
        raise type(err)(
            f"cannot get the CSM text tokenizer: {err}. Set CSM_TOKENIZER (plugins.csm.tokenizer) to "
            "a local folder with tokenizer.json"
        ) from None
