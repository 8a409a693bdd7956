"""CSM weight files: which format each file is in, which files a folder's chosen format needs, conversion.

sesame/csm-1b ships the same weights three times: ``ckpt.pt`` (PyTorch pickle, never read),
``model.safetensors`` (Sesame's original torchtune names) and the transformers shards
(``transformers-0000N-of-00002.safetensors`` + ``transformers.safetensors.index.json``, which also
carry the Mimi codec). Each ``*.safetensors`` file's format is read from its own tensor names; a
folder is loaded from one format only, the transformers shards when their index is there.

A transformers-format checkpoint (``CsmForConditionalGeneration``) is converted once into
``CACHE_DIR``: CSM back to the original names (inverse of transformers' ``convert_csm.py``: rename,
undo the rotary permutation of q/k, drop the tied depth-decoder embedding) and its ``codec_model``
back to Kyutai's Mimi names (inverse of ``convert_mimi_checkpoint_to_pytorch.py``). A manifest
records the source files' sizes and mtimes; a converted copy whose manifest does not match its
source is converted again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

_LOGGER = logging.getLogger(__name__)
TRANSFORMERS = "transformers"
ORIGINAL = "original"
"""Sesame's torchtune names (``backbone.layers.0.attn.q_proj.weight``) or mlx-audio's (``model.…self_attn…``)."""
CODEC = "codec"
"""A Mimi codec file in Kyutai's names."""
TRANSFORMERS_INDEX = "transformers.safetensors.index.json"
MANIFEST = "manifest.json"
MIMI_FILE = "mimi.safetensors"
_TRANSFORMERS_MARKERS = ("backbone_model.", "depth_decoder.", "embed_text_tokens.", "lm_head.", "codec_model.")
_ORIGINAL_MARKERS = (
    "backbone.",
    "decoder.layers.",
    "text_embeddings.",
    "codebook0_head.",
    "audio_head",
    "model.backbone.",
    "model.decoder.",
)
_CODEC_MARKERS = ("encoder.model.", "quantizer.rvq_first.", "encoder_transformer.")
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
_DROPPED = (r"^depth_decoder\.model\.embed_tokens\.",)
_TIED_AUDIO_EMBEDDING = "depth_decoder.model.embed_tokens.weight"
MIMI_TO_TRANSFORMERS = [
    # transformers' convert_mimi_checkpoint_to_pytorch.py ``convert_list``: Kyutai name -> transformers name,
    # applied in order as plain substring replacements (q/k/v are split out of in_proj_weight separately).
    ("conv.conv.conv", "conv"),
    ("convtr.convtr.convtr", "conv"),
    ("conv.conv", "conv"),
    ("convtr.convtr", "conv"),
    ("quantizer.rvq_first.vq", "quantizer.semantic_residual_vector_quantizer"),
    ("quantizer.rvq_first", "quantizer.semantic_residual_vector_quantizer"),
    ("quantizer.rvq_rest.vq", "quantizer.acoustic_residual_vector_quantizer"),
    ("quantizer.rvq_rest", "quantizer.acoustic_residual_vector_quantizer"),
    ("_codebook", "codebook"),
    ("_initialized", "initialized"),
    ("embedding_sum", "embed_sum"),
    ("encoder.model", "encoder.layers"),
    ("decoder.model", "decoder.layers"),
    ("encoder_transformer.transformer", "encoder_transformer"),
    ("decoder_transformer.transformer", "decoder_transformer"),
    ("linear1", "mlp.fc1"),
    ("linear2", "mlp.fc2"),
    ("self_attn.out_proj", "self_attn.o_proj"),
    ("norm1", "input_layernorm"),
    ("norm2", "post_attention_layernorm"),
    ("layer_scale_1", "self_attn_layer_scale"),
    ("layer_scale_2", "mlp_layer_scale"),
]


class CheckpointError(Exception):
    """A weights folder that cannot be used; the message names the files and what is wrong."""


