"""Find and load CSM's parts: weights (one format), the Llama tokenizer, the Mimi codec and the watermarker.

The model is built from mlx-audio's public pieces with objects this module resolved itself:
``SesameModel(config)`` with the chosen weight files, ``Mimi`` from a local Kyutai-format file,
``MimiStreamingDecoder``, mlx-audio's ``load_llama3_tokenizer`` on a local folder. Nothing is
fetched behind the provider's back, so an install can be fully offline.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from sesame_voice.types import ProviderUnavailable

from .checkpoint import MIMI_FILE, ORIGINAL, TRANSFORMERS, CheckpointError, convert_transformers, mlx_name, select_weights
from .download import first_line, missing_model_files, resolve_files, resolve_model_repo

_LOGGER = logging.getLogger(__name__)
DEFAULT_TOKENIZER = "unsloth/Llama-3.2-1B"
DEFAULT_MIMI = "kyutai/moshiko-pytorch-bf16"
MIMI_FILENAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json"]
INSTALL_ADVICE = "install it with: pip install 'sesame-voice[csm]'"

ProgressCallback = Callable[[str], None]


@dataclass
class CsmModel:
    """mlx-audio's ``SesameModel`` with the tokenizer, codec and watermarker it speaks through."""

    core: object
    """``mlx_audio.tts.models.sesame.sesame.SesameModel`` (backbone, depth decoder, heads)."""
    tokenizer: object
    codec: object
    """``Mimi`` (encoder for prompts, streaming decoder for output)."""
    streaming_decoder: object
    watermarker: object | None = None
    watermark_key: object | None = None
    sample_rate: int = 24_000

    def text_tokens(self, text: str, speaker: int) -> np.ndarray:
        """Token ids of ``[speaker]text`` as mlx-audio and Sesame's generator tokenise it."""
        return np.asarray(self.tokenizer.encode(f"[{speaker}]{text}"), dtype=np.int32)


@dataclass
class LoadedCsm:
    """A loaded CSM and where its parts came from."""

    model: CsmModel
    model_dir: Path
    mimi_file: Path
    hub_id: str | None
    """The hub id the weights came from, if any (for built-in prompts)."""
    weight_format: str | None = None
    weight_files: tuple[Path, ...] = ()
    """The source files the weights were read or converted from (one format)."""

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
    """What to do about a missing, gated or broken checkpoint."""
    return (
        f"CSM weights {model_id!r} are not usable. To fix: log in to the Hugging Face hub "
        f"(huggingface-cli login), accept the licence on the model page "
        f"(https://huggingface.co/{model_id if is_hub_id(model_id) else 'sesame/csm-1b'}), "
        "or set MODEL_ID to a local folder holding config.json and *.safetensors "
        "(CSM_TOKENIZER and CSM_MIMI, or plugins.csm.tokenizer / plugins.csm.mimi, point at local "
        "tokenizer and Mimi files for a fully offline install)"
    )


def resolve_model_dir(model_id: str, progress: ProgressCallback) -> tuple[Path, str | None]:
    """A complete local folder of the weights (from the HF cache or downloaded for a hub id) and the hub id."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        try:
            missing = missing_model_files(path)
        except CheckpointError as err:
            raise ProviderUnavailable(f"CSM weights in {path} could not be loaded ({err}). "
                                      + checkpoint_advice(model_id)) from None
        if missing:
            raise ProviderUnavailable(f"{path} lacks {', '.join(missing)}. {checkpoint_advice(model_id)}")
        return path, None
    if not is_hub_id(model_id):
        raise ProviderUnavailable(f"MODEL_ID {model_id!r} is not a folder. " + checkpoint_advice(model_id))
    return resolve_model_repo(model_id, progress), model_id


def resolve_tokenizer(option: str | None, model_dir: Path, config: dict, progress: ProgressCallback) -> tuple[Path, bool]:
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
        return resolve_files(source, TOKENIZER_FILES, "Llama tokenizer", progress), llama_template
    except ProviderUnavailable as err:
        raise ProviderUnavailable(
            f"cannot get the CSM text tokenizer: {err}. Log in with huggingface-cli login and accept the "
            "Llama 3.2 licence, or set CSM_TOKENIZER (plugins.csm.tokenizer) to a local folder with tokenizer.json"
        ) from None


def resolve_mimi(option: str | None, bundled: Path | None, progress: ProgressCallback) -> Path:
    """Local Mimi weights file: the override, else the one converted from the checkpoint, else Kyutai's."""
    if not option and bundled is not None:
        return bundled
    source = option or DEFAULT_MIMI
    path = Path(source).expanduser()
    if path.is_file():
        return path
    if path.is_dir():
        for candidate in [path / MIMI_FILENAME] + sorted(path.glob("*.safetensors")):
            if candidate.is_file():
                return candidate
        raise ProviderUnavailable(f"Mimi folder {path} holds no .safetensors file; set CSM_MIMI to the file")
    if not is_hub_id(source):
        raise ProviderUnavailable(f"Mimi weights {source!r} not found; set CSM_MIMI to the Mimi .safetensors file")
    try:
        return resolve_files(source, [MIMI_FILENAME], "Mimi codec", progress) / MIMI_FILENAME
    except ProviderUnavailable as err:
        raise ProviderUnavailable(f"cannot get the Mimi codec: {err}. Set CSM_MIMI (plugins.csm.mimi) to a local "
                                  f"copy of {MIMI_FILENAME}") from None


