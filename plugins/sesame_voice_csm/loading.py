"""Find, download and load CSM weights, its Llama tokenizer and the Mimi codec through mlx-audio.

mlx-audio's ``tts.utils.load_model`` does the real work (config, ``sanitize``, quantisation,
strict weight loading). Its sesame ``Model`` fetches the tokenizer and Mimi from hard-coded hub
ids while it is built; :func:`_sources` points both at what this module resolved (local folders
or our own downloads into ``cache_dir``), so an install can be fully offline.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sesame_voice.types import ProviderUnavailable

from .checkpoint import convert_transformers_checkpoint, is_transformers_checkpoint

_LOGGER = logging.getLogger(__name__)
DEFAULT_TOKENIZER = "unsloth/Llama-3.2-1B"
DEFAULT_MIMI = "kyutai/moshiko-pytorch-bf16"
MIMI_FILENAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
MODEL_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model", "prompts/*"]
TOKENIZER_PATTERNS = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"]
INSTALL_ADVICE = "install it with: pip install 'sesame-voice[csm]'"
_PATCH_LOCK = threading.Lock()

ProgressCallback = Callable[[str], None]


@dataclass
class LoadedCsm:
    """A loaded mlx-audio sesame ``Model`` and where its parts came from."""

    model: object
    model_dir: Path
    mimi_file: Path
    hub_id: str | None
    """The hub id the weights came from, if any (for built-in prompts)."""

    @property
    def codec_tag(self) -> str:
        """Short fingerprint of the Mimi weights: prompt token caches are only valid for one codec."""
        stat = self.mimi_file.stat()
        key = f"{self.mimi_file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return hashlib.sha256(key.encode()).hexdigest()[:12]


def import_mlx():
    """Import mlx and mlx-audio's sesame module, or raise ProviderUnavailable with install advice."""
    try:
        import mlx.core as mx
        from mlx_audio.tts.models.sesame import sesame
    except ImportError as err:
        raise ProviderUnavailable(f"CSM needs mlx and mlx-audio ({err}); {INSTALL_ADVICE}") from None
    return mx, sesame


def is_hub_id(value: str) -> bool:
    """True for ``owner/name`` that is not an existing path."""
    path = Path(value).expanduser()
    return not path.exists() and not value.startswith((".", "/", "~")) and value.count("/") == 1


def checkpoint_advice(model_id: str) -> str:
    """The one message for a missing, gated or broken checkpoint."""
    return (
        f"CSM weights {model_id!r} are not usable. To fix: log in to the Hugging Face hub "
        f"(huggingface-cli login), accept the licence on the model page "
        f"(https://huggingface.co/{model_id if is_hub_id(model_id) else 'sesame/csm-1b'}), "
        "or set MODEL_ID to a local folder holding config.json and *.safetensors "
        "(CSM_TOKENIZER and CSM_MIMI, or plugins.csm.tokenizer / plugins.csm.mimi, point at local "
        "tokenizer and Mimi files for a fully offline install)"
    )


def progress_bar(callback: ProgressCallback, label: str) -> type:
    """A ``tqdm`` class for huggingface_hub that forwards download progress to ``callback``."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            self._reported = -100.0
            kwargs["disable"] = False
            kwargs.setdefault("mininterval", 1.0)
            super().__init__(*args, **kwargs)

        def display(self, *args, **kwargs):  # noqa: D401 - tqdm hook
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


def _download(repo_id: str, cache_dir: Path, patterns: list[str], label: str, progress: ProgressCallback) -> Path:
    """Snapshot of ``repo_id`` in ``cache_dir/hub``, from the local cache when it is complete."""
    from huggingface_hub import snapshot_download

    hub_cache = cache_dir / "hub"
    try:
        return Path(snapshot_download(repo_id, cache_dir=hub_cache, allow_patterns=patterns, local_files_only=True))
    except OSError:
        pass
    progress(f"downloading {label} from the hub ({repo_id})")
    _LOGGER.info("Downloading %s (%s) into %s", label, repo_id, hub_cache)
    path = snapshot_download(repo_id, cache_dir=hub_cache, allow_patterns=patterns,
                             tqdm_class=progress_bar(progress, label))
    return Path(path)


def resolve_model_dir(model_id: str, cache_dir: Path, progress: ProgressCallback) -> tuple[Path, str | None]:
    """Local folder of the weights (downloading a hub id) and the hub id, if one."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        return path, None
    if not is_hub_id(model_id):
        raise ProviderUnavailable(f"MODEL_ID {model_id!r} is not a folder. " + checkpoint_advice(model_id))
    try:
        return _download(model_id, cache_dir, MODEL_PATTERNS, "CSM weights", progress), model_id
    except OSError as err:
        raise ProviderUnavailable(f"{checkpoint_advice(model_id)} ({type(err).__name__}: {_first_line(err)})") from None


def resolve_tokenizer(option: str | None, model_dir: Path, config: dict, cache_dir: Path,
                      progress: ProgressCallback) -> tuple[Path, bool]:
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
        raise ProviderUnavailable(f"CSM tokenizer {source!r} is neither a folder nor a hub id; set CSM_TOKENIZER")
    try:
        return _download(source, cache_dir, TOKENIZER_PATTERNS, "Llama tokenizer", progress), llama_template
    except OSError as err:
        raise ProviderUnavailable(
            f"cannot get the CSM text tokenizer {source!r} ({type(err).__name__}: {_first_line(err)}); "
            "log in with huggingface-cli login and accept the Llama 3.2 licence, or set CSM_TOKENIZER "
            "(plugins.csm.tokenizer) to a local folder with tokenizer.json"
        ) from None


