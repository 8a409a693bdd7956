"""Random-weight CSM checkpoints in the real on-disk formats, for tests and benchmarks.

``write_checkpoint(folder, size)`` writes a model folder (``config.json``, ``model.safetensors`` in
Sesame's original torchtune naming, a small BPE ``tokenizer.json``) and a Mimi codec file in
Kyutai's PyTorch naming, so they load through exactly the code path real weights take
(``MODEL_ID=folder``, plugin setting ``mimi=<file>``). ``write_hub_repo`` lays the same weights out
as the sesame/csm-1b repository is laid out (both safetensors formats, the transformers shards
carrying Mimi, ``ckpt.pt``, prompts, tokenizer and config files) and ``write_hf_cache`` puts such a
folder into a Hugging Face cache exactly as ``hf download`` would. Needs mlx, mlx-audio
and tokenizers.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
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
_LLAMA_1B = dict(
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=64,
    hidden_size=2048,
    intermediate_size=8192,
)
_LLAMA_100M = dict(
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=2,
    head_dim=128,
    hidden_size=1024,
    intermediate_size=8192,
)
SIZES = {
    # (backbone, depth decoder, text vocabulary)
    "tiny": (
        dict(
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            hidden_size=64,
            intermediate_size=128,
        ),
        dict(
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            hidden_size=64,
            intermediate_size=128,
        ),
        512,
    ),
    "small": (
        dict(
            num_hidden_layers=4,
            num_attention_heads=8,
            num_key_value_heads=2,
            head_dim=64,
            hidden_size=512,
            intermediate_size=1536,
        ),
        dict(
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=64,
            hidden_size=256,
            intermediate_size=1024,
        ),
        8192,
    ),
    "full": (_LLAMA_1B, _LLAMA_100M, 128_256),
}
_CORPUS = (
    "The quick brown fox jumps over the lazy dog. Hello there, how are you today? "
    "Sesame voice speaks in sentences; numbers like 1, 2 and 3 work too! "
) * 20


def model_config(size: str = "tiny") -> dict:
    """A ``config.json`` for a CSM of ``size`` (tiny, small or full), in the union format of sesame/csm-1b."""
    backbone, decoder, text_vocab = SIZES[size]
    common = dict(
        attention_bias=False,
        attention_dropout=0.0,
        hidden_act="silu",
        initializer_range=0.02,
        max_position_embeddings=2048,
        mlp_bias=False,
        rms_norm_eps=1e-5,
        rope_scaling=dict(_ROPE),
        rope_theta=500_000,
        use_cache=True,
    )
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
        **(
            {}
            if size == "full"
            else {  # ids inside the small vocabulary keep transformers' config checks quiet
                "audio_eos_token_id": text_vocab - 1,
                "audio_token_id": text_vocab - 2,
                "bos_token_id": text_vocab - 3,
                "pad_token_id": text_vocab - 2,
            }
        ),
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


def _one_frame_weight(key: str, value):
    import mlx.core as mx

    if key.endswith(("o_proj.weight", "down_proj.weight", "audio_embeddings.weight", "audio_head")):
        return mx.zeros(value.shape)
    if key == "text_embeddings.weight":
        return mx.zeros(value.shape).at[:, 0].add(1.0)
    if key == "codebook0_head.weight":
        return mx.zeros(value.shape).at[5, 0].add(1.0)
    return value


def write_tokenizer(folder: Path, vocab_size: int = 400) -> None:
    """A byte-level BPE tokenizer with Llama 3's special tokens, loadable by ``AutoTokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator([_CORPUS], trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": specials[0],
                "eos_token": specials[1],
                "model_max_length": 131072,
            }
        )
    )


def _torchtune_name(key: str) -> str:
    """mlx-audio's parameter name → Sesame's original checkpoint name (inverse of ``Model.sanitize``)."""
    key = key.replace("self_attn", "attn").replace("o_proj", "output_proj")
    key = key.replace("gate_proj", "w1").replace("down_proj", "w2").replace("up_proj", "w3")
    key = key.replace("input_layernorm.weight", "sa_norm.scale")
    key = key.replace("post_attention_layernorm.weight", "mlp_norm.scale")
    return re.sub(r"^(backbone|decoder)\.norm\.weight$", r"\1.norm.scale", key)


def write_model(
    folder: Path, size: str = "tiny", seed: int = 0, dtype: str = "float32", speaks_one_frame: bool = False
) -> Path:
    """Write config, random weights and tokenizer of a CSM of ``size`` into ``folder``.

    ``speaks_one_frame``: weights that, sampled greedily, say one frame (codebook 0 = 5, the rest 0)
    and then end of speech (an all-zero frame): every transformer layer adds nothing, so each
    position's hidden state is its normalised input embedding; text embeddings point codebook 0
    at 5, audio embeddings are zero, so the frame after an audio frame has all-zero logits.
    """
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
        if speaks_one_frame:
            value = _one_frame_weight(key, value)
        weights[_torchtune_name(key)] = value.astype(getattr(mx, dtype))
    mx.save_safetensors(str(folder / "model.safetensors"), weights)
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    write_tokenizer(folder, vocab_size=min(400, config["text_vocab_size"]))
    return folder


