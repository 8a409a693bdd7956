"""CSM-1B on PyTorch through transformers' ``CsmForConditionalGeneration``: loading and the batched frame step.

The weights, layers, rotary tables, norms and the depth decoder are transformers' own modules. Only
the backbone's attention bookkeeping is ours: every request owns a *slot* of one preallocated KV
tensor per layer, so requests of different lengths advance together in one forward pass (the
linear layers, which dominate the cost, see all of them at once), and a request can join or leave
between two frames without touching the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sesame_voice.api.errors import ProviderUnavailable
from sesame_voice_csm.common.backend import TORCH_ADVICE
from sesame_voice_csm.common.window import WINDOW

_LOGGER = logging.getLogger(__name__)


@dataclass
class Rows:
    """Model input rows: int64 ``tokens`` and bool ``mask`` of shape (positions, codebooks + 1), on the host."""

    tokens: np.ndarray
    mask: np.ndarray

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @staticmethod
    def cat(parts: Sequence["Rows"]) -> "Rows":
        parts = [p for p in parts if len(p)]
        if not parts:
            return Rows(np.zeros((0, 1), np.int64), np.zeros((0, 1), bool))
        return Rows(np.concatenate([p.tokens for p in parts]), np.concatenate([p.mask for p in parts]))


@dataclass
class Sampling:
    """How one request picks its codes: temperature 0 is greedy; ``generator`` makes it reproducible."""

    temperature: float
    top_k: int
    generator: torch.Generator | None


def pick_device(option: str | None) -> torch.device:
    """``cuda`` when asked for or available, else the CPU."""
    if option and option != "auto":
        if option.startswith("cuda") and not torch.cuda.is_available():
            raise ProviderUnavailable(f"plugins.csm.device is {option!r} but torch sees no CUDA GPU")
        return torch.device(option)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def pick_dtype(option: str | None, device: torch.device) -> torch.dtype:
    """bf16 on a GPU and on CPUs with native bf16 matmuls (AVX512-BF16, AMX), else fp32 (docs/csm.md measures both)."""
    if option and option != "auto":
        try:
            return {
                "float32": torch.float32,
                "fp32": torch.float32,
                "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16,
                "float16": torch.float16,
                "fp16": torch.float16,
            }[option]
        except KeyError:
            raise ProviderUnavailable(f"plugins.csm.dtype {option!r} is not float32, bfloat16 or float16") from None
    return torch.bfloat16 if device.type == "cuda" or cpu_has_bf16() else torch.float32


def cpu_has_bf16() -> bool:
    """True when this CPU multiplies bf16 natively (elsewhere torch emulates it, slower than fp32)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def load_transformers_csm(model_dir: Path, device: torch.device, dtype: torch.dtype):
    """``CsmForConditionalGeneration`` from a transformers-format folder, in eval mode on ``device``."""
    try:
        from transformers import CsmForConditionalGeneration
    except ImportError as err:
        raise ProviderUnavailable(
            f"the torch CSM backend needs transformers with CSM ({err}); {TORCH_ADVICE}"
        ) from None
    model = CsmForConditionalGeneration.from_pretrained(str(model_dir), dtype=dtype)
    return model.to(device).eval()


