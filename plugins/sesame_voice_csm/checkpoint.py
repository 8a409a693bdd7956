"""Turn a transformers-format CSM checkpoint (``CsmForConditionalGeneration``) into Sesame's original layout.

mlx-audio's ``sanitize`` understands Sesame's original (torchtune) parameter names and mlx-community
conversions, not the transformers names that sesame/csm-1b also ships. The conversion is the
inverse of transformers' ``convert_csm.py``: rename, undo the rotary permutation of q/k, drop the
tied depth-decoder embedding and the bundled codec. It runs once into ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

_LOGGER = logging.getLogger(__name__)
_MARKERS = ("backbone_model.", "depth_decoder.")
_RENAMES = [
    (r"^backbone_model\.layers\.", "backbone.layers."),
    (r"^depth_decoder\.model\.layers\.", "decoder.layers."),
    (r"^(backbone_model\.embed_tokens\.)?embed_text_tokens\.weight$", "text_embeddings.weight"),
    (r"^backbone_model\.embed_tokens\.embed_audio_tokens\.weight$", "audio_embeddings.weight"),
    (r"^lm_head\.weight$", "codebook0_head.weight"),
    (r"^depth_decoder\.codebooks_head\.weight$", "audio_head"),
    (r"^depth_decoder\.model\.inputs_embeds_projector\.weight$", "projection.weight"),
    (r"^depth_decoder\.model\.norm\.weight$", "decoder.norm.scale"),
    (r"^backbone_model\.norm\.weight$", "backbone.norm.scale"),
    (r"\.self_attn\.", ".attn."),
    (r"\.o_proj\.", ".output_proj."),
    (r"\.gate_proj\.", ".w1."),
    (r"\.down_proj\.", ".w2."),
    (r"\.up_proj\.", ".w3."),
    (r"\.input_layernorm\.weight$", ".sa_norm.scale"),
    (r"\.post_attention_layernorm\.weight$", ".mlp_norm.scale"),
]
_DROPPED = (r"^codec_model\.", r"^depth_decoder\.model\.embed_tokens\.")
_TIED_AUDIO_EMBEDDING = "depth_decoder.model.embed_tokens.weight"


def _safetensors_keys(path: Path) -> list[str]:
    """Tensor names in a safetensors file, read from its header only."""
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        if not 0 < size < 100_000_000:
            return []
        header = json.loads(handle.read(size))
    return [key for key in header if key != "__metadata__"]


def is_transformers_checkpoint(model_dir: Path) -> bool:
    """True when the folder's weights use transformers' CSM names."""
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        try:
            keys = _safetensors_keys(path)
        except (OSError, ValueError):
            return False
        if any(key.startswith(_MARKERS) for key in keys):
            return True
    return False


def original_name(key: str) -> str | None:
    """The original Sesame name of a transformers parameter, or None for parameters to drop."""
    if any(re.search(pattern, key) for pattern in _DROPPED):
        return None
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def unpermute_rope(weight, n_heads: int):
    """Inverse of transformers' ``permute_for_rope``: back to interleaved rotary pairs."""
    rows, cols = weight.shape
    head_dim = rows // n_heads
    return weight.reshape(n_heads, 2, head_dim // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _heads(config: dict, key: str) -> int:
    part = config if key.startswith("backbone") else config.get("depth_decoder_config") or {}
    return int(part["num_attention_heads"] if ".q_proj." in key else part["num_key_value_heads"])


def _fingerprint(model_dir: Path) -> str:
    parts = []
    for path in sorted(model_dir.glob("*.safetensors")) + [model_dir / "config.json"]:
        stat = path.stat()
        parts.append(f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def convert_transformers_checkpoint(model_dir: Path, out_root: Path) -> Path:
    """Write (once) an original-layout copy of ``model_dir`` under ``out_root`` and return its folder."""
    import mlx.core as mx

    model_dir = Path(model_dir)
    target = Path(out_root) / _fingerprint(model_dir)
    if (target / "model.safetensors").is_file():
        return target
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    weights = {}
    tied = None
    for path in sorted(model_dir.glob("*.safetensors")):
        for key, value in mx.load(str(path)).items():
            if key == _TIED_AUDIO_EMBEDDING:
                tied = value
            name = original_name(key)
            if name is None:
                continue
            if re.search(r"\.(q|k)_proj\.weight$", key):
                value = unpermute_rope(value, _heads(config, key))
            weights[name] = value
    if tied is not None:  # newer transformers save the tied audio embedding only under the decoder's name
        weights.setdefault("audio_embeddings.weight", tied)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    mx.save_safetensors(str(partial / "model.safetensors"), weights)
    (partial / "config.json").write_text(json.dumps(config), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    _LOGGER.info("Converted transformers-format CSM weights into %s", target)
    return target