def write_mimi(path: Path, seed: int = 0) -> Path:
    """Write a Mimi codec with random weights (real architecture, 32 codebooks) in Kyutai's format."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.codec.models.mimi.mimi import Mimi, mimi_202407

    from sesame_voice_csm.common.checkpoint import kyutai_mimi_name

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
        weights[kyutai_mimi_name(key)] = value
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


# -- the sesame/csm-1b repository layout -------------------------------------------
_TRANSFORMERS_NAMES = {
    "text_embeddings.weight": "embed_text_tokens.weight",
    "audio_embeddings.weight": "backbone_model.embed_tokens.embed_audio_tokens.weight",
    "codebook0_head.weight": "lm_head.weight",
    "audio_head": "depth_decoder.codebooks_head.weight",
    "projection.weight": "depth_decoder.model.inputs_embeds_projector.weight",
    "backbone.norm.scale": "backbone_model.norm.weight",
    "decoder.norm.scale": "depth_decoder.model.norm.weight",
}
SHARDS = ("transformers-00001-of-00002.safetensors", "transformers-00002-of-00002.safetensors")
PROMPTS = ("conversational_a", "conversational_b", "read_speech_a")


def transformers_name(key: str) -> str:
    """Sesame's original CSM name → ``CsmForConditionalGeneration``'s (transformers' ``convert_csm.py``)."""
    if key in _TRANSFORMERS_NAMES:
        return _TRANSFORMERS_NAMES[key]
    key = key.replace("backbone.layers.", "backbone_model.layers.")
    key = key.replace("decoder.layers.", "depth_decoder.model.layers.").replace(".attn.", ".self_attn.")
    key = key.replace(".output_proj.", ".o_proj.").replace(".w1.", ".gate_proj.")
    key = key.replace(".w2.", ".down_proj.").replace(".w3.", ".up_proj.")
    key = key.replace(".sa_norm.scale", ".input_layernorm.weight")
    return key.replace(".mlp_norm.scale", ".post_attention_layernorm.weight")


def transformers_weights(model_dir: Path, mimi_file: Path) -> dict:
    """The CSM of ``model_dir`` and the Mimi of ``mimi_file`` as transformers' ``CsmForConditionalGeneration``
    tensors, the way transformers' conversion scripts write them (q/k rotary-permuted, Mimi's qkv split)."""
    import mlx.core as mx

    from sesame_voice_csm.common.checkpoint import mimi_transformers_name, permute_rope

    config = json.loads((Path(model_dir) / "config.json").read_text())
    weights = {}
    for key, value in mx.load(str(Path(model_dir) / "model.safetensors")).items():
        name = transformers_name(key)
        if ".q_proj." in name or ".k_proj." in name:
            part = config if name.startswith("backbone") else config["depth_decoder_config"]
            value = permute_rope(value, part["num_attention_heads" if ".q_proj." in name else "num_key_value_heads"])
        weights[name] = value
    weights["depth_decoder.model.embed_tokens.weight"] = weights[
        "backbone_model.embed_tokens.embed_audio_tokens.weight"
    ]
    for key, value in mx.load(str(mimi_file)).items():
        name = "codec_model." + mimi_transformers_name(key)
        if name.endswith("in_proj_weight"):
            q, k, v = mx.split(value, 3)
            base = name.removesuffix("in_proj_weight")
            weights[base + "q_proj.weight"] = permute_rope(q, 8)
            weights[base + "k_proj.weight"] = permute_rope(k, 8)
            weights[base + "v_proj.weight"] = v
        else:
            weights[name] = value
    return weights


def write_hub_repo(folder: Path, size: str = "tiny", seed: int = 0) -> Path:
    """A folder laid out like the sesame/csm-1b hub repository, with random weights of ``size``."""
    import mlx.core as mx

    folder = Path(folder)
    original, mimi_file = write_checkpoint(folder.with_name(folder.name + "-parts"), size=size, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", *TOKENIZER_FILES):
        shutil.copy(original / name, folder / name)
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"})
    )
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": True}))
    (folder / "preprocessor_config.json").write_text(json.dumps({"sampling_rate": 24000}))
    (folder / "README.md").write_text("random-weight stand-in for sesame/csm-1b\n")
    (folder / "ckpt.pt").write_bytes(b"stand-in: a PyTorch pickle is never read")
    weights = transformers_weights(original, mimi_file)
    names = sorted(weights)
    halves = (names[: len(names) // 2], names[len(names) // 2 :])
    weight_map = {}
    for shard, part in zip(SHARDS, halves):
        mx.save_safetensors(str(folder / shard), {name: weights[name] for name in part})
        weight_map.update({name: shard for name in part})
    (folder / "transformers.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _write_prompts(folder / "prompts")
    shutil.rmtree(folder.with_name(folder.name + "-parts"))
    return folder


def _write_prompts(folder: Path) -> None:
    import numpy as np
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(24_000) / 24_000
    for index, name in enumerate(PROMPTS):
        sf.write(
            str(folder / f"{name}.wav"), (0.3 * np.sin(2 * np.pi * (150 + 40 * index) * t)).astype(np.float32), 24_000
        )


def write_hf_cache(hub_cache: Path, repo_id: str, source: Path, skip: tuple[str, ...] = ()) -> Path:
    """Put ``source``'s files into ``hub_cache`` as huggingface_hub stores a download (blobs, refs, snapshot links).

    ``skip`` names files left out, as an interrupted download would. Returns the snapshot folder.
    """
    repo = Path(hub_cache) / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    for path in sorted(Path(source).rglob("*")):
        relative = path.relative_to(source).as_posix()
        if not path.is_file() or relative in skip:
            continue
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.copy(path, blob)
        link = snapshot / relative
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    return snapshot