def llama3_tokenizer(folder: Path, llama_template: bool):
    """The text tokenizer with the same bos/eos template mlx-audio gives Llama 3 (identical token ids)."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except Exception as err:  # noqa: BLE001 - transformers raises many kinds
        raise ProviderUnavailable(f"cannot load the CSM tokenizer from {folder}: {err}") from None
    if llama_template:
        bos, eos = tokenizer.bos_token, tokenizer.eos_token
        tokenizer._tokenizer.post_processor = TemplateProcessing(
            single=f"{bos}:0 $A:0 {eos}:0",
            pair=f"{bos}:0 $A:0 {eos}:0 {bos}:1 $B:1 {eos}:1",
            special_tokens=[(bos, tokenizer.bos_token_id), (eos, tokenizer.eos_token_id)],
        )
    return tokenizer


def checkpoint_tag(model_dir: Path) -> str:
    """Fingerprint of the checkpoint (its bundled Mimi encodes prompts): prompt caches are per codec."""
    parts = [
        f"{p.resolve()}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(model_dir.glob("*.safetensors"))
    ]
    return "torch-" + hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


class KvSlots:
    """Backbone keys/values of up to ``slots`` requests: one (slots, kv_heads, capacity, head_dim) tensor per layer."""

    def __init__(self, layers: int, slots: int, kv_heads: int, head_dim: int, device, dtype, capacity: int = 256):
        self.shape = (slots, kv_heads, 0, head_dim)
        self.layers, self.device, self.dtype = layers, device, dtype
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.capacity = 0
        self.free = list(range(slots))
        self.lengths = [0] * slots
        self.grow(capacity)

    def grow(self, needed: int) -> None:
        """Make room for ``needed`` positions per slot (doubling, at most the model window + 1)."""
        if needed <= self.capacity:
            return
        capacity = min(max(needed, 2 * self.capacity), WINDOW + 1)
        if needed > capacity:
            raise ValueError(f"{needed} positions exceed CSM's window of {WINDOW}")
        slots, heads, _, dim = self.shape
        for store in (self.keys, self.values):
            for layer in range(self.layers):
                fresh = torch.zeros((slots, heads, capacity, dim), device=self.device, dtype=self.dtype)
                if store[layer : layer + 1]:
                    fresh[:, :, : self.capacity] = store[layer]
                    store[layer] = fresh
                else:
                    store.append(fresh)
        self.capacity = capacity

    def acquire(self) -> int:
        slot = min(self.free)
        self.free.remove(slot)
        self.lengths[slot] = 0
        return slot

    def release(self, slot: int) -> None:
        self.lengths[slot] = 0
        self.free.append(slot)

    def snapshot(self, slot: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Copies of one slot's keys/values (for a reusable voice-prompt prefix)."""
        length = self.lengths[slot]
        return [(k[slot, :, :length].clone(), v[slot, :, :length].clone()) for k, v in zip(self.keys, self.values)]

    def restore(self, slot: int, saved: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        length = saved[0][0].shape[1] if saved else 0
        self.grow(length)
        for (k, v), keys, values in zip(saved, self.keys, self.values):
            keys[slot, :, :length] = k
            values[slot, :, :length] = v
        self.lengths[slot] = length


class TorchCsm:
    """A loaded transformers CSM plus the slot-batched backbone step and the batched depth decoder."""

    def __init__(self, model, tokenizer, max_batch: int, speaker_prefix_space: bool = False) -> None:
        from transformers.models.csm.modeling_csm import apply_rotary_pos_emb

        self.model = model
        self.tokenizer = tokenizer
        self.speaker_prefix_space = speaker_prefix_space
        config = model.config
        self.codebooks = int(config.num_codebooks)
        self.bins = int(getattr(config.codec_config, "codebook_size", 2048))
        self.device = model.lm_head.weight.device
        self.dtype = model.lm_head.weight.dtype
        self.backbone = model.backbone_model
        self.depth = model.depth_decoder
        self._rotary = apply_rotary_pos_emb
        attention = self.backbone.layers[0].self_attn
        self.heads = int(config.num_attention_heads)
        self.kv_heads = int(config.num_key_value_heads)
        self.head_dim = int(attention.head_dim)
        self.slots = KvSlots(
            len(self.backbone.layers), max_batch, self.kv_heads, self.head_dim, self.device, self.dtype
        )

    # -- tokens --------------------------------------------------------------
    def text_rows(self, text: str, speaker: int) -> Rows:
        """``[speaker]text`` with bos/eos, as mlx-audio and Sesame tokenise it."""
        prompt = text.lstrip() if self.speaker_prefix_space else text
        prefix = f"[{speaker}] " if self.speaker_prefix_space else f"[{speaker}]"
        ids = np.asarray(self.tokenizer.encode(prefix + prompt), dtype=np.int64)
        tokens = np.zeros((len(ids), self.codebooks + 1), np.int64)
        mask = np.zeros_like(tokens, dtype=bool)
        tokens[:, -1], mask[:, -1] = ids, True
        return Rows(tokens, mask)

    def audio_rows(self, codes: np.ndarray, eos: bool = True) -> Rows:
        """Rows for Mimi ``codes`` (codebooks × frames), with an end-of-audio row."""
        frames = codes.shape[1] + int(eos)
        tokens = np.zeros((frames, self.codebooks + 1), np.int64)
        tokens[: codes.shape[1], : self.codebooks] = codes[: self.codebooks].T
        mask = np.zeros_like(tokens, dtype=bool)
        mask[:, : self.codebooks] = True
        return Rows(tokens, mask)

    # -- backbone ------------------------------------------------------------
    def embed(self, rows: Rows) -> torch.Tensor:
        """(positions, hidden): masked sum of the audio and text embeddings of each row."""
        tokens = torch.as_tensor(rows.tokens, device=self.device)
        mask = torch.as_tensor(rows.mask, device=self.device)
        text = self.model.embed_text_tokens(tokens[:, -1]) * mask[:, -1:].to(self.dtype)
        audio_rows = mask[:, : self.codebooks].any(dim=1)
        if bool(audio_rows.any()):
            embed = self.backbone.embed_tokens
            picked = tokens[audio_rows, : self.codebooks]
            audio = embed.embed_audio_tokens(picked + embed.audio_tokens_offsets)
            audio = (audio * mask[audio_rows, : self.codebooks, None].to(self.dtype)).sum(dim=1)
            text = text.index_add(0, torch.nonzero(audio_rows).flatten(), audio)
        return text

    def forward(self, slots: list[int], hidden: torch.Tensor) -> torch.Tensor:
        """Run ``hidden`` (batch, positions, dim) through the backbone after each slot's cached positions.

        Appends the new keys/values to the slots; returns the final-norm hidden state of the last position.
        """
        cache = self.slots
        batch, steps, _ = hidden.shape
        starts = torch.tensor([cache.lengths[s] for s in slots], device=self.device)
        end = int(starts.max()) + steps
        cache.grow(end)
        positions = starts[:, None] + torch.arange(steps, device=self.device)[None, :]  # (batch, steps)
        cos, sin = self.backbone.rotary_emb(hidden, positions)
        keys_at = torch.arange(end, device=self.device)
        allowed = (keys_at[None, None, :] <= positions[:, :, None])[:, None]  # (batch, 1, steps, end)
        index = torch.tensor(slots, device=self.device)
        contiguous = slots == list(range(slots[0], slots[0] + batch))
        for number, layer in enumerate(self.backbone.layers):
            attention = layer.self_attn
            x = layer.input_layernorm(hidden)
            q = attention.q_proj(x).view(batch, steps, self.heads, self.head_dim).transpose(1, 2)
            k = attention.k_proj(x).view(batch, steps, self.kv_heads, self.head_dim).transpose(1, 2)
            v = attention.v_proj(x).view(batch, steps, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = self._rotary(q, k, cos, sin)
            keys, values = cache.keys[number], cache.values[number]
            keys[index[:, None], :, positions] = k.transpose(1, 2)
            values[index[:, None], :, positions] = v.transpose(1, 2)
            if contiguous:
                past_k, past_v = (
                    keys[slots[0] : slots[0] + batch, :, :end],
                    values[slots[0] : slots[0] + batch, :, :end],
                )
            else:
                past_k, past_v = keys[index, :, :end], values[index, :, :end]
            out = F.scaled_dot_product_attention(q, past_k, past_v, attn_mask=allowed, enable_gqa=True)
            out = attention.o_proj(out.transpose(1, 2).reshape(batch, steps, -1))
            hidden = hidden + out
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
        for slot in slots:
            cache.lengths[slot] += steps
        return self.backbone.norm(hidden[:, -1])

    # -- depth decoder -------------------------------------------------------
    def frame(self, last: torch.Tensor, samplers: Sequence[Sampling]) -> torch.Tensor:
        """All 32 codebooks of one frame for each row of ``last`` (batch, hidden): (batch, codebooks) int64."""
        from transformers import DynamicCache

        bins = self.bins
        c0 = sample(self.model.lm_head(last)[:, :bins], samplers)
        codes = [c0]
        cache = DynamicCache(config=self.depth.config)
        inputs = torch.stack([torch.zeros_like(c0), c0], dim=1)
        out = self.depth(
            input_ids=inputs, backbone_last_hidden_state=last, cache=cache, use_cache=True, logits_to_keep=1
        )
        for _ in range(1, self.codebooks):
            code = sample(out.logits[:, -1, :bins], samplers)
            codes.append(code)
            if len(codes) == self.codebooks:
                break
            out = self.depth(input_ids=code[:, None], cache=out.cache, use_cache=True, logits_to_keep=1)
        return torch.stack(codes, dim=1)


def sample(logits: torch.Tensor, samplers: Sequence[Sampling]) -> torch.Tensor:
    """One code per row: argmax at temperature 0, else top-k sampling with the row's own generator."""
    if all(s.temperature <= 0 for s in samplers):
        return logits.argmax(dim=-1)
    picks = []
    for row, sampling in zip(logits.float(), samplers):
        if sampling.temperature <= 0:
            picks.append(row.argmax())
            continue
        scores = row / sampling.temperature
        if 0 < sampling.top_k < scores.shape[-1]:
            threshold = torch.topk(scores, sampling.top_k).values[-1]
            scores = scores.masked_fill(scores < threshold, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        if sampling.generator is not None and probs.device.type != sampling.generator.device.type:
            probs = probs.cpu()
        picks.append(torch.multinomial(probs, 1, generator=sampling.generator)[0].to(logits.device))
    return torch.stack(picks)
