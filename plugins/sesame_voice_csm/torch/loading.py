"""Load CSM for the PyTorch backend: the same weights, tokenizer and prompt resolution as MLX, then transformers.

Weights must be in transformers' format (what ``sesame/csm-1b`` ships, Mimi codec included). The
folder, hub download and tokenizer lookup are ``loading.py``'s; only the model build differs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sesame_voice.types import ProviderUnavailable

from .backend import TORCH_ADVICE, installed
from .checkpoint import TRANSFORMERS, select_weights
from .loading import checkpoint_advice, read_config, resolve_model_dir, resolve_tokenizer

_LOGGER = logging.getLogger(__name__)
WATERMARK_KEY = [212, 211, 146, 56, 201]
"""Sesame's public CSM-1B watermark key (as in mlx-audio and Sesame's generator)."""


class OriginalLayout(ProviderUnavailable):
    """The weights are in Sesame's original layout, which only the MLX backend loads."""


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


def import_torch():
    """torch and transformers' CSM, or ProviderUnavailable with install advice."""
    for attempt in range(3):
        try:
            import torch
            from transformers import CsmForConditionalGeneration  # noqa: F401
        except ImportError as err:
            if not installed("torch") or not installed("transformers") or attempt == 2:
                raise ProviderUnavailable(
                    f"the torch CSM backend needs torch and transformers ({err}); {TORCH_ADVICE}") from None
            time.sleep(0.5)  # transformers' lazy imports fail while another thread is importing it
        else:
            return torch


def load_torch_generator(model_id: str, cache_dir: Path, options, progress: Callable[[str], None]):
    """(TorchGenerator, LoadedTorchCsm) for ``model_id``, on the configured device and dtype."""
    import_torch()
    from .batching import TorchGenerator
    from .torch_model import TorchCsm, checkpoint_tag, llama3_tokenizer, load_transformers_csm, pick_device, pick_dtype

    cache_dir = Path(cache_dir).expanduser()
    model_dir, hub_id = resolve_model_dir(model_id, progress)
    config = read_config(model_dir, model_id)
    if select_weights(model_dir).format != TRANSFORMERS:
        raise OriginalLayout(
            f"{model_dir} holds CSM weights in Sesame's original layout; the torch backend loads the "
            "transformers layout that sesame/csm-1b ships (set MODEL_ID=sesame/csm-1b), or set CSM_BACKEND=mlx")
    tokenizer_dir, llama_template = resolve_tokenizer(options.tokenizer, model_dir, config, progress)
    device = pick_device(options.device)
    dtype = pick_dtype(options.dtype, device)
    progress(f"loading CSM weights (torch, {device.type}, {str(dtype).removeprefix('torch.')})")
    try:
        model = load_transformers_csm(model_dir, device, dtype)
        tokenizer = llama3_tokenizer(tokenizer_dir, llama_template)
    except ProviderUnavailable:
        raise
    except Exception as err:  # noqa: BLE001 - corrupt / mismatched files surface in many ways
        _LOGGER.debug("CSM torch load failed", exc_info=True)
        raise ProviderUnavailable(
            f"CSM weights in {model_dir} could not be loaded by transformers ({type(err).__name__}: "
            f"{_first_line(err)}). " + checkpoint_advice(model_id)) from None
    csm = TorchCsm(model, tokenizer, options.max_batch, speaker_prefix_space=bool(config.get("speaker_prefix_space")))
    watermarker = load_watermarker() if options.watermark else None
    generator = TorchGenerator(csm, max_batch=options.max_batch, prefix_cache_size=options.prefix_cache_size,
                               watermarker=watermarker)
    loaded = LoadedTorchCsm(model=model, model_dir=model_dir, hub_id=hub_id, codec_tag=checkpoint_tag(model_dir),
                            device=str(device), dtype=str(dtype).removeprefix("torch."))
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
