"""Random-weight CSM checkpoints in the real on-disk formats, for tests and benchmarks.

``write_checkpoint(folder, size)`` writes a model folder (``config.json``, ``model.safetensors`` in
Sesame's original torchtune naming, a small BPE ``tokenizer.json``) and a Mimi codec file in
Kyutai's PyTorch naming, so they load through exactly the code path real weights take
(``MODEL_ID=folder``, plugin setting ``mimi=<file>``). Needs mlx, mlx-audio and tokenizers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
MIMI_FILENAME = "tokenizer-e351c8d8-checkpoint125.safetensors"
_ROPE = {
    "factor": 32.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
    "rope_type": "llama3",
}
_LLAMA_1B = dict(num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=8, head_dim=64,
                 hidden_size=2048, intermediate_size=8192)
_LLAMA_100M = dict(num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2, head_dim=128,
                   hidden_size=1024, intermediate_size=8192)
SIZES = {
    # (backbone, depth decoder, text vocabulary)
    "tiny": (dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  hidden_size=64, intermediate_size=128),
             dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                  hidden_size=64, intermediate_size=128), 512),
    "small": (dict(num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2, head_dim=64,
                   hidden_size=512, intermediate_size=1536),
              dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=64,
                   hidden_size=256, intermediate_size=1024), 8192),
    "full": (_LLAMA_1B, _LLAMA_100M, 128_256),
}
_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Hello there, how are you today? "
    "Sesame voice speaks in sentences; numbers like 1, 2 and 3 work too! "
) * 20


def model_config(size: str = "tiny") -> dict:
    """A ``config.json`` for a CSM of ``size`` (tiny, small or full), in the union format of sesame/csm-1b."""
    backbone, decoder, text_vocab = SIZES[size]
    common = dict(attention_bias=False, attention_dropout=0.0, hidden_act="silu", initializer_range=0.02,
                  max_position_embeddings=2048, mlp_bias=False, rms_norm_eps=1e-5, rope_scaling=dict(_ROPE),
                  rope_theta=500_000, use_cache=True)
    return {
        "model_type": "csm",
        "architectures": ["CsmForConditionalGeneration"],
        "backbone_flavor": "llama-1B",
        "decoder_flavor": "llama-100M",
        "text_vocab_size": text_vocab,
        "audio_vocab_size": 2051,
        "audio_num_codebooks": 32,
        "num_codebooks": 32,
        "vocab_size": 2051,
        "audio_eos_token_id": 128003,
        "audio_token_id": 128002,
        "bos_token_id": 128000,
        "codebook_eos_token_id": 0,
        "codebook_pad_token_id": 2050,
        "pad_token_id": 128002,
        "tie_codebooks_embeddings": True,
        "tie_word_embeddings": False,
        **common,
        **backbone,
        **({} if size == "full" else {  # ids inside the small vocabulary keep transformers' config checks quiet
            "audio_eos_token_id": text_vocab - 1, "audio_token_id": text_vocab - 2, "bos_token_id": text_vocab - 3,
            "pad_token_id": text_vocab - 2}),
        "depth_decoder_config": {
            "model_type": "csm_depth_decoder_model",
            "backbone_hidden_size": backbone["hidden_size"],
            "num_codebooks": 32,
            "vocab_size": 2051,
            **common,
            **decoder,
            "max_position_embeddings": 33,
        },
    }


def write_tokenizer(folder: Path, vocab_size: int = 400) -> None:
    """A byte-level BPE tokenizer with Llama 3's special tokens, loadable by ``AutoTokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([_CORPUS], trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": specials[0],
        "eos_token": specials[1],
        "model_max_length": 131072,
    }))


def _torchtune_name(key: str) -> str:
    """mlx-audio's parameter name → Sesame's original checkpoint name (inverse of ``Model.sanitize``)."""
    key = key.replace("self_attn", "attn").replace("o_proj", "output_proj")
    key = key.replace("gate_proj", "w1").replace("down_proj", "w2").replace("up_proj", "w3")
    key = key.replace("input_layernorm.weight", "sa_norm.scale")
    key = key.replace("post_attention_layernorm.weight", "mlp_norm.scale")
    return re.sub(r"^(backbone|decoder)\.norm\.weight$", r"\1.norm.scale", key)


def write_model(folder: Path, size: str = "tiny", seed: int = 0, dtype: str = "float32") -> Path:
    """Write config, random weights and tokenizer of a CSM of ``size`` into ``folder``."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.tts.models.sesame.sesame import SesameModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = model_config(size)
    mx.random.seed(seed)
    model = SesameModel(config)
    weights = {}
    for key, value in tree_flatten(model.parameters()):
        if key == "audio_head":
            value = mx.random.normal(value.shape) * (value.shape[1] ** -0.5)
        weights[_torchtune_name(key)] = value.astype(getattr(mx, dtype))
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    write_tokenizer(folder, vocab_size=min(400, config["text_vocab_size"]))
    return folder


def _pytorch_mimi_name(key: str) -> str:
    """mlx-audio's Mimi parameter name → Kyutai's PyTorch name (inverse of ``load_pytorch_weights``)."""
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


def write_mimi(path: Path, seed: int = 0) -> Path:
    """Write a Mimi codec with random weights (real architecture, 32 codebooks) in Kyutai's format."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.codec.models.mimi.mimi import Mimi, mimi_202407

    mx.random.seed(seed)
    mimi = Mimi(mimi_202407(32))
    weights = {}
    for key, value in tree_flatten(mimi.parameters()):
        if key.endswith("codebook.initialized"):
            value = mx.ones(value.shape)
        elif key.endswith("codebook.cluster_usage"):
            value = mx.ones(value.shape)
        elif key.endswith("codebook.embedding_sum"):
            value = mx.random.normal(value.shape)
        if key.endswith((".conv.weight", ".output_proj.weight", ".input_proj.weight")):
            value = value.swapaxes(-1, -2)
        elif key.endswith(".convtr.weight"):
            value = value.transpose(0, 2, 1) if value.shape[-1] == 1 else value.transpose(2, 0, 1)
        weights[_pytorch_mimi_name(key)] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(path), weights)
    return path


def write_checkpoint(folder: Path, size: str = "tiny", seed: int = 0, dtype: str = "float32") -> tuple[Path, Path]:
    """Model folder ``folder/model`` and Mimi file ``folder/mimi/…safetensors``; returns both paths."""
    folder = Path(folder)
    model_dir = write_model(folder / "model", size=size, seed=seed, dtype=dtype)
    mimi = write_mimi(folder / "mimi" / MIMI_FILENAME, seed=seed)
    return model_dir, mimi