def resolve_mimi(option: str | None, cache_dir: Path, progress: ProgressCallback) -> Path:
    """Local Mimi weights file."""
    source = option or DEFAULT_MIMI
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        candidates = [path / MIMI_FILENAME] + sorted(path.glob("*.safetensors"))
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise ProviderUnavailable(f"Mimi folder {path} holds no .safetensors file; set CSM_MIMI to the file")
    if not is_hub_id(source):
        raise ProviderUnavailable(f"Mimi weights {source!r} not found; set CSM_MIMI to the Mimi .safetensors file")
    try:
        return _download(source, cache_dir, [MIMI_FILENAME], "Mimi codec", progress) / MIMI_FILENAME
    except OSError as err:
        raise ProviderUnavailable(
            f"cannot get the Mimi codec from {source!r} ({type(err).__name__}: {_first_line(err)}); "
            "set CSM_MIMI (plugins.csm.mimi) to a local copy of " + MIMI_FILENAME
        ) from None


def load_mimi(path: Path):
    """Mimi exactly as mlx-audio's ``Mimi.from_pretrained`` builds it, from a local file."""
    import mlx.core as mx
    from mlx_audio.codec.models.mimi.mimi import Mimi, mimi_202407

    mimi = Mimi(mimi_202407(32))
    try:
        mimi.load_pytorch_weights(str(path), strict=True)
    except Exception as err:  # noqa: BLE001 - any parse/shape error means a bad file
        raise ProviderUnavailable(f"Mimi weights {path} are not a Mimi checkpoint: {_first_line(err)}") from None
    mx.eval(mimi.parameters())
    mimi.eval()
    return mimi


def load_tokenizer(folder: Path, llama_template: bool):
    """The text tokenizer as mlx-audio would build it (``load_llama3_tokenizer`` or plain AutoTokenizer)."""
    from mlx_audio.tts.models.sesame.sesame import AutoTokenizer, load_llama3_tokenizer

    try:
        return load_llama3_tokenizer(str(folder)) if llama_template else AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:  # noqa: BLE001 - transformers raises many kinds
        raise ProviderUnavailable(f"cannot load the CSM tokenizer from {folder}: {_first_line(err)}") from None


@contextlib.contextmanager
def _sources(tokenizer, mimi):
    """While mlx-audio builds its sesame Model, hand it our tokenizer and Mimi instead of hub downloads."""
    from mlx_audio.tts.models.sesame import sesame as module

    class _Tokenizers:
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return tokenizer

    class _Mimi:
        @staticmethod
        def from_pretrained(*_args, **_kwargs):
            return mimi

    names = ("load_llama3_tokenizer", "AutoTokenizer", "Mimi")
    with _PATCH_LOCK:
        saved = {name: getattr(module, name) for name in names}
        module.load_llama3_tokenizer = lambda *_a, **_k: tokenizer
        module.AutoTokenizer = _Tokenizers
        module.Mimi = _Mimi
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(module, name, value)


def read_config(model_dir: Path, model_id: str) -> dict:
    """``config.json`` of the weights folder, or ProviderUnavailable with the checkpoint advice."""
    config_file = model_dir / "config.json"
    if not config_file.is_file() or not list(model_dir.glob("*.safetensors")):
        raise ProviderUnavailable(f"{model_dir} has no config.json and *.safetensors. {checkpoint_advice(model_id)}")
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ProviderUnavailable(f"{config_file} is unreadable ({err}). {checkpoint_advice(model_id)}") from None


def load_csm(model_id: str, cache_dir: Path, tokenizer: str | None, mimi: str | None,
             progress: ProgressCallback, quantize_bits: int | None = None) -> LoadedCsm:
    """Resolve every part, then build the model through mlx-audio's ``load_model``."""
    mx, _sesame = import_mlx()
    from mlx_audio.tts.utils import load_model

    cache_dir = Path(cache_dir).expanduser()
    model_dir, hub_id = resolve_model_dir(model_id, cache_dir, progress)
    config = read_config(model_dir, model_id)
    tokenizer_dir, llama_template = resolve_tokenizer(tokenizer, model_dir, config, cache_dir, progress)
    mimi_file = resolve_mimi(mimi, cache_dir, progress)
    load_dir = model_dir
    try:
        if is_transformers_checkpoint(model_dir):
            progress("converting transformers-format CSM weights (once)")
            load_dir = convert_transformers_checkpoint(model_dir, cache_dir / "csm" / "converted")
        progress("loading CSM weights")
        text_tokenizer = load_tokenizer(tokenizer_dir, llama_template)
        codec = load_mimi(mimi_file)
        with _sources(text_tokenizer, codec):
            model = load_model(Path(load_dir), strict=True)
    except ProviderUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - corrupt / mismatched files surface in many ways
        _LOGGER.debug("CSM load failed", exc_info=True)
        raise ProviderUnavailable(
            f"CSM weights in {model_dir} could not be loaded ({type(err).__name__}: {_first_line(err)}). "
            + checkpoint_advice(model_id)
        ) from None
    if quantize_bits:
        quantize(model, quantize_bits)
    return LoadedCsm(model=model, model_dir=model_dir, mimi_file=mimi_file, hub_id=hub_id)


def quantize(model, bits: int, group_size: int = 64) -> None:
    """Quantise the backbone and depth decoder linears in place (Mimi and embeddings stay as they are)."""
    import mlx.core as mx
    import mlx.nn as nn

    def wanted(path: str, module) -> bool:
        return (isinstance(module, nn.Linear) and path.startswith(("model.backbone", "model.decoder"))
                and module.weight.shape[-1] % group_size == 0)

    nn.quantize(model, group_size=group_size, bits=bits, class_predicate=wanted)
    mx.eval(model.parameters())


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:300] if text else type(err).__name__
