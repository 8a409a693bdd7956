"""Random-weight CSM checkpoints in transformers' format (what sesame/csm-1b ships), for tests and benchmarks.

``write_transformers_checkpoint(folder, size)`` builds ``CsmForConditionalGeneration`` with random
weights and saves it with ``save_pretrained`` (Mimi codec inside), next to the same small tokenizer
as ``testing.py``; ``config.json`` is the union format sesame/csm-1b uses, so the MLX backend can
load the folder too. Needs torch and transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

from sesame_voice_csm.mlx.testing import model_config, write_tokenizer

TINY_MIMI = dict(hidden_size=32, num_filters=4, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                 head_dim=16, intermediate_size=64, codebook_dim=32, vector_quantization_hidden_dimension=32,
                 upsample_groups=32)
"""A Mimi with the real frame rate (1920 samples per frame) and 32 codebooks of 2048, but few channels."""


def transformers_config(size: str = "tiny") -> dict:
    """``config.json`` of a CSM of ``size`` with a codec config (full Mimi at full size, else ``TINY_MIMI``)."""
    config = model_config(size)
    config["codec_config"] = {"model_type": "mimi", **({} if size == "full" else TINY_MIMI)}
    return config


def build_model(size: str = "tiny", seed: int = 0, dtype=None):
    """A random-weight ``CsmForConditionalGeneration`` of ``size``, in memory."""
    import torch
    from transformers import CsmConfig, CsmForConditionalGeneration

    torch.manual_seed(seed)
    model = CsmForConditionalGeneration(CsmConfig(**transformers_config(size)))
    with torch.no_grad():
        for module in model.codec_model.modules():
            if type(module).__name__ == "MimiEuclideanCodebook":  # transformers starts them all-zero
                module.embed_sum.normal_()
                module._embed = None
    return model.to(dtype) if dtype is not None else model


def write_transformers_checkpoint(folder: Path, size: str = "tiny", seed: int = 0) -> Path:
    """Write config, random weights (``save_pretrained``) and tokenizer into ``folder``; returns it."""
    folder = Path(folder)
    model = build_model(size, seed)
    model.save_pretrained(str(folder))
    config = transformers_config(size)
    (folder / "config.json").write_text(json.dumps({**json.loads((folder / "config.json").read_text()), **config},
                                                   indent=1))
    write_tokenizer(folder, vocab_size=min(400, config["text_vocab_size"]))
    return folder