@dataclass
class Selection:
    """The weight files of one format chosen from a folder, and what the chosen format still lacks."""

    folder: Path
    format: str | None
    files: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Names (relative to ``folder``) the chosen format needs but the folder lacks."""
    ignored: list[Path] = field(default_factory=list)
    """Weight files of another format, left alone."""


def safetensors_keys(path: Path) -> list[str]:
    """Tensor names in a safetensors file, read from its header only."""
    with open(path, "rb") as handle:
        size = int.from_bytes(handle.read(8), "little")
        if not 0 < size < 100_000_000:
            raise ValueError(f"{path.name} is not a safetensors file")
        header = json.loads(handle.read(size))
    return [key for key in header if key != "__metadata__"]


def file_format(path: Path) -> str | None:
    """The format of one safetensors file, from its tensor names (None: unreadable or unknown)."""
    try:
        keys = safetensors_keys(path)
    except (OSError, ValueError):
        return None
    if any(key.startswith(_TRANSFORMERS_MARKERS) for key in keys):
        return TRANSFORMERS
    if any(key.startswith(_ORIGINAL_MARKERS) for key in keys):
        return ORIGINAL
    if any(key.startswith(_CODEC_MARKERS) for key in keys):
        return CODEC
    return None


def select_weights(folder: Path) -> Selection:
    """The files of the one format to load from ``folder``: the transformers shards if indexed, else the rest.

    With ``transformers.safetensors.index.json`` present, exactly the shards it lists are used (any
    missing one is reported). Otherwise every ``*.safetensors`` file is classified by its tensor
    names and one format is taken, transformers before original.
    """
    folder = Path(folder)
    index = folder / TRANSFORMERS_INDEX
    candidates = sorted(folder.glob("*.safetensors"))
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, AttributeError) as err:
            raise CheckpointError(f"{index} is unreadable ({err}); download it again") from None
        files = [folder / name for name in shards]
        missing = [name for name in shards if not (folder / name).is_file()]
        return Selection(
            folder, TRANSFORMERS, [f for f in files if f.is_file()], missing, [p for p in candidates if p not in files]
        )
    by_format: dict[str | None, list[Path]] = {}
    for path in candidates:
        by_format.setdefault(file_format(path), []).append(path)
    for wanted in (TRANSFORMERS, ORIGINAL):
        if by_format.get(wanted):
            chosen = by_format[wanted]
            return Selection(folder, wanted, chosen, [], [p for p in candidates if p not in chosen])
    unknown = by_format.get(None, []) + by_format.get(CODEC, [])
    if unknown:
        raise CheckpointError(
            f"{', '.join(p.name for p in unknown)} in {folder} hold no CSM weights "
            "(neither transformers' nor Sesame's names)"
        )
    return Selection(folder, None, [], ["*.safetensors"])


def original_name(key: str) -> str | None:
    """The original Sesame name of a transformers CSM parameter, or None for parameters to drop."""
    if any(re.search(pattern, key) for pattern in _DROPPED):
        return None
    for pattern, replacement in _RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def mlx_name(key: str) -> str:
    """mlx-audio's ``SesameModel`` parameter name of an original-format (or mlx-converted) parameter."""
    key = key.removeprefix("model.")
    key = re.sub(r"\.attn\.", ".self_attn.", key).replace(".output_proj.", ".o_proj.")
    key = key.replace(".w1.", ".gate_proj.").replace(".w2.", ".down_proj.").replace(".w3.", ".up_proj.")
    key = key.replace(".sa_norm.scale", ".input_layernorm.weight").replace(
        ".mlp_norm.scale", ".post_attention_layernorm.weight"
    )
    return re.sub(r"^(backbone|decoder)\.norm\.scale$", r"\1.norm.weight", key)


