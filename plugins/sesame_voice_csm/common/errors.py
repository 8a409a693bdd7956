"""Why CSM could not load, one class per cause, each with the advice that fits it.

* :class:`WeightsMissing` - files are not there (empty folder, partial download, offline and not
  cached): download them, or point MODEL_ID at a complete folder.
* :class:`AccessDenied` - the hub refused (gated repo, licence not accepted, not logged in).
* :class:`WeightsUnreadable` - files are there but cannot be parsed or do not fit (corrupt file,
  shapes that disagree with config.json, a config this version cannot read).
* :class:`DownloadFailed` - the hub could not be reached or the transfer broke.

The ``hf`` command comes with huggingface-hub 0.34 and later (``pip install -U huggingface-hub``).
"""

from __future__ import annotations

from pathlib import Path

from sesame_voice.api.errors import ProviderUnavailable

DEFAULT_REPO = "sesame/csm-1b"
OFFLINE_PARTS = (
    "CSM_TOKENIZER and CSM_MIMI (plugins.csm.tokenizer / plugins.csm.mimi) point at local tokenizer "
    "and Mimi files for a fully offline install"
)
HF_COMMAND_NOTE = "the hf command needs huggingface-hub 0.34 or later: pip install -U huggingface-hub"


class WeightsMissing(ProviderUnavailable):
    """The checkpoint's files are not (all) there."""


class AccessDenied(ProviderUnavailable):
    """The hub refused the download: gated repository, licence not accepted, or not logged in."""


class WeightsUnreadable(ProviderUnavailable):
    """Files are there but cannot be parsed, or their shapes or config do not fit a CSM."""


class DownloadFailed(ProviderUnavailable):
    """The hub could not be reached, or the transfer broke off."""


def is_hub_id(value: str) -> bool:
    """True for ``owner/name`` that is not an existing path."""
    path = Path(value).expanduser()
    return not path.exists() and not value.startswith((".", "/", "~")) and value.count("/") == 1


def repo_of(model_id: str) -> str:
    return model_id if is_hub_id(model_id) else DEFAULT_REPO


def missing_advice(model_id: str) -> str:
    """What to do when files are missing."""
    repo = repo_of(model_id)
    return (
        f"To fix: download the weights with `hf download {repo}` ({HF_COMMAND_NOTE}) and set "
        f"MODEL_ID={repo}, or set MODEL_ID (plugins.csm.model_id) to a local folder holding config.json, "
        f"the tokenizer and *.safetensors; {OFFLINE_PARTS}"
    )


def access_advice(repo_id: str) -> str:
    """What to do when the hub refuses access."""
    return (
        f"To fix: log in with `hf auth login` ({HF_COMMAND_NOTE}) using a token of an account that has "
        f"accepted the licence on https://huggingface.co/{repo_id}, or set MODEL_ID to a local folder"
    )


def unreadable_advice(model_id: str) -> str:
    """What to do when files are there but do not parse or fit."""
    repo = repo_of(model_id)
    where = (
        f"download them again (`hf download {repo} --force-download`)"
        if is_hub_id(model_id)
        else "copy them again from a complete CSM checkpoint"
    )
    return (
        f"The files are damaged or are not a CSM-1B checkpoint this version can read: {where}, or set "
        "MODEL_ID to another CSM checkpoint (a fine-tune must keep CSM's architecture and config.json)"
    )
