"""Find and load CSM's parts: weights (one format), the Llama tokenizer, the Mimi codec and the watermarker.

The model is built from mlx-audio's public pieces with objects this module resolved itself:
``SesameModel(config)`` with the chosen weight files, ``Mimi`` from a local Kyutai-format file,
``MimiStreamingDecoder``, mlx-audio's ``load_llama3_tokenizer`` on a local folder. Nothing is
fetched behind the provider's back, so an install can be fully offline.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice_csm.common.checkpoint import (
    MIMI_FILE,
    ORIGINAL,
    TRANSFORMERS,
    CheckpointError,
    convert_transformers,
    mlx_name,
)
from sesame_voice_csm.common.download import first_line, resolve_files
from sesame_voice_csm.common.errors import WeightsMissing, WeightsUnreadable, is_hub_id, unreadable_advice
from sesame_voice_csm.common.locate import Checkpoint
from sesame_voice_csm.mlx.config import mlx_config

_LOGGER = logging.getLogger(__name__)
DEFAULT_MIMI = "kyutai/moshiko-pytorch-bf16"
MIMI_FILENAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
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
        raise WeightsMissing(f"Mimi folder {path} holds no .safetensors file; set CSM_MIMI to the file")
    if not is_hub_id(source):
        raise WeightsMissing(f"Mimi weights {source!r} not found; set CSM_MIMI to the Mimi .safetensors file")
    try:
        return resolve_files(source, [MIMI_FILENAME], "Mimi codec", progress) / MIMI_FILENAME
    except ProviderUnavailable as err:
        raise type(err)(
            f"cannot get the Mimi codec: {err}. Set CSM_MIMI (plugins.csm.mimi) to a local copy of {MIMI_FILENAME}"
        ) from None


def load_mimi(path: Path):
    """Mimi as mlx-audio's ``Mimi.from_pretrained`` builds it, from a local Kyutai-format file."""
    import mlx.core as mx
    from mlx_audio.codec.models.mimi.mimi import Mimi, mimi_202407

    mimi = Mimi(mimi_202407(32))
    try:
        mimi.load_pytorch_weights(str(path), strict=True)
    except Exception as err:  # noqa: BLE001 - any parse/shape error means a bad file
        raise WeightsUnreadable(
            f"Mimi weights {path} are not a Mimi checkpoint: {first_line(err)}; set CSM_MIMI "
            "to a Mimi .safetensors file"
        ) from None
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
        raise WeightsUnreadable(
            f"cannot load the CSM tokenizer from {folder}: {first_line(err)}; set CSM_TOKENIZER "
            "(plugins.csm.tokenizer) to a folder with a working tokenizer.json"
        ) from None


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
        nn.quantize(
            core,
            group_size=quantization.get("group_size", 64),
            bits=quantization["bits"],
            class_predicate=lambda path, module: hasattr(module, "to_quantized") and f"{path}.scales" in weights,
        )
    core.load_weights(list(weights.items()), strict=True)
    mx.eval(core.parameters())
    core.eval()
    core.setup_caches(1)
    return core


def load_watermarker(config: dict) -> tuple[object | None, object | None]:
    """Sesame's watermarker and key through mlx-audio (None when silentcipher is not installed)."""
    try:
        from mlx_audio.tts.models.sesame.watermarking import CSM_1B_GH_WATERMARK
        from mlx_audio.tts.models.sesame.watermarking import load_watermarker as load

        return load(), config.get("watermark_key", CSM_1B_GH_WATERMARK)
    except Exception as err:  # noqa: BLE001 - silentcipher and torch are optional
        _LOGGER.debug("No CSM watermarker: %s", err)
        return None, None


def load_csm(
    checkpoint: Checkpoint,
    cache_dir: Path,
    mimi: str | None,
    progress: ProgressCallback,
    quantize_bits: int | None = None,
) -> LoadedCsm:
    """Build the located ``checkpoint`` on MLX, converting the transformers format once if needed."""
    import_mlx()
    from mlx_audio.codec.models.mimi.mimi import MimiStreamingDecoder

    cache_dir = Path(cache_dir).expanduser()
    model_dir, selection = checkpoint.model_dir, checkpoint.selection
    try:
        config = mlx_config(checkpoint.config)
        files, bundled_mimi = list(selection.files), None
        if selection.format == TRANSFORMERS:
            progress("converting transformers-format CSM weights (once)")
            converted = convert_transformers(selection, cache_dir / "csm" / "converted")
            files = [converted / "model.safetensors"]
            bundled_mimi = converted / MIMI_FILE if (converted / MIMI_FILE).is_file() else None
        mimi_file = resolve_mimi(mimi, bundled_mimi, progress)
        progress("loading CSM weights")
        text_tokenizer = load_tokenizer(checkpoint.tokenizer_dir, checkpoint.llama_template)
        codec = load_mimi(mimi_file)
        core = build_core(config, files)
    except ProviderUnavailable:
        raise
    except Exception as err:
        _LOGGER.debug("CSM load failed", exc_info=True)
        detail = str(err) if isinstance(err, CheckpointError) else f"{type(err).__name__}: {first_line(err)}"
        raise WeightsUnreadable(
            f"CSM weights in {model_dir} could not be loaded ({detail}). " + unreadable_advice(checkpoint.model_id)
        ) from None
    if quantize_bits:
        quantize(core, quantize_bits)
    watermarker, key = load_watermarker(config)
    model = CsmModel(
        core=core,
        tokenizer=text_tokenizer,
        codec=codec,
        streaming_decoder=MimiStreamingDecoder(codec),
        watermarker=watermarker,
        watermark_key=key,
        sample_rate=int(codec.cfg.sample_rate),
    )
    _LOGGER.info(
        "CSM weights: %s format from %s", selection.format or ORIGINAL, ", ".join(p.name for p in selection.files)
    )
    return LoadedCsm(
        model=model,
        model_dir=model_dir,
        mimi_file=mimi_file,
        hub_id=checkpoint.hub_id,
        weight_format=selection.format,
        weight_files=tuple(selection.files),
    )


def quantize(core, bits: int, group_size: int = 64) -> None:
    """Quantise the backbone and depth decoder linears in place (Mimi and embeddings stay as they are)."""
    import mlx.core as mx
    import mlx.nn as nn

    def wanted(path: str, module) -> bool:
        return (
            isinstance(module, nn.Linear)
            and path.startswith(("backbone", "decoder"))
            and module.weight.shape[-1] % group_size == 0
        )

    nn.quantize(core, group_size=group_size, bits=bits, class_predicate=wanted)
    mx.eval(core.parameters())
