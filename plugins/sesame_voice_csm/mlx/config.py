"""``config.json`` as mlx-audio's ``SesameModel`` reads it, whichever transformers version wrote it.

transformers has written CSM configs in several spellings. Read here:

* rotary embedding: ``rope_scaling`` + ``rope_theta`` (transformers 4.x, sesame/csm-1b), its older
  ``type`` key for ``rope_type``, and ``rope_parameters`` (transformers 5: theta and scaling in one
  table), for the backbone and the depth decoder;
* ``audio_vocab_size`` / ``audio_num_codebooks`` (Sesame's names), or ``vocab_size`` /
  ``num_codebooks`` (``CsmConfig``'s only names since transformers 5);
* ``backbone_flavor`` / ``decoder_flavor``, which transformers 5 no longer writes: the sizes are read
  from the config itself, never from a flavor.

mlx-audio's rotary embedding is Llama 3's with low/high frequency factors 1 and 4 over 8192
positions; a config asking for another rotary scheme is refused by name instead of being run wrong.
"""

from __future__ import annotations

import copy

from sesame_voice_csm.common.checkpoint import CheckpointError

LLAMA3_FIXED = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
"""What mlx-audio's ``Llama3ScaledRoPE`` hard-codes; only ``factor`` and ``rope_theta`` are read."""
_SIZES = ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "intermediate_size")


def mlx_config(config: dict) -> dict:
    """A copy of ``config`` in the spelling ``SesameModel(config)`` reads; CheckpointError names what is wrong."""
    config = copy.deepcopy(config)
    _rope(config, "config.json")
    for ours, theirs in (("audio_vocab_size", "vocab_size"), ("audio_num_codebooks", "num_codebooks")):
        if ours not in config and theirs in config:
            config[ours] = config[theirs]
    depth = config.get("depth_decoder_config")
    if not isinstance(depth, dict):
        raise CheckpointError("config.json has no depth_decoder_config table")
    _rope(depth, "depth_decoder_config")
    depth.setdefault("backbone_hidden_size", config.get("hidden_size"))
    depth.setdefault("num_codebooks", config.get("audio_num_codebooks"))
    missing = [
        key for key in ("text_vocab_size", "audio_vocab_size", "audio_num_codebooks", *_SIZES) if key not in config
    ]
    missing += [f"depth_decoder_config.{key}" for key in ("vocab_size", *_SIZES) if key not in depth]
    if missing:
        raise CheckpointError(f"config.json lacks {', '.join(missing)}")
    for part in (config, depth):
        part.setdefault("head_dim", int(part["hidden_size"]) // int(part["num_attention_heads"]))
    return config


def _rope(part: dict, where: str) -> None:
    """Set ``rope_theta`` and ``rope_scaling`` (with ``factor``) from whichever spelling ``part`` uses."""
    parameters = part.pop("rope_parameters", None)
    scaling = part.get("rope_scaling")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise CheckpointError(f"{where}: rope_parameters is not a table")
        parameters = dict(parameters)
        part.setdefault("rope_theta", parameters.pop("rope_theta", None))
        scaling = scaling or parameters
    if part.get("rope_theta") is None:
        raise CheckpointError(f"{where} lacks rope_theta (or rope_parameters.rope_theta)")
    scaling = dict(scaling or {})
    kind = scaling.get("rope_type") or scaling.get("type") or "default"
    if kind == "default":
        scaling = {"rope_type": "llama3", "factor": 1.0, **LLAMA3_FIXED}  # factor 1: Llama 3 scaling is the identity
    elif kind == "llama3":
        odd = {
            key: scaling[key] for key, value in LLAMA3_FIXED.items() if key in scaling and float(scaling[key]) != value
        }
        if odd:
            raise CheckpointError(
                f"{where}: llama3 rotary scaling with {odd} is not supported by the MLX backend "
                f"(it uses {LLAMA3_FIXED}); use the torch backend (CSM_BACKEND=torch)"
            )
        scaling.setdefault("factor", 1.0)
    else:
        raise CheckpointError(
            f"{where}: rotary scaling {kind!r} is not supported by the MLX backend "
            "(default and llama3 are); use the torch backend (CSM_BACKEND=torch)"
        )
    part["rope_scaling"] = scaling