def load_mimi(path: Path):
    """Mimi as mlx-audio's ``Mimi.from_pretrained`` builds it, from a local Kyutai-format file."""
    import mlx.core as mx
    from mlx_audio.codec.models.mimi.mimi import Mimi, mimi_202407

    mimi = Mimi(mimi_202407(32))
    try:
        mimi.load_pytorch_weights(str(path), strict=True)
    except Exception as err:  # noqa: BLE001 - any parse/shape error means a bad file
        raise ProviderUnavailable(f"Mimi weights {path} are not a Mimi checkpoint: {first_line(err)}") from None
    mx.eval(mimi.parameters())
    mimi.eval()
    return mimi


def load_tokenizer(folder: Path, llama_template: bool):
    """The text tokenizer as mlx-audio builds it (``load_llama3_tokenizer`` or plain AutoTokenizer)."""
    from mlx_audio.tts.models.sesame.sesame import load_llama3_tokenizer
    from transformers import AutoTokenizer

    try:
        return load_llama3_tokenizer(str(folder)) if llama_template else AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:  # noqa: BLE001 - transformers raises many kinds
        raise ProviderUnavailable(f"cannot load the CSM tokenizer from {folder}: {first_line(err)}") from None


def read_config(model_dir: Path, model_id: str) -> dict:
    """``config.json`` of the weights folder, or ProviderUnavailable with the checkpoint advice."""
    config_file = model_dir / "config.json"
    try:
        return json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ProviderUnavailable(f"{config_file} is unreadable ({err}). {checkpoint_advice(model_id)}") from None


def build_core(config: dict, files: list[Path]):
    """``SesameModel(config)`` with exactly ``files``' weights (strict), quantised if the config says so."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx_audio.tts.models.sesame.sesame import SesameModel

    core = SesameModel(config)
    weights = {}
    for path in files:
        weights.update({mlx_name(key): value for key, value in mx.load(str(path)).items()})
    quantization = config.get("quantization") or config.get("quantization_config")
    if quantization:
        nn.quantize(core, group_size=quantization.get("group_size", 64), bits=quantization["bits"],
                    class_predicate=lambda path, module: hasattr(module, "to_quantized") and f"{path}.scales" in weights)
    core.load_weights(list(weights.items()), strict=True)
    mx.eval(core.parameters())
    core.eval()
    core.setup_caches(1)
    return core


def load_watermarker(config: dict) -> tuple[object | None, object | None]:
    """Sesame's watermarker and key through mlx-audio (None when silentcipher is not installed)."""
    try:
        from mlx_audio.tts.models.sesame.watermarking import CSM_1B_GH_WATERMARK, load_watermarker as load
        return load(), config.get("watermark_key", CSM_1B_GH_WATERMARK)
    except Exception as err:  # noqa: BLE001 - silentcipher and torch are optional
        _LOGGER.debug("No CSM watermarker: %s", err)
        return None, None


def load_csm(model_id: str, cache_dir: Path, tokenizer: str | None, mimi: str | None,
             progress: ProgressCallback, quantize_bits: int | None = None) -> LoadedCsm:
    """Resolve every part, convert the chosen format if needed, then build the model."""
    import_mlx()
    from mlx_audio.codec.models.mimi.mimi import MimiStreamingDecoder

    cache_dir = Path(cache_dir).expanduser()
    model_dir, hub_id = resolve_model_dir(model_id, progress)
    config = read_config(model_dir, model_id)
    tokenizer_dir, llama_template = resolve_tokenizer(tokenizer, model_dir, config, progress)
    try:
        selection = select_weights(model_dir)
        files, bundled_mimi = list(selection.files), None
        if selection.format == TRANSFORMERS:
            progress("converting transformers-format CSM weights (once)")
            converted = convert_transformers(selection, cache_dir / "csm" / "converted")
            files = [converted / "model.safetensors"]
            bundled_mimi = converted / MIMI_FILE if (converted / MIMI_FILE).is_file() else None
        mimi_file = resolve_mimi(mimi, bundled_mimi, progress)
        progress("loading CSM weights")
        text_tokenizer = load_tokenizer(tokenizer_dir, llama_template)
        codec = load_mimi(mimi_file)
        core = build_core(config, files)
    except ProviderUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - corrupt / mismatched files surface in many ways
        _LOGGER.debug("CSM load failed", exc_info=True)
        detail = str(err) if isinstance(err, CheckpointError) else f"{type(err).__name__}: {first_line(err)}"
        raise ProviderUnavailable(
            f"CSM weights in {model_dir} could not be loaded ({detail}). " + checkpoint_advice(model_id)
        ) from None
    if quantize_bits:
        quantize(core, quantize_bits)
    watermarker, key = load_watermarker(config)
    model = CsmModel(core=core, tokenizer=text_tokenizer, codec=codec, streaming_decoder=MimiStreamingDecoder(codec),
                     watermarker=watermarker, watermark_key=key, sample_rate=int(codec.cfg.sample_rate))
    _LOGGER.info("CSM weights: %s format from %s", selection.format or ORIGINAL,
                 ", ".join(p.name for p in selection.files))
    return LoadedCsm(model=model, model_dir=model_dir, mimi_file=mimi_file, hub_id=hub_id,
                     weight_format=selection.format, weight_files=tuple(selection.files))


def quantize(core, bits: int, group_size: int = 64) -> None:
    """Quantise the backbone and depth decoder linears in place (Mimi and embeddings stay as they are)."""
    import mlx.core as mx
    import mlx.nn as nn

    def wanted(path: str, module) -> bool:
        return (isinstance(module, nn.Linear) and path.startswith(("backbone", "decoder"))
                and module.weight.shape[-1] % group_size == 0)

    nn.quantize(core, group_size=group_size, bits=bits, class_predicate=wanted)
    mx.eval(core.parameters())