def permute_rope(weight, n_heads: int):
    """transformers' ``permute_for_rope``: interleaved rotary pairs to halves."""
    rows, cols = weight.shape
    return weight.reshape(n_heads, rows // n_heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)


def unpermute_rope(weight, n_heads: int):
    """Inverse of :func:`permute_rope`: back to interleaved rotary pairs."""
    rows, cols = weight.shape
    return weight.reshape(n_heads, 2, rows // n_heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def mimi_transformers_name(kyutai: str) -> str:
    """transformers' ``MimiModel`` name of a Kyutai Mimi parameter (``in_proj_weight`` stays as is)."""
    for old, new in MIMI_TO_TRANSFORMERS:
        kyutai = kyutai.replace(old, new)
    return kyutai


def kyutai_mimi_names() -> list[str]:
    """Every parameter name of the Mimi codec (32 codebooks) in Kyutai's PyTorch naming."""
    from mlx.utils import tree_flatten
    from mlx_audio.codec.models.mimi.mimi import Mimi, mimi_202407

    return [kyutai_mimi_name(key) for key, _ in tree_flatten(Mimi(mimi_202407(32)).parameters())]


def kyutai_mimi_name(key: str) -> str:
    """mlx-audio's Mimi parameter name → Kyutai's PyTorch name (inverse of ``Mimi.load_pytorch_weights``)."""
    for side in ("encoder", "decoder"):
        key = re.sub(rf"^{side}\.init_conv1d\.", f"{side}.model.0.", key)
        key = re.sub(rf"^{side}\.final_conv1d\.", f"{side}.model.14.", key)
    key = re.sub(r"^encoder\.layers\.(\d)\.residuals\.0\.", lambda m: f"encoder.model.{1 + 3 * int(m[1])}.", key)
    key = re.sub(r"^encoder\.layers\.(\d)\.downsample\.", lambda m: f"encoder.model.{3 + 3 * int(m[1])}.", key)
    key = re.sub(r"^decoder\.layers\.(\d)\.upsample\.", lambda m: f"decoder.model.{2 + 3 * int(m[1])}.", key)
    key = re.sub(r"^decoder\.layers\.(\d)\.residuals\.0\.", lambda m: f"decoder.model.{3 + 3 * int(m[1])}.", key)
    key = re.sub(r"\.block\.([01])\.", lambda m: f".block.{1 + 2 * int(m[1])}.", key)
    key = key.replace(".in_proj.weight", ".in_proj_weight")
    return key.replace(".gating.linear", ".linear")


def _heads(config: dict, key: str) -> int:
    part = config if key.startswith("backbone") else config.get("depth_decoder_config") or {}
    return int(part["num_attention_heads"] if ".q_proj." in key else part["num_key_value_heads"])


def _mimi_heads(config: dict) -> tuple[int, int]:
    codec = config.get("codec_config") or {}
    heads = int(codec.get("num_attention_heads", 8))
    return heads, int(codec.get("num_key_value_heads", heads))


def source_manifest(files: list[Path], config_file: Path) -> dict:
    """Name, size and mtime of every source file: what a converted copy must have been made from."""
    return {"sources": {str(p.absolute()): [p.stat().st_size, p.stat().st_mtime_ns] for p in [*files, config_file]}}


def converted_folder(selection: Selection, out_root: Path) -> Path:
    """Where the conversion of ``selection`` lives (a hash of its source files' names)."""
    names = "|".join(str(p.absolute()) for p in selection.files)
    return Path(out_root) / hashlib.sha256(names.encode()).hexdigest()[:16]


def convert_transformers(selection: Selection, out_root: Path) -> Path:
    """Original-layout ``model.safetensors`` (+ Kyutai ``mimi.safetensors`` if bundled) of a transformers checkpoint.

    Written once under ``out_root``; reused only while its manifest matches the source files.
    """
    import mlx.core as mx

    config_file = selection.folder / "config.json"
    target = converted_folder(selection, out_root)
    manifest = source_manifest(selection.files, config_file)
    if _manifest(target) == manifest and (target / "model.safetensors").is_file():
        return target
    config = json.loads(config_file.read_text(encoding="utf-8"))
    weights, codec = {}, {}
    tied = None
    for path in selection.files:
        for key, value in mx.load(str(path)).items():
            if key == _TIED_AUDIO_EMBEDDING:
                tied = value
            if key.startswith("codec_model."):
                codec[key.removeprefix("codec_model.")] = value
                continue
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
    if codec:
        mx.save_safetensors(str(partial / MIMI_FILE), kyutai_mimi_weights(codec, *_mimi_heads(config)))
    (partial / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)
    _LOGGER.info(
        "Converted transformers-format CSM weights (%s) into %s", ", ".join(p.name for p in selection.files), target
    )
    return target


def kyutai_mimi_weights(codec: dict, heads: int, kv_heads: int) -> dict:
    """transformers ``MimiModel`` tensors → Kyutai's names (what mlx-audio's ``load_pytorch_weights`` reads)."""
    import mlx.core as mx

    back = {mimi_transformers_name(kyutai): kyutai for kyutai in kyutai_mimi_names()}
    out, qkv, unknown = {}, {}, []
    for name, value in codec.items():
        match = re.match(r"(.*self_attn\.)(q|k|v)_proj\.weight$", name)
        if match:
            qkv.setdefault(match[1], {})[match[2]] = value
        elif name in back:
            out[back[name]] = value
        else:
            unknown.append(name)
    for prefix, parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            unknown.append(prefix + "?_proj.weight")
            continue
        fused = mx.concatenate([unpermute_rope(parts["q"], heads), unpermute_rope(parts["k"], kv_heads), parts["v"]])
        out[back[prefix + "in_proj_weight"]] = fused
    if unknown:
        raise CheckpointError(f"unexpected Mimi tensors in the transformers checkpoint: {', '.join(unknown[:5])}")
    return out


def _manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
