"""Hub repositories in the standard Hugging Face cache: find them, check them, download only what is missing.

Everything goes through huggingface_hub's own cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub``) and respects ``HF_HUB_OFFLINE``, so a model fetched with
``hf download`` or by another tool is used as it is and never downloaded twice.
A cached snapshot is used only once every file the chosen format needs is in it; otherwise the
download resumes, or (offline) the error names the missing files and the folder looked in.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable
from pathlib import Path

from .checkpoint import TRANSFORMERS_INDEX, CheckpointError, select_weights
from .errors import (
    HF_COMMAND_NOTE,
    AccessDenied,
    DownloadFailed,
    WeightsMissing,
    WeightsUnreadable,
    access_advice,
    unreadable_advice,
)

_LOGGER = logging.getLogger(__name__)
ProgressCallback = Callable[[str], None]
CONFIG_FILES = ["config.json"]
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
TRANSFORMERS_PATTERNS = [
    *CONFIG_FILES,
    *TOKENIZER_FILES,
    TRANSFORMERS_INDEX,
    "transformers-*.safetensors",
    "prompts/*.wav",
    "prompts/*.txt",
]
"""The one format downloaded from a repo that has the transformers shards (sesame/csm-1b): CSM and Mimi in ~7.1 GB."""
SINGLE_FORMAT_PATTERNS = [
    *CONFIG_FILES,
    *TOKENIZER_FILES,
    "tokenizer.model",
    "*.safetensors",
    "prompts/*.wav",
    "prompts/*.txt",
]
"""Repos with one format only (mlx-community conversions, a user's own upload)."""


def hub_cache() -> Path:
    """The Hugging Face hub cache folder in use (HF_HUB_CACHE / HF_HOME / default)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of ``repo_id`` (main), complete or not, without touching the network."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception as err:  # noqa: BLE001 - not cached, or known to be incomplete
        _LOGGER.debug("No cached snapshot of %s: %s", repo_id, err)
        path = getattr(err, "snapshot_path", None)  # huggingface_hub's IncompleteSnapshotError names it
        return Path(path) if path else None


def missing_model_files(folder: Path | None) -> list[str]:
    """What a CSM model folder lacks for its chosen format (config, tokenizer, every weight file).

    Raises CheckpointError for weight files that are there but hold no CSM weights.
    """
    if folder is None or not folder.is_dir():
        return [*CONFIG_FILES, "tokenizer.json", "weights (*.safetensors)"]
    missing = [name for name in CONFIG_FILES if not (folder / name).is_file()]
    selection = select_weights(folder)
    missing += selection.missing
    if selection.format is not None and not any(
        (folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model")
    ):
        if (folder / TRANSFORMERS_INDEX).is_file():  # sesame/csm-1b ships its tokenizer: it is part of the format
            missing.append("tokenizer.json")
    return missing


def resolve_model_repo(repo_id: str, progress: ProgressCallback) -> Path:
    """A complete snapshot of a CSM model repo, from the cache when complete, else downloaded (resuming)."""
    folder = cached_snapshot(repo_id)
    missing = _missing_or_broken(folder)
    if not missing:
        return folder
    where = folder or hub_cache()
    if offline():
        raise WeightsMissing(
            f"CSM weights {repo_id!r} are not completely in the Hugging Face cache ({where}): missing "
            f"{', '.join(missing)}. HF_HUB_OFFLINE is set, so nothing was downloaded; download them with "
            f"`hf download {repo_id}` ({HF_COMMAND_NOTE}), or set HF_HUB_CACHE / HF_HOME to the cache that has them"
        )
    patterns = _patterns_for(repo_id)
    folder = download(repo_id, patterns, "CSM weights", progress)
    missing = _missing_or_broken(folder)
    if missing:
        raise DownloadFailed(
            f"the download of {repo_id!r} into {folder} is incomplete: missing "
            f"{', '.join(missing)}; start the server again to resume it"
        )
    return folder


def _missing_or_broken(folder: Path | None) -> list[str]:
    try:
        return missing_model_files(folder)
    except CheckpointError as err:
        raise WeightsUnreadable(
            f"the cached CSM weights in {folder} are broken ({err}). " + unreadable_advice(str(folder))
        ) from None


def resolve_files(repo_id: str, filenames: list[str], label: str, progress: ProgressCallback) -> Path:
    """A snapshot of ``repo_id`` holding ``filenames`` (tokenizer or Mimi repos), cached or downloaded."""
    folder = cached_snapshot(repo_id)
    if folder is not None and all((folder / name).is_file() for name in filenames):
        return folder
    if offline():
        raise WeightsMissing(
            f"{label} {repo_id!r} is not in the Hugging Face cache ({folder or hub_cache()}): "
            f"missing {', '.join(filenames)}; HF_HUB_OFFLINE is set, so nothing was downloaded"
        )
    folder = download(repo_id, filenames, label, progress)
    missing = [name for name in filenames if not (folder / name).is_file()]
    if missing:
        raise WeightsMissing(f"{repo_id!r} has no {', '.join(missing)} ({label})")
    return folder


def download(repo_id: str, patterns: list[str], label: str, progress: ProgressCallback) -> Path:
    """``snapshot_download`` of ``patterns`` into the standard cache; files already there are not fetched again."""
    from huggingface_hub import snapshot_download

    progress(f"downloading {label} from the hub ({repo_id})")
    _LOGGER.info("Downloading %s (%s: %s) into %s", label, repo_id, ", ".join(patterns), hub_cache())
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns, tqdm_class=progress_bar(progress, label)))
    except Exception as err:  # noqa: BLE001 - gated, missing, network: one error class each
        raise download_error(repo_id, label, err) from None


def download_error(repo_id: str, label: str, err: BaseException) -> Exception:
    """The load error of a failed download: access denied (gated, not logged in), not found, or the transfer."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    reason = f"{type(err).__name__}: {first_line(err)}"
    if isinstance(err, (GatedRepoError, RepositoryNotFoundError)) or "401" in reason or "403" in reason:
        return AccessDenied(f"{label} {repo_id!r} cannot be downloaded ({reason}). " + access_advice(repo_id))
    return DownloadFailed(
        f"{label} {repo_id!r} could not be downloaded into {hub_cache()} ({reason}); check the "
        "network connection and start the server again (the download resumes)"
    )


def _patterns_for(repo_id: str) -> list[str]:
    """The files of the one format to download, from the repo's file list."""
    from huggingface_hub import HfApi

    try:
        names = HfApi().list_repo_files(repo_id)
    except Exception as err:  # noqa: BLE001
        raise download_error(repo_id, "CSM weights", err) from None
    if TRANSFORMERS_INDEX in names:
        return TRANSFORMERS_PATTERNS
    if not any(fnmatch.fnmatch(name, "*.safetensors") for name in names):
        raise WeightsMissing(f"{repo_id!r} holds no *.safetensors weights")
    return SINGLE_FORMAT_PATTERNS


def progress_bar(callback: ProgressCallback, label: str) -> type:
    """A ``tqdm`` class for huggingface_hub that forwards download progress to ``callback``."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            self._reported = -100.0
            kwargs["disable"] = False
            kwargs.setdefault("mininterval", 1.0)
            super().__init__(*args, **kwargs)

        def display(self, *args, **kwargs):
            if not self.total:
                return True
            percent = 100.0 * self.n / self.total
            if percent - self._reported >= 5 or self.n >= self.total:
                self._reported = percent
                done, total = (self.n / 1e6, self.total / 1e6) if self.unit == "B" else (self.n, self.total)
                unit = "MB" if self.unit == "B" else "files"
                callback(f"downloading {label}: {done:.0f}/{total:.0f} {unit} ({percent:.0f}%)")
            return True

    return Bar


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
