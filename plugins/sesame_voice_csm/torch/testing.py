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

TINY_MIMI = dict(
    hidden_size=32,
    num_filters=4,
    num_hidden_layers=1,
    num_attention_heads=2,
    num_key_value_heads=2,
    head_dim=16,
    intermediate_size=64,
    codebook_dim=32,
    vector_quantization_hidden_dimension=32,
    upsample_groups=32,
)
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
    (folder / "config.json").write_text(
        json.dumps({**json.loads((folder / "config.json").read_text()), **config}, indent=1)
    )
    write_tokenizer(folder, vocab_size=min(400, config["text_vocab_size"]))
    return folder


SAVED_ROPE = {
    "rope_type": "llama3",
    "factor": 32.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_theta": 500_000.0,
}
"""sesame/csm-1b's rotary embedding, as transformers 5 spells it (``rope_parameters``, theta inside)."""


def saved_config(size: str = "tiny", rope: dict | None = None):
    """A ``CsmConfig`` of ``size`` built from ``CsmConfig``'s own arguments only (no Sesame-only keys)."""
    import inspect

    from transformers import CsmConfig, CsmDepthDecoderConfig

    union = transformers_config(size)
    rope = dict(SAVED_ROPE if rope is None else rope)

    def own(cls, values: dict) -> dict:
        names = set(inspect.signature(cls.__init__).parameters) - {"self", "rope_parameters"}
        return {key: value for key, value in values.items() if key in names}

    depth = {**own(CsmDepthDecoderConfig, union["depth_decoder_config"]), "rope_parameters": dict(rope)}
    return CsmConfig(
        **{
            **own(CsmConfig, union),
            "rope_parameters": dict(rope),
            "depth_decoder_config": depth,
            "codec_config": union["codec_config"],
        }
    )


def write_saved_checkpoint(folder: Path, size: str = "tiny", seed: int = 0, rope: dict | None = None) -> Path:
    """A CSM saved by the installed transformers itself, laid out as sesame/csm-1b lays out its shards.

    ``save_pretrained`` writes ``config.json`` and two shards; they are renamed to
    ``transformers-0000N-of-00002.safetensors`` + ``transformers.safetensors.index.json`` and the
    config gains ``transformers_weights`` (as sesame/csm-1b's does); nothing else in it is touched.
    """
    import torch
    from transformers import CsmForConditionalGeneration

    folder = Path(folder)
    torch.manual_seed(seed)
    model = CsmForConditionalGeneration(saved_config(size, rope))
    with torch.no_grad():
        for module in model.codec_model.modules():
            if type(module).__name__ == "MimiEuclideanCodebook":
                module.embed_sum.normal_()
                module._embed = None
    total = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    model.save_pretrained(str(folder), max_shard_size=total * 6 // 10)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text())
        shards = sorted(set(data["weight_map"].values()))
        index.unlink()
    else:
        shards = ["model.safetensors"]
        from safetensors import safe_open

        with safe_open(str(folder / "model.safetensors"), "pt") as handle:
            data = {"metadata": {}, "weight_map": {key: "model.safetensors" for key in handle.keys()}}
    names = {old: f"transformers-{n:05d}-of-{len(shards):05d}.safetensors" for n, old in enumerate(shards, start=1)}
    for old, new in names.items():
        (folder / old).rename(folder / new)
    data["weight_map"] = {key: names[value] for key, value in data["weight_map"].items()}
    (folder / "transformers.safetensors.index.json").write_text(json.dumps(data, indent=1))
    config = json.loads((folder / "config.json").read_text())
    config["transformers_weights"] = "transformers.safetensors.index.json"
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    write_tokenizer(folder, vocab_size=min(400, config["text_vocab_size"]))
    return folder
