"""Load CSM for the PyTorch backend: the checkpoint ``common/locate.py`` found, built by transformers.

Weights must be in transformers' format (what ``sesame/csm-1b`` ships, Mimi codec included); the
provider sends Sesame's original layout to MLX (or says why it cannot) before this module is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice_csm.common.errors import WeightsUnreadable, unreadable_advice
from sesame_voice_csm.common.locate import Checkpoint

_LOGGER = logging.getLogger(__name__)
WATERMARK_KEY = [212, 211, 146, 56, 201]
"""Sesame's public CSM-1B watermark key (as in mlx-audio and Sesame's generator)."""


@dataclass
class LoadedTorchCsm:
    """What ``builtin_prompt`` and the prompt cache need to know about a loaded torch model."""

    model: object
    model_dir: Path
    hub_id: str | None
    codec_tag: str
    device: str
    dtype: str


def _first_line(err: BaseException) -> str:
    """The first line of an error's message (library errors can run to pages)."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def load_torch_generator(checkpoint: Checkpoint, options, progress: Callable[[str], None]):
    """(TorchGenerator, LoadedTorchCsm) of ``checkpoint`` (transformers format), on the configured device and dtype."""
    from sesame_voice_csm.torch.batching import TorchGenerator
    from sesame_voice_csm.torch.model import (
        TorchCsm,
        checkpoint_tag,
        llama3_tokenizer,
        load_transformers_csm,
        pick_device,
        pick_dtype,
    )

    model_dir = checkpoint.model_dir
    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device)
    progress(f"loading CSM weights (torch, {device.type}, {str(dtype).removeprefix('torch.')})")
    try:
        model = load_transformers_csm(model_dir, device, dtype)
        tokenizer = llama3_tokenizer(checkpoint.tokenizer_dir, checkpoint.llama_template)
    except ProviderUnavailable:
        raise
    except Exception as err:
        _LOGGER.debug("CSM torch load failed", exc_info=True)
        raise WeightsUnreadable(
            f"CSM weights in {model_dir} could not be loaded by transformers ({type(err).__name__}: "
            f"{_first_line(err)}). " + unreadable_advice(checkpoint.model_id)
        ) from None
    csm = TorchCsm(
        model, tokenizer, options.max_batch, speaker_prefix_space=bool(checkpoint.config.get("speaker_prefix_space"))
    )
    watermarker = load_watermarker() if options.watermark else None
    generator = TorchGenerator(
        csm, max_batch=options.max_batch, prefix_cache_size=options.prefix_cache_size, watermarker=watermarker
    )
    loaded = LoadedTorchCsm(
        model=model,
        model_dir=model_dir,
        hub_id=checkpoint.hub_id,
        codec_tag=checkpoint_tag(model_dir),
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
    )
    return generator, loaded


def load_watermarker() -> Callable | None:
    """CSM's silentcipher watermark as a function of 24 kHz audio, or None when silentcipher is absent."""
    try:
        import silentcipher
    except ImportError:
        return None
    import soxr

    try:
        model = silentcipher.get_model(model_type="44.1k")
    except Exception as err:  # noqa: BLE001 - its weights may be unreachable offline
        _LOGGER.warning("CSM watermark is off: silentcipher could not load (%s)", _first_line(err))
        return None

    def watermark(pcm):
        high = soxr.resample(pcm, 24_000, 44_100)
        encoded, *_ = model.encode_wav(high, 44_100, WATERMARK_KEY, calc_sdr=False, message_sdr=36)
        return soxr.resample(encoded, 44_100, 24_000)

    return watermark
